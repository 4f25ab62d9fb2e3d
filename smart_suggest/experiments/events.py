"""Experiment events: impressions, clicks, purchases and engagement time, tagged by variant.

Every event carries the experiment, the user's *stored* variant, the user, the item, the type,
a value (engagement seconds; empty for the other types) and a timestamp. An event is refused
(``InputError``, nothing written) when the experiment is stopped, the user was never assigned
to it, the item does not exist, or a value or a time is outside the ranges of
``smart_suggest.validate``.

Every event is also counted in ``event_counts`` per UTC hour and in ``event_users`` per
user (triggers; the bulk paths add pre-tallied rows instead). Loading a CSV of events is
``experiments.bulk``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import repeat
from typing import Any

from smart_suggest import clock, validate
from smart_suggest.errors import InputError
from smart_suggest.experiments.assignment import experiment_variant
from smart_suggest.experiments.lifecycle import Experiment, get_experiment, require_active
from smart_suggest.store import (
    ADD_EVENT_COUNTS_SQL,
    ADD_EVENT_USERS_SQL,
    ADD_SERVED_ITEMS_SQL,
    Store,
)

Progress = Callable[[str, int, int], None]

EVENT_TYPES: tuple[str, ...] = ("impression", "click", "purchase", "engagement")
#: Follow-up events a user's action produces (impressions normally come from ``serve``).
ACTION_TYPES: tuple[str, ...] = ("click", "purchase", "engagement")

INSERT_EVENT_SQL = (
    "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
#: An event row with its interleaving team (``INSERT_EVENT_SQL`` plus ``team``).
INSERT_TEAM_EVENT_SQL = (
    "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts, team) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
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
    team: str | None = None  # interleaving: the team credited ("A", "B", "both")
    #: Logged with ``unserved`` on an item never shown: kept apart, in no KPI.
    unserved: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ts": clock.iso(self.ts)}


# -- validation -----------------------------------------------------------------------------
def check_type(event_type: str) -> str:
    name = str(event_type).strip().lower()
    if name not in EVENT_TYPES:
        raise InputError(f"unknown event type {event_type!r}: use one of {', '.join(EVENT_TYPES)}")
    return name


def check_value(event_type: str, value: float | None) -> float | None:
    """Engagement needs seconds (``validate.check_value``); the other types take no value."""
    if event_type == "engagement":
        if value is None:
            raise InputError("an engagement event needs a value: the engagement time in seconds")
        return validate.check_value(value)
    if value is not None:
        raise InputError(f"a {event_type} event takes no value (only engagement has seconds)")
    return None


def check_ts(ts: float | None) -> float | None:
    return None if ts is None else validate.check_ts(ts)


def not_assigned_message(exp: Experiment, user_id: int, label: str) -> str:
    """Why a user has no assignment: outside the traffic, or never served."""
    if experiment_variant(exp, user_id) is None:
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
    are switched off; the per-row triggers of ``events`` (the revision, the hourly counts,
    the per-user rows) are replaced by one bump at the end and by ``add_counts`` and
    ``add_user_rows``, which the caller must call (``insert_bulk`` does). This is
    ``Store.bulk_load`` without rebuilding anything: the table is usually far bigger than
    the load. A crash rolls all of it back, triggers included.
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
    """``insert_events`` for a large chunk inside ``bulk_write``, with its summaries (the
    hourly counts and the per-user rows the triggers would have added)."""
    add_counts(store, tally_counts(rows))
    add_user_rows(store, tally_users(rows))
    add_served(store, served_pairs(rows))
    return insert_events(store, rows)


def insert_bulk_teams(store: Store, rows: list[tuple[Any, ...]]) -> int:
    """``insert_bulk`` for interleaving rows ``(..., ts, team)``: the hourly and per-user
    summaries are added here; the team summaries are rebuilt by the caller once the load
    is in (``rebuild_team_summaries``)."""
    plain = [r[:7] for r in rows]
    add_counts(store, tally_counts(plain))
    add_user_rows(store, tally_users(plain))
    add_served(store, served_pairs(plain))
    cur = store.conn.executemany(INSERT_TEAM_EVENT_SQL, rows)
    return max(cur.rowcount, 0)


def rebuild_team_summaries(store: Store, experiment_id: int) -> None:
    """Recompute ``event_teams`` and ``team_items`` of one experiment from its events
    (after a bulk load that set their triggers aside; inside its transaction)."""
    from smart_suggest.store import REBUILD_EVENT_TEAMS_SQL, REBUILD_TEAM_ITEMS_SQL

    if not store.conn.in_transaction:
        raise RuntimeError("rebuild_team_summaries must run inside store.write()")
    for table, sql in (
        ("event_teams", REBUILD_EVENT_TEAMS_SQL),
        ("team_items", REBUILD_TEAM_ITEMS_SQL),
    ):
        store.conn.execute(f"DELETE FROM {table} WHERE experiment_id = ?", (experiment_id,))
        # The rebuild definitions, limited to this experiment's events.
        one = sql.replace("WHERE team IS NOT NULL", "WHERE team IS NOT NULL AND experiment_id = ?")
        store.conn.execute(one, (experiment_id,))


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


#: (experiment, variant, user) -> [impressions, clicks, purchases, engagement_n,
#: engagement_sum, engagement_sumsq, first purchase ts or None]
UserTally = dict[tuple[int, str, int], list[Any]]

_USER_SLOT = {"impression": 0, "click": 1, "purchase": 2, "engagement": 3}


def tally_users(rows: Iterable[tuple[Any, ...]], into: UserTally | None = None) -> UserTally:
    """Event rows summed per user: what the per-row trigger of ``event_users`` would add."""
    acc: UserTally = {} if into is None else into
    get = acc.get
    slot = _USER_SLOT
    for exp_id, variant, user, _item, kind, value, ts in rows:
        key = (exp_id, variant, user)
        entry = get(key)
        if entry is None:
            entry = acc[key] = [0, 0, 0, 0, 0.0, 0.0, None]
        entry[slot[kind]] += 1
        if kind == "engagement" and value is not None:
            entry[4] += value
            entry[5] += value * value
        elif kind == "purchase" and (entry[6] is None or ts < entry[6]):
            entry[6] = ts
    return acc


def add_user_rows(store: Store, tally: UserTally) -> None:
    """Add a per-user tally to ``event_users`` (in the transaction of its events)."""
    if not store.conn.in_transaction:
        raise RuntimeError("add_user_rows must run inside store.write()")
    store.conn.executemany(ADD_EVENT_USERS_SQL, [(*k, *v) for k, v in tally.items()])


def served_pairs(rows: Iterable[tuple[Any, ...]]) -> set[tuple[int, int, int]]:
    """The distinct (experiment, user, item) of the impressions among event rows: what the
    trigger of ``served_items`` would add."""
    return {
        (exp_id, user, item)
        for exp_id, _variant, user, item, kind, _value, _ts in rows
        if kind == "impression" and item is not None
    }


def add_served(
    store: Store, pairs: Iterable[tuple[int, int, int]], *, ordered: bool = False
) -> None:
    """Add served pairs to ``served_items`` in key order (in the transaction of their
    events): sorted, the inserts walk the B-tree forward instead of jumping around it.
    ``ordered``: the pairs come sorted already."""
    if not store.conn.in_transaction:
        raise RuntimeError("add_served must run inside store.write()")
    store.conn.executemany(ADD_SERVED_ITEMS_SQL, pairs if ordered else sorted(pairs))


#: Adds served pairs given as one JSON array of ``user * 2**31 + item`` (both below 2**31):
#: the rows are made in SQLite, not bound one by one from Python (a third of the cost).
_ADD_SERVED_PACKED_SQL = (
    "INSERT OR IGNORE INTO served_items(experiment_id, user_id, item_id) "
    "SELECT ?, value >> 31, value & 2147483647 FROM json_each(?)"
)


def add_served_columns(store: Store, experiment_id: int, users: Any, items: Any) -> None:
    """``add_served`` for sorted numpy columns of distinct (user, item) pairs."""
    if not store.conn.in_transaction:
        raise RuntimeError("add_served must run inside store.write()")
    if len(users) == 0:
        return
    if int(users.max()) < 2**31 and int(items.max()) < 2**31 and int(items.min()) >= 0:
        packed = (users << 31) | items  # sorted pairs stay sorted
        store.conn.execute(_ADD_SERVED_PACKED_SQL, (experiment_id, json.dumps(packed.tolist())))
        return
    add_served(store, zip(repeat(experiment_id), users.tolist(), items.tolist()), ordered=True)


def add_counts(store: Store, tally: Tally) -> None:
    """Add a tally to ``event_counts`` (inside the transaction that inserts its events)."""
    if not store.conn.in_transaction:
        raise RuntimeError("add_counts must run inside store.write()")
    store.conn.executemany(
        ADD_EVENT_COUNTS_SQL, [(*key, n, lo, hi) for key, (n, lo, hi) in tally.items()]
    )


# -- one event --------------------------------------------------------------------------------
#: Event types that only make sense on an item the user was shown.
FOLLOWS_IMPRESSION = ("click", "purchase")


def was_served(store: Store, exp_id: int, user_id: int, item_id: int) -> bool:
    """Whether an impression of ``item_id`` was logged for the user in the experiment
    (one primary-key seek in ``served_items``, whatever the number of events)."""
    row = store.conn.execute(
        "SELECT 1 FROM served_items WHERE experiment_id = ? AND user_id = ? AND item_id = ?",
        (exp_id, user_id, item_id),
    ).fetchone()
    return row is not None


INSERT_UNSERVED_SQL = (
    "INSERT INTO unserved_events(experiment_id, variant, user_id, item_id, type, ts) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def log_event(
    store: Store,
    exp_ref: int | str | Experiment,
    user_ref: int | str,
    item_ref: int | str,
    event_type: str,
    value: float | None = None,
    *,
    ts: float | None = None,
    unserved: bool = False,
) -> Event:
    """Log one follow-up event with the user's stored variant; refuse anything invalid.

    A click or purchase on an item the user was never shown in this experiment (no
    impression of it) would count towards CTR and conversion without an exposure, so it is
    refused unless ``unserved`` (for systems that log exposures elsewhere); then it goes to
    ``unserved_events``, counted apart and in no KPI. With ``unserved`` a follow-up of an
    item that was served is an ordinary event.
    """
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
        apart = event_type in FOLLOWS_IMPRESSION and not was_served(store, exp.id, user.id, item.id)
        if apart and not unserved:
            raise InputError(
                f"item {item.id} was never served to user {user.username!r} in experiment "
                f"{exp.name!r}: nothing logged (pass --unserved to log it anyway)"
            )
        when = validate.check_ts(clock.now(), "the current time") if ts is None else float(ts)
        if apart:
            cur = conn.execute(
                INSERT_UNSERVED_SQL, (exp.id, variant, user.id, item.id, event_type, when)
            )
            return Event(
                int(cur.lastrowid or 0),
                exp.id,
                variant,
                user.id,
                item.id,
                event_type,
                value,
                when,
                unserved=True,
            )
        team = shown_team(store, exp.id, user.id, item.id) if exp.interleaving else None
        cur = conn.execute(
            INSERT_TEAM_EVENT_SQL,
            (exp.id, variant, user.id, item.id, event_type, value, when, team),
        )
        new_id = int(cur.lastrowid or 0)
    return Event(new_id, exp.id, variant, user.id, item.id, event_type, value, when, team)


_UNSERVED_AFTER_SQL = """\
SELECT e.id FROM events e
WHERE e.id > :after AND e.experiment_id = :experiment_id AND e.type IN ('click', 'purchase')
  AND NOT EXISTS (SELECT 1 FROM served_items s WHERE s.experiment_id = e.experiment_id
                  AND s.user_id = e.user_id AND s.item_id = e.item_id)"""


def set_apart_unserved(
    store: Store, exp: Experiment, after_id: int, *, allow: bool
) -> dict[str, dict[str, int]]:
    """After a bulk load (events with ids above ``after_id``, their served pairs and
    summaries in): refuse its clicks and purchases on items never served to their user in
    the experiment, or with ``allow`` move them to ``unserved_events`` and correct the
    summaries. Returns what was moved, {variant: {type: n}}.

    The check runs once the whole file is in, so an impression anywhere in the file
    counts; it reads only the new rows (a rowid range) with one seek per follow-up.
    """
    conn = store.conn
    if not conn.in_transaction:
        raise RuntimeError("set_apart_unserved must run inside store.write()")
    args = {"after": after_id, "experiment_id": exp.id}
    if not allow:
        first = conn.execute(_UNSERVED_AFTER_SQL + " LIMIT 1", args).fetchone()
        if first is None:
            return {}
        n = conn.execute(f"SELECT COUNT(*) FROM ({_UNSERVED_AFTER_SQL})", args).fetchone()[0]
        user, item, kind = conn.execute(
            "SELECT u.username, e.item_id, e.type FROM events e JOIN users u ON u.id = e.user_id "
            "WHERE e.id = ?",
            (first[0],),
        ).fetchone()
        raise InputError(
            f"{n:,} click/purchase row{'s' if n != 1 else ''} on items never served to the "
            f"user in experiment {exp.name!r} (first: {kind} of item {item} by {user!r}): "
            "nothing logged (pass --unserved to log them apart)"
        )
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _moved (id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM temp._moved")
    conn.execute(f"INSERT INTO temp._moved(id) {_UNSERVED_AFTER_SQL}", args)
    moved: dict[str, dict[str, int]] = {}
    for variant, kind, n in conn.execute(
        "SELECT variant, type, COUNT(*) FROM events WHERE id IN (SELECT id FROM temp._moved) "
        "GROUP BY variant, type"
    ):
        moved.setdefault(str(variant), {})[str(kind)] = int(n)
    if not moved:
        return {}
    conn.execute(
        "INSERT INTO unserved_events(experiment_id, variant, user_id, item_id, type, ts) "
        "SELECT experiment_id, variant, user_id, item_id, type, ts FROM events "
        "WHERE id IN (SELECT id FROM temp._moved) ORDER BY id"
    )
    # The summaries were added for every row of the load: recompute the users and the
    # hours the moved rows touched, from the events that stay (rare: one scan each).
    from smart_suggest.store import REBUILD_EVENT_COUNTS_SQL, REBUILD_EVENT_USERS_SQL, hour_sql

    conn.execute("DROP TABLE IF EXISTS temp._touched_users")
    conn.execute("DROP TABLE IF EXISTS temp._touched_hours")
    conn.execute(
        "CREATE TEMP TABLE _touched_users AS SELECT DISTINCT user_id FROM events "
        "WHERE id IN (SELECT id FROM temp._moved)"
    )
    conn.execute(
        f"CREATE TEMP TABLE _touched_hours AS SELECT DISTINCT {hour_sql('ts')} AS hour "
        "FROM events WHERE id IN (SELECT id FROM temp._moved)"
    )
    conn.execute("DELETE FROM events WHERE id IN (SELECT id FROM temp._moved)")
    conn.execute(
        "DELETE FROM event_users WHERE experiment_id = ? "
        "AND user_id IN (SELECT user_id FROM temp._touched_users)",
        (exp.id,),
    )
    conn.execute(
        REBUILD_EVENT_USERS_SQL.replace(
            "FROM events\n",
            "FROM events WHERE experiment_id = ? "
            "AND user_id IN (SELECT user_id FROM temp._touched_users)\n",
        ),
        (exp.id,),
    )
    conn.execute(
        "DELETE FROM event_counts WHERE experiment_id = ? AND type IN ('click', 'purchase') "
        "AND hour IN (SELECT hour FROM temp._touched_hours)",
        (exp.id,),
    )
    conn.execute(
        REBUILD_EVENT_COUNTS_SQL.replace(
            "FROM events\n",
            "FROM events WHERE experiment_id = ? AND type IN ('click', 'purchase') "
            f"AND {hour_sql('ts')} IN (SELECT hour FROM temp._touched_hours)\n",
        ),
        (exp.id,),
    )
    for table in ("_moved", "_touched_users", "_touched_hours"):
        conn.execute(f"DROP TABLE temp.{table}")
    return moved


def shown_team(store: Store, experiment_id: int, user_id: int, item_id: int) -> str | None:
    """Interleaving: the team the item was last shown to the user with, which a click or
    purchase of it is credited to (None: never shown, credited to no team)."""
    row = store.conn.execute(
        "SELECT team FROM team_items WHERE experiment_id = ? AND user_id = ? AND item_id = ?",
        (experiment_id, user_id, item_id),
    ).fetchone()
    return None if row is None else str(row[0])
