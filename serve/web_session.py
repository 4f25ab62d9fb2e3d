"""One browser visitor's app: the command textual-serve runs for each websocket.

``python -m serve.web_session --folder F [--db PATH] [--read-only]``: with no ``--db``, it
copies the demo template of folder F to a private ``visitor-<pid>.db``, runs the app on
it, and removes the copy when the app ends (the visitor closed the tab, or the server
stopped it). A copy whose process was killed outright is removed by the server, which
knows the copy by the process id in its name.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path

#: Set by serve/web.py (kept in step with its CONTROL_ENV; this module stays light).
CONTROL_ENV = "SMART_SUGGEST_CONTROL_FIFO"


def copy_path(folder: Path, pid: int) -> Path:
    return folder / f"visitor-{pid}.db"


def _control_fd() -> int | None:
    """The server's notices for this session (idle warning, quit) come through a FIFO.

    Opened for reading and writing: a FIFO opened only for reading reports end-of-file
    whenever no writer holds it, and the server opens its end only when it has something
    to say."""
    path = os.environ.get(CONTROL_ENV)
    if not path:
        return None
    try:
        return os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serve.web_session")
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--read-only", action="store_true")
    args = parser.parse_args(argv)

    # SIGTERM / SIGHUP end the app through SystemExit, so the copy below is removed.
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    copy: Path | None = None
    try:
        if args.db is not None:
            db = args.db
        else:
            copy = copy_path(args.folder, os.getpid())
            shutil.copyfile(args.folder / "template.db", copy)
            db = copy
        from smart_suggest.store import open_store
        from tui.app import SmartSuggestApp
        from tui.served import Served

        store = open_store(db, read_only=args.read_only)
        try:
            served = Served(via="web", demo=copy is not None, control_fd=_control_fd())
            SmartSuggestApp(store=store, served=served).run()
        finally:
            store.close()
    finally:
        if copy is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
