"""Install footprint: the core install (`pip install .`) vs the train install (`.[train]`).

Builds two fresh virtualenvs from this checkout and reports the size of each one's
site-packages on disk, and the largest packages. Needs the package index (pip's cache helps).

    python benchmarks/install_footprint.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_result

REPO = Path(__file__).resolve().parents[1]


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def install(spec: str, base: Path) -> dict:
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    src = base / "src"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "runs", "__pycache__", "*.egg-info", "tests", "benchmarks"
        ),
    )
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"{src}{spec}",
        ],
        check=True,
    )
    site = next((venv / "lib").glob("python3*/site-packages"))
    sizes = {p.name: du(p) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")}
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    return {"bytes": du(site), "top": [[name, size] for name, size in top]}


def main() -> None:
    results = {}
    for name, spec in (("core", ""), ("train", "[train]")):
        with tempfile.TemporaryDirectory(prefix=f"edgekit-{name}-") as tmp:
            results[name] = install(spec, Path(tmp))
        print(f"  {name}: {results[name]['bytes'] / 2**20:.0f} MB", flush=True)
    rows = [
        [
            name,
            f"{r['bytes'] / 2**20:.0f} MB",
            ", ".join(f"{n} {s / 2**20:.0f}" for n, s in r["top"][:4]),
        ]
        for name, r in results.items()
    ]
    print(table(["install", "site-packages", "largest (MB)"], rows))
    ratio = results["train"]["bytes"] / results["core"]["bytes"]
    print(f"train / core = {ratio:.1f}x")
    write_result("install_footprint", {**results, "ratio": ratio})


if __name__ == "__main__":
    main()
