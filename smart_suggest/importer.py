"""Import interactions (and optionally an item catalogue) from CSV files.

Interactions file: one interaction per row with a user, an item, optionally an action or a
rating, optionally a timestamp. The first row is a header when it names a user and an item
column; recognised names (case, "_", "-" and spaces ignored):

    user       user, user_id, userId, uid, username, customer_id, visitor_id
    item       item, item_id, itemId, iid, movieId, movie_id, product_id, product, book_id
    action     action, event, event_type, interaction   (view / click / purchase)
    rating     rating, score, stars                     (numbers, mapped to actions below)
    timestamp  timestamp, ts, time, datetime, date, created_at   (Unix seconds or ISO-8601)

Without a header the columns are positional: user, item, then an action or a rating (whichever
the first row holds), then a timestamp, so MovieLens ``u.data`` (tab-separated) and
``ratings.dat`` (``::``-separated) load as they are. The delimiter is the first of ``::``,
``,``, tab, ``;`` and ``|`` found in the first line.

Ratings become actions: rating >= 4 -> purchase, 3 <= rating < 4 -> click, rating < 3 -> view
(a 5-star scale: loved it, liked it, merely seen). Without a timestamp column every row gets
the current time, and the file order is kept as the tie-breaker (interaction ids).

Identifiers are kept: a numeric user (``42``) is ``users.id`` 42 (created with username
"42" if new); any other user string is a username (new ones get fresh ids). Items must be
numeric ids; an unknown item is created, with the name, category and description from the
items file when there is one, else as "item 42" in category "unknown". Existing users and
interactions are never changed; the import appends.

Items file (optional): id, name, category, description (headers as above plus id, name/title,
category/genres, description/overview); items it lists that already exist are updated. Without
a description column, the description is the category with "|" read as a separator, so
MovieLens genres ("Action|Sci-Fi") give v2 one word per genre.

Everything is validated before anything is written, and everything is written in one
transaction: a bad row is reported with its file name and line number and nothing changes.
"""

from __future__ import annotations

import csv
import math
import time
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smart_suggest import clock, validate
from smart_suggest.csvfiles import open_csv
from smart_suggest.errors import InputError
from smart_suggest.text import is_decimal
from smart_suggest.tracking import ACTION_WEIGHTS

if TYPE_CHECKING:
    from smart_suggest.recommend.base import Progress
    from smart_suggest.store import Store

ACTIONS = tuple(ACTION_WEIGHTS)
_ACTION_CODE = {a: k for k, a in enumerate(ACTIONS)}

_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "uid", "username", "customer", "customerid", "visitorid"),
    "item": (
        "item",
        "itemid",
        "iid",
        "movie",
        "movieid",
        "product",
        "productid",
        "bookid",
    ),
    "action": ("action", "event", "eventtype", "interaction"),
    "rating": ("rating", "score", "stars"),
    "timestamp": ("timestamp", "ts", "time", "datetime", "date", "createdat"),
}
_ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "item", "itemid", "iid", "movieid", "productid", "bookid"),
    "name": ("name", "title", "itemname", "productname"),
    "category": ("category", "categories", "genre", "genres"),
    "description": ("description", "desc", "overview", "summary", "text", "plot"),
}
UNKNOWN_CATEGORY = "unknown"
MAX_ID = 2**63 - 1  # SQLite's largest integer
_CHUNK = 50_000
_BULK_ROWS = 50_000
_MAX_FIELD = 1_000_000


