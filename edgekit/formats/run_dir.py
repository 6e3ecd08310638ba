"""A run directory (``runs/<name>/``) and the :class:`Run` handle that reads it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import load_json

RUN_SCHEMA = "edgekit.run/1"
DEFAULT_RUNS_DIR = Path("runs")
LATEST = DEFAULT_RUNS_DIR / "latest"


@dataclass
class Run:
    """A trained run: its directory and the parsed ``run.json``.

    ``path`` is None only for a non-chief worker of a multi-worker training, which writes no
    run directory (the chief does); the file properties then raise.
    """

    path: Path | None
    info: dict[str, Any]

    @property
    def directory(self) -> Path:
        if self.path is None:
            raise EdgekitError("this worker of a multi-worker training wrote no run directory")
        return self.path

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def task(self) -> str:
        return self.info["task"]

    @property
    def labels(self) -> list[str] | None:
        return self.info.get("labels")

    @property
    def metrics(self) -> dict[str, Any]:
        return self.info.get("metrics", {})

    @property
    def model_path(self) -> Path:
        return self.directory / "model.keras"

    @property
    def test_data_path(self) -> Path:
        return self.directory / "data" / "test.npz"

    @property
    def calibration_path(self) -> Path:
        return self.directory / "data" / "calibration.npz"

    def load_model(self):
        from edgekit.formats.keras_file import load_keras_model

        return load_keras_model(self.model_path)


def open_run(path: str | Path | None = None) -> Run:
    """Open a run directory (default ``runs/latest``) and check its ``run.json``."""
    if path is None:
        path = LATEST
        if not path.exists():
            raise EdgekitError(
                "no run given and runs/latest does not exist; run `edgekit train` first"
            )
    path = Path(path)
    if not path.is_dir():
        raise EdgekitError(f"{path}: not a run directory")
    info = load_json(path / "run.json", what="run.json")
    if not isinstance(info, dict) or info.get("schema") != RUN_SCHEMA:
        raise EdgekitError(
            f"{path / 'run.json'}: not an edgekit run (schema {RUN_SCHEMA} expected)"
        )
    for key in ("name", "task"):
        if key not in info:
            raise EdgekitError(f"{path / 'run.json'}: missing field {key!r}")
    return Run(path=path.resolve(), info=info)
