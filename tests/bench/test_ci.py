"""What CI reads: ``::error::`` annotations, JUnit XML, ``compare --json/--markdown``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from edgekit.bench import BenchResult, compare, github_annotations, junit_xml
from edgekit.bench.budgets import check_budgets, parse_budget
from edgekit.bench.ci import annotation
from edgekit.bench.schema import BenchRow
from tests.bench.benchhelpers import FAST, cli, noisy_run


def _row(variant: str, samples, *, status: str = "ok", accuracy: float = 0.95, **kw) -> BenchRow:
    from edgekit.bench.stats import summarize

    samples = list(samples) if samples is not None else []
    return BenchRow(artifact=f"model.{variant}.tflite", format="tflite", variant=variant,
                    runtime="tflite", device="cpu", threads=1, batch=1, status=status,
                    error=None if status == "ok" else "killed by signal SIGSEGV",
                    size_bytes=10 * 1024, latency_ms=summarize(samples) if samples else None,
                    samples_ms=samples, metrics={"accuracy": accuracy} if status == "ok" else None,
                    peak_rss_mb=80.0, **kw)  # fmt: skip


@pytest.fixture
def result() -> BenchResult:
    base = [
        _row("float32", noisy_run(0)),
        _row("int8", noisy_run(1)),
        _row("int16x8", noisy_run(2)),
    ]
    new = [_row("float32", noisy_run(3, scale=1.5), accuracy=0.9),
           _row("int8", noisy_run(4)), _row("int16x8", None, status="error")]  # fmt: skip
    budgets = [parse_budget("int8:p95_ms<=0.01"), parse_budget("accuracy>=0.5")]
    out = BenchResult(environment={}, rows=new, budgets=check_budgets(budgets, new))
    out.comparison = compare(base, new, max_regression=10)
    return out


def test_junit_has_a_test_case_per_check(result):
    root = ET.fromstring(junit_xml(result))
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    # 3 measurements + (1 + 3) budget checks + 3 baseline checks
    assert len(cases) == 10 == int(suite.get("tests"))
    by_class: dict[str, list] = {}
    for case in cases:
        by_class.setdefault(case.get("classname"), []).append(case)
    assert [len(by_class[k]) for k in ("edgekit.measurement", "edgekit.budget",
                                       "edgekit.baseline")] == [3, 4, 3]  # fmt: skip
    failures = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failures) == {
        "int8:p95_ms<=0.01 [model.int8.tflite (tflite, cpu, threads=1, batch=1)]",
        "no regression beyond 10% [model.float32.tflite (tflite, cpu, threads=1, batch=1)]",
    }
    errors = [c for c in cases if c.find("error") is not None]
    assert len(errors) == 2  # the crashed measurement, and its baseline check
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("2", "2", "1")
    budget = failures["int8:p95_ms<=0.01 [model.int8.tflite (tflite, cpu, threads=1, batch=1)]"]
    assert budget.get("message").startswith(
        "budget int8:p95_ms<=0.01 violated by model.int8.tflite (tflite, cpu, threads=1, batch=1): "
    ) and budget.get("message").endswith(" µs")


def test_annotations_are_github_workflow_commands(result):
    lines = github_annotations(result)
    assert lines[0] == (
        "::error title=edgekit measurement::model.int16x8.tflite [tflite, cpu, threads=1, "
        "batch=1]: killed by signal SIGSEGV"
    )
    assert lines[1].startswith(
        "::error title=edgekit budget::budget int8:p95_ms<=0.01 violated by model.int8.tflite"
    )
    assert lines[2].startswith(
        "::error title=edgekit regression::latency regression of model.float32.tflite (tflite, "
        "cpu, threads=1, batch=1): p50 +"
    ) and lines[2].endswith(", beyond the 10%25 allowed")
    assert "%25" in lines[2]  # "%" escaped as GitHub requires
    assert len(lines) == 4  # + the crashed row against the baseline
    assert annotation("a,b:c", "x\ny") == "::error title=a%2Cb%3Ac::x%0Ay"


def test_comparison_shows_accuracy_size_and_memory_deltas(result):
    comparison = result.comparison
    lines = comparison.table().splitlines()
    assert lines[0].split() == ["artifact", "runtime", "device", "threads", "batch", "base",
                                "p50", "new", "p50", "change", "95%", "CI", "accuracy", "size",
                                "peak", "RSS", "verdict"]  # fmt: skip
    float32 = lines[2].split()
    assert float32[-7:] == ["-5.00", "pp", "+0.0", "KB", "+0.0", "MB", "regression"]
    assert lines[-2] == "verdicts: 1 regression, 1 same, 1 error"
    row = comparison.rows[0].to_json()
    assert (row["base_accuracy"], row["new_accuracy"]) == (0.95, 0.9)
    assert row["accuracy_delta_pp"] == pytest.approx(-5.0)
    assert (row["size_delta_kb"], row["peak_rss_delta_mb"]) == (0.0, 0.0)
    assert comparison.to_json()["verdicts"] == {"regression": 1, "same": 1, "error": 1}


def _bench_file(path, rows):
    path.write_text(json.dumps({"schema": "edgekit.bench/1", "environment": {},
                                "results": [r.to_json() for r in rows]}))  # fmt: skip
    return path


def test_compare_cli_json_markdown_and_annotations(tmp_path, monkeypatch):
    base = _bench_file(tmp_path / "base.json", [_row("int8", noisy_run(0))])
    faster = _bench_file(tmp_path / "faster.json", [_row("int8", noisy_run(1, scale=0.8))])
    slower = _bench_file(tmp_path / "slower.json", [_row("int8", noisy_run(1, scale=1.5))])
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    # a significant 20% speed-up within a 30% allowance: "faster" (it was "same"), exit 0
    code, out, err = cli("compare", str(base), str(faster), "--max-regression", "30",
                         "--json", "--markdown", str(tmp_path / "c.md"))  # fmt: skip
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["schema"] == "edgekit.compare/1" and doc["passed"] is True
    assert (doc["base"], doc["new"]) == (str(base), str(faster))
    assert [r["verdict"] for r in doc["rows"]] == ["faster"]
    md = (tmp_path / "c.md").read_text()
    assert md.startswith("## edgekit compare\n\n`base.json` -> `faster.json` (max regression 30%)")
    assert "| model.int8.tflite | tflite | cpu | 1 | 1 |" in md and "| faster |" in md
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = tmp_path / "summary.md"
    summary.write_text("## earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = cli("compare", str(base), str(slower))
    assert code == 1
    shown = summary.read_text()  # appended to the job's summary page, after what was there
    assert shown.startswith("## earlier step\n## edgekit compare\n\n`base.json` -> `slower.json`")
    assert "| regression |" in shown
    assert out.splitlines()[2].split()[-1] == "regression"
    assert out.splitlines()[-1].startswith("::error title=edgekit regression::latency regression")
    assert err.splitlines()[-1].startswith("edgekit: error: 1 regression(s) beyond 10%")


def test_bench_junit_and_annotations_in_github_actions(export_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    junit = tmp_path / "junit.xml"
    code, out, err = cli("bench", str(export_dir / "model.int8.tflite"), *FAST,
                         "--budget", "p95_ms<=0.000001", "--budget", "accuracy>=0.5",
                         "--junit", str(junit))  # fmt: skip
    assert code == 1
    assert out.splitlines()[-1].startswith(
        "::error title=edgekit budget::budget p95_ms<=0.000001 violated by model.int8.tflite "
        "(tflite, cpu, threads=1, batch=1): "
    )
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    # --json -: stdout is JSON alone, the annotations go to stderr
    code, out, err = cli("bench", str(export_dir / "model.int8.tflite"), *FAST,
                         "--budget", "p95_ms<=0.000001", "--json", "-")  # fmt: skip
    assert code == 1 and json.loads(out)["budgets"][0]["passed"] is False
    assert "::error title=edgekit budget::" in err
    monkeypatch.delenv("GITHUB_ACTIONS")
    code, out, err = cli("bench", str(export_dir / "model.int8.tflite"), *FAST,
                         "--budget", "p95_ms<=0.000001")  # fmt: skip
    assert code == 1 and "::error" not in out + err
