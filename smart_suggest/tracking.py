"""Users, items and interactions: validated writes and the reads built on them.

``ACTION_WEIGHTS`` is the one definition of how much each action says about taste; the
recommenders, profiles and sample data all read it from here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from smart_suggest import clock, validate
from smart_suggest.errors import InputError, NotFoundError
from smart_suggest.store import NO_CATEGORY, Store
from smart_suggest.text import is_decimal

#: How strongly an action signals interest: view 1, click 3, purchase 5.
ACTION_WEIGHTS: dict[str, int] = {"view": 1, "click": 3, "purchase": 5}
ACTIONS: tuple[str, ...] = tuple(ACTION_WEIGHTS)

#: SQL expression of an interaction's weight, generated from ``ACTION_WEIGHTS``.
WEIGHT_SQL = (
    "CASE action "
    + " ".join(f"WHEN '{a}' THEN {w}" for a, w in ACTION_WEIGHTS.items())
    + " ELSE 0 END"
)

MAX_NAME_LENGTH = 1_000_000  # generous; stops accidental multi-gigabyte pastes, not real names

#: How a value read from a file becomes an action (the one rule, used by every import):
#: ``kind`` -> (lowest value that is a click, lowest value that is a purchase); anything
#: below the first is a view. A *rating* is a 5-star judgement: 4 and up is loved
#: (purchase), 3 liked (click), below seen. A *weight* is already on the scale of
#: ``ACTION_WEIGHTS``: the action with the largest weight not above it (5 purchase, 3
#: click, else view); a weight must be positive (0 says nothing happened).
VALUE_THRESHOLDS: dict[str, tuple[float, float]] = {
    "rating": (3.0, 4.0),
    "weight": (float(ACTION_WEIGHTS["click"]), float(ACTION_WEIGHTS["purchase"])),
}


def value_action(value: float, kind: str = "rating") -> str:
    """The action a rating or a weight stands for (see ``VALUE_THRESHOLDS``)."""
    click, purchase = VALUE_THRESHOLDS[kind]
    if value >= purchase:
        return "purchase"
    if value >= click:
        return "click"
    return "view"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": clock.iso(self.created_at)}


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    name: str
    category: str  # the first category, or "unknown" when it has none
    description: str
    created_at: float
    categories: tuple[str, ...] = ()  # all of them, in the order given

    @property
    def category_label(self) -> str:
        """All categories for display: "Action|Adventure" ("-" when there are none)."""
        return "|".join(self.categories) if self.categories else "-"

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "categories": list(self.categories),
            "created_at": clock.iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Interaction:
    id: int
    user_id: int
    item_id: int
    item_name: str
    category: str
    action: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ts": clock.iso(self.ts)}


@dataclass(frozen=True, slots=True)
class ItemStats:
    item: Item
    actions: dict[str, int]
    total: int
    users: int
    weighted_score: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item.to_dict(),
            "actions": self.actions,
            "total": self.total,
            "users": self.users,
            "weighted_score": self.weighted_score,
        }


@dataclass(frozen=True, slots=True)
class CategoryScore:
    category: str
    interactions: int
    weighted_score: int


@dataclass(frozen=True, slots=True)
class ItemScore:
    item_id: int
    name: str
    category: str
    weighted_score: int
    interactions: int


@dataclass(frozen=True, slots=True)
class Profile:
    user: User
    actions: dict[str, int]
    total: int
    categories: list[CategoryScore] = field(default_factory=list)
    top_items: list[ItemScore] = field(default_factory=list)
    #: What an imported users file said about the user (gender, age, ...), in file order.
    attributes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user.to_dict(),
            "attributes": self.attributes,
            "actions": self.actions,
            "total": self.total,
            "categories": [asdict(c) for c in self.categories],
            "top_items": [asdict(i) for i in self.top_items],
        }


# -- validation --------------------------------------------------------------------------
def clean_name(value: str, what: str) -> str:
    """Reject empty (or whitespace-only) names; keep everything else byte for byte."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InputError(f"{what} is too long ({len(value):,} characters, at most 1,000,000)")
    if "\x00" in value:
        raise InputError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # surrogate-escaped bytes from the command line
        raise InputError(f"{what} is not valid UTF-8 text (at character {exc.start + 1})") from None
    return value


def check_action(action: str) -> str:
    if action not in ACTION_WEIGHTS:
        raise InputError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    return action


# -- users -------------------------------------------------------------------------------
#: Surrounding whitespace that makes two usernames look the same (SQL ``trim`` and Python
#: ``strip`` given the same characters, so both sides agree).
_SPACES = " \t\n\r\x0b\x0c"
_SPACES_SQL = "' ' || char(9, 10, 13, 11, 12)"


