"""The user-facing exceptions of edgekit.

``EdgekitError`` is a user error: bad input, an impossible flag combination, a missing
extra. ``main()`` prints its message as one line on stderr and exits with ``exit_code``
(2). ``CheckFailed`` is a check that ran and failed (a validation tolerance, a budget, a
regression): exit code 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class EdgekitError(Exception):
    """Bad input or usage. The message names the bad thing and the valid choices."""

    exit_code = 2


class MissingExtraError(EdgekitError):
    """An optional dependency is not installed; the message names the extra."""


class CheckFailed(EdgekitError):
    """A check ran and failed: validation tolerance, budget or regression (exit 1)."""

    exit_code = 1
