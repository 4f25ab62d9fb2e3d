"""Import interactions (and an item catalogue) from the files people have.

The layouts (``layouts``: MovieLens 100K, 1M/10M and current releases, any delimited file)
all become the same rows: user, item, value, time. Header names recognised (case, "_", "-"
and spaces ignored):

    user       user, user_id, userId, uid, username, customer_id, visitor_id
    item       item, item_id, itemId, iid, movie, movieId, product_id, product, book_id
    action     action, event, event_type, type, interaction   (view / click / purchase)
    rating     rating, score, stars                     (a 5-star judgement)
    weight     weight, value, count                     (on the scale of the action weights)
    time       timestamp, ts, time, datetime, date, created_at  (Unix seconds or ISO-8601)

Any other column is an error naming it, unless ``--ignore-col`` skips it; ``--user-col``,
``--item-col``, ``--value-col``, ``--time-col`` choose columns by name (or by 1-based number
in a file without a header) and ``--value-as rating|weight|action`` says how to read the
value. Values become actions by one rule, ``tracking.value_action``: a rating >= 4 is a
purchase, >= 3 a click, else a view; a weight >= 5 is a purchase, >= 3 a click, else
(> 0) a view. Without a value column every row is a view; without a time column every row
gets the current time and the file order is the tie-breaker (interaction ids).

Identifiers are kept: a numeric user (``42``) is ``users.id`` 42 (created with username
"42" if new); any other user string is a username (new ones get fresh ids). Items must be
numeric ids; an unknown item is created, with the name, categories and description from
the items file when there is one, else as "item 42" without categories. Existing users
and interactions are never changed; the import appends. Items the items file lists that
already exist get its name, categories and description.

A users file (MovieLens ``users.dat`` / ``u.user`` beside the ratings, or ``--users``)
creates its users with their ids, as the ratings file would, and stores what it says
about them (gender, age, occupation, zip code; a generic file's other columns) in
``user_attributes``, replacing the attributes a user already had.

Streaming: the file is read once, in chunks written as they are parsed, so memory grows
with the number of distinct users and items, never with the rows. Everything is one
transaction: a bad row (reported with its file name and line number) rolls all of it back.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smart_suggest import clock, validate
from smart_suggest.errors import InputError
from smart_suggest.importer.layouts import (
    VALUE_KINDS,
    ColumnOptions,
    FieldStream,
    ItemRow,
    Layout,
    UserRow,
    decoding_error,
    detect,
)
from smart_suggest.store import NO_CATEGORY
from smart_suggest.text import is_decimal
from smart_suggest.tracking import ACTION_WEIGHTS, primary_category, value_action

if TYPE_CHECKING:
    from smart_suggest.recommend.base import Progress
    from smart_suggest.store import Store

__all__ = [
    "VALUE_KINDS",
    "ColumnOptions",
    "ImportReport",
    "Layout",
    "detect",
    "import_interactions",
    "import_layout",
    "rating_action",
]

ACTIONS = tuple(ACTION_WEIGHTS)
_ACTION_CODE = {a: k for k, a in enumerate(ACTIONS)}
UNKNOWN_CATEGORY = NO_CATEGORY
MAX_ID = 2**63 - 1  # SQLite's largest integer
_CHUNK = 50_000
#: Files this big (or bigger than the interactions already stored) load with the indexes
#: dropped and rebuilt once (``Store.bulk_load``); ~25 bytes per row.
_BULK_BYTES = 1_000_000
_BYTES_PER_ROW = 25
_IMPORT_CACHE_KIB = 65_536


def rating_action(rating: float) -> str:
    """The action a rating stands for (``tracking.value_action``): >= 4, >= 3, else view."""
    return value_action(rating, "rating")


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int
    interactions: int
    users_created: int
    items_created: int
    items_updated: int
    layout: str = "delimited file"
    message: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # role -> column name
    value_as: str = "action"
    header: bool = True
    user_ids: str = "id"  # "id", "name" or "mixed": how the file identifies users
    seconds: float = 0.0
    users_described: int = 0  # users whose attributes the users file gave
    user_attributes: tuple[str, ...] = ()  # the attribute names stored

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_interactions(
    store: Store,
    path: Path | str,
    *,
    items_path: Path | str | None = None,
    options: ColumnOptions | None = None,
    progress: Progress | None = None,
    users_path: Path | str | None = None,
) -> ImportReport:
    """Recognise the files' layout and import them in one transaction (see module doc)."""
    layout = detect(
        Path(path),
        Path(items_path) if items_path else None,
        options or ColumnOptions(),
        Path(users_path) if users_path else None,
    )
    return import_layout(store, layout, progress=progress)


