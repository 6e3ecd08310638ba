"""What CI systems read: GitHub Actions ``::error::`` annotations and JUnit XML.

Every check of a bench run is a test case: each budget against each row it applies to, each
baseline comparison, and each measurement (a runtime that fails is a failed test), so a CI
system shows a violated budget or a regression as a failed test by name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

if TYPE_CHECKING:
    from edgekit.bench.budgets import BudgetCheck
    from edgekit.bench.comparison import Comparison, RowComparison
    from edgekit.bench.result import BenchResult
    from edgekit.bench.schema import BenchRow


@dataclass(frozen=True)
class Case:
    """One JUnit test case: ``outcome`` is ``passed``, ``failure``, ``error`` or ``skipped``."""

    classname: str
    name: str
    outcome: str
    message: str = ""


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def append_step_summary(markdown: str) -> None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` (the job's summary page) when set."""
    from edgekit.errors import EdgekitError

    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    try:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
    except OSError as err:
        raise EdgekitError(
            f"cannot append to $GITHUB_STEP_SUMMARY ({summary}): {err.strerror or err}"
        ) from err


def _where(row: BenchRow) -> str:
    return f"{row.artifact} ({row.runtime}, {row.device}, threads={row.threads}, batch={row.batch})"


def budget_message(check: BudgetCheck) -> str:
    from edgekit.bench.budgets import metric_value

    if check.reason is not None or check.row is None:
        return check.reason or f"budget {check.budget.expr} matched no result"
    value = metric_value(check.budget.metric, check.value)
    return f"budget {check.budget.expr} violated by {_where(check.row)}: {value}"


def regression_message(r: RowComparison, max_regression: float) -> str:
    row = r.new or r.base
    where = _where(row) if row is not None else str(r.key)
    if r.verdict == "error":
        return f"{where} failed against the baseline: {row.error if row else ''}"
    if r.verdict == "not measured":
        reason = f": {row.error}" if row is not None and row.error else ""
        return f"{where} was measured in the baseline and is {row.status if row else 'skipped'} now{reason}"
    if r.verdict == "missing":
        return f"{where} was measured in the baseline and has no row now"
    change = f"{(r.ratio - 1) * 100:+.1f}%" if r.ratio is not None else "?"
    ci = (
        f" (95% CI {(r.low - 1) * 100:+.1f}%..{(r.high - 1) * 100:+.1f}%)"
        if r.low is not None and r.high is not None
        else ""
    )
    return (
        f"latency regression of {where}: p50 {change}{ci}, beyond the {max_regression:g}% allowed"
    )


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(title: str, message: str) -> str:
    """One ``::error title=...::message`` workflow command, escaped as GitHub requires."""
    return f"::error title={_escape_property(title)}::{_escape_data(message)}"


def comparison_annotations(comparison: Comparison) -> list[str]:
    return [
        annotation("edgekit regression", regression_message(r, comparison.max_regression))
        for r in comparison.regressions
    ]


def github_annotations(result: BenchResult) -> list[str]:
    """An ``::error::`` line per failed measurement, violated budget and regression."""
    lines = [annotation("edgekit measurement", f"{r.label}: {r.error}") for r in result.errors]
    budget_lines = [budget_message(c) for c in result.violations]
    lines += [annotation("edgekit budget", m) for m in dict.fromkeys(budget_lines)]
    lines += [annotation("edgekit validation", m) for m in result.validation_problems()]
    if result.comparison is not None:
        lines += comparison_annotations(result.comparison)
    return lines


def _budget_case(check: BudgetCheck) -> Case:
    name = f"{check.budget.expr} [{_where(check.row) if check.row else 'no result'}]"
    if check.passed is None and check.row is not None:
        return Case("edgekit.budget", name, "skipped", f"{check.row.status}: {check.row.error}")
    if check.passed:
        return Case("edgekit.budget", name, "passed")
    return Case("edgekit.budget", name, "failure", budget_message(check))


def _comparison_case(r: RowComparison, max_regression: float) -> Case:
    row = r.new or r.base
    name = f"no regression beyond {max_regression:g}% [{_where(row) if row else r.key}]"
    if r.failed:
        outcome = "error" if r.verdict == "error" else "failure"
        return Case("edgekit.baseline", name, outcome, regression_message(r, max_regression))
    if r.verdict in ("not compared", "new"):
        return Case("edgekit.baseline", name, "skipped", r.verdict)
    return Case("edgekit.baseline", name, "passed", r.verdict)


def _row_case(row: BenchRow) -> Case:
    outcome = {"ok": "passed", "error": "error", "skipped": "skipped"}.get(row.status, "error")
    return Case("edgekit.measurement", _where(row), outcome, row.error or "")


def cases(result: BenchResult) -> list[Case]:
    """Every check of ``result``: measurements, budgets, then the baseline comparison."""
    out = [_row_case(r) for r in result.rows]
    out += [Case("edgekit.validation", m, "failure", m) for m in result.validation_problems()]
    out += [_budget_case(c) for c in result.budgets]
    if result.comparison is not None:
        out += [_comparison_case(r, result.comparison.max_regression)
                for r in result.comparison.rows]  # fmt: skip
    return out


def junit_xml(result: BenchResult, *, name: str = "edgekit bench") -> str:
    """The checks of ``result`` as a JUnit XML document (one ``<testsuite>``)."""
    return junit_document(cases(result), name=name)


def _xml_text(text: str) -> str:
    """``text`` without the control characters XML 1.0 cannot hold."""
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20)


def junit_document(items: Sequence[Case], *, name: str) -> str:
    items = [Case(c.classname, _xml_text(c.name), c.outcome, _xml_text(c.message)) for c in items]
    count = {k: sum(c.outcome == k for c in items) for k in ("failure", "error", "skipped")}
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name={quoteattr(name)} tests="{len(items)}" '
        f'failures="{count["failure"]}" errors="{count["error"]}">',
        f'  <testsuite name={quoteattr(name)} tests="{len(items)}" '
        f'failures="{count["failure"]}" errors="{count["error"]}" '
        f'skipped="{count["skipped"]}">',
    ]
    for c in items:
        head = f"    <testcase classname={quoteattr(c.classname)} name={quoteattr(c.name)}"
        if c.outcome == "passed":
            lines.append(head + "/>")
            continue
        lines.append(head + ">")
        lines.append(f"      <{c.outcome} message={quoteattr(c.message)}>{escape(c.message)}"
                     f"</{c.outcome}>")  # fmt: skip
        lines.append("    </testcase>")
    lines += ["  </testsuite>", "</testsuites>", ""]
    return "\n".join(lines)
