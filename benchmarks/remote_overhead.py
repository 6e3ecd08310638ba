"""Remote bench over loopback SSH vs local bench of the same artifact: the fixed overhead.

Starts its own sshd on 127.0.0.1 (generated host and user keys, as the test suite does; needs
/usr/sbin/sshd), exports the digits MLP (int8 TFLite) in a subprocess, then times ROUNDS
interleaved pairs of wall-clock runs, each a fresh process:

* local:  ``edgekit bench model.int8.tflite --json FILE``
* remote: the same with ``--device ssh://USER@127.0.0.1:PORT`` (the device's Python is this
  one, or ``--device-python``), which adds the SSH handshake, the Python check, the copy,
  the remote start and the cleanup.

The overhead is the median of the per-round differences. Target: <= 2 s per device run.

    python benchmarks/remote_overhead.py [--rounds 7] [--device-python PATH]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import spread, table, write_result

SSHD = Path("/usr/sbin/sshd")
FLAGS = ["--warmup", "10", "--runs", "100", "--min-time", "0.5"]


def start_sshd(work: Path) -> tuple[subprocess.Popen, int, list[str]]:
    """sshd on a free loopback port; returns it, the port and the client's --ssh-option flags."""
    for name in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True
        )
    (work / "authorized_keys").write_text((work / "user_key.pub").read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = work / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\n"
        f"PidFile {work / 'sshd.pid'}\nAuthorizedKeysFile {work / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    known = work / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {(work / 'host_key.pub').read_text()}")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    options = {
        "IdentityFile": work / "user_key",
        "IdentitiesOnly": "yes",
        "UserKnownHostsFile": known,
        "GlobalKnownHostsFile": "/dev/null",
    }
    flags = [arg for k, v in options.items() for arg in ("--ssh-option", f"{k}={v}")]
    return proc, port, flags


def timed(argv: list[str], out: Path) -> tuple[float, float]:
    """Wall seconds of one bench process, and the p50 (ms) it reported."""
    start = time.perf_counter()
    subprocess.run([*argv, "--json", str(out)], check=True, capture_output=True)
    wall = time.perf_counter() - start
    return wall, json.loads(out.read_text())["results"][0]["latency_ms"]["p50"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device-python", default=sys.executable)
    args = parser.parse_args()
    if not SSHD.exists():
        raise SystemExit("needs /usr/sbin/sshd (apt-get install openssh-server)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        edgekit = [sys.executable, "-m", "edgekit"]
        subprocess.run([*edgekit, "train", "--epochs", "5", "--out", str(work / "run")],
                       check=True, capture_output=True, cwd=work)  # fmt: skip
        subprocess.run([*edgekit, "export", str(work / "run"), "--quantize", "int8"],
                       check=True, capture_output=True, cwd=work)  # fmt: skip
        model = work / "run" / "export" / "model.int8.tflite"
        (work / "ssh").mkdir()
        sshd, port, ssh_flags = start_sshd(work / "ssh")
        url = f"ssh://{getpass.getuser()}@127.0.0.1:{port}"
        local = [*edgekit, "bench", str(model), *FLAGS]
        remote = [*local, "--device", url, "--remote-python", args.device_python, *ssh_flags]
        try:
            timed(remote, work / "warm.json")  # first contact: page cache, .pyc files
            walls = {"local": [], "remote": []}
            p50 = {"local": [], "remote": []}
            for r in range(args.rounds):
                order = ("local", "remote") if r % 2 == 0 else ("remote", "local")
                for kind in order:
                    wall, p = timed(local if kind == "local" else remote, work / f"{kind}.json")
                    walls[kind].append(wall)
                    p50[kind].append(p)
        finally:
            sshd.terminate()
            sshd.wait(timeout=10)
    overhead = [r - loc for r, loc in zip(walls["remote"], walls["local"], strict=True)]
    rows = [
        ["local", f"{statistics.median(walls['local']):.2f}", "-",
         f"{statistics.median(p50['local']) * 1000:.2f}"],
        ["remote (loopback ssh)", f"{statistics.median(walls['remote']):.2f}",
         f"{statistics.median(overhead):.2f}", f"{statistics.median(p50['remote']) * 1000:.2f}"],
    ]  # fmt: skip
    print(table(["bench", "wall s (median)", "overhead s", "p50 us"], rows))
    target = statistics.median(overhead) <= 2.0
    print(f"\nfixed overhead per device run: {statistics.median(overhead):.2f} s "
          f"(target <= 2 s: {'met' if target else 'NOT met'})")  # fmt: skip
    path = write_result(
        "remote_overhead",
        {
            "rounds": args.rounds,
            "flags": FLAGS,
            "artifact": "digits MLP, model.int8.tflite",
            "device_python": "this Python" if args.device_python == sys.executable else "given",
            "wall_s": {k: spread(v) for k, v in walls.items()},
            "overhead_s": spread(overhead),
            "p50_ms": {k: spread(v) for k, v in p50.items()},
            "target_overhead_s": 2.0,
            "target_met": target,
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
