"""A measurement job: what the parent sends the child process (JSON on stdin)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

LIMIT_LINE = "edgekit-worker: memory limit "  # on its stderr: the limit a worker runs under


@dataclass
class Job:
    """What to measure; JSON-serializable, it crosses the process boundary on stdin."""

    path: str
    runtime: str
    device: str = "cpu"
    threads: int = 1
    batch: int = 1
    warmup: int = 10
    runs: int = 100
    min_time: float = 0.5
    max_time: float = 60.0
    data: str | None = None  # .npz or .csv path
    x_key: str = "x"
    y_key: str | None = None
    reference_key: str | None = None
    columns: list[str] | None = None  # a .csv: the feature columns, in order
    label: str | None = None  # a .csv: the label column
    label_names: list[str] | None = None  # class names, for a .csv's text labels
    task: str | None = None
    eval_batch: int = 256
    evaluate: bool = True  # accuracy and parity on the test data (once per row is enough)
    seed: int = 0
    sha256: str | None = None  # what the manifest records for ``path``: checked before loading

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
