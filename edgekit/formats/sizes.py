"""How big a file really is, and how big it may grow when read: shared size rules.

* :func:`artifact_bytes`: the bytes an artifact takes on disk with everything it needs to
  load, an ONNX model's external data files included (the manifest's ``bytes``, bench's
  ``size_bytes`` and estimate's flash use it).
* :func:`check_zip_sizes`: a zip archive (``.npz``, ``.keras``) whose members declare far
  more bytes than the archive could hold (a decompression bomb) is refused before a member
  is read. The rule: the members' declared sizes together may exceed :data:`ZIP_FLOOR_BYTES`
  only up to :data:`ZIP_MAX_EXPANSION` times the archive's size on disk (Keras writes its
  members stored, ``np.savez`` too; ``np.savez_compressed`` of real data compresses a few
  times, not thirty). What reads the arrays then holds a few copies of them (``export``
  about seven), so the rule is what keeps a file under 1 MB from costing more than ~250 MB.

Standard library only: the light bench parent uses these.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from edgekit.errors import EdgekitError

ZIP_FLOOR_BYTES = 32 << 20
ZIP_MAX_EXPANSION = 32


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``: a size for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def zip_limit(archive_bytes: int) -> int:
    """The most bytes the members of an archive of ``archive_bytes`` may declare."""
    return max(ZIP_FLOOR_BYTES, ZIP_MAX_EXPANSION * archive_bytes)


def check_zip_sizes(path: Path, zf: zipfile.ZipFile, *, what: str, size: int | None = None) -> None:
    """Refuse an archive whose members declare more than :func:`zip_limit` bytes together.

    ``size``: the archive's bytes, when it is not a file of its own (a zip inside a zip)."""
    size = Path(path).stat().st_size if size is None else size
    declared = sum(info.file_size for info in zf.infolist())
    limit = zip_limit(size)
    if declared > limit:
        raise EdgekitError(
            f"{path}: refused: {what} whose members unpack to {human_bytes(declared)} from "
            f"{human_bytes(size)} on disk (more than {ZIP_MAX_EXPANSION}x and "
            f"{human_bytes(ZIP_FLOOR_BYTES)}; a decompression bomb? a file saved uncompressed, "
            "np.savez, always passes)"
        )


def artifact_bytes(path: str | os.PathLike) -> int:
    """Bytes of an artifact on disk, with the external data files an ``.onnx`` names.

    >>> artifact_bytes("export/model.float32.onnx")                   # doctest: +SKIP
    10432

    An external data file counts once however many tensors it holds. A location that is
    missing or leaves the model's directory is a one-line :class:`EdgekitError` (the model
    could not load either).
    """
    path = Path(path)
    total = path.stat().st_size
    if path.suffix.lower() == ".onnx":
        from edgekit.formats.onnx_wire import external_files

        total += sum(f.stat().st_size for f in external_files(path))
    return total
