"""Start a throwaway PostgreSQL server on 127.0.0.1 from Debian's binaries, for tests and benchmarks.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user.
Durability is switched off: these databases live for one test run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found; run `make setup` (apt-get install postgresql)")
    return candidates[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str | Path]) -> None:
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_user, *map(str, args)], check=True, capture_output=True)


@contextmanager
def postgres_server(database: str = "nudge") -> Iterator[str]:
    """Yield a ``postgresql+psycopg://`` URL to a fresh database; stop and delete the server after."""
    bin_dir, port = _pg_bin(), _free_port()
    root = Path(tempfile.mkdtemp(prefix="nudge-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        root.chmod(0o755)
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
    durability_off = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} {durability_off} -c max_connections=200"
    try:
        _run([bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        _run([bin_dir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-t", "60", "-o", options, "start"])
        _run([bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        if (data / "postmaster.pid").exists():
            _run([bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)
