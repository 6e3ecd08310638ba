"""``edgekit report``: a markdown report and PNG plots of a bench JSON file.

>>> from edgekit.report import write_report
>>> write_report("bench.json", out="report/", html=True)        # doctest: +SKIP
[PosixPath('report/report.md'), PosixPath('report/latency.png'), PosixPath('report/tradeoff.png'),
 PosixPath('report/report.html')]

``latency.png`` shows each measurement's latency distribution in µs on a labelled log axis
(box: quartiles, whiskers: p5 and p95, dots: p50 and p95 as reported); ``tradeoff.png`` puts
every artifact at its size and accuracy in % (MAE for regression), coloured by p50, named in
a legend beside the axes. ``report.html`` is the table and both plots in one file. Plots need
matplotlib (the ``train`` extra). Modules: :mod:`~edgekit.report.plots`,
:mod:`~edgekit.report.markdown`, :mod:`~edgekit.report.html`, :mod:`~edgekit.report.write`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.report.html import report_html
    from edgekit.report.markdown import report_markdown
    from edgekit.report.plots import latency_plot, tradeoff_plot
    from edgekit.report.write import write_report

__all__ = ["latency_plot", "report_html", "report_markdown", "tradeoff_plot", "write_report"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "latency_plot": "plots",
        "report_html": "html",
        "report_markdown": "markdown",
        "tradeoff_plot": "plots",
        "write_report": "write",
    },
)
