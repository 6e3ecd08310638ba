"""CI gates that cannot pass without measuring (issue 13, classes 3, 5, 7 and 8).

A budget counts only measured rows; a scoped budget that matches no row fails; a remote device
must return one row per job; an artifact whose export validation failed fails the bench unless
``--allow-failed``; ``--repeat`` reports one row per job; ``--timeout`` is finite; and what
bench runs is what export wrote (sha256 of every artifact and of the C, a C prefix that is an
identifier).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edgekit.bench import run_bench
from edgekit.bench.budgets import METRICS, check_budgets, parse_budget, violations_table
from edgekit.bench.ci import junit_xml
from edgekit.bench.result import BenchResult
from edgekit.bench.schema import BenchRow
from edgekit.errors import EdgekitError
from tests.conftest import chdir, cli
from tests.devices import conftest as device_fixtures

MEMORY_LIMIT_TAKES = "--memory-limit takes auto, or MiB >= 64 (0 for no limit)"

FAST = ["--warmup", "1", "--runs", "5", "--min-time", "0"]
QUICK = dict(warmup=1, runs=5, min_time=0.0)
ARTIFACTS = ("model.float32.tflite", "model.int8.tflite", "model.float32.onnx")


def row(variant: str = "int8", status: str = "ok", **values: Any) -> BenchRow:
    r = BenchRow(
        artifact=f"model.{variant}.tflite", format="tflite", variant=variant, runtime="tflite",
        device="cpu", threads=1, batch=1, status=status, size_bytes=2048,
        latency_ms={"min": 0.5, "mean": 1.0, "std": 0.1, "p50": 0.9, "p90": 1.4, "p95": 1.5,
                    "p99": 2.0, "max": 3.0} if status == "ok" else None,
        throughput_per_s=1000.0, init_ms=4.0, peak_rss_mb=80.0,
        metrics={"accuracy": 0.95, "mae": 0.1, "rmse": 0.2}, max_abs_diff=0.01,
        accuracy_drop=0.3, error=None if status == "ok" else f"{status} here: why",
        arena_bytes=4096,
    )  # fmt: skip
    for k, v in values.items():
        setattr(r, k, v)
    return r


# --- budgets on rows that were not measured -----------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("statuses", [("skipped",), ("error",), ("skipped", "skipped"),
                                      ("skipped", "error")], ids="-".join)  # fmt: skip
def test_a_budget_that_measured_nothing_fails(metric, statuses):
    rows = [row(f"v{i}", s) for i, s in enumerate(statuses)]
    budget = parse_budget(f"{metric}<=1e9")
    checks = check_budgets([budget], rows)
    assert [c.passed for c in checks] == [False] * len(rows)
    n_skipped, n_failed = statuses.count("skipped"), statuses.count("error")
    how = " and ".join(
        part for part, n in ((f"{n_skipped} skipped", n_skipped), (f"{n_failed} failed", n_failed))
        if n
    )  # fmt: skip
    reason = (
        f"budget {metric}<=1e9 measured nothing: all {len(rows)} row(s) it applies to were not "
        f"measured ({how}: {statuses[0]} here: why)"
    )
    assert {c.reason for c in checks} == {reason}
    result = BenchResult(environment={}, rows=rows, budgets=checks)
    assert not result.passed
    assert reason in result.problems() and reason in result.table()
    assert "not measured (" in violations_table(checks)
    assert all(c.to_json()["passed"] is False for c in checks)
    assert 'classname="edgekit.budget"' in junit_xml(result)
    assert "<failure" in junit_xml(result)


@pytest.mark.parametrize("metric", METRICS)
def test_a_measured_row_is_enough_and_the_others_are_not_judged(metric):
    rows = [row("int8"), row("float32", "skipped")]
    checks = check_budgets([parse_budget(f"{metric}<=1e9")], rows)
    assert [c.passed for c in checks] == [True, None]
    result = BenchResult(environment={}, rows=rows, budgets=checks)
    assert result.passed
    assert "budgets: 1 check(s) passed (1 on rows that were not measured, not judged)" in (
        result.table()
    )


@pytest.mark.parametrize(
    "scope", ["int4", "onnx-int8", "model.int8.onnx", "INT8", "int8.tflite", "c-int8"]
)
def test_a_scoped_budget_that_matches_no_row_fails(scope):
    rows = [row("int8"), row("float32")]
    budget = parse_budget(f"{scope.strip()}:p95_ms<=100")
    (check,) = check_budgets([budget], rows)
    reason = (
        f"budget {budget.expr} matched no result (variants here: int8, float32; artifacts: "
        "model.int8.tflite, model.float32.tflite)"
    )
    assert (check.row, check.passed, check.reason) == (None, False, reason)
    assert check.to_json()["artifact"] is None and check.to_json()["reason"] == reason
    result = BenchResult(environment={}, rows=rows, budgets=[check])
    assert not result.passed
    assert result.problems() == f"1 budget check(s) violated; {reason}"
    assert "matched nothing" in result.table() and reason in result.markdown()
    assert "no result" in junit_xml(result)


def test_no_rows_at_all_fail_every_budget():
    checks = check_budgets([parse_budget("p95_ms<=1"), parse_budget("int8:size_kb<1")], [])
    assert [(c.passed, c.reason) for c in checks] == [
        (False, "budget p95_ms<=1 matched no result (variants here: none; artifacts: none)"),
        (False, "budget int8:size_kb<1 matched no result (variants here: none; artifacts: none)"),
    ]


def test_gpu_without_a_gpu_fails_its_budget(export_dir):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA: the rows are measured")
    code, out, err = cli("bench", str(export_dir), "--device", "gpu", "--budget", "p95_ms<=1000",
                         *FAST)  # fmt: skip
    assert code == 1, err
    last = err.splitlines()[-1]
    assert last.startswith(
        "edgekit: error: 3 budget check(s) violated; budget p95_ms<=1000 measured nothing: all "
        "3 row(s) it applies to were not measured (3 skipped: "
    )
    assert "check(s) passed" not in out and "not measured (skipped)" in out


# --- --repeat: one row per job ----------------------------------------------------------


class FlakyPool:
    """A stand-in for the worker pool: every job is ok in round 1; the jobs in ``fail`` fail
    from round ``when`` on (they must not be run again after that)."""

    calls: ClassVar[list[tuple[str, int]]] = []

    def __init__(self, fail: set[int], when: int, **_: Any) -> None:
        self.fail, self.when = fail, when
        self.rounds: dict[tuple, int] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def prestart(self, preload=None):
        pass

    def run(self, job, *, timeout):
        key = (job.path, job.threads, job.batch)
        r = self.rounds[key] = self.rounds.get(key, 0) + 1
        FlakyPool.calls.append((Path(job.path).name, job.batch))
        if job.batch in self.fail and r >= self.when:
            return {"status": "error", "error": "boom"}
        samples = [0.1 + 0.01 * i for i in range(10)]
        return {"status": "ok", "error": None, "init_ms": 1.0, "first_ms": 0.2, "runs": 10,
                "samples_ms": samples, "latency_ms": {"p50": 0.15}, "throughput_per_s": 1.0,
                "peak_rss_mb": 50.0}  # fmt: skip


@pytest.mark.parametrize("repeat", [2, 3, 5])
@pytest.mark.parametrize("fail", [set(), {1}, {1, 3}, {1, 2, 3, 4}], ids=str)
@pytest.mark.parametrize("when", [1, 2])
def test_repeat_reports_one_row_per_job(export_dir, monkeypatch, repeat, fail, when):
    import edgekit.bench.run as run_module

    FlakyPool.calls = []
    monkeypatch.setattr(run_module, "WorkerPool", lambda **kw: FlakyPool(fail, when, **kw))
    paths = [export_dir / "model.float32.tflite", export_dir / "model.int8.tflite"]
    result = run_bench(paths, batch=[1, 2, 3, 4], repeat=repeat, budgets=["p50_ms<=100"],
                       **QUICK)  # fmt: skip
    assert len(result.rows) == 8  # 2 artifacts x 4 batch sizes
    keys = [(r.artifact, r.batch) for r in result.rows]
    assert keys == [(Path(p).name, b) for p in paths for b in (1, 2, 3, 4)]
    assert len(result.to_json()["results"]) == 8 and len(result.budgets) == 8
    bad = {(r.artifact, r.batch) for r in result.rows if r.status == "error"}
    assert bad == {(Path(p).name, b) for p in paths for b in fail}
    for r in result.rows:
        if r.status == "error":
            assert r.error == ("boom" if when == 1 else f"boom (round {when} of {repeat})")
        else:
            assert r.rounds == repeat
    # a job that failed is not run again
    for name, b in set(FlakyPool.calls):
        n = FlakyPool.calls.count((name, b))
        assert n == (min(when, repeat) if b in fail else repeat)


def test_repeat_for_real_and_compare(export_dir, tmp_path):
    out = tmp_path / "b.json"
    code, _, err = cli("bench", str(export_dir), "--batch", "1,2", "--repeat", "3",
                       "--json", str(out), "--budget", "p95_ms<=10000", *FAST)  # fmt: skip
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert len(doc["results"]) == 6 and len(doc["budgets"]) == 6
    assert {r["rounds"] for r in doc["results"]} == {3}
    code, out_text, err = cli("compare", str(out), str(out))
    assert code == 0, err
    assert len([line for line in out_text.splitlines() if "model." in line]) == 6


# --- a regression gate that did not measure a row fails -----------------------------------


def _bench_json(path: Path, rows: list[BenchRow]) -> Path:
    path.write_text(json.dumps(BenchResult(environment={}, rows=rows).to_json()))
    return path


def _measured(variant: str) -> BenchRow:
    return row(variant, samples_ms=[0.9 + 0.001 * (i % 7) for i in range(40)])


@pytest.mark.parametrize(
    ("new_rows", "verdict", "line"),
    [
        ([_measured("float32")], "missing",
         "model.int8.tflite (tflite, threads=1, batch=1)"),
        ([_measured("float32"), row("int8", status="skipped")], "not measured",
         "model.int8.tflite (tflite, threads=1, batch=1)"),
    ],
    ids=["missing", "skipped"],
)  # fmt: skip
def test_compare_fails_on_a_row_measured_in_the_base_only(tmp_path, new_rows, verdict, line):
    base = _bench_json(tmp_path / "base.json", [_measured("float32"), _measured("int8")])
    new = _bench_json(tmp_path / "new.json", new_rows)
    code, out, err = cli("compare", str(base), str(new), "--json")
    assert code == 1, err
    doc = json.loads(out)
    assert doc["schema"] == "edgekit.compare/1"
    assert doc["passed"] is False
    assert {r["artifact"]: r["verdict"] for r in doc["rows"]}["model.int8.tflite"] == verdict
    assert err.strip().endswith(f"1 row(s) measured in the base not measured now: {line}")


def test_compare_passes_when_the_base_had_not_measured_it_either(tmp_path):
    """Skipped in the base and absent (or skipped) now: nothing was lost."""
    base = _bench_json(tmp_path / "base.json", [_measured("float32"), row("int8", "skipped")])
    for extra in ([], [row("int8", "skipped")]):
        new = _bench_json(tmp_path / "new.json", [_measured("float32"), *extra])
        code, out, err = cli("compare", str(base), str(new))
        assert code == 0, err
        assert "not compared" in out


def test_bench_baseline_fails_on_a_row_it_no_longer_measures(tmp_path):
    from edgekit.bench.ci import cases
    from edgekit.bench.comparison import compare

    base = [_measured("float32"), _measured("int8")]
    result = BenchResult(environment={}, rows=[_measured("float32"), row("int8", status="skipped")])
    result.comparison = compare(base, result.rows, max_regression=10)
    outcomes = {c.name: c.outcome for c in cases(result) if c.classname == "edgekit.baseline"}
    assert sorted(outcomes.values()) == ["failure", "passed"]
    assert not result.comparison.passed


# --- --timeout and --max-regression must be finite ---------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--timeout", "inf", "--timeout takes a finite number of seconds > 0, got inf"),
        ("--timeout", "-inf", "--timeout takes a finite number of seconds > 0, got -inf"),
        ("--timeout", "nan", "--timeout takes a finite number of seconds > 0, got nan"),
        ("--timeout", "1e309", "--timeout takes a finite number of seconds > 0, got inf"),
        ("--timeout", "0", "--timeout takes seconds > 0, got 0.0"),
        ("--timeout", "-5", "--timeout takes seconds > 0, got -5.0"),
        ("--timeout", "-0", "--timeout takes seconds > 0, got -0.0"),
        ("--max-regression", "inf", "--max-regression must be a finite percentage, got inf"),
        ("--max-regression", "nan", "--max-regression must be a percentage >= 0, got nan"),
        ("--memory-limit", "-1", f"{MEMORY_LIMIT_TAKES}, got -1"),
        ("--memory-limit", "10", f"{MEMORY_LIMIT_TAKES}, got 10"),
    ],
)
def test_flags_must_be_finite(export_dir, flag, value, message):
    code, out, err = cli("bench", str(export_dir), flag, value)
    assert (code, out, err) == (2, "", f"edgekit: error: {message}\n")


# --- artifacts whose export validation failed ---------------------------------------------


def _edit_manifest(export: Path, edit) -> dict:
    path = export / "manifest.json"
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj))
    return obj


def _fail_validation(name: str, criterion: str | None = "max_abs_diff <= 1e-09"):
    def edit(obj):
        for art in obj["artifacts"]:
            if art["file"] == name:
                art["validation"]["passed"] = False
                if criterion is None:
                    art["validation"].pop("criterion", None)
                else:
                    art["validation"]["criterion"] = criterion

    return edit


@pytest.mark.parametrize("name", ARTIFACTS)
@pytest.mark.parametrize("target", ["dir", "file"])
def test_a_validation_failed_artifact_fails_the_bench(export_copy, name, target):
    obj = _edit_manifest(export_copy, _fail_validation(name))
    variant = next(a["variant"] for a in obj["artifacts"] if a["file"] == name)
    path = export_copy if target == "dir" else export_copy / name
    code, out, err = cli("bench", str(path), "--json", "-", *FAST)
    assert code == 1, err
    assert err.splitlines()[-1] == (
        "edgekit: error: 1 artifact(s) failed their export validation (bench --allow-failed "
        "to accept them)"
    )
    doc = json.loads(out)
    flagged = [r for r in doc["results"] if "export_validation" in r]
    assert [r["artifact"] for r in flagged] == [name]
    assert flagged[0]["status"] == "ok"  # measured: the numbers are there
    assert flagged[0]["export_validation"] == {
        "passed": False, "reason": "max_abs_diff <= 1e-09 not met", "allowed": False,
    }  # fmt: skip
    assert f" {variant}! " in err  # the table (on stderr with --json -) marks the row
    assert (
        f"! {name} ({variant}) failed its export validation (max_abs_diff <= 1e-09 not met): "
        "a failed check; bench --allow-failed to accept it"
    ) in err


@pytest.mark.parametrize("name", ARTIFACTS)
def test_allow_failed_accepts_it(export_copy, name, tmp_path):
    _edit_manifest(export_copy, _fail_validation(name, criterion=None))
    junit = tmp_path / "j.xml"
    code, out, err = cli("bench", str(export_copy), "--allow-failed", "--junit", str(junit),
                         *FAST)  # fmt: skip
    assert code == 0, err
    assert "validation.passed is false): accepted by --allow-failed" in out
    assert "edgekit.validation" not in junit.read_text()
    code, out, err = cli("bench", str(export_copy), "--junit", str(junit), *FAST)
    assert code == 1
    assert 'classname="edgekit.validation"' in junit.read_text()


def test_a_validation_not_run_is_not_a_failure(export_copy):
    def edit(obj):
        for art in obj["artifacts"]:
            art["validation"]["passed"] = None

    _edit_manifest(export_copy, edit)
    code, out, err = cli("bench", str(export_copy), *FAST)
    assert code == 0, err
    assert "!" not in out


# --- provenance: every artifact is the file export wrote ----------------------------------


@pytest.mark.parametrize("name", ARTIFACTS)
@pytest.mark.parametrize("change", ["append", "flip", "replace"])
@pytest.mark.parametrize("target", ["dir", "file"])
def test_a_changed_artifact_is_refused(export_copy, name, change, target):
    path = export_copy / name
    data = path.read_bytes()
    if change == "append":
        data += b"\0"
    elif change == "flip":
        data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    else:
        other = next(a for a in ARTIFACTS if a != name)  # another artifact, renamed
        data = (export_copy / other).read_bytes()
    path.write_bytes(data)
    code, out, err = cli("bench", str(export_copy if target == "dir" else path), *FAST)
    assert (code, out) == (2, "")
    assert err == (
        f"edgekit: error: {path}: the file changed since export (its sha256 is not the one "
        f"{export_copy / 'manifest.json'} records); restore it or export again\n"
    )


@pytest.mark.parametrize("digest", ["abc", "G" * 64, 7, "A" * 64])
def test_a_malformed_sha256_is_refused(export_copy, digest):
    def edit(obj):
        obj["artifacts"][0]["sha256"] = digest

    obj = _edit_manifest(export_copy, edit)
    code, _, err = cli("bench", str(export_copy), *FAST)
    assert code == 2
    assert err == (
        f"edgekit: error: {export_copy / 'manifest.json'}: {obj['artifacts'][0]['file']!r} "
        f"has a malformed sha256 {digest!r}\n"
    )


def test_the_worker_checks_the_file_again(export_copy):
    """The file changes after the parent checked it: the measuring child refuses it."""
    from edgekit.bench.job import Job
    from edgekit.bench.measure import UsageError, measure

    path = export_copy / "model.int8.tflite"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(UsageError, match="the file changed since export"):
        measure(Job(path=str(path), runtime="tflite", runs=2, min_time=0.0, sha256=digest))


def test_a_changed_keras_source_is_refused(export_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(export_dir.parent, run)
    (run / "model.keras").write_bytes((run / "model.keras").read_bytes() + b"\0")
    code, _, err = cli("bench", str(run / "export"), "--runtime", "keras", *FAST)
    assert code == 2
    assert err == (
        f"edgekit: error: {run / 'model.keras'}: the file changed since export (its sha256 is "
        f"not the one {run / 'export' / 'manifest.json'} records); restore it or export again\n"
    )


# --- provenance of the C that --runtime c compiles ----------------------------------------


@pytest.fixture(scope="module")
def c_export(trained_run, tmp_path_factory) -> Path:
    import edgekit

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("needs a C compiler")
    out = tmp_path_factory.mktemp("c_export") / "export"
    with chdir(out.parent):
        return Path(edgekit.export(trained_run, quantize=["int8"], c_source="int8", out=out).path)


@pytest.fixture
def c_copy(c_export, tmp_path) -> Path:
    return Path(shutil.copytree(c_export, tmp_path / "export"))


CONSTRUCTOR = (
    "\n#include <stdio.h>\n__attribute__((constructor)) static void pwn(void) "
    '{{ FILE *f = fopen("{marker}", "w"); if (f) fclose(f); }}\n'
)


@pytest.mark.parametrize("name", ["edgekit_model.c", "edgekit_model.h"])
@pytest.mark.parametrize("how", ["dir", "file"])
def test_changed_c_is_not_compiled(c_copy, tmp_path, name, how):
    marker = tmp_path / "constructor-ran"
    with open(c_copy / name, "a") as fh:
        fh.write(CONSTRUCTOR.format(marker=marker))
    path = c_copy if how == "dir" else c_copy / "edgekit_model.c"
    code, _, err = cli("bench", str(path), "--runtime", "c", *FAST)
    assert code == 2 and not marker.exists()
    assert err == (
        f"edgekit: error: {c_copy / name}: the file changed since export (its sha256 is not the "
        f"one {c_copy / 'manifest.json'} records); restore it or export again\n"
    )


def test_the_c_runner_compiles_the_checked_copy(c_copy, tmp_path):
    """The C changes after the parent's check: the runner in the child compiles only the
    copy it checked, and refuses."""
    from edgekit.runtime.c import CRunner

    marker = tmp_path / "constructor-ran"
    runner = CRunner(c_copy / "edgekit_model.c")
    with open(c_copy / "edgekit_model.c", "a") as fh:
        fh.write(CONSTRUCTOR.format(marker=marker))
    with pytest.raises(EdgekitError, match="the file changed since export"):
        runner.build()
    runner.close()
    assert not marker.exists()


def test_headers_in_the_export_directory_do_not_shadow_the_c_library(c_copy, tmp_path):
    for header in ("stdint.h", "math.h", "string.h", "time.h", "stddef.h"):
        (c_copy / header).write_text('#error "a header from the export directory"\n')
    code, out, err = cli("bench", str(c_copy), "--runtime", "c", "--json", "-", *FAST)
    assert code == 0, err
    (row,) = json.loads(out)["results"]
    assert row["status"] == "ok"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("sha256"), "the c_source entry records no sha256 of edgekit_model.h, "
         "edgekit_model.c, so bench cannot check that they are the files export wrote; export "
         "them again (edgekit export --c-source ...) to bench them with --runtime c"),
        (lambda c: c.update(sha256="x"), "'c_source' has a malformed 'sha256' (expected an "
         "object)"),
        (lambda c: c["sha256"].pop("edgekit_model.h"), "the c_source entry records no valid "
         "sha256 of edgekit_model.h; export it again to bench it with --runtime c"),
        (lambda c: c["sha256"].update({"edgekit_model.c": "0" * 63}), "the c_source entry "
         "records no valid sha256 of edgekit_model.c; export it again to bench it with "
         "--runtime c"),
    ],
    ids=["absent", "not-an-object", "header-missing", "short"],
)  # fmt: skip
def test_c_without_recorded_hashes_is_refused(c_copy, edit, message):
    _edit_manifest(c_copy, lambda obj: edit(obj["c_source"]))
    code, _, err = cli("bench", str(c_copy), "--runtime", "c", *FAST)
    assert (code, err) == (2, f"edgekit: error: {c_copy / 'manifest.json'}: {message}\n")
    # the tflite artifacts alone do not need the C's hashes
    code, _, err = cli("bench", str(c_copy), *FAST)
    assert code == 0, err


@pytest.mark.parametrize(
    "prefix",
    ["edgekit_model.h\"\n#include \"/etc/passwd", "a-b", "1abc", "", "a b", "../x", "x;y",
     "ünï", 7, None, ["edgekit"]],
)  # fmt: skip
def test_a_prefix_that_is_not_a_c_identifier_is_refused(c_copy, prefix):
    _edit_manifest(c_copy, lambda obj: obj["c_source"].update(prefix=prefix))
    code, _, err = cli("bench", str(c_copy), "--runtime", "c", *FAST)
    assert (code, err) == (
        2,
        f"edgekit: error: {c_copy / 'manifest.json'}: 'c_source' has prefix {prefix!r}, which "
        "is not a C identifier (letters, digits and '_', not starting with a digit)\n",
    )


@pytest.mark.parametrize("value", [0, -1, "64", 64.0, True, 2**40, '64); system("x"'])
@pytest.mark.parametrize("key", ["input_size", "output_size"])
def test_c_sizes_must_be_integers(c_copy, key, value):
    _edit_manifest(c_copy, lambda obj: obj["c_source"].update({key: value}))
    code, _, err = cli("bench", str(c_copy), "--runtime", "c", *FAST)
    assert (code, err) == (
        2,
        f"edgekit: error: {c_copy / 'manifest.json'}: 'c_source' has {key} {value!r}; "
        "expected an integer >= 1\n",
    )


@pytest.mark.parametrize("allow", [False, True])
def test_a_failed_c_validation_fails_the_bench(c_copy, allow):
    _edit_manifest(c_copy, lambda obj: obj["c_source"]["validation"].update(passed=False))
    flags = ["--allow-failed"] if allow else []
    code, out, err = cli("bench", str(c_copy), "--runtime", "c", *flags, *FAST)
    assert code == (0 if allow else 1), err
    assert "c-int8!" in out
    assert "edgekit_model.c (c-int8) failed its export validation (every int8 output " \
           "identical to tflm not met)" in out  # fmt: skip


def test_the_sha_check_costs_one_read(export_dir, monkeypatch):
    """Every artifact of an export is read once by the parent's check (and once by the
    measuring child), not once per job."""
    import edgekit.fileio

    reads: list[str] = []
    real = edgekit.fileio.sha256_file
    monkeypatch.setattr(edgekit.fileio, "sha256_file", lambda p: reads.append(str(p)) or real(p))
    from edgekit.bench.targets import resolve_targets

    resolve_targets([export_dir], runtimes={"tflite", "onnxruntime"})
    assert sorted(Path(p).name for p in reads) == sorted(ARTIFACTS)


# --- a remote device must return one row per job ------------------------------------------

sshd = device_fixtures.sshd

FILTER = """
import json, sys
mode, doc = sys.argv[1], json.load(sys.stdin)
rows = doc["results"]
doc["results"] = {"none": [], "drop-last": rows[:-1], "dup": rows + rows[:1],
                  "rename": [{**r, "variant": "X-" + r["variant"]} for r in rows],
                  "same": rows}[mode]
