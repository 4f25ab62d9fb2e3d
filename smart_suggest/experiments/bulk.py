"""Bulk event logging: a CSV of events loaded into an experiment, all or nothing.

The CSV has the columns ``user,item,type[,value][,ts][,team]`` (a header row is required,
columns in any order; ``user`` is an id or a username, ``ts`` Unix seconds or ISO-8601,
default now; ``team`` A, B or both, for interleaving experiments: ``_apply_teams``).
Every row is checked; the first bad row is reported by its line number and then *nothing*
is written, because the whole file is loaded in one transaction (readers never see half
of it).

Streams (standard input, a FIFO, a process substitution) are all or nothing too: they are
first copied to a temporary file, without any lock, and loaded from there once they end,
so the write lock is held only while a regular file is read and never while waiting on a
stream (other writers would queue behind someone's slow pipe).

Where the time goes, per million events appended to a million (2-core machine): SQLite's
insert ~2 s (``events`` has no index; its two summaries get one pre-summed row per hour and
per user for the whole load), reading and checking the CSV ~2.5 s. So that the two overlap
instead of adding up, a file of ``PARALLEL_MIN_BYTES`` or more is read by a second process
(``bulk_reader``): it parses and checks each chunk, resolves its users and items in one
read snapshot of the database (this process holds the write lock meanwhile, so the
snapshot is what it sees), sums it per hour and per user, and pickles its columns down a
pipe. This process reads the first rows itself while the reader starts, then only
inserts; if the reader cannot start or runs other code than this process, this process
reads it all. A chunk with anything unusual (a username, a blank line, an ISO time, a
bad value) comes raw and is redone here row by row by the reference path
``_parsed_rows``, which names the first bad line exactly.
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from itertools import islice, repeat
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

from smart_suggest import clock, validate
from smart_suggest.csvfiles import MAX_LINE, open_csv
from smart_suggest.errors import InputError, NotFoundError
from smart_suggest.experiments.events import (
    EVENT_TYPES,
    FOLLOWS_IMPRESSION,
    Tally,
    UserTally,
    add_counts,
    add_served,
    add_served_columns,
    add_user_rows,
    bulk_write,
    check_value,
    insert_events,
    not_assigned_message,
    served_pairs,
    set_apart_unserved,
    stored_variant,
    tally_counts,
)
from smart_suggest.experiments.lifecycle import Experiment, get_experiment, require_active
from smart_suggest.store import Store, open_store
from smart_suggest.text import is_decimal

Progress = Callable[[str, int, int], None]

#: ``team`` (A, B or both) goes with interleaving experiments only (``_apply_teams``).
CSV_COLUMNS: tuple[str, ...] = ("user", "item", "type", "value", "ts", "team")
_REQUIRED = ("user", "item", "type")

#: Rows per chunk: bounded memory, steady progress, and a cheap pipe message.
CSV_CHUNK = 100_000
#: Files smaller than this (~200,000 rows) are read in this process: starting the reader
#: process (~0.3 s) would cost more than the overlap saves.
PARALLEL_MIN_BYTES = 8 << 20

#: A checked chunk by column: variants, user ids, item ids, types, values, timestamps.
Columns = tuple[
    Sequence[str],
    Sequence[int],
    Sequence[int],
    Sequence[str],
    Sequence[float | None],
    Sequence[float],
]

#: A chunk summed per user (numpy arrays, one entry per user): ids, variant codes (0 A,
#: 1 B), impressions, clicks, purchases, engagement n, sum, sum of squares, first purchase
#: time (inf: none).
UserSums = tuple[Any, ...]

#: Fewer bytes than a row of the CSV takes ("1,1,click\n" is 10): a file's size over this
#: bounds its rows from above.
BYTES_PER_ROW = 10

#: One chunk's columns after the syntax checks: users and items (texts, resolved by the
#: writer), types, values (engagement seconds or None) and timestamps.
Parsed = tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[float | None], Sequence[float]]


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
    parallel: bool = False  # parsed by a reader process while this one wrote
    #: Clicks and purchases on items never served, set apart (``unserved=True``), by type.
    unserved: dict[str, int] = field(default_factory=dict)

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
            "parallel": self.parallel,
            "unserved": {"total": sum(self.unserved.values()), **self.unserved},
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
        if is_decimal(stripped) and _as_id(stripped) is None:
            raise _bad(line, f"no user {text!r}")  # beyond any id SQLite can hold
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

    def preload_all(self, limit: int) -> None:
        """Every assigned user of the experiment (by its id as text) and every item, when
        there are at most ``limit`` of each: one query each instead of one per chunk of a
        large file whose rows mention most of them anyway."""
        conn = self.store.conn
        exp_id = self.exp.id
        n = conn.execute(
            "SELECT COUNT(*) FROM assignments WHERE experiment_id = ?", (exp_id,)
        ).fetchone()[0]
        if n <= limit:
            rows = conn.execute(
                "SELECT user_id, variant FROM assignments WHERE experiment_id = ?", (exp_id,)
            )
            self.users.update((str(uid), (uid, str(variant))) for uid, variant in rows)
        if conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] <= limit:
            self.items.update((str(i), i) for (i,) in conn.execute("SELECT id FROM items"))

    def item(self, text: str, line: int) -> int:
        stripped = text.strip()
        if not is_decimal(stripped):
            raise _bad(line, f"item must be a numeric id (got {text!r})")
        item_id = _as_id(stripped)
        if item_id is None:
            raise _bad(line, f"no item with id {stripped}")
        if not self.store.conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
            raise _bad(line, f"no item with id {item_id}")
        self.items[text] = item_id
        return item_id


def _as_id(digits: str) -> int | None:
    """A decimal text as an id SQLite can hold (a signed 64-bit integer), else None."""
    try:
        value = int(digits)
    except ValueError:
        return None
    return value if value < 1 << 63 else None


def _numeric(texts: Iterable[str]) -> dict[str, int]:
    """The texts that are plain ids, as ints (the rule of ``_Resolver``: digits after strip)."""
    out: dict[str, int] = {}
    for text in texts:
        stripped = text.strip()
        if is_decimal(stripped):
            value = _as_id(stripped)  # None: a digit int() refuses, or too large
            if value is not None:
                out[text] = value
    return out


def _header(row: list[str]) -> dict[str, int]:
    names = [c.strip().lower().lstrip("\ufeff") for c in row]
    cols: dict[str, int] = {}
    for pos, name in enumerate(names):
        if name not in CSV_COLUMNS:
            raise _bad(
                1,
                f"unknown column {name!r} (the header must name the columns "
                f"{', '.join(CSV_COLUMNS)}; value, ts and team are optional)",
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
    if not validate.ts_ok(ts):
        raise _bad(line, f"ts {text!r} is out of range (accepted: {validate.TS_RANGE})")
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
    reference path, row by row; ``_parse_chunk`` and ``_resolve_chunk`` do the same for a
    well-formed chunk, column by column."""
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


