"""The output-path policy (:mod:`edgekit.fileio`, :mod:`edgekit.outdirs`), through every writer: ``--force`` replaces
only what edgekit wrote, never an input, the working directory or the home directory; outputs
are claimed atomically; symlinks are written through and devices written in place; an output
that is an input is refused; every OSError is one line; what a killed writer left is cleaned.

Every refusal leaves each byte of what was there unchanged (the trees are hashed before and
after). Nothing here trains a model but the two ``slow`` cases at the end.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgekit import fileio, outdirs
from edgekit.errors import EdgekitError
from edgekit.fileio import (
    WriteError,
    atomic_write_bytes,
    atomic_write_files,
    atomic_write_text,
    remove_stale_temporaries,
    temporary_directory,
)
from edgekit.outdirs import (
    atomic_directory,
    check_output_dir,
    claim_directory,
    foreign_entry,
    point_symlink,
    rename_no_replace,
)
from tests.conftest import cli, regression_csv
from tests.hardening.conftest import leftovers, readonly_dir

# --- helpers ------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (symlinks not followed): its kind and content hash."""
    found: dict[str, str] = {}
    for base, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(base) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def write(path: Path, data: str | bytes = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def fake_run(path: Path, *, export: bool = False) -> Path:
    """A run directory as ``edgekit train`` writes it (contents are placeholders)."""
    write(path / "run.json", json.dumps({"schema": "edgekit.run/1", "name": "r", "task": "binary"}))
    for name in ("model.keras", "history.csv", "training.png", "data/test.npz",
                 "data/calibration.npz"):  # fmt: skip
        write(path / name, f"{name} of {path.name}")
    if export:
        fake_export(path / "export")
    return path


def sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def fake_export(path: Path, files: tuple[str, ...] = ("model.float32.tflite",)) -> Path:
    """An export directory as ``edgekit export`` writes it, with a valid manifest."""
    artifacts = [
        {"file": f, "format": "tflite" if f.endswith(".tflite") else "onnx",
         "variant": f.split(".")[1], "sha256": sha(b"TFL3" + f.encode())}
        for f in files
    ]  # fmt: skip
    manifest = {"schema": "edgekit.export/1", "task": "binary", "labels": None,
                "artifacts": artifacts, "validation": {"data": "test.npz"}}  # fmt: skip
    write(path / "manifest.json", json.dumps(manifest))
    for f in files:
        write(path / f, b"TFL3" + f.encode())
    write(path / "test.npz", b"PK npz")
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def temp_name(name: str, pid: int, *, host: str | None = None, kind: str = "tmp") -> str:
    return f".{name}.ek{pid}h{host or fileio._host_tag()}.abc123.{kind}"


@pytest.fixture
def place(tmp_path, monkeypatch):
    """``tmp_path/work`` as the working directory, ``tmp_path/home`` as $HOME (holding an
    ssh key and a thesis); returns tmp_path."""
    (tmp_path / "work").mkdir()
    write(tmp_path / "home" / ".ssh" / "id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----")
    write(tmp_path / "home" / "thesis.tex", "\\chapter{Four years}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# --- 1. --force replaces only what edgekit wrote -------------------------------------------

FORCE = "(--force replaces only an empty directory or one edgekit wrote)"


def _source_run(t):
    run = fake_run(t / "work" / "runs" / "a")
    return run, [run], f"cannot write {run}: it is an input of this command"


def _source_run_relative(t):
    fake_run(t / "work" / "runs" / "a")
    return Path("runs/a"), [Path("runs/a")], "cannot write runs/a: it is an input of this command"


def _source_run_through_symlink(t):
    run = fake_run(t / "work" / "runs" / "a")
    (t / "work" / "runs" / "latest").symlink_to("a")
    out = t / "work" / "runs" / "latest"
    return out, [run], f"cannot write {out}: it is {run}, an input of this command"


def _source_run_via_dotdot(t):
    run = fake_run(t / "work" / "runs" / "a")
    out = t / "work" / "runs" / "b" / ".." / "a"
    return out, [run], f"cannot write {out}: it is {run}, an input of this command"


def _dir_holding_the_source_model(t):
    run = fake_run(t / "work" / "runs" / "a")
    out = t / "work" / "runs"
    model = run / "model.keras"
    return out, [model], f"cannot write {out}: it contains {model}, an input of this command"


def _dir_holding_the_source_run(t):
    run = fake_run(t / "work" / "runs" / "a")
    out = t / "work" / "runs"
    return out, [run], f"cannot write {out}: it contains {run}, an input of this command"


def _grandparent_of_the_data(t):
    data = write(t / "data" / "csv" / "d.csv", "a,b\n1,2\n")
    return (
        t / "data",
        [data],
        f"cannot write {t / 'data'}: it contains {data}, an input of this command",
    )


def _out_is_the_input(t):
    fake_run(t / "work" / "r")
    return (
        t / "work" / "r",
        [t / "work" / "r"],
        f"cannot write {t / 'work' / 'r'}: it is an input of this command",
    )


def _cwd_dot(t):
    fake_run(t / "work", export=True)  # even a run directory, when it is the working directory
    return Path("."), [], "cannot replace .: it is the working directory"


def _cwd_absolute(t):
    write(t / "work" / "notes.txt", "mine")
    return t / "work", [], f"cannot replace {t / 'work'}: it is the working directory"


def _cwd_empty(t):
    return Path("."), [], "cannot replace .: it is the working directory"


def _cwd_parent(t):
    return Path(".."), [], "cannot replace ..: it contains the working directory"


def _cwd_through_symlink(t):
    (t / "link").symlink_to(t / "work")
    return t / "link", [], f"cannot replace {t / 'link'}: it is the working directory"


def _root(t):
    return Path("/"), [], "cannot replace /: it contains the working directory"


def _home(t):
    return t / "home", [], f"cannot replace {t / 'home'}: it is the home directory"


def _home_tilde_expanded(t):
    return (
        Path(os.path.expanduser("~")),
        [],
        f"cannot replace {t / 'home'}: it is the home directory",
    )


DIR_REFUSALS = {
    "source-run": _source_run,
    "source-run-relative": _source_run_relative,
    "source-run-through-symlink": _source_run_through_symlink,
    "source-run-via-dotdot": _source_run_via_dotdot,
    "dir-holding-the-source-model": _dir_holding_the_source_model,
    "dir-holding-the-source-run": _dir_holding_the_source_run,
    "grandparent-of-the-data": _grandparent_of_the_data,
    "output-is-the-input": _out_is_the_input,
    "cwd-dot": _cwd_dot,
    "cwd-absolute": _cwd_absolute,
    "cwd-empty": _cwd_empty,
    "cwd-parent": _cwd_parent,
    "cwd-through-symlink": _cwd_through_symlink,
    "root": _root,
    "home": _home,
    "home-expanded": _home_tilde_expanded,
}


@pytest.mark.parametrize("force", [True, False], ids=["force", "no-force"])
@pytest.mark.parametrize("case", list(DIR_REFUSALS))
def test_never_replaced_with_or_without_force(place, case, force):
    out, protect, message = DIR_REFUSALS[case](place)
    before = snapshot(place)
    with (
        pytest.raises(EdgekitError) as err,
        atomic_directory(out, force=force, protect=protect) as tmp,
    ):
        (tmp / "model.tflite").write_bytes(b"new")
    assert str(err.value) == message
    assert snapshot(place) == before  # not a byte changed, no temporary left


def test_a_directory_above_home_is_never_replaced(tmp_path, monkeypatch):
    write(tmp_path / "users" / "me" / "thesis.tex", "mine")
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "users" / "me"))
    monkeypatch.chdir(tmp_path / "work")
    before = snapshot(tmp_path)
    with pytest.raises(EdgekitError) as err:
        check_output_dir(tmp_path / "users", force=True)
    assert str(err.value) == f"cannot replace {tmp_path / 'users'}: it contains the home directory"
    assert snapshot(tmp_path) == before