print(json.dumps(doc))
"""


def _fake_python(tmp_path: Path, mode: str) -> Path:
    """The device's Python, whose bench returns its rows through ``FILTER``."""
    script = tmp_path / f"python-{mode}"
    (tmp_path / "filter.py").write_text(FILTER)
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-m" ]; then "{sys.executable}" "$@" | "{sys.executable}" '
        f'"{tmp_path / "filter.py"}" {mode}; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("mode", "errors"),
    [
        ("none", {0: "no", 1: "no"}),
        ("drop-last", {1: "no"}),
        ("dup", {0: "dup"}),
        ("rename", {}),
        ("same", {}),
    ],
)
def test_a_device_must_return_one_row_per_job(sshd, export_dir, tmp_path, mode, errors):
    python = _fake_python(tmp_path, mode)
    out = tmp_path / "b.json"
    code, _, err = cli(
        "bench", str(export_dir / "model.int8.tflite"), "--batch", "1,2", "--device", sshd.url,
        "--remote-python", str(python), *sshd.options(), "--budget", "int8:p95_ms<=100000",
        "--json", str(out), *FAST,
    )  # fmt: skip
    doc = json.loads(out.read_text())
    rows = doc["results"]
    assert [(r["artifact"], r["variant"], r["batch"]) for r in rows] == [
        ("model.int8.tflite", "int8", 1), ("model.int8.tflite", "int8", 2)
    ]  # fmt: skip
    want = {
        "no": f"{sshd.url} returned no result for this measurement "
        f"({ {'none': 0, 'drop-last': 1}.get(mode, 2) } row(s) for 2 measurement(s))",
        "dup": f"{sshd.url} returned 2 results for this one measurement",
    }
    assert {i: r["error"] for i, r in enumerate(rows) if r["status"] != "ok"} == {
        i: want[kind] for i, kind in errors.items()
    }
    assert code == (1 if errors else 0), err
    if mode == "none":
        assert err.splitlines()[-1] == (
            "edgekit: error: 2 measurement(s) failed; 2 budget check(s) violated; budget "
            "int8:p95_ms<=100000 measured nothing: all 2 row(s) it applies to were not measured "
            f"(2 failed: {want['no']})"
        )


@pytest.mark.parametrize("value", ["no", "false", 0, [], "yes"])
def test_a_passed_that_is_not_true_false_or_null_is_a_failure(value):
    """A hand-made or damaged manifest's ``"passed": "no"`` is not a pass."""
    from edgekit.formats.manifest import validation_failure

    assert validation_failure({"validation": {"passed": value}}) == (
        f"validation.passed is {value!r} (neither true, false nor null)"
    )
    assert validation_failure({"validation": {"passed": True}}) is None
    assert validation_failure({"validation": {"passed": None}}) is None