def _parse_chunk(raw: list[list[str]], cols: dict[str, int], now: float) -> Parsed | None:
    """The syntax of a chunk, checked column by column (C loops instead of Python per row).

    Needs no database, so the reader process can run it. Returns None when anything is
    unusual (a blank or short line, spaces around a type, an ISO timestamp, any invalid
    value): the writer then runs ``_parsed_rows`` on the chunk, which converts it or
    reports the first bad line exactly.
    """
    width = len(cols)
    if not raw or set(map(len, raw)) != {width}:
        return None
    columns = list(zip(*raw, strict=True))
    tcol = columns[cols["type"]]
    if not _TYPE_SET.issuperset(tcol):
        return None
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
            # C loops: NaN and infinities first (min/max would not see a NaN), then the range
            # (which bounds the sums of squares).
            if seconds and not (
                all(map(math.isfinite, seconds))
                and validate.value_ok(min(seconds))
                and validate.value_ok(max(seconds))
            ):
                return None
        if its is None:
            ts = [now] * n
        else:
            ts = [float(t) if t else now for t in columns[its]]
            if not (
                all(map(math.isfinite, ts)) and validate.ts_ok(min(ts)) and validate.ts_ok(max(ts))
            ):
                return None
    except (ValueError, OverflowError):
        return None
    return columns[cols["user"]], columns[cols["item"]], tcol, values, ts


