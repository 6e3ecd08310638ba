"""Exporting into an existing export directory: the variants asked for are added or replaced,
every other artifact is kept, and the manifest is merged.

Rules (``edgekit export ... --out DIR`` where ``DIR`` already holds an export):

* the same source model (same sha256) and the same validation data: the new variants are
  added; a variant that is already there is replaced only with ``--force`` (its files are
  listed as replaced); variants only implied by another flag (``onnx-float32`` under
  ``--onnx-quantize``, ``int8`` under ``--c-source int8``) are reused as they are;
* another model, or other validation data: the kept artifacts would no longer describe the
  export, so the whole directory is replaced, and only with ``--force`` (every old file listed);
* a directory that holds no edgekit manifest is left to the output-path policy
  (:func:`edgekit.outdirs.atomic_directory`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.formats.manifest import MANIFEST_NAME, load_manifest, safe_member

TEST_DATA = "test.npz"


def entry_files(entry: dict[str, Any]) -> list[str]:
    """The files one artifact entry owns: the artifact and its ``--c-array`` files."""
    return [entry["file"], *entry.get("c_array", [])]


def manifest_files(manifest: dict[str, Any]) -> list[str]:
    """Every file an export's manifest owns (artifacts, C arrays, C source, test data)."""
    files = [f for entry in manifest["artifacts"] for f in entry_files(entry)]
    files += list(manifest.get("c_source", {}).get("files", []))
    data = manifest.get("validation", {}).get("data")
    if isinstance(data, str):
        files.append(data)
    return list(dict.fromkeys(files))


@dataclass
class Merge:
    """What an export into an existing directory keeps and replaces."""

    kept: list[dict[str, Any]] = field(default_factory=list)  # artifact entries, unchanged
    kept_c_source: dict[str, Any] | None = None
    reused: list[str] = field(default_factory=list)  # implied variants taken as they are
    replaced: list[str] = field(default_factory=list)  # old files that the new export drops
    directory: Path | None = None  # the existing export; None: a fresh directory
    # The kept C source was generated from an artifact being replaced: (variant, prefix) to
    # generate it again from the new one.
    regenerate_c: tuple[str, str] | None = None

    @property
    def kept_files(self) -> list[str]:
        files = [f for entry in self.kept for f in entry_files(entry)]
        if self.kept_c_source is not None:
            files += self.kept_c_source.get("files", [])
        return files

    def copy_into(self, tmp: Path) -> None:
        """Hard-link (or copy) the kept files into the directory being built."""
        if self.directory is None:
            return
        for name in self.kept_files:
            src = safe_member(self.directory, name, where=self.directory / MANIFEST_NAME)
            if not src.is_file():
                raise EdgekitError(
                    f"{src}: listed in {self.directory / MANIFEST_NAME} but missing; "
                    "pass --force to replace the whole export"
                )
            dst = tmp / name
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


def _same_data(directory: Path, manifest: dict[str, Any], x: Any) -> bool:
    name = manifest.get("validation", {}).get("data")
    if not isinstance(name, str):
        return False
    path = directory / name
    if not path.is_file():
        return False
    from edgekit.formats.npz import load_npz

    xs = x if isinstance(x, list) else [x]
    keys = [f"x_{i}" for i in range(len(xs))] if isinstance(x, list) else ["x"]
    with contextlib.suppress(EdgekitError):
        arrays = load_npz(path)
        return all(
            k in arrays and arrays[k].shape == v.shape and bool(np.array_equal(arrays[k], v))
            for k, v in zip(keys, xs, strict=True)
        )
    return False


def plan_merge(
    out_dir: Path,
    *,
    source_digest: str,
    x: Any,
    requested: list[str],
    implied: list[str],
    c_source: bool,
    force: bool,
) -> Merge:
    """What to keep of ``out_dir``'s export. ``requested``: the variant names asked for;
    ``implied``: those only another flag needs; ``c_source``: whether C source is asked for."""
    if not (out_dir / MANIFEST_NAME).is_file():
        return Merge()
    try:
        old = load_manifest(out_dir)
    except EdgekitError as err:
        if force:
            return Merge()
        raise EdgekitError(f"{err}; pass --force to replace the directory") from err
    everything = manifest_files(old)
    if old.get("source", {}).get("sha256") != source_digest or not _same_data(out_dir, old, x):
        why = (
            "another model"
            if old.get("source", {}).get("sha256") != source_digest
            else "other validation data"
        )
        if not force:
            raise EdgekitError(
                f"{out_dir} holds an export of {why}; pass --force to replace it "
                f"({len(old['artifacts'])} artifact(s)) or choose another --out"
            )
        return Merge(replaced=everything, directory=out_dir)
    merge = Merge(directory=out_dir)
    clashes = []
    for entry in old["artifacts"]:
        variant = entry["variant"]
        if variant in implied and variant not in requested:
            merge.kept.append(entry)
            merge.reused.append(variant)
        elif variant in requested:
            clashes.append(entry)
        else:
            merge.kept.append(entry)
    old_c = old.get("c_source")
    if old_c is not None and c_source:
        clashes.append({"variant": "c-source", "file": ", ".join(old_c.get("files", []))})
    elif old_c is not None:
        merge.kept_c_source = old_c
    replaced_files = {f for e in clashes for f in entry_files(e) if "file" in e}
    if merge.kept_c_source is not None and merge.kept_c_source.get("from") in replaced_files:
        merge.regenerate_c = (merge.kept_c_source["variant"], merge.kept_c_source["prefix"])
        merge.kept_c_source = None
    if clashes and not force:
        listed = "; ".join(f"{e['variant']} ({e['file']})" for e in clashes)
        raise EdgekitError(
            f"{out_dir} already holds {listed}; pass --force to replace "
            f"{'it' if len(clashes) == 1 else 'them'} (the other artifacts are kept)"
        )
    keep = set(merge.kept_files) | {TEST_DATA}
    merge.replaced = [f for f in everything if f not in keep]
    return merge