# -- parsing one value of a row: each distinct spelling once (a file repeats them) ----------
def _user_key(path: Path, line: int, raw: str) -> str:
    user = raw.strip()
    if not user:
        raise InputError(f"{path}:{line}: empty user")
    if len(user) > 1000 or "\x00" in user or (is_decimal(user) and int(user) > MAX_ID):
        raise InputError(f"{path}:{line}: invalid user {user[:40]!r}")
    return str(int(user)) if is_decimal(user) else user  # "007" and "7" are one user


def _item_id(path: Path, line: int, raw: str) -> int:
    item = raw.strip()
    if not is_decimal(item) or not 0 < int(item) <= MAX_ID:
        raise InputError(
            f"{path}:{line}: item {item[:40]!r} is not a positive numeric id "
            "(items are identified by number)"
        )
    return int(item)


def _action(path: Path, line: int, raw: str, kind: str) -> str:
    text = raw.strip()
    if kind == "action":
        if text.lower() not in _ACTION_CODE:
            raise InputError(
                f"{path}:{line}: unknown action {text[:40]!r} (use {', '.join(ACTIONS)})"
            )
        return text.lower()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"{path}:{line}: {kind} {text[:40]!r} is not a number")
    if kind == "weight" and value <= 0:
        raise InputError(
            f"{path}:{line}: weight {text[:40]!r} is not positive (a weight of 0 says nothing "
            "happened; use --value-as rating if the column holds ratings)"
        )
    return value_action(value, kind)


def _time(path: Path, line: int, raw: str) -> float:
    try:
        when = float(raw)
    except ValueError:
        try:
            when = clock.parse_time(raw)
        except ValueError:
            raise InputError(
                f"{path}:{line}: timestamp {raw.strip()[:40]!r} is neither Unix seconds nor "
                "ISO-8601"
            ) from None
    if not validate.ts_ok(when):
        raise InputError(
            f"{path}:{line}: timestamp {raw.strip()[:40]!r} is out of range "
            f"(accepted: {validate.TS_RANGE})"
        )
    return when


# -- writing ------------------------------------------------------------------------------------
class _Users:
    """Resolves the file's user strings to ids while the rows stream by.

    Numeric users keep their id. A *new* named user gets a provisional negative id, made
    final at the end (``finish``): only then is every numeric id of the file known, so a
    fresh id can never collide with a user a later row names by number.
    """

    def __init__(self, store: Store, path: Path, now: float) -> None:
        self.path = path
        self.now = now
        self.by_id = {
            int(r[0]): str(r[1]) for r in store.conn.execute("SELECT id, username FROM users")
        }
        self.by_name = {name: uid for uid, name in self.by_id.items()}
        self.cache: dict[str, int] = {}
        self.new_ids: list[tuple[int, str, float]] = []
        self.new_named: list[str] = []
        self.kinds: set[str] = set()
        self.final: dict[int, int] = {}  # provisional id -> final id, after ``finish``

    def resolve(self, line: int, raw: str, path: Path | None = None) -> int:
        path = path or self.path
        key = _user_key(path, line, raw)
        uid = self.cache.get(key)
        if uid is not None:
            self.cache[raw] = uid
            return uid
        if is_decimal(key):
            self.kinds.add("id")
            uid = int(key)
            if uid not in self.by_id:
                owner = self.by_name.get(key)
                if owner is not None:
                    raise InputError(
                        f"{path}:{line}: new user {uid} would be named {key!r}, but that "
                        f"username belongs to user {owner}"
                    )
                self.by_id[uid] = key
                self.by_name[key] = uid
                self.new_ids.append((uid, key, self.now))
        else:
            self.kinds.add("name")
            known = self.by_name.get(key)
            if known is None:
                self.new_named.append(key)
                known = -len(self.new_named)
                self.by_name[key] = known
            uid = known
        self.cache[key] = self.cache[raw] = uid
        return uid

    def finish(self, conn: Any) -> int:
        """Create the new users; give the named ones their final ids. Returns how many."""
        conn.executemany(
            "INSERT INTO users(id, username, created_at) VALUES (?, ?, ?)", self.new_ids
        )
        if self.new_named:
            next_id = max([0, *(u for u in self.by_id if u > 0)]) + 1
            final = [(next_id + k, name, self.now) for k, name in enumerate(self.new_named)]
            self.final = {-(k + 1): next_id + k for k in range(len(self.new_named))}
            conn.executemany("INSERT INTO users(id, username, created_at) VALUES (?, ?, ?)", final)
            conn.execute(
                "CREATE TEMP TABLE import_user_ids (provisional INTEGER PRIMARY KEY, id INTEGER)"
            )
            try:
                conn.executemany("INSERT INTO import_user_ids VALUES (?, ?)", self.final.items())
                conn.execute(
                    "UPDATE interactions SET user_id = (SELECT id FROM import_user_ids "
                    "WHERE provisional = interactions.user_id) WHERE user_id < 0"
                )
            finally:
                conn.execute("DROP TABLE temp.import_user_ids")
        return len(self.new_ids) + len(self.new_named)