def _resolve_chunk(parsed: Parsed, resolver: _Resolver) -> Columns | None:
    """A parsed chunk's columns with users resolved to (id, stored variant), items to ids.

    None when a user or an item is not found (or not assigned): the reference path then
    says which line.
    """
    ucol, icol, tcol, values, ts = parsed
    users, items = resolver.users, resolver.items
    try:  # every text known already: no set of the chunk's texts to build
        found = list(map(users.__getitem__, ucol))
        item_ids = list(map(items.__getitem__, icol))
    except KeyError:
        new_users = set(ucol).difference(users)
        new_items = set(icol).difference(items)
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
    return variants, uids, item_ids, tcol, values, ts


def _fast_chunk(
    raw: list[list[str]], cols: dict[str, int], resolver: _Resolver, now: float
) -> Columns | None:
    """``_parse_chunk`` then ``_resolve_chunk``: the columns of a well-formed chunk, or None."""
    parsed = _parse_chunk(raw, cols, now)
    return None if parsed is None else _resolve_chunk(parsed, resolver)


#: Variant labels by code: A..Z (A/B/n) and AB (the users of an interleaving experiment).
_LABELS: tuple[str, ...] = (*(chr(c) for c in range(ord("A"), ord("Z") + 1)), "AB")
_VARIANT_CODE = {label: i for i, label in enumerate(_LABELS)}
_KEY = 4 * 32  # room for 4 event types x up to 32 variant codes per hour
_TYPE_CODE = {t: i for i, t in enumerate(EVENT_TYPES)}