def _personal(t):
    write(t / "p" / "id_ed25519", "key")
    write(t / "p" / "thesis.pdf", b"%PDF")
    return t / "p", "id_ed25519"


def _personal_nested(t):
    write(t / "p" / "docs" / "a.txt", "mine")
    return t / "p", "docs"


def _hidden_git(t):
    fake_export(t / "p")
    write(t / "p" / ".git" / "HEAD", "ref: refs/heads/main")
    return t / "p", ".git"


def _export_plus_bench_json(t):
    fake_export(t / "p")
    write(t / "p" / "bench.json", "{}")
    return t / "p", "bench.json"


def _export_plus_unlisted_artifact(t):
    fake_export(t / "p")
    write(t / "p" / "model.int8.tflite", b"TFL3 mine")
    return t / "p", "model.int8.tflite"


def _export_with_bad_schema(t):
    write(t / "p" / "manifest.json", '{"schema": "someone-elses/1"}')
    write(t / "p" / "model.float32.tflite", b"TFL3")
    return t / "p", "manifest.json"


def _export_manifest_not_json(t):
    write(t / "p" / "manifest.json", "{not json")
    return t / "p", "manifest.json"


def _export_with_a_symlink(t):
    fake_export(t / "p")
    write(t / "secret", "mine")
    (t / "p" / "link").symlink_to(t / "secret")
    return t / "p", "link"


def _export_artifact_is_a_symlink(t):
    fake_export(t / "p", files=())
    write(t / "mine.tflite", b"TFL3 mine")
    manifest = json.loads((t / "p" / "manifest.json").read_text())
    manifest["artifacts"] = [
        {"file": "model.float32.tflite", "format": "tflite", "variant": "float32"}
    ]
    (t / "p" / "manifest.json").write_text(json.dumps(manifest))
    (t / "p" / "model.float32.tflite").symlink_to(t / "mine.tflite")
    return t / "p", "model.float32.tflite"


def _export_report_with_extra(t):
    fake_export(t / "p")
    write(t / "p" / "report" / "report.md", "# r")
    write(t / "p" / "report" / "notes.md", "mine")
    return t / "p", "report/notes.md"


def _run_plus_notes(t):
    fake_run(t / "p")
    write(t / "p" / "notes.txt", "mine")
    return t / "p", "notes.txt"


def _run_data_plus_csv(t):
    fake_run(t / "p")
    write(t / "p" / "data" / "raw.csv", "a,b")
    return t / "p", "data/raw.csv"


def _run_export_plus_foreign(t):
    fake_run(t / "p", export=True)
    write(t / "p" / "export" / "bench.json", "{}")
    return t / "p", "export/bench.json"


def _run_other_dir(t):
    fake_run(t / "p")
    write(t / "p" / "photos" / "cat.jpg", b"\xff\xd8")
    return t / "p", "photos"


def _run_json_wrong_schema(t):
    write(t / "p" / "run.json", '{"schema": "edgekit.run/999"}')
    write(t / "p" / "model.keras", "m")
    return t / "p", "model.keras"


def _run_scratch_not_empty(t):
    fake_run(t / "p")
    write(t / "p" / ".scratch" / "keep.txt", "mine")
    return t / "p", ".scratch/keep.txt"


def _foreign_temporary_looking_name(t):
    fake_run(t / "p")
    write(t / "p" / ".notes.tmp", "mine")  # not one of edgekit's temporary names
    return t / "p", ".notes.tmp"


FOREIGN = {
    "personal-files": _personal,
    "personal-nested": _personal_nested,
    "export-with-git": _hidden_git,
    "export-plus-bench-json": _export_plus_bench_json,
    "export-plus-unlisted-artifact": _export_plus_unlisted_artifact,
    "export-other-schema": _export_with_bad_schema,
    "export-manifest-not-json": _export_manifest_not_json,
    "export-holding-a-symlink": _export_with_a_symlink,
    "export-artifact-is-a-symlink": _export_artifact_is_a_symlink,
    "export-report-plus-notes": _export_report_with_extra,
    "run-plus-notes": _run_plus_notes,
    "run-data-plus-csv": _run_data_plus_csv,
    "run-export-plus-bench-json": _run_export_plus_foreign,
    "run-plus-photos": _run_other_dir,
    "run-json-other-schema": _run_json_wrong_schema,
    "run-scratch-not-empty": _run_scratch_not_empty,
    "run-plus-dot-tmp-file": _foreign_temporary_looking_name,
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_force_refuses_a_directory_edgekit_did_not_write(place, case):
    out, what = FOREIGN[case](place)
    before = snapshot(place)
    with pytest.raises(EdgekitError) as err, atomic_directory(out, force=True) as tmp:
        (tmp / "model.tflite").write_bytes(b"new")
    assert (
        str(err.value)
        == f"cannot replace {out}: it holds {what}, which edgekit did not write {FORCE}"
    )
    assert snapshot(place) == before


@pytest.mark.parametrize("case", list(FOREIGN))
def test_without_force_a_nonempty_directory_is_refused(place, case):
    out, _ = FOREIGN[case](place)
    before = snapshot(place)
    with pytest.raises(EdgekitError) as err, atomic_directory(out) as tmp:
        (tmp / "x").write_text("new")
    assert str(err.value) == f"{out} already exists; pass --force to overwrite it"
    assert snapshot(place) == before


def test_an_existing_file_is_not_an_output_directory(place):
    write(place / "f", "mine")
    for force in (False, True):
        with pytest.raises(EdgekitError, match=r"it exists and is not a directory$"):
            check_output_dir(place / "f", force=force)
    assert (place / "f").read_text() == "mine"


def _replace_empty(t):
    (t / "o").mkdir()
    return t / "o"


def _replace_run(t):
    return fake_run(t / "o")


def _replace_run_with_export(t):
    return fake_run(t / "o", export=True)


def _replace_run_with_other_export(t):
    fake_run(t / "o")
    fake_export(t / "o" / "export-int8", files=("model.int8.tflite",))
    return t / "o"


def _replace_run_with_empty_export_dir(t):
    fake_run(t / "o")
    (t / "o" / "export").mkdir()
    return t / "o"


def _replace_export(t):
    return fake_export(t / "o", files=("model.float32.tflite", "model.int8.tflite"))


def _replace_export_with_c_arrays_and_diagnose(t):
    fake_export(t / "o", files=("model.int8.tflite",))
    write(t / "o" / "model_int8_data.h", "h")
    write(t / "o" / "model_int8_data.c", "c")
    write(t / "o" / "diagnose.png", b"\x89PNG")
    return t / "o"


def _replace_export_with_c_source(t):
    fake_export(t / "o", files=("model.int8.tflite",))
    manifest = json.loads((t / "o" / "manifest.json").read_text())
    manifest["c_source"] = {"files": ["edgekit_model.h", "edgekit_model.c"],
                            "sha256": {"edgekit_model.h": sha("h"), "edgekit_model.c": sha("c")}}  # fmt: skip
    (t / "o" / "manifest.json").write_text(json.dumps(manifest))
    write(t / "o" / "edgekit_model.h", "h")
    write(t / "o" / "edgekit_model.c", "c")
    return t / "o"


def _replace_export_with_report(t):
    fake_export(t / "o")
    for name in ("report.md", "latency.png", "tradeoff.png", "report.html"):
        write(t / "o" / "report" / name, name)
    return t / "o"


def _replace_run_with_stale_temporary(t):
    fake_run(t / "o")
    write(t / "o" / temp_name("run.json", dead_pid()), "half")
    return t / "o"


def _replace_through_symlink(t):
    fake_run(t / "real")
    (t / "o").symlink_to("real")
    return t / "o"


REPLACEABLE = {
    "empty": _replace_empty,
    "run": _replace_run,
    "run-with-export": _replace_run_with_export,
    "run-with-another-export": _replace_run_with_other_export,
    "run-with-empty-export": _replace_run_with_empty_export_dir,
    "export": _replace_export,
    "export-c-arrays-diagnose": _replace_export_with_c_arrays_and_diagnose,
    "export-c-source": _replace_export_with_c_source,
    "export-with-report": _replace_export_with_report,
    "run-with-stale-temporary": _replace_run_with_stale_temporary,
    "symlink-to-a-run": _replace_through_symlink,
}


@pytest.mark.parametrize("case", list(REPLACEABLE))
def test_force_replaces_what_edgekit_wrote(place, case):
    out = REPLACEABLE[case](place)
    assert foreign_entry(out) is None
    with atomic_directory(out, force=True) as tmp:
        (tmp / "new.bin").write_bytes(b"new")
    assert sorted(p.name for p in out.iterdir()) == ["new.bin"]
    assert leftovers(place) == []
    if case == "symlink-to-a-run":  # written through: the link stays, its target is new
        assert out.is_symlink() and (place / "real" / "new.bin").is_file()


def test_an_empty_directory_needs_force_too(place):
    (place / "o").mkdir()
    with (
        pytest.raises(EdgekitError, match="o already exists; pass --force"),
        atomic_directory(place / "o"),
    ):
        pass
    with atomic_directory(place / "o", force=True) as tmp:
        (tmp / "a").write_text("a")
    assert [p.name for p in (place / "o").iterdir()] == ["a"]


def _edited_artifact(t):
    out = fake_export(t / "o", files=("model.int8.tflite",))
    write(out / "model.int8.tflite", b"TFL3 tuned by hand after the export")
    return out


def _edited_c_source(t):
    out = _replace_export_with_c_source(t)
    write(out / "edgekit_model.c", "c /* hand-tuned */")
    return out


def _edited_c_array(t):
    out = fake_export(t / "o", files=("model.int8.tflite",))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["artifacts"][0]["c_array"] = ["model_int8_data.h", "model_int8_data.c"]
    manifest["artifacts"][0]["c_array_sha256"] = {"model_int8_data.h": sha("h"),
                                                  "model_int8_data.c": sha("c")}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest))
    write(out / "model_int8_data.h", "h")
    write(out / "model_int8_data.c", "c // my edit")
    return out