def rating_action(rating: float) -> str:
    """The action a rating stands for: >= 4 purchase, >= 3 click, otherwise view."""
    if rating >= 4:
        return "purchase"
    if rating >= 3:
        return "click"
    return "view"


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int
    interactions: int
    users_created: int
    items_created: int
    items_updated: int
    columns: dict[str, int | None] = field(default_factory=dict)
    header: bool = True
    user_ids: str = "id"  # "id", "name" or "mixed": how the file identifies users
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading ---------------------------------------------------------------------------
def _norm(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-")


def _open_rows(path: Path, progress: Progress | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank row of a delimited text file.

    ``progress("read", characters read, file size)`` is reported every 100,000 rows.
    """
    size = path.stat().st_size if path.is_file() else 0
    with open_csv(path) as fh:
        try:
            first = fh.readline()
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a UTF-8 text file") from None
        fh.seek(0)
        consumed = [0]

        def lines() -> Iterator[str]:
            for n, text in enumerate(fh, start=1):
                if progress and n % 100_000 == 0:
                    progress("read", min(consumed[0], size), size)
                consumed[0] += len(text)
                yield text

        try:
            if "::" in first:
                # MovieLens .dat: "::" never appears inside a field, so a plain split is right.
                for number, text in enumerate(lines(), start=1):
                    text = text.rstrip("\r\n")
                    if text.strip():
                        yield number, text.split("::")
            else:
                delimiter = next((d for d in (",", "\t", ";", "|") if d in first), ",")
                reader = csv.reader(lines(), delimiter=delimiter)
                for fields in reader:
                    if len(fields) > 1 or (fields and fields[0].strip()):
                        yield reader.line_num, fields
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
        except csv.Error as exc:
            raise InputError(f"{path}: unreadable CSV ({exc})") from None
        if progress:
            progress("read", size, size)


def _columns(
    fields: list[str], aliases: dict[str, tuple[str, ...]]
) -> dict[str, int | None] | None:
    """Map role -> column index if ``fields`` is a header row, else None."""
    names = [_norm(f) for f in fields]
    found: dict[str, int | None] = {}
    for role, options in aliases.items():
        found[role] = next((k for k, n in enumerate(names) if n in options), None)
    return found if any(v is not None for v in found.values()) else None


@dataclass
class _Parsed:
    user_codes: array  # per row: index into users
    items: array  # per row: item id
    actions: bytearray  # per row: action code
    ts: array  # per row: Unix seconds
    users: dict[str, int]  # user string -> code
    first_line: dict[str, int]  # user string -> first line it appears on
    columns: dict[str, int | None]
    header: bool


def _parse_interactions(path: Path, progress: Progress | None) -> _Parsed:
    rows = _open_rows(path, progress)
    try:
        line, first = next(rows)
    except StopIteration:
        raise InputError(f"{path}: the file is empty") from None
    columns = _columns(first, _ALIASES)
    header = columns is not None
    if columns is not None:
        for role in ("user", "item"):
            if columns[role] is None:
                expected = ", ".join(_ALIASES[role][:4])
                raise InputError(
                    f"{path}:{line}: the header has no {role} column (expected one of "
                    f"{expected}, ...)"
                )
        data: Iterator[tuple[int, list[str]]] = rows
    else:
        if len(first) < 2:
            raise InputError(f"{path}:{line}: need at least a user and an item column")
        third = first[2].strip().lower() if len(first) > 2 else ""
        columns = {
            "user": 0,
            "item": 1,
            "action": 2 if third in _ACTION_CODE else None,
            "rating": 2 if len(first) > 2 and third not in _ACTION_CODE else None,
            "timestamp": 3 if len(first) > 3 else None,
        }
        data = _chain(line, first, rows)
    if columns["action"] is not None and columns["rating"] is not None:
        columns["rating"] = None  # an explicit action wins over a rating
    ui, ii = columns["user"], columns["item"]
    ai, ri, ti = columns["action"], columns["rating"], columns["timestamp"]
    assert ui is not None and ii is not None
    need = max(c for c in columns.values() if c is not None) + 1
    now = validate.check_ts(clock.now(), "the current time")
    parsed = _Parsed(array("q"), array("q"), bytearray(), array("d"), {}, {}, columns, header)
    users, first_line = parsed.users, parsed.first_line
    # Caches keyed by the raw field: a file has few distinct users, items and ratings, so
    # each distinct spelling is validated once (this loop runs a million times).
    user_cache: dict[str, int] = {}
    item_cache: dict[str, int] = {}
    act_cache: dict[str, int] = {}
    add_user, add_item = parsed.user_codes.append, parsed.items.append
    add_act, add_ts = parsed.actions.append, parsed.ts.append
    ci = ai if ai is not None else ri
    count = 0
    for line, fields in data:
        if len(fields) < need:
            raise InputError(f"{path}:{line}: expected at least {need} fields, found {len(fields)}")
        raw = fields[ui]
        code = user_cache.get(raw)
        if code is None:
            code = user_cache[raw] = _user_code(path, line, raw, users, first_line)
        raw = fields[ii]
        item = item_cache.get(raw)
        if item is None:
            item = item_cache[raw] = _item_id(path, line, raw)
        if ci is not None:
            raw = fields[ci]
            act = act_cache.get(raw)
            if act is None:
                act = act_cache[raw] = _action_code(path, line, raw, rating=ai is None)
        else:
            act = 0
        if ti is not None:
            raw = fields[ti]
            try:
                when = float(raw)
            except ValueError:
                when = _parse_ts(path, line, raw)
            if not validate.ts_ok(when):
                raise InputError(
                    f"{path}:{line}: timestamp {raw.strip()[:40]!r} is out of range "
                    f"(accepted: {validate.TS_RANGE})"
                )
        else:
            when = now
        add_user(code)
        add_item(item)
        add_act(act)
        add_ts(when)
        count += 1
    if count == 0:
        raise InputError(f"{path}: no interactions (only a header)")
    return parsed


def _user_code(
    path: Path, line: int, raw: str, users: dict[str, int], first_line: dict[str, int]
) -> int:
    user = raw.strip()
    if not user:
        raise InputError(f"{path}:{line}: empty user")
    if len(user) > 1000 or "\x00" in user or (is_decimal(user) and int(user) > MAX_ID):
        raise InputError(f"{path}:{line}: invalid user {user[:40]!r}")
    if is_decimal(user):
        user = str(int(user))  # "007" and "7" are the same user id
    code = users.get(user)
    if code is None:
        code = users[user] = len(users)
        first_line[user] = line
    return code


def _item_id(path: Path, line: int, raw: str) -> int:
    item = raw.strip()
    if not is_decimal(item) or not 0 < int(item) <= MAX_ID:
        raise InputError(
            f"{path}:{line}: item {item[:40]!r} is not a positive numeric id "
            "(items are identified by number)"
        )
    return int(item)


def _action_code(path: Path, line: int, raw: str, *, rating: bool) -> int:
    text = raw.strip()
    if not rating:
        act = _ACTION_CODE.get(text.lower())
        if act is None:
            raise InputError(
                f"{path}:{line}: unknown action {text[:40]!r} (use {', '.join(ACTIONS)})"
            )
        return act
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"{path}:{line}: rating {text[:40]!r} is not a number")
    return _ACTION_CODE[rating_action(value)]


def _parse_ts(path: Path, line: int, raw: str) -> float:
    try:
        return clock.parse_time(raw)
    except ValueError:
        raise InputError(
            f"{path}:{line}: timestamp {raw.strip()[:40]!r} is neither Unix seconds nor ISO-8601"
        ) from None


def _chain(
    line: int, first: list[str], rest: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    yield line, first
    yield from rest


@dataclass
class _ItemRow:
    id: int
    name: str
    category: str
    description: str


def _parse_items(path: Path) -> list[_ItemRow]:
    rows = _open_rows(path)
    try:
        line, first = next(rows)
    except StopIteration:
        raise InputError(f"{path}: the file is empty") from None
    columns = _columns(first, _ITEM_ALIASES)
    if columns is None:
        columns = {"id": 0, "name": 1, "category": 2, "description": 3}
        data = _chain(line, first, rows)
        limit = len(first)
        columns = {k: (v if v is not None and v < limit else None) for k, v in columns.items()}
    else:
        if columns["id"] is None:
            raise InputError(f"{path}:{line}: the header has no id column (id, item_id, ...)")
        data = rows
    idc, nc, cc, dc = columns["id"], columns["name"], columns["category"], columns["description"]
    assert idc is not None
    need = max(c for c in columns.values() if c is not None) + 1
    seen: dict[int, int] = {}
    out: list[_ItemRow] = []
    for line, fields in data:
        if len(fields) < need:
            raise InputError(f"{path}:{line}: expected at least {need} fields, found {len(fields)}")
        raw = fields[idc].strip()
        if not is_decimal(raw) or not 0 < int(raw) <= MAX_ID:
            raise InputError(f"{path}:{line}: item id {raw[:40]!r} is not a positive number")
        item_id = int(raw)
        if item_id in seen:
            raise InputError(
                f"{path}:{line}: item {item_id} is listed twice (first on line {seen[item_id]})"
            )
        seen[item_id] = line
        name = fields[nc].strip() if nc is not None else ""
        category = fields[cc].strip() if cc is not None else ""
        desc = fields[dc].strip() if dc is not None else category.replace("|", " ")
        for text, what in ((name, "name"), (category, "category"), (desc, "description")):
            if "\x00" in text:
                raise InputError(f"{path}:{line}: the {what} contains a NUL character")
            if len(text) > _MAX_FIELD:
                raise InputError(f"{path}:{line}: the {what} is too long")
        out.append(_ItemRow(item_id, name or f"item {item_id}", category or UNKNOWN_CATEGORY, desc))
    return out


# -- writing ---------------------------------------------------------------------------
def import_interactions(
    store: Store,
    path: Path | str,
    *,
    items_path: Path | str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an interactions CSV (and an items CSV) in one transaction; see module doc."""
    started = time.perf_counter()
    path = Path(path)
    item_rows = _parse_items(Path(items_path)) if items_path is not None else []
    parsed = _parse_interactions(path, progress)
    n_rows = len(parsed.items)
    now = clock.now()

    # Resolve users and items against the database: all checks before the first write.
    existing_ids = {
        int(r[0]): str(r[1]) for r in store.conn.execute("SELECT id, username FROM users")
    }
    by_name = {name: uid for uid, name in existing_ids.items()}
    numeric = [u for u in parsed.users if is_decimal(u)]
    named = [u for u in parsed.users if not is_decimal(u)]
    resolved: dict[str, int] = {}
    new_users: list[tuple[int, str, float]] = []
    for u in numeric:
        uid = int(u)
        if uid in existing_ids:  # an existing user, or "007" after "7"
            resolved[u] = uid
            continue
        name = str(uid)
        owner = by_name.get(name)
        if owner is not None:
            raise InputError(
                f"{path}:{parsed.first_line[u]}: new user {uid} would be named {name!r}, "
                f"but that username belongs to user {owner}"
            )
        resolved[u] = uid
        new_users.append((uid, name, now))
        existing_ids[uid] = name
        by_name[name] = uid
    next_id = max([0, *existing_ids]) + 1
    for u in named:
        known = by_name.get(u)
        if known is None:
            known = next_id
            next_id += 1
            new_users.append((known, u, now))
            by_name[u] = known
        resolved[u] = known

    existing_items = {int(r[0]) for r in store.conn.execute("SELECT id FROM items")}
    listed = {r.id: r for r in item_rows}
    file_items = set(parsed.items)
    new_items = [
        (r.id, r.name, r.category, r.description, now)
        for r in item_rows
        if r.id not in existing_items
    ]
    updates = [
        (r.name, r.category, r.description, r.id) for r in item_rows if r.id in existing_items
    ]
    placeholders = [
        (i, f"item {i}", UNKNOWN_CATEGORY, "", now)
        for i in sorted(file_items - existing_items - set(listed))
    ]
    code_to_user = array("q", [0]) * len(parsed.users)
    for u, code in parsed.users.items():
        code_to_user[code] = resolved[u]

    kinds = {"id" if is_decimal(u) else "name" for u in parsed.users}
    report = ImportReport(
        rows=n_rows,
        interactions=n_rows,
        users_created=len(new_users),
        items_created=len(new_items) + len(placeholders),
        items_updated=len(updates),
        columns=parsed.columns,
        header=parsed.header,
        user_ids=kinds.pop() if len(kinds) == 1 else "mixed",
    )
    _write(store, new_users, new_items + placeholders, updates, parsed, code_to_user, progress)
    return ImportReport(**{**report.to_dict(), "seconds": time.perf_counter() - started})


def _write(
    store: Store,
    users: list[tuple[int, str, float]],
    items: list[tuple[int, str, str, str, float]],
    updates: list[tuple[str, str, str, int]],
    parsed: _Parsed,
    code_to_user: array,
    progress: Progress | None,
) -> None:
    conn = store.conn
    nested = conn.in_transaction
    total = len(parsed.items)
    existing = int(store.scalar("SELECT count(*) FROM interactions"))
    # A large load into a table no bigger than it: drop the interaction indexes and the
    # per-row revision trigger, rebuild them once at the end (same transaction). A small
    # append into a big table is cheaper with per-row index maintenance.
    bulk = not nested and total >= _BULK_ROWS and total >= existing
    # Every reference was resolved above (the users and items exist or are created in this
    # transaction), so the per-row foreign-key lookups would only cost time. The pragma
    # only takes effect outside a transaction; it is restored afterwards.
    if not nested:
        conn.execute("PRAGMA foreign_keys = OFF")
    try:
        transaction = store.bulk_load(("interactions",)) if bulk else store.write()
        with transaction:
            conn.executemany("INSERT INTO users(id, username, created_at) VALUES (?, ?, ?)", users)
            conn.executemany(
                "INSERT INTO items(id, name, category, description, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                items,
            )
            conn.executemany(
                "UPDATE items SET name = ?, category = ?, description = ? WHERE id = ?", updates
            )
            if progress:
                progress("import", 0, total)
            for lo in range(0, total, _CHUNK):
                hi = min(lo + _CHUNK, total)
                conn.executemany(
                    "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, ?, ?, ?)",
                    zip(
                        [code_to_user[c] for c in parsed.user_codes[lo:hi]],
                        parsed.items[lo:hi],
                        [ACTIONS[a] for a in parsed.actions[lo:hi]],
                        parsed.ts[lo:hi],
                        strict=True,
                    ),
                )
                if progress:
                    progress("import", hi, total)
    finally:
        if not nested:
            conn.execute("PRAGMA foreign_keys = ON")