def add_user(store: Store, username: str, *, user_id: int | None = None) -> User:
    username = clean_name(username, "username")
    # Users are looked up by id first, then by name: a name that is a valid id would be
    # shadowed by that id forever, and a name that differs from another only by surrounding
    # spaces cannot be told apart on screen.
    if is_decimal(username.strip()):
        raise InputError(f"username {username!r} must not be all digits (ids are numbers)")
    created = validate.check_ts(clock.now(), "the current time")
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            raise InputError(f"user {username!r} already exists")
        refuse_space_twin(conn, "users", "username", username, "user")
        if (
            user_id is not None
            and conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone()
        ):
            raise InputError(f"user id {user_id} already exists")
        cur = conn.execute(
            "INSERT INTO users(id, username, created_at) VALUES (?, ?, ?)",
            (user_id, username, created),
        )
        new_id = int(cur.lastrowid or 0)
    return User(new_id, username, created)


def refuse_space_twin(
    conn: sqlite3.Connection, table: str, column: str, name: str, what: str
) -> None:
    """Refuse ``name`` when an existing name differs from it only by surrounding whitespace
    (" alice" next to "alice"): names are looked up exactly, and on screen the two are one.
    A scan of the names: adding one is rare next to looking one up."""
    twin = conn.execute(
        f"SELECT {column} FROM {table} WHERE trim({column}, {_SPACES_SQL}) = ? LIMIT 1",
        (name.strip(_SPACES),),
    ).fetchone()
    if twin:
        raise InputError(f"{what} {name!r} differs from the existing {twin[0]!r} only by spaces")


def _user_from_row(row: tuple[Any, ...]) -> User:
    return User(int(row[0]), str(row[1]), clock.stored(row[2]))


def get_user(store: Store, ref: int | str) -> User:
    """A user by numeric id or by username (an all-digit string is tried as id first)."""
    sql = "SELECT id, username, created_at FROM users WHERE "
    row = None
    if isinstance(ref, int) or (isinstance(ref, str) and is_decimal(ref.strip())):
        row = store.conn.execute(sql + "id = ?", (int(ref),)).fetchone()
    if row is None and isinstance(ref, str):
        row = store.conn.execute(sql + "username = ?", (ref,)).fetchone()
    if row is None:
        raise NotFoundError(f"no user {str(ref)!r} (give a user id or a username)")
    return _user_from_row(row)


def list_users(store: Store, *, limit: int | None = None, offset: int = 0) -> list[User]:
    rows = store.conn.execute(
        "SELECT id, username, created_at FROM users ORDER BY id LIMIT ? OFFSET ?",
        (-1 if limit is None else limit, offset),
    ).fetchall()
    return [_user_from_row(r) for r in rows]