def _forged_artifact(t):
    """A hand-made manifest listing the user's file as an artifact (a wrong sha256)."""
    out = fake_export(t / "o")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["artifacts"].append({"file": "thesis.tex", "format": "tflite", "sha256": "0" * 64})
    (out / "manifest.json").write_text(json.dumps(manifest))
    write(out / "thesis.tex", "\\chapter{Four years}")
    return out


def _forged_unhashed_lists(t):
    """Listed as C arrays and C source without any hash."""
    out = fake_export(t / "o")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["artifacts"][0]["c_array"] = ["thesis.tex"]
    manifest["c_source"] = {"files": ["id_ed25519"]}
    (out / "manifest.json").write_text(json.dumps(manifest))
    write(out / "thesis.tex", "\\chapter{Four years}")
    write(out / "id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----")
    return out


CHANGED = {  # case: (directory maker, the file named, why)
    "edited-artifact": (_edited_artifact, "model.int8.tflite", "changed since edgekit wrote it"),
    "edited-c-source": (_edited_c_source, "edgekit_model.c", "changed since edgekit wrote it"),
    "edited-c-array": (_edited_c_array, "model_int8_data.c", "changed since edgekit wrote it"),
    "forged-artifact-hash": (_forged_artifact, "thesis.tex", "changed since edgekit wrote it"),
    "forged-unhashed-lists": (_forged_unhashed_lists, "id_ed25519", "edgekit did not write"),
}


@pytest.mark.parametrize("case", list(CHANGED))
def test_force_keeps_files_changed_since_the_export_or_listed_by_a_forged_manifest(place, case):
    """The manifest proves a file edgekit's by its sha256: a file edited after the export,
    or one a hand-made manifest lists without the right hash, is never replaced."""
    make, name, why = CHANGED[case]
    out = make(place)
    before = snapshot(out)
    assert foreign_entry(out) == out / name
    with pytest.raises(EdgekitError) as info, atomic_directory(out, force=True) as tmp:
        (tmp / "new.bin").write_bytes(b"new")
    assert str(info.value) == (
        f"cannot replace {out}: it holds {name}, which {why} "
        "(--force replaces only an empty directory or one edgekit wrote)"
    )
    assert snapshot(out) == before
    assert leftovers(place) == []


def test_a_directory_that_became_foreign_meanwhile_is_kept(place):
    """Checked again at the end: a file the user put in while training ran is not lost."""
    run = fake_run(place / "o")
    before_user_file = snapshot(run)
    refused = pytest.raises(EdgekitError, match="it holds notes.txt, which edgekit did not write")
    with refused, atomic_directory(run, force=True) as tmp:
        (tmp / "new").write_text("new")
        write(run / "notes.txt", "written during training")
    assert (run / "notes.txt").read_text() == "written during training"
    assert {k: v for k, v in snapshot(run).items() if k != "notes.txt"} == before_user_file
    assert leftovers(place) == []


# --- 2. claims are atomic ------------------------------------------------------------------


@pytest.fixture(params=["renameat2", "mkdir-claim"])
def rename_mode(request, monkeypatch):
    """Both ways of claiming: renameat2(RENAME_NOREPLACE / EXCHANGE) and, where a system
    lacks it, mkdir as the claim."""
    if request.param == "mkdir-claim":
        monkeypatch.setattr(outdirs, "_renameat2", lambda src, dst, flags: False)
    elif not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    return request.param


@pytest.mark.parametrize("existing", ["absent", "empty"])
def test_the_second_of_two_concurrent_writers_fails(place, rename_mode, existing):
    out = place / "o"
    if existing == "empty":
        out.mkdir()
    force = existing == "empty"
    with pytest.raises(EdgekitError) as err, atomic_directory(out, force=force) as first:
        (first / "who").write_text("first")
        with atomic_directory(out, force=force) as second:
            (second / "who").write_text("second")
    assert str(err.value) == (
        f"cannot write {out}: it appeared or changed while this command ran (another edgekit "
        "writing there?); nothing was replaced"
    )
    assert (out / "who").read_text() == "second"
    assert leftovers(place) == []


