"""``edgekit report``: a markdown report and PNG plots of a bench JSON file.

>>> from edgekit.report import write_report
>>> write_report("bench.json", out="report/")        # doctest: +SKIP
[PosixPath('report/report.md'), PosixPath('report/latency.png'), PosixPath('report/tradeoff.png')]

``latency.png`` shows each measurement's latency distribution (box: quartiles, whiskers: p5
and p95, dots: p50 and p95 as reported); ``tradeoff.png`` puts every artifact at its size and
accuracy (MAE for regression), coloured by p50. Plots need matplotlib (the ``train`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.report.write import report_markdown, write_report

__all__ = ["report_markdown", "write_report"]
__getattr__, __dir__ = lazy_exports(__name__, {"report_markdown": "write", "write_report": "write"})
