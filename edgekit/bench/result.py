""":class:`BenchResult`: the rows of a bench run, its gates' outcome, and how it is shown."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from edgekit.bench.budgets import (
    BudgetCheck,
    failure_reasons,
    violations,
    violations_markdown,
    violations_table,
)
from edgekit.bench.comparison import Comparison
from edgekit.bench.output import rows_markdown, rows_table
from edgekit.bench.schema import BENCH_SCHEMA, BenchRow

UNVALIDATED_MARK = "!"


@dataclass(frozen=True)
class Unvalidated:
    """A measured row of an artifact whose export validation failed (the manifest says so)."""

    row: BenchRow
    reason: str  # what the validation found, e.g. "max_abs_diff <= 0.0001 not met"

    def message(self, allowed: bool) -> str:
        what = "accepted by --allow-failed" if allowed else "a failed check"
        if not allowed:
            what += "; bench --allow-failed to accept it"
        return (
            f"{self.row.artifact} ({self.row.variant}) failed its export validation "
            f"({self.reason}): {what}"
        )


@dataclass
class BenchResult:
    """Rows, environment, and the outcome of budgets and the baseline comparison."""

    environment: dict[str, Any]
    rows: list[BenchRow]
    budgets: list[BudgetCheck] = field(default_factory=list)
    comparison: Comparison | None = None
    unvalidated: list[Unvalidated] = field(default_factory=list)
    allow_failed: bool = False

    @property
    def errors(self) -> list[BenchRow]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def violations(self) -> list[BudgetCheck]:
        return violations(self.budgets)

    @property
    def passed(self) -> bool:
        """No error row, no violated budget (a budget that measured nothing is violated), no
        regression against the baseline, and no artifact whose export validation failed
        (unless ``allow_failed``)."""
        return (
            not self.errors
            and not self.violations
            and not self.validation_problems()
            and (self.comparison is None or self.comparison.passed)
        )

    def validation_problems(self) -> list[str]:
        """One line per artifact that failed its export validation (none when allowed)."""
        if self.allow_failed:
            return []
        seen = dict.fromkeys(u.message(False) for u in self.unvalidated)
        return list(seen)

    def problems(self) -> str:
        """One line saying what failed (empty when everything passed)."""
        parts = []
        if self.errors:
            parts.append(f"{len(self.errors)} measurement(s) failed")
        if self.violations:
            parts.append(f"{len(self.violations)} budget check(s) violated")
            parts += failure_reasons(self.budgets)
        failed = {u.row.path or u.row.artifact for u in self.unvalidated}
        if failed and not self.allow_failed:
            parts.append(
                f"{len(failed)} artifact(s) failed their export validation (bench "
                "--allow-failed to accept them)"
            )
        if self.comparison is not None and not self.comparison.passed:
            parts.append(self.comparison.summary())
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": BENCH_SCHEMA,
            "environment": self.environment,
            "results": [self._row_json(r) for r in self.rows],
            "budgets": [c.to_json() for c in self.budgets],
        }
        if self.comparison is not None:
            out["comparison"] = self.comparison.to_json()
        return out

    def _unvalidated_reason(self, row: BenchRow) -> str | None:
        return next((u.reason for u in self.unvalidated if u.row is row), None)

    def _row_json(self, row: BenchRow) -> dict[str, Any]:
        out = row.to_json()
        reason = self._unvalidated_reason(row)
        if reason is not None:
            out["export_validation"] = {
                "passed": False,
                "reason": reason,
                "allowed": self.allow_failed,
            }
        return out

    def _shown_rows(self) -> list[BenchRow]:
        """The rows as the tables show them: a failed validation marks the variant."""
        return [
            replace(r, variant=r.variant + UNVALIDATED_MARK)
            if self._unvalidated_reason(r) is not None
            else r
            for r in self.rows
        ]

    def _validation_notes(self) -> list[str]:
        notes = dict.fromkeys(
            f"{UNVALIDATED_MARK} {u.message(self.allow_failed)}" for u in self.unvalidated
        )
        return list(notes)

    def _passed_summary(self) -> str:
        """``3 check(s) passed``, and how many rows were not judged (not measured)."""
        passed = sum(c.passed is True for c in self.budgets)
        unjudged = sum(c.passed is None for c in self.budgets)
        extra = f" ({unjudged} on rows that were not measured, not judged)" if unjudged else ""
        return f"{passed} check(s) passed{extra}"

    def table(self) -> str:
        """The console table, then the violated budgets and the baseline comparison."""
        parts = [rows_table(self._shown_rows())]
        if self.unvalidated:
            parts.append("\n".join(self._validation_notes()))
        if self.violations:
            parts.append("budget violations:\n" + violations_table(self.budgets))
        elif self.budgets:
            parts.append(f"budgets: {self._passed_summary()}")
        if self.comparison is not None:
            parts.append(
                f"against the baseline (max regression {self.comparison.max_regression:g}%):\n"
                + self.comparison.table()
            )
        return "\n\n".join(parts)

    def markdown(self) -> str:
        """The same as :meth:`table`, in markdown (``--markdown``, the CI step summary)."""
        env = self.environment
        where = f"{env['device']} ({env.get('host', '?')}): " if env.get("device") else ""
        parts = [
            "## edgekit bench",
            f"{where}{env.get('cpu', '?')}, {env.get('cores', '?')} cores, Python "
            f"{env.get('python', '?')}",
            rows_markdown(self._shown_rows()),
        ]
        if self.unvalidated:
            parts.append("\n".join(f"- **{n}**" for n in self._validation_notes()))
        if self.violations:
            parts.append(f"**{len(self.violations)} budget check(s) violated**")
            parts.append(violations_markdown(self.budgets))
        elif self.budgets:
            parts.append(f"Budgets: {self._passed_summary()}.")
        if self.comparison is not None:
            parts.append(
                f"Against the baseline (max regression {self.comparison.max_regression:g}%):"
            )
            parts.append(self.comparison.markdown())
        return "\n\n".join(parts) + "\n"