def test_with_force_a_directory_swapped_meanwhile_is_not_replaced(place, rename_mode):
    out = fake_run(place / "o")
    refused = pytest.raises(EdgekitError, match="appeared or changed while this command ran")
    with refused, atomic_directory(out, force=True) as first:
        (first / "who").write_text("first")
        with atomic_directory(out, force=True) as second:
            (second / "who").write_text("second")
    assert (out / "who").read_text() == "second"
    assert leftovers(place) == []


def test_with_force_onto_an_absent_directory_a_concurrent_one_still_wins(place, rename_mode):
    out = place / "o"
    with (
        pytest.raises(EdgekitError, match="appeared or changed"),
        atomic_directory(out, force=True) as a,
    ):
        (a / "who").write_text("first")
        out.mkdir()
        (out / "thesis.tex").write_text("someone else's")
    assert (out / "thesis.tex").read_text() == "someone else's"


@pytest.mark.parametrize("taken", [1, 2, 5])
def test_a_unique_claim_takes_the_next_free_name(place, rename_mode, taken):
    base = place / "runs" / "digits-20240101-000000"
    with claim_directory(base, unique=True) as claim:
        (claim.tmp / "run.json").write_text("mine")
        for i in range(taken):  # other trainings took the name (and the next ones) meanwhile
            name = base if i == 0 else base.with_name(f"{base.name}-{i + 1}")
            write(name / "run.json", f"theirs {i}")
    expected = base.with_name(f"{base.name}-{taken + 1}")
    assert claim.final == expected
    assert (expected / "run.json").read_text() == "mine"
    assert (base / "run.json").read_text() == "theirs 0"


@pytest.mark.parametrize("target", ["absent", "empty", "non-empty"])
def test_rename_no_replace(place, rename_mode, target):
    src, dst = place / "src", place / "dst"
    write(src / "a", "a")
    if target != "absent":
        dst.mkdir()
    if target == "non-empty":
        write(dst / "b", "b")
    if target == "absent":
        rename_no_replace(src, dst)
        assert (dst / "a").read_text() == "a" and not src.exists()
    else:
        with pytest.raises(FileExistsError):
            rename_no_replace(src, dst)
        assert (src / "a").read_text() == "a"


def test_threads_racing_for_one_directory_leave_exactly_one_winner(place, rename_mode):
    out, barrier, results = place / "o", threading.Barrier(4), []

    def writer(i: int) -> None:
        try:
            with atomic_directory(out) as tmp:
                (tmp / "who").write_text(str(i))
                barrier.wait(timeout=30)
            results.append(("ok", i))
        except EdgekitError as err:
            results.append(("error", str(err)))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [i for kind, i in results if kind == "ok"]
    assert len(winners) == 1 and (out / "who").read_text() == str(winners[0])
    assert all("appeared or changed" in str(m) or "already exists" in str(m)
               for kind, m in results if kind == "error")  # fmt: skip
    assert leftovers(place) == []


# --- 3. symlinks are written through; devices in place; outputs that are inputs refused ---


def _link_same_dir(t):
    write(t / "target.json", "old")
    (t / "out.json").symlink_to("target.json")
    return t / "out.json", t / "target.json"


def _link_absolute_other_dir(t):
    write(t / "elsewhere" / "target.json", "old")
    (t / "out.json").symlink_to(t / "elsewhere" / "target.json")
    return t / "out.json", t / "elsewhere" / "target.json"


def _link_chain(t):
    write(t / "target.json", "old")
    (t / "middle.json").symlink_to("target.json")
    (t / "out.json").symlink_to("middle.json")
    return t / "out.json", t / "target.json"


def _link_dangling(t):
    (t / "elsewhere").mkdir()
    (t / "out.json").symlink_to(t / "elsewhere" / "new.json")
    return t / "out.json", t / "elsewhere" / "new.json"


def _link_in_linked_dir(t):
    write(t / "real" / "out.json", "old")
    (t / "linked").symlink_to("real")
    return t / "linked" / "out.json", t / "real" / "out.json"


SYMLINKS = {
    "same-dir": _link_same_dir,
    "absolute-other-dir": _link_absolute_other_dir,
    "chain": _link_chain,
    "dangling": _link_dangling,
    "inside-a-linked-dir": _link_in_linked_dir,
}


@pytest.mark.parametrize("case", list(SYMLINKS))
def test_a_symlinked_output_is_written_through(tmp_path, case):
    out, target = SYMLINKS[case](tmp_path)
    links = {p: os.readlink(p) for p in tmp_path.rglob("*") if p.is_symlink()}
    atomic_write_text(out, "new")
    assert target.read_text() == "new"
    assert {p: os.readlink(p) for p in tmp_path.rglob("*") if p.is_symlink()} == links
    assert leftovers(tmp_path) == []


def test_writing_through_keeps_the_target_mode(tmp_path):
    write(tmp_path / "t.json", "old")
    os.chmod(tmp_path / "t.json", 0o640)
    (tmp_path / "l.json").symlink_to("t.json")
    atomic_write_text(tmp_path / "l.json", "new")
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o640


def test_dev_null_stays_a_device():
    atomic_write_text("/dev/null", "nothing")
    assert Path("/dev/null").is_char_device()


def test_dev_stdout_is_written_not_replaced(capfd):
    was_link = Path("/dev/stdout").is_symlink()
    atomic_write_text("/dev/stdout", '{"schema": "edgekit.bench/1"}\n')
    assert capfd.readouterr().out == '{"schema": "edgekit.bench/1"}\n'
    assert Path("/dev/stdout").is_symlink() == was_link


@pytest.mark.parametrize("stdout", ["pipe", "file"])
def test_dev_stdout_of_a_real_process(tmp_path, stdout):
    """As root, ``bench --json /dev/stdout`` replaced the /dev/stdout symlink with a file."""
    child = "from edgekit.fileio import atomic_write_text\natomic_write_text('/dev/stdout', 'data\\n')\n"
    was_link = Path("/dev/stdout").is_symlink()
    if stdout == "pipe":
        proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=120)
        assert (proc.returncode, proc.stdout) == (0, b"data\n"), proc.stderr
    else:
        with open(tmp_path / "out.txt", "wb") as fh:
            fh.write(b"before\n")
            fh.flush()
            proc = subprocess.run([sys.executable, "-c", child], stdout=fh, timeout=120)
        assert proc.returncode == 0
        assert (tmp_path / "out.txt").read_bytes() == b"before\ndata\n"  # the same file
    assert Path("/dev/stdout").is_symlink() == was_link


def test_a_regular_file_under_dev_shm_is_still_replaced_atomically():
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm here")
    path = Path("/dev/shm") / f"edgekit-test-{os.getpid()}.json"
    try:
        atomic_write_text(path, "one")
        atomic_write_text(path, "two")  # replaced, not appended to
        assert path.read_text() == "two"
    finally:
        path.unlink(missing_ok=True)


def test_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    atomic_write_bytes(fifo, b"through the pipe")
    reader.join(timeout=30)
    assert got == [b"through the pipe"] and fifo.is_fifo()


def _in_same(t):
    return (
        t / "in.npz",
        [t / "in.npz"],
        f"cannot write {t / 'in.npz'}: it is an input of this command",
    )


def _in_via_symlink(t):
    (t / "out.csv").symlink_to("in.npz")
    return (
        t / "out.csv",
        [t / "in.npz"],
        f"cannot write {t / 'out.csv'}: it is {t / 'in.npz'}, an input of this command",
    )


