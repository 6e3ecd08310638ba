"""The measuring child process: ``python -m edgekit.bench.worker`` < job.json > result.json.

It reads one :class:`~edgekit.bench.job.Job` as JSON on stdin and writes one JSON object on
its stdout. Bench's own pool sends the job as one line with ``"watch_stdin": true`` and keeps
stdin open while the worker measures: the end of it then means the parent is gone (killed),
and the worker exits at once (status 70) rather than measure for nobody. Anything a runtime prints (C or Python) goes to stderr instead, so the result
stays parseable. A runtime that crashes takes only this process down; the parent turns the
signal into an ``error`` row. Imports stay lean: numpy, the one runtime the job needs, and
never TensorFlow unless the job is a ``.keras`` model.
"""

from __future__ import annotations

import json
import os
import sys

ORPHANED = 70  # the exit status of a worker whose parent went away


def _watch_parent() -> None:
    """Exit as soon as stdin ends: the parent closed it, or died (the pipe's end closed)."""
    import threading

    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os._exit(ORPHANED)

    threading.Thread(target=watch, name="edgekit-parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    result_fd = os.dup(1)
    os.dup2(2, 1)  # runtimes' own prints (C or Python) go to stderr
    sys.stdout = sys.stderr
    try:
        # Import before the job arrives: a pre-started worker is ready when it does.
        from edgekit.bench.job import Job
        from edgekit.bench.measure import UsageError, measure, preload

        if len(argv) == 2 and argv[0] == "--preload":
            preload(argv[1])

        text = sys.stdin.readline()
        if not text.strip():  # the parent closed a spare worker it did not need (or died)
            return 0
        try:
            job_obj = json.loads(text)
        except ValueError:  # a job written by hand over several lines: read up to the end
            job_obj = json.loads(text + sys.stdin.read())
        if job_obj.pop("watch_stdin", False):
            _watch_parent()
        auto_limit = job_obj.pop("auto_memory_limit", False) is True
        try:
            result = measure(Job(**job_obj), auto_limit=auto_limit)
        except UsageError as err:
            result = {"usage_error": str(err)}
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # the result is out; skip tearing down the runtime and the interpreter
