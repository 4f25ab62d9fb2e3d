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


def copy_path(folder: Path, pid: int) -> Path:
    return folder / f"visitor-{pid}.db"


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
            served = Served(via="web", demo=copy is not None)
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