def _in_via_hard_link(t):
    os.link(t / "in.npz", t / "hard.npz")
    return (
        t / "hard.npz",
        [t / "in.npz"],
        f"cannot write {t / 'hard.npz'}: it is {t / 'in.npz'}, an input of this command",
    )


def _in_relative(t):
    return (
        Path("in.npz"),
        [t / "in.npz"],
        f"cannot write in.npz: it is {t / 'in.npz'}, an input of this command",
    )


def _in_dotdot(t):
    (t / "sub").mkdir()
    out = t / "sub" / ".." / "in.npz"
    return (
        out,
        [t / "in.npz"],
        f"cannot write {out}: it is {t / 'in.npz'}, an input of this command",
    )


INPUT_FILES = {
    "same": _in_same,
    "symlink": _in_via_symlink,
    "hard-link": _in_via_hard_link,
    "relative": _in_relative,
    "dotdot": _in_dotdot,
}


@pytest.mark.parametrize("case", list(INPUT_FILES))
def test_an_output_file_that_is_an_input_is_refused(tmp_path, case):
    write(tmp_path / "in.npz", b"PK inputs")
    out, protect, message = INPUT_FILES[case](tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(EdgekitError) as err:
        atomic_write_text(out, "predictions", protect=protect)
    assert str(err.value) == message
    assert snapshot(tmp_path) == before


def test_two_outputs_naming_one_file_are_refused(tmp_path):
    (tmp_path / "b.md").symlink_to("a.md")
    with pytest.raises(WriteError, match=r"b.md: it is the same file as .*a.md, also written here"):
        atomic_write_files([(tmp_path / "a.md", b"1"), (tmp_path / "b.md", b"2")])
    assert not (tmp_path / "a.md").exists()


# --- 4. every OSError is one line, with nothing half-written --------------------------------

ERRNOS = [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EIO, errno.EFBIG]


@pytest.mark.parametrize("code", ERRNOS, ids=errno.errorcode.get)
def test_a_failed_write_is_one_line_and_the_old_file_stays(tmp_path, monkeypatch, code):
    write(tmp_path / "bench.json", "old results")

    def fail(fd, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio, "_write_all", fail)
    with pytest.raises(WriteError) as err:
        atomic_write_text(tmp_path / "bench.json", "new results")
    assert str(err.value) == f"cannot write {tmp_path / 'bench.json'}: {os.strerror(code)}"
    assert (tmp_path / "bench.json").read_text() == "old results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


def test_several_files_are_all_written_or_none(tmp_path, monkeypatch):
    write(tmp_path / "a.json", "old a")
    real = fileio._write_all
    calls = []

    def fail_second(fd, data):
        calls.append(data)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(fileio, "_write_all", fail_second)
    with pytest.raises(WriteError, match=r"b.md: No space left on device$"):
        atomic_write_files([(tmp_path / "a.json", b"new a"), (tmp_path / "b.md", b"new b")])
    assert (tmp_path / "a.json").read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def _enospc_inside(tmp):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / "model.keras"))


def _erofs_no_name(tmp):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


def _eacces_inside(tmp):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp / "data" / "test.npz"))


def _quota_elsewhere(tmp):
    raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/scratch/saved_model")


def _inner_atomic_write(tmp):
    raise WriteError(tmp / "model.int8.tflite", "No space left on device")


BODY_ERRORS = {
    "enospc-inside": (_enospc_inside, "cannot write {out}/model.keras: No space left on device"),
    "erofs-no-filename": (_erofs_no_name, "cannot write {out}: Read-only file system"),
    "eacces-inside": (_eacces_inside, "cannot write {out}/data/test.npz: Permission denied"),
    "quota-elsewhere": (_quota_elsewhere, "cannot write /scratch/saved_model: Disk quota exceeded"),
    "inner-atomic-write": (_inner_atomic_write, "cannot write {out}/model.int8.tflite: No space left on device"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BODY_ERRORS))
@pytest.mark.parametrize("force", [False, True], ids=["new", "force-over-a-run"])
def test_a_write_error_while_building_a_directory_is_one_line(tmp_path, case, force):
    raise_it, message = BODY_ERRORS[case]
    out = tmp_path / "o"
    if force:
        fake_run(out)
    before = snapshot(tmp_path)
    with pytest.raises(WriteError) as err, atomic_directory(out, force=force) as tmp:
        (tmp / "half").write_text("half")
        raise_it(tmp)
    assert str(err.value) == message.format(out=out)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["enospc-inside", "inner-atomic-write"])
def test_a_failed_build_removes_the_parents_it_made(tmp_path, case):
    """``runs/2026-.../`` on a full disk: ``runs/`` (made for it) goes with it; a parent
    that existed, or that someone wrote into meanwhile, stays."""
    raise_it, _ = BODY_ERRORS[case]
    with pytest.raises(WriteError), atomic_directory(tmp_path / "runs" / "deep" / "o") as tmp:
        raise_it(tmp)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "runs").mkdir()
    with pytest.raises(WriteError), atomic_directory(tmp_path / "runs" / "deep" / "o") as tmp:
        write(tmp_path / "runs" / "deep" / "notes.txt", "mine")
        raise_it(tmp)
    assert snapshot(tmp_path) == {"runs": "dir", "runs/deep": "dir",
                                  "runs/deep/notes.txt": sha("mine")}  # fmt: skip


def test_an_error_reading_an_input_keeps_its_own_type(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_directory(tmp_path / "o"):
        (tmp_path / "missing.npz").read_bytes()
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_parent_is_one_line(tmp_path):
    ro = readonly_dir(tmp_path)
    with pytest.raises(EdgekitError, match=rf"^cannot write to {ro}: "), atomic_directory(ro / "o"):
        pass
    with pytest.raises(WriteError, match=rf"^cannot write {ro}/b.json: "):
        atomic_write_text(ro / "b.json", "{}")


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_runs_latest_that_is_not_a_symlink_is_left_alone(tmp_path, kind):
    latest = tmp_path / "runs" / "latest"
    if kind == "directory":
        write(latest / "mine.txt", "mine")
    else:
        write(latest, "mine")
    fake_run(tmp_path / "runs" / "a")
    before = snapshot(tmp_path)
    with pytest.raises(EdgekitError) as err:
        point_symlink(latest, tmp_path / "runs" / "a")
    assert str(err.value) == f"{latest} is a {kind}, not a symlink; left as it is"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("old", ["absent", "dangling", "to-another-run"])
def test_runs_latest_is_repointed(tmp_path, old):
    fake_run(tmp_path / "runs" / "a")
    fake_run(tmp_path / "runs" / "b")
    latest = tmp_path / "runs" / "latest"
    if old == "dangling":
        latest.symlink_to("gone")
    elif old == "to-another-run":
        latest.symlink_to("a")
    write(tmp_path / "runs" / temp_name("latest", dead_pid()), "stale")
    point_symlink(latest, tmp_path / "runs" / "b")
    assert os.readlink(latest) == "b"
    assert leftovers(tmp_path) == []


# --- 5. what a killed writer left is removed by the next one -------------------------------


def test_stale_temporaries_of_dead_writers_are_removed_and_others_kept(tmp_path):
    dead, alive = dead_pid(), os.getppid()
    stale_dir = write(tmp_path / temp_name("export", dead) / "model.tflite", "half").parent
    stale_file = write(tmp_path / temp_name("bench.json", dead), "half")
    stale_old = write(tmp_path / temp_name("run", dead, kind="old") / "run.json", "old").parent
    kept = [
        write(tmp_path / temp_name("export", alive) / "m", "in progress").parent,  # alive
        write(
            tmp_path / temp_name("export", dead, host="0badc0de") / "m", "x"
        ).parent,  # other host
        write(tmp_path / ".export.x1y2z3.tmp" / "m", "x").parent,  # not edgekit's pattern
        write(tmp_path / "export.ek1h00000000.a.tmp", "x"),  # not hidden
        write(tmp_path / "notes.txt", "mine"),
    ]
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([stale_dir, stale_file, stale_old])
    assert all(p.exists() for p in kept)


@pytest.mark.parametrize(
    "writer", ["atomic_directory", "atomic_write", "point_symlink", "temporary_directory"]
)
def test_every_writer_cleans_up_after_a_killed_one(tmp_path, writer):
    stale = write(tmp_path / temp_name("out", dead_pid()) / "half.bin", b"half").parent
    if writer == "atomic_directory":
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "a").write_text("a")
    elif writer == "atomic_write":
        atomic_write_text(tmp_path / "out.json", "{}")
    elif writer == "point_symlink":
        fake_run(tmp_path / "r")
        point_symlink(tmp_path / "latest", tmp_path / "r")
    else:
        with temporary_directory(tmp_path) as scratch:
            assert scratch.is_dir() and fileio.is_temporary_name(scratch.name)
        assert not scratch.exists()
    assert not stale.exists()
    assert leftovers(tmp_path) == []


