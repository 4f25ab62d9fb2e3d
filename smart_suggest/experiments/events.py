"""Experiment events: impressions, clicks, purchases and engagement time, tagged by variant.

Every event carries the experiment, the user's *stored* variant, the user, the item, the type,
a value (engagement seconds; empty for the other types) and a timestamp. An event is refused
(``InputError``, nothing written) when the experiment is stopped, the user was never assigned
to it, the item does not exist, or an engagement value is missing, negative or not finite.

``log_events_csv`` is the bulk path: a CSV with the columns ``user,item,type[,value][,ts]``
(a header row is required, columns in any order; ``user`` is an id or a username, ``ts``
Unix seconds or ISO-8601, default now). Every row is checked; the first bad row is
reported by its line number and then *nothing* is written, because the whole file is
loaded in one transaction (readers never see half of it).
"""

from __future__ import annotations

import csv
import gc
import json
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, cast

from smart_suggest import clock
from smart_suggest.errors import InputError, NotFoundError
from smart_suggest.experiments.assignment import assign_variant
from smart_suggest.experiments.lifecycle import Experiment, get_experiment, require_active
from smart_suggest.store import ADD_EVENT_COUNTS_SQL, Store
from smart_suggest.text import is_decimal

Progress = Callable[[str, int, int], None]

EVENT_TYPES: tuple[str, ...] = ("impression", "click", "purchase", "engagement")
#: Follow-up events a user's action produces (impressions normally come from ``serve``).
ACTION_TYPES: tuple[str, ...] = ("click", "purchase", "engagement")

