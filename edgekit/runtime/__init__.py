"""Runners: one per backend, one interface (see :class:`~edgekit.runtime.base.Runner`).

>>> from edgekit.runtime import open_runner
>>> with open_runner("model.int8.tflite", threads=1) as runner:     # doctest: +SKIP
...     probs = runner.infer(x)          # real features in, real outputs out, any batch

Names load on first use: importing this package imports no numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.runtime.base import Runner, RuntimeUnavailable, TensorInfo
    from edgekit.runtime.registry import RUNTIMES, open_runner, runtime_for

__all__ = ["RUNTIMES", "Runner", "RuntimeUnavailable", "TensorInfo", "open_runner", "runtime_for"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Runner": "base",
        "RuntimeUnavailable": "base",
        "TensorInfo": "base",
        "RUNTIMES": "registry",
        "open_runner": "registry",
        "runtime_for": "registry",
    },
)