def test_a_writer_killed_mid_claim_is_cleaned_by_the_next_claim(tmp_path):
    """A real SIGKILL while the directory is being built, then a rerun."""
    child = (
        "import os, signal, sys\n"
        "from edgekit.outdirs import atomic_directory\n"
        f"with atomic_directory({str(tmp_path / 'out')!r}) as tmp:\n"
        "    (tmp / 'model.tflite').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=120)
    assert proc.returncode == -9
    assert len(leftovers(tmp_path)) == 1 and not (tmp_path / "out").exists()
    with atomic_directory(tmp_path / "out") as tmp:
        (tmp / "model.tflite").write_bytes(b"whole")
    assert (
        leftovers(tmp_path) == [] and (tmp_path / "out" / "model.tflite").read_bytes() == b"whole"
    )


# --- the commands: bench, predict, report, compare, diagnose, train ------------------------


@pytest.fixture
def fake_bench(monkeypatch):
    """``edgekit bench`` without measuring: run_bench returns one ok row."""
    import edgekit.bench
    from edgekit.bench.result import BenchResult
    from edgekit.bench.schema import BenchRow

    row = BenchRow(artifact="model.float32.tflite", format="tflite", variant="float32",
                   runtime="tflite", device="cpu", threads=1, batch=1, size_bytes=100,
                   latency_ms={"min": 0.01, "mean": 0.01, "std": 0.0, "p50": 0.01, "p90": 0.01,
                               "p95": 0.01, "p99": 0.01, "max": 0.01},
                   samples_ms=[0.01] * 5, runs=5)  # fmt: skip
    result = BenchResult(environment={"host": "test"}, rows=[row])
    calls = []

    def run_bench(paths, **options):
        calls.append(paths)
        return result

    monkeypatch.setattr(edgekit.bench, "run_bench", run_bench)
    return calls


@pytest.fixture
def export(tmp_path) -> Path:
    fake_export(tmp_path / "export", files=("model.float32.tflite", "model.int8.tflite"))
    write(tmp_path / "base.json", json.dumps({"schema": "edgekit.bench/1", "results": []}))
    write(tmp_path / "data.npz", b"PK data")
    return tmp_path / "export"


AN_INPUT = "an input of this command"
BENCH_INPUT_OUTPUTS = {
    "artifact": (("export/model.float32.tflite", "--json", "export/model.float32.tflite"),
                 f"cannot write export/model.float32.tflite: it is {AN_INPUT}"),
    "manifest": (("export", "--json", "export/manifest.json"),
                 f"cannot write export/manifest.json: it is {AN_INPUT}"),
    "listed-artifact": (("export", "--json", "export/model.int8.tflite"),
                        f"cannot write export/model.int8.tflite: it is {AN_INPUT}"),
    "test-data": (("export", "--markdown", "export/test.npz"),
                  f"cannot write export/test.npz: it is {AN_INPUT}"),
    "junit-over-artifact": (("export", "--junit", "export/model.float32.tflite"),
                            f"cannot write export/model.float32.tflite: it is {AN_INPUT}"),
    "data": (("export", "--json", "data.npz", "--data", "data.npz"),
             f"cannot write data.npz: it is {AN_INPUT}"),
    "baseline": (("export", "--json", "base.json", "--baseline", "base.json"),
                 f"cannot write base.json: it is {AN_INPUT}"),
    "default-export": (("--json", "export/manifest.json"), "cannot write export/manifest.json: "
                       f"it is runs/latest/export/manifest.json, {AN_INPUT}"),
    "export-dir": (("export", "--json", "export"), f"cannot write export: it is {AN_INPUT}"),
    "a-directory": (("export", "--json", "d"), "cannot write d: is a directory"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BENCH_INPUT_OUTPUTS))
def test_bench_refuses_an_output_that_is_an_input(tmp_path, export, fake_bench, case):
    args, message = BENCH_INPUT_OUTPUTS[case]
    (tmp_path / "d").mkdir()
    if case == "default-export":
        (tmp_path / "runs").mkdir()
        (tmp_path / "runs" / "latest").symlink_to(tmp_path)
    before = snapshot(tmp_path)
    code, out, err = cli("bench", *args)
    assert (code, out) == (2, "")
    assert one_line(err) == f"edgekit: error: {message}\n"
    assert snapshot(tmp_path) == before and fake_bench == []  # refused before measuring


def test_bench_refuses_a_symlink_to_an_input(tmp_path, export, fake_bench):
    (tmp_path / "bench.json").symlink_to("export/model.int8.tflite")
    before = snapshot(tmp_path)
    code, _, err = cli("bench", "export", "--json", "bench.json")
    assert code == 2
    assert one_line(err) == ("edgekit: error: cannot write bench.json: it is "
                             "export/model.int8.tflite, an input of this command\n")  # fmt: skip
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "flags", [("--json", "--markdown"), ("--json", "--junit"), ("--markdown", "--junit")]
)
def test_bench_refuses_two_outputs_in_one_file(tmp_path, export, fake_bench, flags):
    code, _, err = cli("bench", "export", flags[0], "r.txt", flags[1], "r.txt")
    assert code == 2
    assert (
        one_line(err) == f"edgekit: error: {flags[1]} and {flags[0]} name the same file (r.txt)\n"
    )
    assert not (tmp_path / "r.txt").exists()


@pytest.mark.parametrize("flag", ["--json", "--markdown", "--junit"])
def test_bench_writes_through_a_symlinked_output(tmp_path, export, fake_bench, flag):
    write(tmp_path / "ci" / "result.txt", "old")
    (tmp_path / "out").symlink_to("ci/result.txt")
    code, _, err = cli("bench", "export", flag, "out")
    assert code == 0, err
    assert (tmp_path / "out").is_symlink() and os.readlink(tmp_path / "out") == "ci/result.txt"
    assert (tmp_path / "ci" / "result.txt").read_text() != "old"


