"""Input CSV files of ``predict`` and ``bench --data``: a header row, then numeric features.

The delimiter is sniffed (comma, semicolon, tab or ``|``; comma when unsure), so files
that spreadsheets export with semicolons read as they are.

Which columns are the features, in order: the names the manifest (or ``run.json``) records
as ``features`` when it has them (all must be there); otherwise every numeric column but the
label column (the recorded ``target``); a column is numeric when its first data row is a
number (a text column is left out, a typo further down is an error). Without a recorded target, a file with exactly one
column more than the model takes has its last column as the label (the training CSV layout).
Pure Python: the light bench parent checks a file with it before anything is measured.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from edgekit.errors import EdgekitError


@dataclass
class CsvTable:
    """A CSV file read as text: its header and its data rows (cells stripped)."""

    path: Path
    header: list[str]
    rows: list[list[str]]

    def numeric(self, name: str) -> bool:
        """Whether column ``name`` holds numbers: judged by its first row, so that a text
        column (ids, names) is left out while a typo in a number column is an error."""
        return _finite(self.rows[0][self.header.index(name)])

    def floats(self, names: Sequence[str]) -> list[list[float]]:
        """The columns ``names`` of every row as floats; a bad cell is a one-line error."""
        idx = [self.header.index(n) for n in names]
        out = []
        for line, row in enumerate(self.rows, start=2):
            values = []
            for i in idx:
                cell = row[i]
                if not cell:
                    raise EdgekitError(
                        f"{self.path}: line {line}, column {self.header[i]!r} is empty"
                    )
                if not _finite(cell):
                    raise EdgekitError(
                        f"{self.path}: line {line}, column {self.header[i]!r}: {cell!r} is not "
                        "a finite number (feature columns must be numeric)"
                    )
                values.append(float(cell))
            out.append(values)
        return out

    def texts(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i] for row in self.rows]


@dataclass(frozen=True)
class Columns:
    """The feature columns (in the model's order) and the label column (None: no labels)."""

    features: list[str]
    label: str | None


def _finite(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


SNIFF_CHARS = 4096
DELIMITERS = ",;\t|"


def sniff_delimiter(fh: TextIO) -> str:
    """The delimiter of an open CSV file (``,``, ``;``, tab or ``|``), from its first few KB.

    ``csv.Sniffer`` decides; its answer is taken only when the header line holds that
    delimiter, and a comma is the default when it cannot tell. ``fh`` is rewound.
    """
    sample = fh.read(SNIFF_CHARS)
    fh.seek(0)
    if len(sample) == SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    lines = sample.splitlines()
    if not lines:
        return ","
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","
    return delimiter if delimiter != "," and delimiter in lines[0] else ","


def read_csv_table(path: str | os.PathLike, *, what: str = "input") -> CsvTable:
    """Read a CSV file with a header row; every problem is a one-line user error."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            delimiter = sniff_delimiter(fh)
            rows = [[cell.strip() for cell in r] for r in csv.reader(fh, delimiter=delimiter)]
    except UnicodeDecodeError as err:
        raise EdgekitError(f"{path}: not a UTF-8 text CSV file") from err
    except csv.Error as err:
        raise EdgekitError(f"{path}: malformed CSV ({err})") from err
    rows = [r for r in rows if any(r)]
    if not rows:
        raise EdgekitError(f"{path}: the CSV file is empty")
    header, body = rows[0], rows[1:]
    if not body:
        raise EdgekitError(
            f"{path}: the CSV file has a header but no data rows ({what} needs some)"
        )
    if len(set(header)) != len(header) or not all(header):
        raise EdgekitError(f"{path}: the header row must name every column once")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise EdgekitError(
                f"{path}: line {line} has {len(row)} fields, the header has {len(header)}"
            )
    return CsvTable(path=path, header=header, rows=body)


def select_columns(
    table: CsvTable,
    *,
    features: Sequence[str] | None = None,
    target: str | None = None,
    n_features: int | None = None,
) -> Columns:
    """The feature and label columns of ``table`` for a model (see the module docstring).

    ``features`` and ``target``: the names the manifest or ``run.json`` records (None when
    it records none); ``n_features``: how many values one sample has, when known.
    """
    have = set(table.header)
    label = target if target is not None and target in have else None
    if features:
        missing = [f for f in features if f not in have]
        if missing:
            raise EdgekitError(
                f"{table.path}: no column(s) {', '.join(map(repr, missing))}, which the model "
                f"takes as features; columns are {', '.join(table.header)}"
            )
        return Columns(features=list(features), label=label)
    numeric = [h for h in table.header if h != label and table.numeric(h)]
    text = [h for h in table.header if h != label and h not in numeric]
    skipped = f"; not numeric: {', '.join(text)}" if text else ""
    if (
        target is None
        and n_features is not None
        and len(numeric) == n_features + 1
        and numeric[-1] == table.header[-1]
    ):
        return Columns(features=numeric[:-1], label=numeric[-1])
    if not numeric:
        raise EdgekitError(f"{table.path}: no numeric column to use as features{skipped}")
    if n_features is not None and len(numeric) != n_features:
        raise EdgekitError(
            f"{table.path}: {len(numeric)} numeric feature column(s) "
            f"({', '.join(numeric)}), the model takes {n_features} features{skipped}"
        )
    return Columns(features=numeric, label=label)


def label_values(
    table: CsvTable, column: str, labels: Sequence[str] | None
) -> list[int] | list[float]:
    """The label column as class indices (names mapped through ``labels``) or numbers."""
    cells = table.texts(column)
    for line, cell in enumerate(cells, start=2):
        if not cell:
            raise EdgekitError(f"{table.path}: line {line}, label column {column!r} is empty")
    if labels:
        index = {name: i for i, name in enumerate(labels)}
        if all(c in index for c in cells):
            return [index[c] for c in cells]
    if all(_finite(c) for c in cells):
        values = [float(c) for c in cells]
        if all(v == round(v) for v in values):
            return [int(v) for v in values]
        return values
    unknown = next(c for c in cells if c not in (labels or ()) and not _finite(c))
    known = f"; the model's labels are {', '.join(labels)}" if labels else ""
    raise EdgekitError(f"{table.path}: label column {column!r} holds {unknown!r}{known}")