INSERT_EVENT_SQL = (
    "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
#: Rows per ``executemany`` call of the bulk paths (bounded memory, steady progress).
CHUNK = 100_000

CSV_COLUMNS: tuple[str, ...] = ("user", "item", "type", "value", "ts")
_REQUIRED = ("user", "item", "type")


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    experiment_id: int
    variant: str
    user_id: int
    item_id: int | None
    type: str
    value: float | None
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ts": clock.iso(self.ts)}


# -- validation -----------------------------------------------------------------------------
def check_type(event_type: str) -> str:
    name = str(event_type).strip().lower()
    if name not in EVENT_TYPES:
        raise InputError(f"unknown event type {event_type!r}: use one of {', '.join(EVENT_TYPES)}")
    return name


def check_value(event_type: str, value: float | None) -> float | None:
    """Engagement needs seconds (finite, >= 0); the other types take no value."""
    if event_type == "engagement":
        if value is None:
            raise InputError("an engagement event needs a value: the engagement time in seconds")
        if not math.isfinite(value):
            raise InputError(f"engagement time must be a finite number of seconds (got {value})")
        if value < 0:
            raise InputError(f"engagement time must not be negative (got {value})")
        return float(value)
    if value is not None:
        raise InputError(f"a {event_type} event takes no value (only engagement has seconds)")
    return None


def check_ts(ts: float | None) -> float | None:
    if ts is not None and not math.isfinite(ts):
        raise InputError("timestamp must be a finite number")
    return ts


def not_assigned_message(exp: Experiment, user_id: int, label: str) -> str:
    """Why a user has no assignment: outside the traffic, or never served."""
    if assign_variant(exp.id, user_id, exp.traffic_fraction, exp.treatment_share) is None:
        return (
            f"user {label} is not in experiment {exp.name!r}: outside its "
            f"{exp.traffic_fraction:.0%} traffic"
        )
    return f"user {label} was never assigned to experiment {exp.name!r} (serve them first)"


def stored_variant(store: Store, experiment_id: int, user_id: int) -> str | None:
    row = store.conn.execute(
        "SELECT variant FROM assignments WHERE experiment_id = ? AND user_id = ?",
        (experiment_id, user_id),
    ).fetchone()
    return None if row is None else str(row[0])


def insert_events(store: Store, rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert already-validated event rows (the one write path of every logger).

    Rows are ``(experiment_id, variant, user_id, item_id, type, value, ts)``. Must run
    inside ``store.write()``.
    """
    if not store.conn.in_transaction:
        raise RuntimeError("insert_events must run inside store.write()")
    cur = store.conn.executemany(INSERT_EVENT_SQL, rows)
    return max(cur.rowcount, 0)


@contextmanager
def bulk_write(store: Store, *, checked: bool = True) -> Iterator[sqlite3.Connection]:
    """One write transaction for many validated events (the bulk log and the simulation).

    Every reference is checked by the caller inside this transaction (nobody can delete a
    user or an item meanwhile: the write lock is held), so the per-row foreign-key lookups
    are switched off; the per-row triggers of ``events`` (the revision and the hourly
    counts) are replaced by one bump at the end and by ``add_counts`` per chunk, which the
    caller must call (``insert_bulk`` does); ``Store.bulk_load`` without dropping indexes:
    the table is usually far bigger than the load. A crash rolls all of it back, triggers
    included.
    ``checked=False`` also skips the CHECK constraints, for rows whose variant and type the
    caller has validated: SQLite evaluates each ``IN (...)`` list of ``events`` per row,
    which cost as much as the insert itself (~3 us a row, measured on 1M rows).
    """
    conn = store.conn
    nested = conn.in_transaction
    fk = int(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    checks = int(conn.execute("PRAGMA ignore_check_constraints").fetchone()[0])
    if not nested:
        conn.execute("PRAGMA foreign_keys = OFF")  # only takes effect outside a transaction
    if not checked:
        conn.execute("PRAGMA ignore_check_constraints = ON")
    try:
        with store.bulk_load(("events",), drop_indexes=False) as c:
            yield c
    finally:
        if not checked:
            conn.execute(f"PRAGMA ignore_check_constraints = {'ON' if checks else 'OFF'}")
        if not nested:
            conn.execute(f"PRAGMA foreign_keys = {'ON' if fk else 'OFF'}")


def insert_bulk(store: Store, rows: list[tuple[Any, ...]]) -> int:
    """``insert_events`` for a large chunk inside ``bulk_write``, with its hourly counts.

    Sorted by user first, so the inserts into the per-user index land next to each other
    instead of at random (measured on 1M rows into 1M: ~1.5 s saved for 0.25 s of sort).
    """
    rows.sort(key=itemgetter(2))
    add_counts(store, tally_counts(rows))
    return insert_events(store, rows)


Tally = dict[tuple[int, str, str, int], list[Any]]


def tally_counts(rows: Iterable[tuple[Any, ...]], into: Tally | None = None) -> Tally:
    """Event rows counted per (experiment, variant, type, UTC hour): [n, first ts, last ts].

    What the per-row trigger of ``event_counts`` would add, for the bulk paths that set it
    aside (one upsert per hour instead of one per event). The hour is
    ``math.floor(ts / 3600.0)``, the integer ``store.hour_sql`` computes in SQL.
    """
    acc: Tally = {} if into is None else into
    get = acc.get
    floor = math.floor
    for exp_id, variant, _user, _item, kind, _value, ts in rows:
        key = (exp_id, variant, kind, floor(ts / 3600.0))
        entry = get(key)
        if entry is None:
            acc[key] = [1, ts, ts]
        else:
            entry[0] += 1
            if ts < entry[1]:
                entry[1] = ts
            elif ts > entry[2]:
                entry[2] = ts
    return acc


def add_counts(store: Store, tally: Tally) -> None:
    """Add a tally to ``event_counts`` (inside the transaction that inserts its events)."""
    if not store.conn.in_transaction:
        raise RuntimeError("add_counts must run inside store.write()")
    store.conn.executemany(
        ADD_EVENT_COUNTS_SQL, [(*key, n, lo, hi) for key, (n, lo, hi) in tally.items()]
    )


# -- one event --------------------------------------------------------------------------------
def log_event(
    store: Store,
    exp_ref: int | str | Experiment,
    user_ref: int | str,
    item_ref: int | str,
    event_type: str,
    value: float | None = None,
    *,
    ts: float | None = None,
) -> Event:
    """Log one follow-up event with the user's stored variant; refuse anything invalid."""
    from smart_suggest.tracking import get_item, get_user

    event_type = check_type(event_type)
    value = check_value(event_type, value)
    check_ts(ts)
    with store.write() as conn:
        exp = require_active(get_experiment(store, exp_ref))
        user = get_user(store, user_ref)
        item = get_item(store, item_ref)
        variant = stored_variant(store, exp.id, user.id)
        if variant is None:
            raise InputError(not_assigned_message(exp, user.id, repr(user.username)))
        when = clock.now() if ts is None else float(ts)
        cur = conn.execute(
            INSERT_EVENT_SQL, (exp.id, variant, user.id, item.id, event_type, value, when)
        )
        new_id = int(cur.lastrowid or 0)
    return Event(new_id, exp.id, variant, user.id, item.id, event_type, value, when)


# -- many events from CSV ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BulkReport:
    experiment: Experiment
    rows: int
    by_type: dict[str, int]
    users: int
    first_ts: float | None
    last_ts: float | None
    seconds: float
    by_variant: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.name,
            "experiment_id": self.experiment.id,
            "rows": self.rows,
            "by_type": self.by_type,
            "by_variant": self.by_variant,
            "users": self.users,
            "first_ts": None if self.first_ts is None else clock.iso(self.first_ts),
            "last_ts": None if self.last_ts is None else clock.iso(self.last_ts),
            "seconds": self.seconds,
            "events_per_second": self.rate,
        }


class _RowError(InputError):
    pass


def _bad(line: int, message: str) -> _RowError:
    return _RowError(f"line {line}: {message}; nothing was written")


class _Resolver:
    """Users (to their stored variant) and items, each looked up once per distinct text."""

    def __init__(self, store: Store, exp: Experiment) -> None:
        self.store = store
        self.exp = exp
        self.users: dict[str, tuple[int, str]] = {}
        self.items: dict[str, int] = {}

    def user(self, text: str, line: int) -> tuple[int, str]:
        from smart_suggest.tracking import get_user

        stripped = text.strip()
        if is_decimal(stripped):
            # An id with a stored assignment: one primary-key lookup (the assignment's
            # foreign key vouches for the user). Anything else takes the careful path.
            variant = stored_variant(self.store, self.exp.id, int(stripped))
            if variant is not None:
                self.users[text] = (int(stripped), variant)
                return self.users[text]
        try:
            user = get_user(self.store, text)
        except NotFoundError:
            raise _bad(line, f"no user {text!r}") from None
        variant = stored_variant(self.store, self.exp.id, user.id)
        if variant is None:
            raise _bad(line, not_assigned_message(self.exp, user.id, repr(text)))
        found = (user.id, variant)
        self.users[text] = found
        return found

    def preload(self, user_texts: Iterable[str], item_texts: Iterable[str]) -> None:
        """Batch lookups for a chunk's new numeric users (with their stored variant) and
        items: two queries per chunk instead of one per distinct text. Texts not found
        here are left to ``user``/``item``, which explain what is wrong with them."""
        uids = _numeric(user_texts)
        if uids:
            found = dict(
                self.store.conn.execute(
                    "SELECT user_id, variant FROM assignments WHERE experiment_id = ? "
                    "AND user_id IN (SELECT value FROM json_each(?))",
                    (self.exp.id, json.dumps(sorted(set(uids.values())))),
                ).fetchall()
            )
            for text, uid in uids.items():
                variant = found.get(uid)
                if variant is not None:
                    self.users[text] = (uid, str(variant))
        iids = _numeric(item_texts)
        if iids:
            known = {
                r[0]
                for r in self.store.conn.execute(
                    "SELECT id FROM items WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted(set(iids.values()))),),
                )
            }
            for text, iid in iids.items():
                if iid in known:
                    self.items[text] = iid

    def item(self, text: str, line: int) -> int:
        stripped = text.strip()
        if not is_decimal(stripped):
            raise _bad(line, f"item must be a numeric id (got {text!r})")
        item_id = int(stripped)
        if not self.store.conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
            raise _bad(line, f"no item with id {item_id}")
        self.items[text] = item_id
        return item_id


def _numeric(texts: Iterable[str]) -> dict[str, int]:
    """The texts that are plain ids, as ints (the rule of ``_Resolver``: digits after strip)."""
    out: dict[str, int] = {}
    for text in texts:
        stripped = text.strip()
        if is_decimal(stripped):
            try:
                out[text] = int(stripped)
            except ValueError:  # a digit int() refuses (superscripts): the careful path
                continue
    return out


def _header(row: list[str]) -> dict[str, int]:
    names = [c.strip().lower().lstrip("\ufeff") for c in row]
    cols: dict[str, int] = {}
    for pos, name in enumerate(names):
        if name not in CSV_COLUMNS:
            raise _bad(
                1,
                f"unknown column {name!r} (the header must name the columns "
                f"{', '.join(CSV_COLUMNS)}; value and ts are optional)",
            )
        if name in cols:
            raise _bad(1, f"column {name!r} appears twice")
        cols[name] = pos
    missing = [c for c in _REQUIRED if c not in cols]
    if missing:
        raise _bad(1, f"missing column(s) {', '.join(missing)} (header: {','.join(names)})")
    return cols


def _parse_float(text: str, line: int, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _bad(line, f"{what} {text!r} is not a number") from None


def _parse_ts(text: str, line: int) -> float:
    try:
        ts = float(text)
    except ValueError:
        try:
            ts = clock.parse_time(text)
        except ValueError:
            raise _bad(line, f"ts {text!r} is not Unix seconds or ISO-8601") from None
    if not math.isfinite(ts):
        raise _bad(line, "ts must be a finite number")
    return ts


def _parsed_rows(
    reader: Iterable[list[str]],
    cols: dict[str, int],
    exp: Experiment,
    resolver: _Resolver,
    line: int = 1,
    now: float | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Validated event rows, in file order; raises on the first bad row with its line.

    ``line`` is the line number of the row before the first one of ``reader``. This is the
    reference path, row by row; ``_fast_chunk`` does the same for a well-formed chunk."""
    iu, ii, it = cols["user"], cols["item"], cols["type"]
    iv, its = cols.get("value"), cols.get("ts")
    width = len(cols)
    if now is None:
        now = clock.now()
    exp_id = exp.id
    users, items = resolver.users, resolver.items
    types = {t: t for t in EVENT_TYPES}
    for row in reader:
        line += 1
        if len(row) != width:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            raise _bad(line, f"expected {width} fields, found {len(row)}")
        user_s = row[iu]
        found = users.get(user_s)
        if found is None:
            found = resolver.user(user_s, line)
        item_s = row[ii]
        item_id = items.get(item_s)
        if item_id is None:
            item_id = resolver.item(item_s, line)
        type_s = row[it]
        event_type = types.get(type_s)
        if event_type is None:
            event_type = types.get(type_s.strip().lower())
            if event_type is None:
                raise _bad(line, f"unknown event type {type_s!r}: use one of {', '.join(types)}")
        value: float | None = None
        if iv is not None and row[iv].strip():
            value = _parse_float(row[iv], line, "value")
        if event_type == "engagement" or value is not None:
            try:
                value = check_value(event_type, value)
            except InputError as exc:
                raise _bad(line, str(exc)) from None
        ts = now
        if its is not None and row[its].strip():
            ts = _parse_ts(row[its], line)
        yield (exp_id, found[1], found[0], item_id, event_type, value, ts)


_TYPE_SET = frozenset(EVENT_TYPES)


def _fast_chunk(
    raw: list[list[str]], cols: dict[str, int], exp_id: int, resolver: _Resolver, now: float
) -> list[tuple[Any, ...]] | None:
    """Validate and convert a chunk column by column (C loops instead of Python per row).

    Returns None when anything is unusual (a blank or short line, an unknown or named
    user, spaces around a type, an ISO timestamp, any invalid value): the caller then runs
    ``_parsed_rows`` on the chunk, which converts it or reports the first bad line exactly.
    """
    width = len(cols)
    if not raw or set(map(len, raw)) != {width}:
        return None
    columns = list(zip(*raw, strict=True))
    ucol, icol, tcol = columns[cols["user"]], columns[cols["item"]], columns[cols["type"]]
    if not _TYPE_SET.issuperset(tcol):
        return None
    users, items = resolver.users, resolver.items
    new_users = set(ucol).difference(users)
    new_items = set(icol).difference(items)
    if new_users or new_items:
        resolver.preload(new_users, new_items)
        for text in new_users.difference(users):  # usernames, unassigned users
            try:
                resolver.user(text, 0)
            except InputError:
                return None
        if not new_items.issubset(items):
            return None
    found = list(map(users.__getitem__, ucol))
    item_ids = list(map(items.__getitem__, icol))
    uids, variants = zip(*found, strict=True)
    n = len(raw)
    iv, its = cols.get("value"), cols.get("ts")
    try:
        if iv is None:
            values: list[float | None] = [None] * n
            if "engagement" in tcol:
                return None
        else:
            values = [float(v) if v else None for v in columns[iv]]
            # Engagement rows, and only they, carry a finite value >= 0.
            eng = [v for t, v in zip(tcol, values, strict=True) if t == "engagement"]
            if len(eng) != n - values.count(None) or None in eng:
                return None
            seconds = cast(list[float], eng)
            if seconds and (not math.isfinite(math.fsum(seconds)) or min(seconds) < 0):
                return None
        if its is None:
            ts = [now] * n
        else:
            ts = [float(t) if t else now for t in columns[its]]
            if not all(map(math.isfinite, ts)):
                return None
    except (ValueError, OverflowError):
        return None
    return list(zip([exp_id] * n, variants, uids, item_ids, tcol, values, ts, strict=True))


def _read_chunk(reader: Iterator[list[str]], size: int) -> tuple[list[list[str]], Exception | None]:
    """Up to ``size`` rows, and the decoding or CSV error that stopped the reading early
    (raised by the caller after the rows before it were checked, as row by row would)."""
    raw: list[list[str]] = []
    try:
        raw.extend(islice(reader, size))
    except (UnicodeDecodeError, csv.Error) as exc:
        return raw, exc
    return raw, None


def _open_text(source: str | Path | IO[str]) -> tuple[IO[str], bool]:
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            return open(path, newline="", encoding="utf-8-sig"), True
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{path}: is a directory, not a CSV file") from None
        except PermissionError:
            raise InputError(f"{path}: permission denied") from None
    return source, False


def log_events_csv(
    store: Store,
    exp_ref: int | str | Experiment,
    source: str | Path | IO[str],
    *,
    progress: Progress | None = None,
) -> BulkReport:
    """Load a CSV of events into an experiment, all or nothing, in one transaction."""
    started = time.perf_counter()
    fh, owned = _open_text(source)
    try:
        exp = require_active(get_experiment(store, exp_ref))
        reader = csv.reader(fh)
        try:
            first = next(reader)
        except StopIteration:
            raise InputError("the CSV file is empty (expected a header: user,item,type)") from None
        except UnicodeDecodeError:
            raise _bad(1, "the file is not UTF-8 text") from None
        cols = _header(first)
        expected = _count_lines(source) - 1 if progress and owned else 0
        resolver = _Resolver(store, exp)
        counts = dict.fromkeys(EVENT_TYPES, 0)
        by_variant = {"A": 0, "B": 0}
        first_ts: float | None = None
        last_ts: float | None = None
        total = 0
        # The cyclic GC would rescan the millions of parsed strings and tuples (which hold
        # no cycles) again and again: ~40% of the parsing time on 1M rows.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with bulk_write(store, checked=False):
                # Re-read inside the lock: another process may have stopped the experiment.
                exp = require_active(get_experiment(store, exp.id))
                now = clock.now()
                line = 1  # line number of the last row read (the header is line 1)
                while True:
                    raw, error = _read_chunk(reader, CHUNK)
                    chunk = _fast_chunk(raw, cols, exp.id, resolver, now)
                    if chunk is None:
                        chunk = list(_parsed_rows(raw, cols, exp, resolver, line, now))
                    line += len(raw)
                    if chunk:
                        total += _flush(store, chunk, counts, by_variant)
                        lo, hi = _ts_range(chunk)
                        first_ts = lo if first_ts is None else min(first_ts, lo)
                        last_ts = hi if last_ts is None else max(last_ts, hi)
                        if progress:
                            progress("events", total, max(expected, total))
                    if isinstance(error, UnicodeDecodeError):
                        raise InputError(
                            f"the file is not UTF-8 text ({error.reason}); nothing was written"
                        ) from None
                    if error is not None:
                        raise InputError(
                            f"line {reader.line_num}: {error}; nothing was written"
                        ) from None
                    if len(raw) < CHUNK:
                        break
                if progress:
                    progress("events", total, total)
        finally:
            if gc_was_enabled:
                gc.enable()
    finally:
        if owned:
            fh.close()
    return BulkReport(
        experiment=exp,
        rows=total,
        by_type=counts,
        users=len(resolver.users),
        first_ts=first_ts,
        last_ts=last_ts,
        seconds=time.perf_counter() - started,
        by_variant=by_variant,
    )


def _count_lines(source: str | Path | IO[str]) -> int:
    """Lines in a file (for the progress bar's total), read in binary blocks."""
    n = 0
    with open(Path(str(source)), "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
    return n


def _ts_range(chunk: list[tuple[Any, ...]]) -> tuple[float, float]:
    ts = [r[6] for r in chunk]
    return min(ts), max(ts)


def _flush(
    store: Store, chunk: list[tuple[Any, ...]], counts: dict[str, int], by_variant: dict[str, int]
) -> int:
    for kind, n in Counter(map(itemgetter(4), chunk)).items():
        counts[kind] += n
    for variant, n in Counter(map(itemgetter(1), chunk)).items():
        by_variant[variant] += n
    # By user id (an int key: a quarter of the cost of insert_bulk's (variant, user) tuple
    # key, and the variant follows from the user): the (experiment, variant, user, type)
    # index then gets its inserts in order instead of at random (measured on 1M rows into
    # 1M: its upkeep is ~3 of the ~6.5 s insert; the sort saves ~1.5 s and costs 0.25 s).
    # The time index suffers little: a chunk's timestamps span a narrow range.
    chunk.sort(key=itemgetter(2))
    add_counts(store, tally_counts(chunk))
    insert_events(store, chunk)
    return len(chunk)
