"""``main()``: run the CLI, map errors to one line and an exit code, handle interrupts.

:class:`~edgekit.errors.EdgekitError` -> its message on stderr, exit 2 (1 for a failed
check); SIGINT or SIGTERM -> ``edgekit: interrupted``, exit 130, even when a library swallowed
the ``KeyboardInterrupt`` (:func:`edgekit.fileio.request_interrupt` remembers it).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import NoReturn

import click

from edgekit.cli.group import cli
from edgekit.errors import EdgekitError


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGINT, SIGTERM: remember it (a library may swallow the exception), then raise it,
    unless a temporary file is being made and recorded for its cleanup just now
    (:func:`edgekit.fileio.interrupts_deferred`): it is raised right after that."""
    from edgekit.fileio import interrupts_are_deferred, request_interrupt

    request_interrupt()
    if not interrupts_are_deferred():
        raise KeyboardInterrupt


def _run(argv: list[str] | None) -> object:
    from edgekit.fileio import interrupt_requested

    try:
        code = cli.main(args=argv, prog_name="edgekit", standalone_mode=False)
    except Exception:
        if interrupt_requested():  # the interrupt came out as another error (TensorFlow)
            raise KeyboardInterrupt from None
        raise
    if interrupt_requested():  # the interrupt was swallowed, and the command went on
        raise KeyboardInterrupt
    return code


def _interrupted() -> NoReturn:
    # An interrupt that lands in a library's constructor leaves a half-built object whose
    # __del__ then fails at exit ("Exception ignored in ...", a traceback): not worth showing.
    sys.unraisablehook = lambda unraisable: None
    click.echo("edgekit: interrupted", err=True)
    sys.exit(130)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to one line on stderr and an exit code."""
    from edgekit.fileio import clear_interrupt

    clear_interrupt()
    handlers = {signal.SIGTERM: signal.signal(signal.SIGTERM, _on_signal)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored
        handlers[signal.SIGINT] = signal.signal(signal.SIGINT, _on_signal)
    try:
        code = _run(argv)
    except EdgekitError as err:
        click.echo(f"edgekit: error: {_one_line(str(err))}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.Abort:
        _interrupted()
    except click.ClickException as err:
        click.echo(f"edgekit: error: {_one_line(err.format_message())}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        # The interrupt belonged to this command: a caller that goes on in the same process
        # (a test, a notebook) must not see its later writes refused as interrupted.
        clear_interrupt()
    sys.exit(code if isinstance(code, int) else 0)
