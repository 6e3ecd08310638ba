"""Benchmarks: latency, memory and accuracy of exported artifacts; budgets and baselines.

>>> from edgekit.bench import run_bench, compare
>>> result = run_bench(["runs/latest/export"], threads=[1], batch=[1, 32],
...                    budgets=["int8:p95_ms<=1"])                  # doctest: +SKIP
>>> print(result.table()); result.passed                            # doctest: +SKIP
>>> compare("main.json", "pr.json", max_regression=10).passed      # doctest: +SKIP

Every measurement runs in its own child process; nothing here imports TensorFlow unless a
``.keras`` model is measured (and then only in the child). The names below load on first use,
so the measuring child (``python -m edgekit.bench.worker``) imports only what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

_API = {
    "BENCH_SCHEMA": "schema",
    "BenchFile": "schema",
    "BenchRow": "schema",
    "load_bench": "schema",
    "METRICS": "budgets",
    "Budget": "budgets",
    "BudgetCheck": "budgets",
    "check_budgets": "budgets",
    "parse_budget": "budgets",
    "Comparison": "comparison",
    "RowComparison": "comparison",
    "compare": "comparison",
    "BenchResult": "result",
    "run_bench": "run",
    "write_outputs": "write",
    "github_annotations": "ci",
    "comparison_annotations": "ci",
    "junit_xml": "ci",
    "COMPARE_SCHEMA": "comparison",
    "CompareReport": "compare_files",
    "compare_report": "compare_files",
}
__all__ = [
    "BENCH_SCHEMA",
    "COMPARE_SCHEMA",
    "METRICS",
    "BenchFile",
    "BenchResult",
    "BenchRow",
    "Budget",
    "BudgetCheck",
    "CompareReport",
    "Comparison",
    "RowComparison",
    "check_budgets",
    "compare",
    "compare_report",
    "comparison_annotations",
    "github_annotations",
    "junit_xml",
    "load_bench",
    "parse_budget",
    "run_bench",
    "write_outputs",
]

if TYPE_CHECKING:
    from edgekit.bench.budgets import METRICS, Budget, BudgetCheck, check_budgets, parse_budget
    from edgekit.bench.ci import comparison_annotations, github_annotations, junit_xml
    from edgekit.bench.compare_files import CompareReport, compare_report
    from edgekit.bench.comparison import COMPARE_SCHEMA, Comparison, RowComparison, compare
    from edgekit.bench.result import BenchResult
    from edgekit.bench.run import run_bench
    from edgekit.bench.schema import BENCH_SCHEMA, BenchFile, BenchRow, load_bench
    from edgekit.bench.write import write_outputs


__getattr__, __dir__ = lazy_exports(__name__, _API)
