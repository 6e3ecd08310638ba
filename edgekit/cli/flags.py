"""Comma-separated flag values (``--threads 1,2``, ``--quantize float32,int8``) -> lists."""

from __future__ import annotations

from edgekit.errors import EdgekitError


def int_list(flag: str, text: str) -> list[int]:
    """``"1,2"`` -> ``[1, 2]``; anything else is a user error naming ``flag``."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EdgekitError(f"{flag} takes comma-separated integers, got {text!r}") from None


def str_list(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None (the flag not given) stays None."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]