def _chunks(
    layout: Layout, stream: FieldStream, users: _Users, items_seen: set[int], now: float
) -> Iterator[list[tuple[int, int, str, float]]]:
    """The rows as (user id, item id, action, time), in chunks.

    This loop runs once per row (25 million for MovieLens 25M): each distinct user, item
    and value string is checked once and then looked up, and line numbers are asked for
    only when something is wrong.
    """
    reader = layout.ratings
    path, kind = reader.path, reader.value_as
    ui, ii = reader.columns["user"][0], reader.columns["item"][0]
    vi = reader.columns["value"][0] if "value" in reader.columns else None
    ti = reader.columns["time"][0] if "time" in reader.columns else None
    need = max(c for c, _ in reader.columns.values()) + 1
    item_cache: dict[str, int] = {}
    act_cache: dict[str, str] = {}
    user_cache = users.cache
    resolve = users.resolve
    line = stream.line
    lo, hi = validate.MIN_TS, validate.MAX_TS
    chunk: list[tuple[int, int, str, float]] = []
    add = chunk.append
    try:
        for fields in stream:
            if len(fields) < need:
                if not any(f.strip() for f in fields):
                    continue  # a blank line
                raise InputError(
                    f"{path}:{line()}: expected at least {need} fields, found {len(fields)}"
                )
            raw = fields[ui]
            uid = user_cache.get(raw)
            if uid is None:
                uid = resolve(line(), raw)
            raw = fields[ii]
            item = item_cache.get(raw)
            if item is None:
                item = item_cache[raw] = _item_id(path, line(), raw)
                items_seen.add(item)
            if vi is None:
                act = "view"
            else:
                raw = fields[vi]
                act = act_cache.get(raw)  # type: ignore[assignment]
                if act is None:
                    act = act_cache[raw] = _action(path, line(), raw, kind)
            if ti is None:
                when = now
            else:
                raw = fields[ti]
                try:
                    when = float(raw)
                except ValueError:
                    when = _time(path, line(), raw)
                if not lo <= when < hi:  # NaN fails too
                    when = _time(path, line(), raw)
            add((uid, item, act, when))
            if len(chunk) >= _CHUNK:
                yield chunk
                chunk = []
                add = chunk.append
    except UnicodeDecodeError as exc:
        raise decoding_error(path, reader.encoding, exc) from None
    except csv.Error as exc:
        raise InputError(f"{path}:{line()}: unreadable CSV ({exc})") from None
    if chunk:
        yield chunk