def test_bench_json_to_dev_stdout(tmp_path, export, fake_bench, capfd):
    was_link = Path("/dev/stdout").is_symlink()
    code, _, err = cli("bench", "export", "--json", "/dev/stdout")
    assert code == 0, err
    assert json.loads(capfd.readouterr().out)["schema"] == "edgekit.bench/1"
    assert Path("/dev/stdout").is_symlink() == was_link


@pytest.mark.parametrize(
    "code_", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=errno.errorcode.get
)
def test_bench_output_write_error_is_one_line(tmp_path, export, fake_bench, monkeypatch, code_):
    write(tmp_path / "bench.json", "previous results")

    def fail(fd, data):
        raise OSError(code_, os.strerror(code_))

    monkeypatch.setattr(fileio, "_write_all", fail)
    code, _, err = cli("bench", "export", "--json", "bench.json", "--markdown", "b.md")
    assert code == 2
    assert one_line(err) == f"edgekit: error: cannot write bench.json: {os.strerror(code_)}\n"
    assert (tmp_path / "bench.json").read_text() == "previous results"
    assert not (tmp_path / "b.md").exists() and leftovers(tmp_path) == []


def test_bench_in_a_read_only_working_directory_writes_elsewhere(
    tmp_path, export, fake_bench, monkeypatch
):
    ro = readonly_dir(tmp_path)
    monkeypatch.chdir(ro)
    code, _, err = cli("bench", str(export), "--json", str(tmp_path / "b.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "b.json").read_text())["schema"] == "edgekit.bench/1"
    code, _, err = cli("bench", str(export), "--json", "b.json")
    assert code == 2 and one_line(err).startswith("edgekit: error: cannot write b.json: ")


PREDICT_REFUSALS = [
    ("export/test.npz", "export/test.npz"),
    ("export/model.float32.tflite", "export/model.float32.tflite"),
    ("export/manifest.json", "export/manifest.json"),
]


@pytest.mark.parametrize("out,shown", PREDICT_REFUSALS, ids=[o for o, _ in PREDICT_REFUSALS])
def test_predict_refuses_an_output_that_is_an_input(tmp_path, export, out, shown):
    before = snapshot(tmp_path)
    code, stdout, err = cli(
        "predict", "export/model.float32.tflite", "export/test.npz", "--out", out
    )
    assert (code, stdout) == (2, "")
    assert (
        one_line(err) == f"edgekit: error: cannot write {shown}: it is an input of this command\n"
    )
    assert snapshot(tmp_path) == before


def test_predict_refuses_a_symlink_to_its_input(tmp_path, export):
    (tmp_path / "p.csv").symlink_to("export/test.npz")
    before = snapshot(tmp_path)
    code, _, err = cli(
        "predict", "export/model.float32.tflite", "export/test.npz", "--out", "p.csv"
    )
    assert code == 2
    assert one_line(err) == ("edgekit: error: cannot write p.csv: it is export/test.npz, an input "
                             "of this command\n")  # fmt: skip
    assert snapshot(tmp_path) == before


def _predictions(tmp_path):
    from edgekit.predict.api import Prediction, Predictions
    from edgekit.predict.info import ArtifactInfo

    return Predictions(artifact=tmp_path / "export" / "model.float32.tflite", task="binary",
                       info=ArtifactInfo(task="binary"), rows=[Prediction(label=1, scores=[0.9])],
                       source=tmp_path / "in.csv")  # fmt: skip


@pytest.mark.parametrize("name", ["in.csv", "export/model.float32.tflite", "export/manifest.json"])
def test_predictions_write_refuses_its_inputs(tmp_path, export, name):
    write(tmp_path / "in.csv", "a,b\n1,2\n")
    before = snapshot(tmp_path)
    with pytest.raises(EdgekitError, match="it is an input of this command"):
        _predictions(tmp_path).write(tmp_path / name)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["p.csv", "p.json"])
def test_predictions_write_through_a_symlink(tmp_path, export, name):
    write(tmp_path / "results" / name, "old")
    (tmp_path / name).symlink_to(f"results/{name}")
    _predictions(tmp_path).write(tmp_path / name)
    assert (tmp_path / name).is_symlink()
    assert "0.9" in (tmp_path / "results" / name).read_text()


def test_predictions_write_error_is_one_line(tmp_path, export, monkeypatch):
    monkeypatch.setattr(fileio, "_write_all", lambda fd, data: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))  # fmt: skip
    with pytest.raises(WriteError) as err:
        _predictions(tmp_path).write(tmp_path / "p.csv")
    assert str(err.value) == f"cannot write {tmp_path / 'p.csv'}: No space left on device"
    assert not (tmp_path / "p.csv").exists() and leftovers(tmp_path) == []


GOOD_BENCH = {"schema": "edgekit.bench/1", "results": [{
    "artifact": "model.float32.tflite", "variant": "float32", "runtime": "tflite", "device": "cpu",
    "threads": 1, "batch": 1, "status": "ok", "latency_ms": {"p50": 0.01, "p95": 0.02},
    "samples_ms": [0.01] * 20}]}  # fmt: skip


@pytest.mark.parametrize("name", ["report.md", "latency.png", "tradeoff.png", "report.html"])
def test_report_refuses_to_write_over_its_input(tmp_path, name):
    write(tmp_path / "out" / name, json.dumps(GOOD_BENCH))
    before = snapshot(tmp_path)
    code, _, err = cli("report", f"out/{name}", "--out", "out", "--html")
    assert code == 2
    assert (
        one_line(err)
        == f"edgekit: error: cannot write out/{name}: it is an input of this command\n"
    )
    assert snapshot(tmp_path) == before


def test_report_refuses_a_symlinked_output_to_its_input(tmp_path):
    write(tmp_path / "bench.json", json.dumps(GOOD_BENCH))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "report.md").symlink_to("../bench.json")
    before = snapshot(tmp_path)
    code, _, err = cli("report", "bench.json", "--out", "r")
    assert code == 2
    assert one_line(err) == ("edgekit: error: cannot write r/report.md: it is bench.json, an input "
                             "of this command\n")  # fmt: skip
    assert snapshot(tmp_path) == before


def test_report_writes_through_symlinked_files_and_directory(tmp_path):
    write(tmp_path / "bench.json", json.dumps(GOOD_BENCH))
    write(tmp_path / "site" / "report.md", "old")
    (tmp_path / "published").mkdir()
    (tmp_path / "published" / "report.md").symlink_to("../site/report.md")
    (tmp_path / "out").symlink_to("published")
    code, _, err = cli("report", "bench.json", "--out", "out")
    assert code == 0, err
    assert (tmp_path / "published" / "report.md").is_symlink()
    assert "model.float32.tflite" in (tmp_path / "site" / "report.md").read_text()
    assert leftovers(tmp_path) == []


def test_report_write_error_leaves_no_half_report(tmp_path, monkeypatch):
    write(tmp_path / "bench.json", json.dumps(GOOD_BENCH))
    real = fileio._write_all
    calls = []

    def fail_third(fd, data):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(fileio, "_write_all", fail_third)
    code, _, err = cli("report", "bench.json", "--out", "r")
    assert code == 2
    assert one_line(err) == "edgekit: error: cannot write r/tradeoff.png: No space left on device\n"
    assert list((tmp_path / "r").iterdir()) == []