def _tally_columns(exp_id: int, columns: Columns) -> Tally:
    """``tally_counts`` of a chunk's columns, vectorised (a third of the Python loop's time:
    the reader process is the slower side of the pipeline)."""
    import numpy as np

    variants, _uids, _items, types, _values, ts = columns
    n = len(ts)
    seconds = np.fromiter(ts, np.float64, n)
    # The same IEEE division and floor as math.floor(ts / 3600.0) in tally_counts.
    hours = np.floor(seconds / 3600.0).astype(np.int64)
    codes = np.fromiter(map(_VARIANT_CODE.__getitem__, variants), np.int64, n) * 4
    codes += np.fromiter(map(_TYPE_CODE.__getitem__, types), np.int64, n)
    keys, index = np.unique(hours * _KEY + codes, return_inverse=True)
    counts = np.bincount(index)
    first = np.full(len(keys), np.inf)
    last = np.full(len(keys), -np.inf)
    np.minimum.at(first, index, seconds)
    np.maximum.at(last, index, seconds)
    tally: Tally = {}
    for key, k, lo, hi in zip(
        keys.tolist(), counts.tolist(), first.tolist(), last.tolist(), strict=True
    ):
        hour, code = divmod(key, _KEY)
        tally[(exp_id, _LABELS[code // 4], EVENT_TYPES[code % 4], hour)] = [k, lo, hi]
    return tally


def _user_sums(columns: Columns) -> UserSums:
    """A chunk summed per user, vectorised: ids, variant codes, impressions, clicks,
    purchases, engagement n, sum and sum of squares, first purchase time (inf: none)."""
    import numpy as np

    variants, uids, _items, types, values, ts = columns
    n = len(uids)
    codes = np.fromiter(map(_TYPE_CODE.__getitem__, types), np.int64, n)
    ids, first, index = np.unique(
        np.fromiter(uids, np.int64, n), return_index=True, return_inverse=True
    )
    m = len(ids)
    per_type = np.bincount(index * 4 + codes, minlength=4 * m).reshape(m, 4)
    # None (the value of every other type) becomes NaN, and then 0.
    seconds = np.where(codes == 3, np.nan_to_num(np.array(values, dtype=np.float64)), 0.0)
    times = np.fromiter(ts, np.float64, n)
    first_purchase = np.full(m, np.inf)
    bought = codes == 2
    np.minimum.at(first_purchase, index[bought], times[bought])
    variant = np.fromiter(map(_VARIANT_CODE.__getitem__, variants), np.int64, n)[first]
    return (
        ids,
        variant,
        *(per_type[:, k] for k in range(4)),
        np.bincount(index, weights=seconds, minlength=m),
        np.bincount(index, weights=seconds * seconds, minlength=m),
        first_purchase,
    )


def _served_columns(columns: Columns) -> tuple[Any, Any]:
    """The distinct (user, item) of a chunk's impressions in key order, vectorised (the
    rows ``served_items`` gets; computed by the reader process when there is one)."""
    import numpy as np

    _variants, uids, items, types, _values, _ts = columns
    n = len(uids)
    shown = np.fromiter(map("impression".__eq__, types), np.bool_, n)
    users = np.fromiter(uids, np.int64, n)[shown]
    things = np.fromiter(items, np.int64, n)[shown]
    order = np.lexsort((things, users))
    users, things = users[order], things[order]
    new = np.ones(len(users), np.bool_)
    new[1:] = (users[1:] != users[:-1]) | (things[1:] != things[:-1])
    return users[new], things[new]


def _combine(parts: list[UserSums]) -> UserSums:
    """Several chunks' user sums as one (a user in many chunks gets one row)."""
    import numpy as np

    if len(parts) == 1:
        return parts[0]
    ids, variant, imp, clk, pur, eng, total, total_sq, first_purchase = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    keys, first, index = np.unique(ids, return_index=True, return_inverse=True)
    m = len(keys)

    def summed(column: Any) -> Any:
        return np.bincount(index, weights=column, minlength=m)

    earliest = np.full(m, np.inf)
    np.minimum.at(earliest, index, first_purchase)
    counts = (summed(c).round().astype(np.int64) for c in (imp, clk, pur, eng))
    return (keys, variant[first], *counts, summed(total), summed(total_sq), earliest)


def _user_rows(exp_id: int, sums: UserSums) -> UserTally:
    """User sums as the rows ``add_user_rows`` adds to ``event_users``."""
    ids, variant, imp, clk, pur, eng, total, total_sq, first_purchase = (
        column.tolist() for column in sums
    )
    return {
        (exp_id, _LABELS[v], uid): [i, c, p, e, s, sq, None if f == math.inf else f]
        for uid, v, i, c, p, e, s, sq, f in zip(
            ids, variant, imp, clk, pur, eng, total, total_sq, first_purchase, strict=True
        )
    }


class _Chunk(NamedTuple):
    line: int  # line number of the last row before the chunk (the header is line 1)
    size: int  # rows read
    columns: Columns | None  # checked, in file order; None: see raw
    tally: Tally | None  # the hourly counts of the chunk
    users: UserSums | None  # its sums per user (the reader process sends them at the end)
    raw: list[list[str]] | None  # the rows as read, for the reference path
    error: str | None  # why the reading stopped after these rows (raised once they pass)
    served: Any = None  # its impressions' distinct (user, item), sorted: two int64 arrays


def _rows_of(exp_id: int, columns: Columns) -> Iterator[tuple[Any, ...]]:
    return zip(repeat(exp_id), *columns)


def _read_chunk(reader: Iterator[list[str]], size: int) -> tuple[list[list[str]], Exception | None]:
    """Up to ``size`` rows, and the decoding or CSV error that stopped the reading early
    (raised by the caller after the rows before it were checked, as row by row would)."""
    raw: list[list[str]] = []
    try:
        raw.extend(islice(reader, size))
    except (UnicodeDecodeError, csv.Error) as exc:
        return raw, exc
    return raw, None


def _is_stream(source: str | Path | IO[str]) -> bool:
    """An open stream, or a path to one (a FIFO, a device, ``/dev/fd/N``): a path that
    does not exist or is a folder is left to ``open_csv``, which says so."""
    if not isinstance(source, str | Path):
        return True
    path = Path(source)
    return path.exists() and not path.is_file() and not path.is_dir()


def _spool(source: str | Path | IO[str], progress: Progress | None) -> Path:
    """A stream (standard input, a FIFO, a process substitution) copied to a temporary file,
    before any lock is taken: a writer must never wait on someone else's network or pipe.

    Lines are bounded as ``open_csv`` bounds them (``MAX_LINE``, counted in bytes here).
    Bytes are copied as they come (standard input's own decoding is bypassed), so the
    spool is decoded as UTF-8 exactly like a file. The caller deletes the file.
    """
    name = str(source) if isinstance(source, str | Path) else "standard input"
    if isinstance(source, str | Path):
        try:
            stream: Any = open(source, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise InputError(f"{source}: cannot read ({exc.strerror})") from None
        owned = True
    else:
        binary = getattr(source, "buffer", None)
        stream = binary if binary is not None else _EncodedLines(source)
        owned = False
    fd, tmp = tempfile.mkstemp(prefix="smart-suggest-events-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out:
            n = 0
            while line := stream.readline(MAX_LINE + 1):
                n += 1
                if len(line) > MAX_LINE and not line.endswith(b"\n"):
                    raise InputError(
                        f"{name}:{n}: line longer than {MAX_LINE:,} bytes "
                        "(not a line-based text stream?); nothing was written"
                    )
                out.write(line)
                if progress and n % 100_000 == 0:
                    progress("reading", n, 0)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        if owned:
            stream.close()
    return Path(tmp)


class _EncodedLines:
    """A text stream read as UTF-8 bytes, line by line (for streams without a buffer)."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh

    def readline(self, limit: int) -> bytes:
        return self.fh.readline(limit).encode("utf-8", "surrogateescape")


def _read_error(error: Exception | None, reader: Any) -> str | None:
    if isinstance(error, UnicodeDecodeError):
        return f"the file is not UTF-8 text ({error.reason}); nothing was written"
    if error is not None:
        return f"line {reader.line_num}: {error}; nothing was written"
    return None


def _chunks(
    reader: Any,
    cols: dict[str, int],
    now: float,
    size: int,
    resolver: _Resolver,
    line: int = 1,
    first: int | None = None,
) -> Generator[_Chunk, None, None]:
    """The rows after line ``line``, chunk by chunk: checked where the fast path allows,
    raw otherwise (for ``_parsed_rows``, run by the writer). ``first``: a smaller first
    chunk, for a writer waiting for it."""
    want = first or size
    while True:
        raw, error = _read_chunk(reader, want)
        columns = _fast_chunk(raw, cols, resolver, now)
        message = _read_error(error, reader)
        if columns is None:
            yield _Chunk(line, len(raw), None, None, None, raw, message)
        else:
            tally = _tally_columns(resolver.exp.id, columns)
            served = _served_columns(columns)
            yield _Chunk(line, len(raw), columns, tally, _user_sums(columns), None, message, served)
        if error is not None or len(raw) < want:
            return
        line += len(raw)
        want = size


def read_in_process(
    db: Path, path: Path, exp_id: int, now: float, size: int, skip: int, out: IO[bytes]
) -> None:
    """The reader process's work (``bulk_reader``): the chunks after the first ``skip``
    rows (which the writer reads itself meanwhile), pickled to ``out``.

    Reads the database in one snapshot (users, assignments, items) and never writes: the
    writer holds the write lock meanwhile, so that snapshot is what the writer sees.
    Messages: ``("ready", where smart_suggest was imported from)``, ``_Chunk``s, then
    ``("done", the user sums of them all)``, or ``("error", message)``.
    """
    gc.disable()  # see log_events_csv
    pickle.dump(("ready", _package_root()), out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()
    with _Sender(out) as send:
        try:
            with open_store(db) as store, store.read():
                resolver = _Resolver(store, get_experiment(store, exp_id))
                resolver.preload_all(path.stat().st_size // BYTES_PER_ROW)
                with open_csv(path) as fh:
                    reader = csv.reader(fh)
                    cols = _header(next(reader))
                    for _ in islice(reader, skip):
                        pass
                    parts: list[UserSums] = []
                    for chunk in _chunks(reader, cols, now, size, resolver, 1 + skip, size // 10):
                        if chunk.users is not None:
                            parts.append(chunk.users)
                        send(chunk._replace(users=None))  # the users all at the end, summed
                users = _combine(parts) if parts else None
                send(("done", users))
        except InputError as exc:  # the file's fault (a line too long): said as it is
            send(("input-error", str(exc)))
        except BaseException as exc:  # the writer rolls back and says so
            send(("error", f"{type(exc).__name__}: {exc}"))


class _Sender:
    """Pickles messages here and writes them to the pipe from a thread.

    A chunk is megabytes and the pipe holds 64 KiB: written inline, the reader stood still
    until the writer had taken the whole chunk (a third of the reader's time at 1M rows).
    The thread's writes release the GIL, so the next chunk is parsed meanwhile; at most
    two pickled chunks wait, so memory stays bounded.
    """

    def __init__(self, out: IO[bytes]) -> None:
        import queue
        import threading

        self._out = out
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="bulk-sender", daemon=True)

    def __enter__(self) -> Callable[[object], None]:
        self._thread.start()
        return self._send

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        self._out.flush()

    def _send(self, message: object) -> None:
        self._queue.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._out.write(data)
            except OSError:  # the writer went away (it stops us on error): drop the rest
                while self._queue.get() is not None:
                    pass
                return


def _package_root() -> str:
    """Where this smart_suggest is imported from (the reader must run the same code)."""
    import smart_suggest

    return str(Path(smart_suggest.__file__).resolve().parent)


class _ReaderProcess:
    """A running reader process (``bulk_reader``) and the pipe its chunks come down."""

    def __init__(
        self, store: Store, path: Path, exp_id: int, now: float, size: int, skip: int
    ) -> None:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "SMART_SUGGEST_READER_FD": str(write_fd)}
        args = [str(store.path.resolve()), str(path.resolve()), str(exp_id), repr(now)]
        args += [str(size), str(skip)]
        try:
            # -P: the current folder does not go first on sys.path (a csv.py there would
            # shadow the standard library's in the reader).
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "smart_suggest.experiments.bulk_reader", *args],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self.inbox = open(read_fd, "rb")  # noqa: SIM115 (closed by stop)
        self.users: UserSums | None = None  # sent after the last chunk
        self.used = True  # False: this process read the file after all

    def ready(self) -> bool:
        """Whether the reader started and runs this very smart_suggest (its first message
        says where it imported it from)."""
        try:
            item = pickle.load(self.inbox)
        except (EOFError, pickle.UnpicklingError):
            return False
        return isinstance(item, tuple) and item == ("ready", _package_root())

    def chunks(self) -> Iterator[_Chunk]:
        while True:
            try:
                item = pickle.load(self.inbox)
            except EOFError:
                raise RuntimeError(
                    f"the CSV reader process ended early (exit code {self.proc.wait()})"
                ) from None
            if isinstance(item, _Chunk):
                yield item
                continue
            if item[0] == "input-error":
                raise InputError(item[1])
            if item[0] == "error":
                raise RuntimeError(f"the CSV reader process failed: {item[1]}")
            self.users = item[1]
            return

    def stop(self) -> None:
        """End the process (if still running) and close the pipe; safe to call twice."""
        self.inbox.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _head_rows(size: int) -> int:
    """Rows the writer reads itself while the reader process starts (~0.3 s of its work)."""
    return max(size * 2 // 5, 1)


def _with_reader(
    process: _ReaderProcess,
    reader: Any,
    cols: dict[str, int],
    now: float,
    resolver: _Resolver,
) -> Generator[_Chunk, None, None]:
    """The first ``_head_rows`` read here while the reader process starts (it skips them),
    then the reader process's chunks; or, if it did not start right, the rest read here
    too (``process.used`` says which)."""
    head_rows = _head_rows(CSV_CHUNK)
    head = next(_chunks(reader, cols, now, head_rows, resolver))
    yield head
    if head.error is not None or head.size < head_rows:
        process.used = False  # the file ended within the head
        return
    if process.ready():
        yield from process.chunks()
        return
    process.used = False
    process.stop()
    yield from _chunks(reader, cols, now, CSV_CHUNK, resolver, line=head.line + head.size)


@contextmanager
def _stopping(process: _ReaderProcess | None) -> Iterator[None]:
    try:
        yield
    finally:
        if process is not None:
            process.stop()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def log_events_csv(
    store: Store,
    exp_ref: int | str | Experiment,
    source: str | Path | IO[str],
    *,
    progress: Progress | None = None,
    parallel: bool | None = None,
    unserved: bool = False,
) -> BulkReport:
    """Load a CSV of events into an experiment, all or nothing, in one transaction.

    ``parallel``: read the file in a reader process (a file path only); None decides by
    the file's size and the CPUs this process may use.

    A click or purchase needs an impression of its item for its user in the experiment,
    in the database or anywhere in the file (a file need not be in time order), as
    ``log_event`` does: otherwise nothing is logged, or with ``unserved`` those rows go to
    ``unserved_events`` (in no KPI) and the report counts them.
    """
    started = time.perf_counter()
    exp = require_active(get_experiment(store, exp_ref))
    if parallel and _is_stream(source):
        raise ValueError("parallel reading needs a file path, not a stream")
    spooled = _spool(source, progress) if _is_stream(source) else None
    try:
        return _log_file(
            store,
            exp,
            spooled or Path(cast(str | Path, source)),
            started,
            progress,
            parallel,
            unserved,
        )
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)


def _log_file(
    store: Store,
    exp: Experiment,
    path: Path,
    started: float,
    progress: Progress | None,
    parallel: bool | None,
    unserved: bool = False,
) -> BulkReport:
    """``log_events_csv`` of a regular file (a stream has been spooled to one)."""
    fh = open_csv(path)
    try:
        reader = csv.reader(fh)
        try:
            first = next(reader)
        except StopIteration:
            raise InputError("the CSV file is empty (expected a header: user,item,type)") from None
        except UnicodeDecodeError:
            raise _bad(1, "the file is not UTF-8 text") from None
        cols = _header(first)
        if "team" in cols and not exp.interleaving:
            raise _bad(1, "a team column goes with interleaving experiments only")
        regular = path
        if parallel is None:
            parallel = (
                regular is not None
                and os.name == "posix"  # the reader's pipe is passed with pass_fds
                and _cpus() > 1
                and regular.stat().st_size >= PARALLEL_MIN_BYTES
            )
        expected = _count_lines(regular) - 1 if progress and regular else 0
        resolver = _Resolver(store, exp)
        tally: Tally = {}
        user_parts: list[UserSums] = []
        n_users = 0
        total = 0
        # The cyclic GC would rescan the millions of parsed strings and tuples (which hold
        # no cycles) again and again: ~40% of the parsing time on 1M rows.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with bulk_write(store, checked=False):
                # Re-read inside the lock: another process may have stopped the experiment.
                exp = require_active(get_experiment(store, exp.id))
                before = int(store.scalar("SELECT COALESCE(MAX(id), 0) FROM events"))
                now = validate.check_ts(clock.now(), "the current time")
                chunks = _chunks(reader, cols, now, CSV_CHUNK, resolver)
                process: _ReaderProcess | None = None
                if parallel:
                    try:
                        process = _ReaderProcess(
                            store, path, exp.id, now, CSV_CHUNK, _head_rows(CSV_CHUNK)
                        )
                    except OSError:  # cannot start a process here: this one does it all
                        parallel = False
                    else:
                        chunks = _with_reader(process, reader, cols, now, resolver)
                with closing(chunks), _stopping(process):  # on an error, at once
                    for chunk in chunks:
                        rows: Iterable[tuple[Any, ...]]
                        if chunk.columns is not None and chunk.tally is not None:
                            rows, counts = _rows_of(exp.id, chunk.columns), chunk.tally
                            if chunk.users is not None:
                                user_parts.append(chunk.users)
                        else:
                            raw = chunk.raw or []
                            rows = list(_parsed_rows(raw, cols, exp, resolver, chunk.line, now))
                            counts = tally_counts(rows)
                            if rows:
                                variants, uids, items, types, values, ts = list(
                                    zip(*rows, strict=True)
                                )[1:]
                                columns = (variants, uids, items, types, values, ts)
                                user_parts.append(_user_sums(columns))
                        if chunk.size:
                            add_counts(store, counts)
                            if chunk.served is not None:
                                add_served_columns(store, exp.id, *chunk.served)
                            else:
                                rows = list(rows)
                                add_served(store, served_pairs(rows))
                            total += insert_events(store, rows)
                            _merge(tally, counts)
                            if progress:
                                progress("events", total, max(expected, total))
                        if chunk.error is not None:
                            raise InputError(chunk.error)
                if process is not None and process.used and process.users is not None:
                    user_parts.append(process.users)
                parallel = process is not None and process.used
                if user_parts:
                    sums = _combine(user_parts)
                    n_users = len(sums[0])
                    add_user_rows(store, _user_rows(exp.id, sums))
                apart = set_apart_unserved(store, exp, before, allow=unserved)
                total -= sum(n for per in apart.values() for n in per.values())
                if exp.interleaving:
                    _apply_teams(store, exp.id, before, total, path, cols)
                if progress:
                    progress("events", total, total)
        finally:
            if gc_was_enabled:
                gc.enable()
    finally:
        fh.close()
    by_type = dict.fromkeys(EVENT_TYPES, 0)
    by_variant = dict.fromkeys(["AB"] if exp.interleaving else exp.labels, 0)
    for (_exp, variant, kind, _hour), (n, _lo, _hi) in tally.items():
        by_type[kind] += n
        by_variant[variant] = by_variant.get(variant, 0) + n
    moved = dict.fromkeys(FOLLOWS_IMPRESSION, 0)
    for variant, per in apart.items():
        for kind, n in per.items():
            by_type[kind] -= n
            by_variant[variant] -= n
            moved[kind] += n
    return BulkReport(
        experiment=exp,
        rows=total,
        by_type=by_type,
        users=n_users,
        first_ts=min((e[1] for e in tally.values()), default=None),
        last_ts=max((e[2] for e in tally.values()), default=None),
        seconds=time.perf_counter() - started,
        by_variant=by_variant,
        parallel=bool(parallel),
        unserved=moved,
    )


_TEAM_NAMES = {"a": "A", "b": "B", "both": "both"}


def _file_teams(path: Path, cols: dict[str, int]) -> Iterator[tuple[int, int, str]]:
    """(row number among the loaded rows, line, team) of every row with a team, in file
    order; the rows are counted as the loader counts them (blank lines skipped)."""
    index = cols["team"]
    with open_csv(path) as fh:
        reader = csv.reader(fh)
        next(reader)  # the header
        k = 0
        for line, row in enumerate(reader, start=2):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            k += 1
            text = row[index].strip()
            if not text:
                continue
            team = _TEAM_NAMES.get(text.lower())
            if team is None:
                raise _bad(line, f"team {text[:20]!r} must be A, B or both (or empty)")
            yield k, line, team


def _apply_teams(
    store: Store, experiment_id: int, before: int, total: int, path: Path, cols: dict[str, int]
) -> None:
    """Interleaving: give the rows just loaded (ids above ``before``) their teams.

    * a ``team`` column in the file is the team of its row (a system that interleaves
      itself knows who contributed each item); an empty cell means "derive it";
    * an impression without one takes the team the item had in the list served to that
      user by ``experiment serve`` (the last one);
    * a click or purchase without one is credited to the team the item was last shown
      with (the file's impressions included), as a logged click is.

    An impression that ends with no team cannot be credited to either ranker: the whole
    load is refused (all or nothing), naming the row.
    """
    from smart_suggest.experiments.events import rebuild_team_summaries

    conn = store.conn
    if "team" in cols and total:
        # The loader inserts the rows in file order with consecutive ids above ``before``.
        last = conn.execute("SELECT MAX(id), COUNT(*) FROM events WHERE id > ?", (before,))
        top, n = last.fetchone()
        if n != total or top != before + total:
            raise InputError("the loaded rows do not have consecutive ids: cannot give teams")
        batch: list[tuple[str, int]] = []
        for k, _line, team in _file_teams(path, cols):
            batch.append((team, before + k))
            if len(batch) >= 100_000:
                conn.executemany("UPDATE events SET team = ? WHERE id = ?", batch)
                batch.clear()
        conn.executemany("UPDATE events SET team = ? WHERE id = ?", batch)
    lookup = (
        "SELECT t.team FROM team_items t WHERE t.experiment_id = events.experiment_id "
        "AND t.user_id = events.user_id AND t.item_id = events.item_id"
    )
    conn.execute(
        f"UPDATE events SET team = ({lookup}) WHERE id > ? AND experiment_id = ? "
        "AND type = 'impression' AND team IS NULL",
        (before, experiment_id),
    )
    orphan = conn.execute(
        "SELECT id, user_id, item_id FROM events WHERE id > ? AND experiment_id = ? "
        "AND type = 'impression' AND team IS NULL ORDER BY id LIMIT 1",
        (before, experiment_id),
    ).fetchone()
    if orphan is not None:
        raise InputError(
            f"row {orphan[0] - before} of the file: the impression of item {orphan[2]} to user "
            f"{orphan[1]} has no team (interleaving needs the team that contributed each "
            "shown item): add a team column (A, B or both); nothing was written"
        )
    # The file's impressions now say which team showed each item: credit the follow-ups.
    rebuild_team_summaries(store, experiment_id)
    conn.execute(
        f"UPDATE events SET team = ({lookup}) WHERE id > ? AND experiment_id = ? "
        "AND type != 'impression' AND team IS NULL",
        (before, experiment_id),
    )
    rebuild_team_summaries(store, experiment_id)


def _count_lines(path: Path) -> int:
    """Lines in a file (for the progress bar's total), read in binary blocks."""
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
    return n


def _merge(tally: Tally, counts: Tally) -> None:
    for key, (n, lo, hi) in counts.items():
        entry = tally.get(key)
        if entry is None:
            tally[key] = [n, lo, hi]
        else:
            entry[0] += n
            entry[1] = min(entry[1], lo)
            entry[2] = max(entry[2], hi)
