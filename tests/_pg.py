"""A throw-away PostgreSQL server on 127.0.0.1 for tests and benchmarks.

It runs from the installed binaries (Debian's postgresql package; ``.ci/run`` installs it)
in a new temporary folder, on a free port, with trust authentication for the user
``smart``, and is stopped and removed on exit. PostgreSQL refuses to run as root, so as
root it runs as the ``postgres`` user, in a folder that user owns (pytest's tmp_path is
private to root, hence a folder of its own under the system's temp folder).
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


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed, or could not start here (the message says why)."""


def pg_bin() -> Path | None:
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists():
            return cand
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_postgres() -> Iterator[str]:
    """Start a server; yield its URL (``postgresql://smart@127.0.0.1:PORT/postgres``)."""
    pg = pg_bin()
    if pg is None:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        )
    base = Path(tempfile.mkdtemp(prefix="smart-suggest-pg-"))
    data = base / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    port = free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*run_as, *args], capture_output=True, text=True)
        if done.returncode:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed: {detail[-1] if detail else ''}"
            )

    try:
        run(str(pg / "initdb"), "-D", str(data), "-U", "smart", "--auth=trust", "-E", "UTF8")
        run(
            str(pg / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-o",
            f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off",
            "-w",
            "start",
        )
        yield f"postgresql://smart@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
