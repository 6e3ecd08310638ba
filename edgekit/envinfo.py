"""Facts about this machine for bug reports (``edgekit env``) and bench JSON files."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

PACKAGES = (
    "edgekit",
    "numpy",
    "click",
    "onnxruntime",
    "onnxruntime-gpu",
    "ai-edge-litert",
    "tensorflow",
    "keras",
    "tf2onnx",
    "onnx",
    "scikit-learn",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages edgekit uses, without importing them."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_mb() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def nvidia_gpus() -> list[str]:
    """GPU names from ``nvidia-smi -L``; empty when there is none (no CUDA import needed)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        proc = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in proc.stdout.splitlines() if line.startswith("GPU")]


def onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def environment() -> dict:
    """The ``environment`` block of a bench JSON file."""
    uname = platform.uname()
    return {
        "host": uname.node,
        "system": f"{uname.system} {uname.release}",
        "machine": uname.machine,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_mb": memory_mb(),
        "python": sys.version.split()[0],
        "versions": package_versions(),
    }