def import_layout(
    store: Store, layout: Layout, *, progress: Progress | None = None
) -> ImportReport:
    """Import what ``detect`` recognised, in one transaction; nothing changes on an error."""
    started = time.perf_counter()
    now = validate.check_ts(clock.now(), "the current time")
    reader = layout.ratings
    size = reader.path.stat().st_size
    conn = store.conn
    nested = conn.in_transaction
    existing = int(store.scalar("SELECT count(*) FROM interactions"))
    # A large load into a table no bigger than it: drop the interaction indexes and the
    # per-row revision trigger, rebuild them once at the end (same transaction). A small
    # append into a big table is cheaper with per-row index maintenance.
    bulk = not nested and size >= _BULK_BYTES and size // _BYTES_PER_ROW >= existing
    # Every reference is resolved here (users and items exist or are created in this
    # transaction), so per-row foreign-key lookups would only cost time; the pragma works
    # only outside a transaction, and is restored afterwards.
    if not nested:
        conn.execute("PRAGMA foreign_keys = OFF")
    if bulk:
        # The index rebuild at the end sorts every row: with temporary storage in memory
        # (the connection's default) its spilled runs would grow with the file, ~24 bytes
        # a row (600 MB at 25M rows). On files they stay on disk; measured at 300,000
        # rows the import was no slower (6.4-10.5 s against 10.9-11.2 s, under load).
        # The switch is refused inside a transaction, hence here.
        conn.execute("PRAGMA temp_store = FILE")
    rows = 0
    try:
        transaction = store.bulk_load(("interactions",)) if bulk else store.write()
        with transaction:
            if bulk:
                # bulk_load gives the load a 256 MiB page cache; a streaming import needs
                # no more than 64 (its pages are appended once, then spilled to the WAL),
                # and the index rebuild's sorter spills at the same bound: memory stays
                # flat whatever the size of the file.
                conn.execute(f"PRAGMA cache_size = -{_IMPORT_CACHE_KIB}")
            users = _Users(store, reader.path, now)
            existing_items = {int(r[0]) for r in conn.execute("SELECT id FROM items")}
            listed = layout.items or []
            created, updated = _write_items(conn, listed, existing_items, now)
            # The users file first: its users are resolved (and created) like those of
            # the ratings, so a user named in both is one user.
            described = [
                (users.resolve(row.line, row.user, layout.users_path), row)
                for row in layout.users or []
            ]
            items_seen: set[int] = set()
            # interactions' CHECK (action IN (...)) cost 1.4 of 2.1 CPU seconds of the
            # inserts of a million rows (SQLite evaluates the IN list row by row). Every
            # action written here is one of ACTIONS by construction (``_action``), so the
            # check is switched off for these inserts only; the pragma expires prepared
            # statements, so nothing else in the transaction runs without its checks.
            conn.execute("PRAGMA ignore_check_constraints = ON")
            try:
                with reader.stream() as stream:
                    for chunk in _chunks(layout, stream, users, items_seen, now):
                        conn.executemany(
                            "INSERT INTO interactions(user_id, item_id, action, ts) "
                            "VALUES (?, ?, ?, ?)",
                            chunk,
                        )
                        rows += len(chunk)
                        if progress:
                            progress("import", min(stream.position(), size), size)
            finally:
                conn.execute("PRAGMA ignore_check_constraints = OFF")
            if rows == 0:
                raise InputError(f"{reader.path}: no interactions (only a header)")
            users_created = users.finish(conn)
            attribute_names = _write_user_attributes(conn, described, users.final)
            known = existing_items | {r.id for r in listed}
            placeholders = sorted(items_seen - known)
            conn.executemany(
                "INSERT INTO items(id, name, category, description, created_at) "
                "VALUES (?, ?, ?, '', ?)",
                [(i, f"item {i}", NO_CATEGORY, now) for i in placeholders],
            )
            if progress:
                progress("import", size, size)
    finally:
        if not nested:
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA foreign_keys = ON")
    kinds = users.kinds
    return ImportReport(
        rows=rows,
        interactions=rows,
        users_created=users_created,
        items_created=created + len(placeholders),
        items_updated=updated,
        layout=layout.name,
        message=layout.message,
        columns={role: name for role, (_, name) in reader.columns.items()},
        value_as=reader.value_as,
        header=reader.header,
        user_ids=kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "id"),
        seconds=time.perf_counter() - started,
        users_described=len(described),
        user_attributes=attribute_names,
    )


def _write_user_attributes(
    conn: Any, described: list[tuple[int, UserRow]], final: dict[int, int]
) -> tuple[str, ...]:
    """Replace the attributes of the users file's users; returns the names stored."""
    ids = [final.get(uid, uid) for uid, _ in described]
    for lo in range(0, len(ids), 500):
        part = ids[lo : lo + 500]
        conn.execute(
            f"DELETE FROM user_attributes WHERE user_id IN ({','.join('?' * len(part))})", part
        )
    conn.executemany(
        "INSERT INTO user_attributes(user_id, name, value, position) VALUES (?, ?, ?, ?)",
        [
            (uid, name, value, k)
            for uid, (_, row) in zip(ids, described, strict=True)
            for k, (name, value) in enumerate(row.attributes)
        ],
    )
    names: dict[str, None] = {}
    for _, row in described:
        names.update(dict.fromkeys(name for name, _ in row.attributes))
    return tuple(names)


def _write_items(
    conn: Any, listed: list[ItemRow], existing: set[int], now: float
) -> tuple[int, int]:
    new = [r for r in listed if r.id not in existing]
    old = [r for r in listed if r.id in existing]
    conn.executemany(
        "INSERT INTO items(id, name, category, description, created_at) VALUES (?, ?, ?, ?, ?)",
        [(r.id, r.name, primary_category(r.categories), r.description, now) for r in new],
    )
    conn.executemany(
        "UPDATE items SET name = ?, category = ?, description = ? WHERE id = ?",
        [(r.name, primary_category(r.categories), r.description, r.id) for r in old],
    )
    if old:
        for lo in range(0, len(old), 500):
            ids = [r.id for r in old[lo : lo + 500]]
            conn.execute(
                f"DELETE FROM item_categories WHERE item_id IN ({','.join('?' * len(ids))})", ids
            )
    # OR IGNORE: the items trigger has already given each item its first category.
    conn.executemany(
        "INSERT OR IGNORE INTO item_categories(item_id, category, position) VALUES (?, ?, ?)",
        [(r.id, c, k) for r in listed for k, c in enumerate(r.categories)],
    )
    return len(new), len(old)