#: Visitors made up by ``experiment simulate`` are named ``sim-<experiment id>-<n>``; user
#: lists can leave them out. The name shape is reserved for them by convention (GLOB).
SIMULATED_GLOB = "sim-[0-9]*-[0-9]*"


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_users(
    store: Store, text: str, *, limit: int = 200, simulated: bool = True
) -> list[User]:
    """Users whose name contains ``text`` (case-insensitive), for pickers.

    ``simulated=False`` leaves out the visitors of simulations (``SIMULATED_GLOB``).
    """
    where = "" if simulated else " AND username NOT GLOB ?"
    params: tuple[object, ...] = (_like(text),) + (() if simulated else (SIMULATED_GLOB,))
    rows = store.conn.execute(
        f"SELECT id, username, created_at FROM users WHERE username LIKE ? ESCAPE '\\'{where} "
        "ORDER BY id LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [_user_from_row(r) for r in rows]


def count_simulated_users(store: Store, text: str = "") -> int:
    """How many simulated visitors (``SIMULATED_GLOB``) have a name containing ``text``."""
    row = store.conn.execute(
        "SELECT count(*) FROM users WHERE username LIKE ? ESCAPE '\\' AND username GLOB ?",
        (_like(text), SIMULATED_GLOB),
    ).fetchone()
    return int(row[0])


# -- items -------------------------------------------------------------------------------
def clean_categories(values: str | Iterable[str]) -> tuple[str, ...]:
    """Categories as given, each checked like a name; repeats dropped, order kept."""
    if isinstance(values, str):
        values = [values]
    out: dict[str, None] = {}
    for value in values:
        out[clean_name(value, "category")] = None
    return tuple(out)


def primary_category(categories: Sequence[str]) -> str:
    """What ``items.category`` holds: the first category, or "unknown" without any."""
    return categories[0] if categories else NO_CATEGORY


def set_categories(conn: sqlite3.Connection, item_id: int, categories: Sequence[str]) -> None:
    """Replace an item's categories (inside the caller's write transaction)."""
    conn.execute("DELETE FROM item_categories WHERE item_id = ?", (item_id,))
    conn.executemany(
        "INSERT OR IGNORE INTO item_categories(item_id, category, position) VALUES (?, ?, ?)",
        [(item_id, c, k) for k, c in enumerate(categories)],
    )
    conn.execute(
        "UPDATE items SET category = ? WHERE id = ? AND category <> ?",
        (primary_category(categories), item_id, primary_category(categories)),
    )


def add_item(
    store: Store,
    name: str,
    category: str | Sequence[str],
    description: str = "",
    *,
    item_id: int | None = None,
) -> Item:
    name = clean_name(name, "item name")
    cats = clean_categories(category)
    if not cats:
        raise InputError("an item needs at least one category")
    if description is None:
        description = ""
    if "\x00" in description:
        raise InputError("description must not contain NUL characters")
    if item_id is not None and item_id <= 0:
        raise InputError("item id must be a positive integer")
    created = validate.check_ts(clock.now(), "the current time")
    with store.write() as conn:
        if (
            item_id is not None
            and conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone()
        ):
            raise InputError(f"item id {item_id} already exists")
        cur = conn.execute(
            "INSERT INTO items(id, name, category, description, created_at) VALUES (?, ?, ?, ?, ?)",
            (item_id, name, cats[0], description, created),
        )
        new_id = int(cur.lastrowid or 0)
        # The insert trigger added the first category; only the rest are new rows. Not
        # set_categories: its delete and re-insert would make an append look like an edit
        # to a recommender catching up row by row (``recommend/incremental.py``).
        conn.executemany(
            "INSERT OR IGNORE INTO item_categories(item_id, category, position) VALUES (?, ?, ?)",
            [(new_id, c, k) for k, c in enumerate(cats)],
        )
    return Item(new_id, name, cats[0], description, created, cats)


#: An item row with its categories ("\x1f"-joined in order; the unit separator cannot be
#: typed into a name, and an item without categories gets NULL).
_ITEM_COLS = (
    "id, name, category, description, created_at, "
    "(SELECT group_concat(category, char(31)) FROM "
    "(SELECT category FROM item_categories c WHERE c.item_id = items.id ORDER BY position))"
)


def _item_from_row(row: tuple[Any, ...]) -> Item:
    cats = tuple(str(row[5]).split("\x1f")) if row[5] else ()
    return Item(int(row[0]), str(row[1]), str(row[2]), str(row[3]), clock.stored(row[4]), cats)


def item_categories(store: Store) -> dict[int, tuple[str, ...]]:
    """Every item's categories, in order (items without any are absent)."""
    out: dict[int, list[str]] = {}
    for item_id, category in store.conn.execute(
        "SELECT item_id, category FROM item_categories ORDER BY item_id, position"
    ):
        out.setdefault(int(item_id), []).append(str(category))
    return {k: tuple(v) for k, v in out.items()}


def parse_item_id(ref: int | str) -> int:
    if isinstance(ref, int):
        return ref
    text = str(ref).strip()
    if not is_decimal(text):
        raise NotFoundError(f"no item {ref!r} (items are referred to by numeric id)")
    return int(text)


def get_item(store: Store, ref: int | str) -> Item:
    item_id = parse_item_id(ref)
    row = store.conn.execute(f"SELECT {_ITEM_COLS} FROM items WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no item with id {item_id}")
    return _item_from_row(row)


def list_items(
    store: Store, *, category: str | None = None, limit: int | None = None, offset: int = 0
) -> list[Item]:
    where, params = (
        ("WHERE id IN (SELECT item_id FROM item_categories WHERE category = ?)", [category])
        if category
        else ("", [])
    )
    rows = store.conn.execute(
        f"SELECT {_ITEM_COLS} FROM items {where} ORDER BY id LIMIT ? OFFSET ?",
        (*params, -1 if limit is None else limit, offset),
    ).fetchall()
    return [_item_from_row(r) for r in rows]


def search_items(store: Store, text: str, *, limit: int = 200) -> list[Item]:
    """Items whose name or category contains ``text`` (case-insensitive), for pickers."""
    pattern = _like(text)
    rows = store.conn.execute(
        f"SELECT {_ITEM_COLS} FROM items WHERE name LIKE ? ESCAPE '\\' "
        "OR category LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?",
        (pattern, pattern, limit),
    ).fetchall()
    return [_item_from_row(r) for r in rows]


def get_items(store: Store, ids: list[int]) -> dict[int, Item]:
    """Items by id, in one query per 500 ids."""
    found: dict[int, Item] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in store.conn.execute(
            f"SELECT {_ITEM_COLS} FROM items WHERE id IN ({marks})", chunk
        ).fetchall():
            item = _item_from_row(row)
            found[item.id] = item
    return found


def categories(store: Store) -> list[str]:
    return [
        r[0] for r in store.conn.execute("SELECT DISTINCT category FROM item_categories ORDER BY 1")
    ]


# -- interactions ------------------------------------------------------------------------
def log_interaction(
    store: Store, user: int | str, item: int | str, action: str, *, ts: float | None = None
) -> Interaction:
    action = check_action(action)
    when = validate.check_ts(clock.now() if ts is None else ts)
    with store.write() as conn:
        u = get_user(store, user)
        it = get_item(store, item)
        cur = conn.execute(
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, ?, ?, ?)",
            (u.id, it.id, action, when),
        )
        new_id = int(cur.lastrowid or 0)
    return Interaction(new_id, u.id, it.id, it.name, it.category, action, when)