@pytest.mark.parametrize("which", ["a.json", "b.json"])
def test_compare_refuses_markdown_over_an_input(tmp_path, which):
    for name in ("a.json", "b.json"):
        write(tmp_path / name, json.dumps(GOOD_BENCH))
    before = snapshot(tmp_path)
    code, _, err = cli("compare", "a.json", "b.json", "--markdown", which)
    assert code == 2
    assert (
        one_line(err) == f"edgekit: error: cannot write {which}: it is an input of this command\n"
    )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("plot", ["export/model.int8.tflite", "export/manifest.json", "data.npz"])
def test_diagnose_refuses_a_plot_over_an_input(tmp_path, export, plot):
    before = snapshot(tmp_path)
    code, _, err = cli("diagnose", "export", "--data", "data.npz", "--plot", plot)
    assert code == 2
    assert one_line(err) == f"edgekit: error: cannot write {plot}: it is an input of this command\n"
    assert snapshot(tmp_path) == before


TRAIN = ("train", "--dataset", "synthetic", "--hidden", "2", "--epochs", "1")


def _train_out_is_dataset_dir(t):
    regression_csv(t / "work" / "data" / "d.csv", n=40)
    return (*TRAIN[:2], "data/d.csv", *TRAIN[3:], "--out", "data", "--force"), (
        "cannot write data: it contains data/d.csv, an input of this command"
    )


def _train_out_dot(t):
    return (*TRAIN, "--out", ".", "--force"), "cannot replace .: it is the working directory"


def _train_out_dot_no_force(t):
    return (*TRAIN, "--out", "."), "cannot replace .: it is the working directory"


def _train_out_parent(t):
    return (
        *TRAIN,
        "--out",
        "..",
        "--force",
    ), "cannot replace ..: it contains the working directory"


def _train_out_home(t):
    home = t / "home"
    return (
        *TRAIN,
        "--out",
        str(home),
        "--force",
    ), f"cannot replace {home}: it is the home directory"


def _train_out_personal(t):
    write(t / "work" / "docs" / "thesis.tex", "mine")
    return (*TRAIN, "--out", "docs", "--force"), (
        f"cannot replace docs: it holds thesis.tex, which edgekit did not write {FORCE}"
    )


def _train_out_export_with_bench(t):
    fake_export(t / "work" / "e")
    write(t / "work" / "e" / "bench.json", "{}")
    return (*TRAIN, "--out", "e", "--force"), (
        f"cannot replace e: it holds bench.json, which edgekit did not write {FORCE}"
    )


TRAIN_REFUSALS = {
    "out-holds-the-dataset": _train_out_is_dataset_dir,
    "out-dot-force": _train_out_dot,
    "out-dot": _train_out_dot_no_force,
    "out-parent": _train_out_parent,
    "out-home": _train_out_home,
    "out-personal": _train_out_personal,
    "out-export-with-bench-json": _train_out_export_with_bench,
}


@pytest.mark.parametrize("case", list(TRAIN_REFUSALS))
def test_train_refuses_before_training(place, case):
    (place / "work" / "data").mkdir()
    args, message = TRAIN_REFUSALS[case](place)
    before = snapshot(place)
    code, out, err = cli(*args)
    assert (code, out) == (2, "")
    assert one_line(err) == f"edgekit: error: {message}\n"
    assert_kept(before, place)


def assert_kept(before: dict[str, str], root: Path) -> None:
    """Every entry of ``before`` unchanged; new ones only in the caches libraries keep in
    $HOME (matplotlib's font list, Keras's config)."""
    after = snapshot(root)
    assert {k: after.get(k) for k in before} == before
    caches = ("home/.cache", "home/.config", "home/.keras", "home/.local")
    assert [k for k in after if k not in before and not k.startswith(caches)] == []


def _exporter_passes_inputs() -> bool:
    import inspect

    import edgekit.exporters.api

    return "protect=" in inspect.getsource(edgekit.exporters.api)


@pytest.mark.parametrize("out", ["run", "."], ids=["source-run", "cwd"])
def test_export_never_replaces_its_source_or_the_working_directory(place, out):
    if not _exporter_passes_inputs():
        pytest.skip("edgekit/exporters/api.py does not pass protect= to the output policy yet")
    run = fake_run(place / "work" / "run")
    before = snapshot(place)
    source = "run" if out == "run" else str(run / "model.keras")
    code, _, err = cli("export", source, "--out", out, "--force")
    assert code == 2
    assert one_line(err).startswith(f"edgekit: error: cannot write {out}: it ")
    assert AN_INPUT in err
    assert snapshot(place) == before


@pytest.mark.slow
def test_train_with_runs_latest_a_directory_and_its_name_taken_meanwhile(place, monkeypatch):
    """runs/latest a real directory: a note, not a traceback; the default name taken by a
    concurrent training between the choice and the claim: the next free name."""
    import edgekit.trainer.fit as fit

    write(place / "work" / "runs" / "latest" / "mine.txt", "mine")
    real_write = fit._write_run
    taken: list[Path] = []

    def write_run(tmp, *args, **kwargs):  # another training claims this one's name first
        name = tmp.name[1 : tmp.name.index(".ek")]
        taken.append(write(tmp.parent / name / "run.json", "another training's"))
        real_write(tmp, *args, **kwargs)

    monkeypatch.setattr(fit, "_write_run", write_run)
    code, out, err = cli(*TRAIN)
    assert code == 0, err
    assert err == "edgekit: note: runs/latest is a directory, not a symlink; left as it is\n"
    theirs = taken[0].parent
    assert (theirs / "run.json").read_text() == "another training's"
    mine = theirs.with_name(theirs.name + "-2")
    assert f"run directory: {mine.resolve()}" in out and (mine / "model.keras").is_file()
    assert (place / "work" / "runs" / "latest" / "mine.txt").read_text() == "mine"
    assert leftovers(place) == []


@pytest.mark.slow
def test_train_in_a_read_only_working_directory_with_out_elsewhere(tmp_path, monkeypatch):
    regression_csv(tmp_path / "d.csv", n=40)
    ro = readonly_dir(tmp_path)
    monkeypatch.chdir(ro)
    code, _, err = cli(
        "train", "--dataset", str(tmp_path / "d.csv"), "--hidden", "2", "--epochs", "1"
    )
    assert code == 2 and one_line(err).startswith("edgekit: error: cannot write to runs: ")
    code, _out, err = cli("train", "--dataset", str(tmp_path / "d.csv"), "--hidden", "2",
                         "--epochs", "1", "--out", str(tmp_path / "r"))  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "r" / "model.keras").is_file() and leftovers(tmp_path) == []


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_export_never_writes_over_the_runs_own_data(digits_run, tmp_path, force):
    """``--out RUN/data`` holds the run's test and calibration data: inputs, named as such."""
    from tests.hardening.conftest import copy_run

    run = copy_run(digits_run, tmp_path / "run")
    before = snapshot(run)
    code, text, err = cli("export", str(run), "--out", str(run / "data"), *force)
    assert (code, text) == (2, ""), err
    assert err == (
        f"edgekit: error: cannot write {run / 'data'}: it contains {run}/data/test.npz, an "
        "input of this command\n"
    )
    assert snapshot(run) == before
