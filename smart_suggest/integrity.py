"""Damaged databases: refuse to write into one, and say how to get the data out.

With the first write of an open ``Store`` (``Store.write``: in a thread beside the write,
waited for before COMMIT), the file gets SQLite's ``PRAGMA quick_check``, which reads every
page (but skips the index-to-table cross checks of ``integrity_check``). It costs about
1.5-3 s on a 100 MB database (1M interactions and 1M events; ``benchmarks/stress.py --only
limits`` measures it), too much for every ``log``, so a file that passed is remembered by
(device, inode, size, modification time) in the user's cache folder, and again as it is
left when the passing Store closes: what changed it since was smart-suggest's own writes.
Any other change to the file (a disk error, a tool, a copy over it) changes that identity
and brings the check back. Reading commands never pay for it.

A damaged file is refused for writes with one line saying how to recover: ``recover``
copies every row that can still be read into a new database (``smart-suggest recover``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smart_suggest.errors import DatabaseError, InputError

#: Files remembered as checked (the most recent ones; older entries are dropped).
MAX_REMEMBERED = 64
_CACHE_NAME = "checked-databases.json"


def recovery_hint(path: Path | str) -> str:
    return (
        "restore a backup, or copy what can still be read into a new file: "
        f"smart-suggest recover NEW.db --db {path}"
    )


def detail(problem: str) -> str:
    """A check's report as one short line (quick_check's first one starts with a
    "*** in database main ***" line)."""
    lines = [x.strip() for x in problem.splitlines() if x.strip() and not x.startswith("***")]
    text = "; ".join(lines) or problem.strip()
    return text if len(text) <= 100 else text[:97] + "..."


def damaged_message(path: Path | str, problem: str) -> str:
    return f"{path}: the database is damaged ({detail(problem)}); nothing was written: " + (
        recovery_hint(path)
    )


def _cache_path() -> Path:
    import platformdirs

    return platformdirs.user_cache_path("smart-suggest") / _CACHE_NAME


def _identity(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _load() -> dict[str, list[int]]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(path: Path) -> None:
    """Note the file, as it is now, as checked (best effort: a cache, never an error)."""
    key, ident = str(path.resolve()), _identity(path)
    if ident is None:
        return
    cache = _load()
    cache.pop(key, None)
    cache[key] = ident
    while len(cache) > MAX_REMEMBERED:
        cache.pop(next(iter(cache)))
    target = _cache_path()
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".checked-", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(cache, fh)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def was_checked(path: Path) -> bool:
    ident = _identity(path)
    return ident is not None and _load().get(str(path.resolve())) == ident


def quick_check(conn: sqlite3.Connection) -> str | None:
    """The first problem ``PRAGMA quick_check`` finds, or None when the file is sound."""
    try:
        first = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    result = "ok" if first is None else str(first[0])
    return None if result == "ok" else result


class Check:
    """``quick_check`` of a file in a thread, on its own read-only connection.

    ``Store.write`` starts one before its first write transaction and waits for it just
    before COMMIT: the check reads the snapshot before the write (WAL readers do not wait
    for the writer), and SQLite releases the GIL while it reads, so on a large load the
    check runs beside the work (a bulk log's reader process parses the file meanwhile)
    instead of before it. A damaged file fails the write: rolled back, nothing written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None
        self._thread = threading.Thread(target=self._run, name="quick_check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error as exc:
            self.problem = str(exc)
            return
        try:
            self.problem = quick_check(conn)
        finally:
            conn.close()

    def result(self) -> None:
        """Wait for the check; raise ``DatabaseError`` when the file is damaged."""
        self._thread.join()
        if self.problem is not None:
            raise DatabaseError(damaged_message(self.path, self.problem))


def start_check(path: Path) -> Check | None:
    """A running check of ``path``, or None when the file, as it is, passed one already."""
    return None if was_checked(path) else Check(path)


# -- recovery -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RecoveryReport:
    source: str
    target: str
    tables: dict[str, int]
    lost: dict[str, int] = field(default_factory=dict)  # rows that could not be read or kept

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recover(source: Path, target: Path) -> RecoveryReport:
    """Copy every row of ``source`` that can still be read into the new database
    ``target`` (which must not exist), in one transaction; rows whose user, item or
    experiment was lost go too (counted in ``lost``).

    Rows are read in key order: when a page cannot be read, the reading probes ahead (1,
    2, 4, ... keys) until it reads again, then bisects back to the first key it can read,
    so one damaged page costs only its own rows.
    """
    from smart_suggest.store import TABLES, open_store

    source, target = Path(source), Path(target)
    if target.exists():
        raise InputError(f"{target}: already exists (recover into a new file)")
    if not source.is_file():
        raise InputError(f"{source}: no such database file")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        tables: dict[str, int] = {}
        lost: dict[str, int] = {}
        with open_store(target) as out:
            try:
                with out.bulk_load(TABLES, trusted=True) as conn:
                    for table in TABLES:
                        cols = [r[1] for r in out.conn.execute(f"PRAGMA table_info({table})")]
                        have = {r[1] for r in src.execute(f"PRAGMA table_info({table})")}
                        cols = [c for c in cols if c in have]
                        if not cols:  # a table newer than the damaged file's schema
                            continue
                        sql = (
                            f"INSERT OR IGNORE INTO {table}({', '.join(cols)}) "
                            f"VALUES ({', '.join('?' * len(cols))})"
                        )
                        for batch in _salvage(src, table, cols):
                            conn.executemany(sql, batch)
                    lost.update(_drop_orphans(conn))
                    # What landed (a damaged page can yield a row twice: kept once).
                    for table in TABLES:
                        tables[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            except BaseException:
                out.close()
                target.unlink(missing_ok=True)
                Path(f"{target}-wal").unlink(missing_ok=True)
                Path(f"{target}-shm").unlink(missing_ok=True)
                raise
    finally:
        src.close()
    return RecoveryReport(str(source), str(target), tables, {k: v for k, v in lost.items() if v})


def _salvage(src: sqlite3.Connection, table: str, cols: list[str]) -> Any:
    """Batches of readable rows of ``table``, in key order, skipping damaged pages."""
    key = "rowid" if table != "assignments" else "experiment_id * 4294967296 + user_id"
    select = ", ".join(cols)
    if table == "assignments":
        # WITHOUT ROWID: read it whole or experiment by experiment.
        yield from _salvage_assignments(src, select)
        return

    def readable(after: int) -> bool:
        # A seek to the first key past ``after`` fails while it lands in a damaged page.
        try:
            src.execute(
                f"SELECT {key} FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT 1", (after,)
            ).fetchone()
        except sqlite3.DatabaseError:
            return False
        return True

    last = -(1 << 63)
    while True:
        batch: list[tuple[Any, ...]] = []
        try:
            for row in src.execute(
                f"SELECT {key}, {select} FROM {table} WHERE {key} > ? ORDER BY {key}", (last,)
            ):
                batch.append(row[1:])
                last = row[0]
                if len(batch) >= 5000:
                    yield batch
                    batch = []
        except sqlite3.DatabaseError:
            if batch:
                yield batch
            bad, step = max(last, 0), 1
            while True:  # probe ahead past the damaged page
                good = bad + step
                if good > (1 << 62):
                    return
                if readable(good):
                    break
                bad, step = good, step * 2
            while good - bad > 1:  # and back to the first key that reads again
                mid = (bad + good) // 2
                if readable(mid):
                    good = mid
                else:
                    bad = mid
            last = good
            continue
        if batch:
            yield batch
        return


def _salvage_assignments(src: sqlite3.Connection, select: str) -> Any:
    try:
        yield src.execute(f"SELECT {select} FROM assignments").fetchall()
        return
    except sqlite3.DatabaseError:
        pass
    for (exp_id,) in src.execute("SELECT id FROM experiments").fetchall():
        try:
            yield src.execute(
                f"SELECT {select} FROM assignments WHERE experiment_id = ?", (exp_id,)
            ).fetchall()
        except sqlite3.DatabaseError:
            continue


#: Rows whose parent row was lost (foreign keys are off while loading), and events whose
#: user's assignment was lost (an event carries its user's stored variant).
_ORPHANS = {
    "interactions": "user_id NOT IN (SELECT id FROM users) "
    "OR item_id NOT IN (SELECT id FROM items)",
    "assignments": "experiment_id NOT IN (SELECT id FROM experiments) "
    "OR user_id NOT IN (SELECT id FROM users)",
    "events": "NOT EXISTS (SELECT 1 FROM assignments a "
    "WHERE a.experiment_id = events.experiment_id "
    "AND a.user_id = events.user_id AND a.variant = events.variant)",
    "sequential_looks": "experiment_id NOT IN (SELECT id FROM experiments)",
    "user_attributes": "user_id NOT IN (SELECT id FROM users)",
}


def _drop_orphans(conn: sqlite3.Connection) -> dict[str, int]:
    lost = {}
    for table, where in _ORPHANS.items():
        lost[table] = conn.execute(f"DELETE FROM {table} WHERE {where}").rowcount
    # An event of a lost item stays, as when an item is deleted.
    conn.execute("UPDATE events SET item_id = NULL WHERE item_id NOT IN (SELECT id FROM items)")
    return {t: n for t, n in lost.items() if n > 0}
