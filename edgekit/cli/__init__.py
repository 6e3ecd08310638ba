"""The ``edgekit`` command line: thin click commands over the public API.

Each command parses its flags, calls one API function and prints. :func:`main` is the only
place that turns an :class:`~edgekit.errors.EdgekitError` into a one-line message and an exit
code (2 for bad input, 1 for a failed check). Nothing here imports TensorFlow.

The commands live by what they work on: :mod:`~edgekit.cli.model` (train, export, demo),
:mod:`~edgekit.cli.bench` (bench, compare, report) and :mod:`~edgekit.cli.info` (inspect,
estimate, env); :mod:`~edgekit.cli.group` gathers them and :mod:`~edgekit.cli.entry` runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit._lazy import lazy_exports

if TYPE_CHECKING:
    from edgekit.cli.entry import main
    from edgekit.cli.group import cli

__all__ = ["cli", "main"]
__getattr__, __dir__ = lazy_exports(__name__, {"cli": "group", "main": "entry"})