#: From this many interactions a recommender snapshot is saved to disk for the next process
#: (``recommend/persist.py``) and the TUI loads it early: smaller ones build in moments.
#: Here, not there, so a command can ask before importing numpy and scipy.
SNAPSHOT_ROWS = 100_000


def interaction_id_max(store: Store) -> int:
    """The largest interaction id (0 for none): about how many there are, in one index
    lookup (``count(*)`` reads the whole table)."""
    return int(store.scalar("SELECT coalesce(max(id), 0) FROM interactions"))


def history(store: Store, user: int | str, *, limit: int | None = 20) -> list[Interaction]:
    """A user's interactions, newest first."""
    u = get_user(store, user)
    rows = store.conn.execute(
        "SELECT x.id, x.user_id, x.item_id, i.name, i.category, x.action, x.ts "
        "FROM interactions x JOIN items i ON i.id = x.item_id "
        "WHERE x.user_id = ? ORDER BY x.ts DESC, x.id DESC LIMIT ?",
        (u.id, -1 if limit is None else limit),
    ).fetchall()
    return [
        Interaction(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], clock.stored(r[6]))
        for r in rows
    ]


def item_stats(store: Store, item: int | str) -> ItemStats:
    it = get_item(store, item)
    with store.read() as conn:
        counts = dict.fromkeys(ACTIONS, 0)
        for action, n in conn.execute(
            "SELECT action, count(*) FROM interactions WHERE item_id = ? GROUP BY action",
            (it.id,),
        ):
            counts[action] = int(n)
        users = int(
            conn.execute(
                "SELECT count(DISTINCT user_id) FROM interactions WHERE item_id = ?", (it.id,)
            ).fetchone()[0]
        )
    score = sum(ACTION_WEIGHTS[a] * n for a, n in counts.items())
    return ItemStats(it, counts, sum(counts.values()), users, score)


def profile(store: Store, user: int | str, *, top: int = 5) -> Profile:
    """Action breakdown, preferred categories and top items ranked by weighted score."""
    u = get_user(store, user)
    with store.read() as conn:
        actions = dict.fromkeys(ACTIONS, 0)
        for action, n in conn.execute(
            "SELECT action, count(*) FROM interactions WHERE user_id = ? GROUP BY action",
            (u.id,),
        ):
            actions[action] = int(n)
        cats = [
            CategoryScore(str(c), int(n), int(s))
            for c, n, s in conn.execute(
                # An item counts for each of its categories.
                f"SELECT c.category, count(*), sum({WEIGHT_SQL}) FROM interactions x "
                "JOIN item_categories c ON c.item_id = x.item_id WHERE x.user_id = ? "
                "GROUP BY c.category ORDER BY 3 DESC, 2 DESC, 1",
                (u.id,),
            )
        ]
        items = [
            ItemScore(int(i), str(n), str(c), int(s), int(k))
            for i, n, c, s, k in conn.execute(
                f"SELECT i.id, i.name, i.category, sum({WEIGHT_SQL}), count(*) "
                "FROM interactions x JOIN items i ON i.id = x.item_id WHERE x.user_id = ? "
                "GROUP BY i.id ORDER BY 4 DESC, 5 DESC, 1 LIMIT ?",
                (u.id, top),
            )
        ]
        attributes = {
            str(name): str(value)
            for name, value in conn.execute(
                "SELECT name, value FROM user_attributes WHERE user_id = ? ORDER BY position",
                (u.id,),
            )
        }
    return Profile(u, actions, sum(actions.values()), cats, items, attributes)
