"""Open, validate and migrate the SQLite database; its schema; the data revision.

Everything smart-suggest knows lives in one SQLite file. ``open_store`` refuses a file that
is not SQLite, belongs to another application or was written by a newer smart-suggest, and
it does so *before* changing anything (no WAL switch, no table created), so a wrong ``--db``
never damages someone else's file.

The data revision: triggers bump a counter in ``revisions`` on every insert, update and
delete of the tracked tables, in the same transaction as the change. Any process, reading
the counter with one cheap query, sees that another process changed the data and can
rebuild its caches (recommender snapshots, the TUI's panels) only then.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from smart_suggest.errors import DatabaseError, ReadOnlyError

#: ``PRAGMA application_id`` of a smart-suggest database ("SSUG" in ASCII).
APPLICATION_ID = 0x53535547
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
ENV_VAR = "SMART_SUGGEST_DB"

#: Revision scopes: which tables bump which counter.
#: ``catalog`` feeds the recommenders; ``experiments`` feeds KPIs and analysis.
REVISION_SCOPES: dict[str, tuple[str, ...]] = {
    "catalog": ("users", "items", "item_categories", "interactions"),
    "experiments": ("experiments", "assignments", "events", "unserved_events"),
}
#: The scopes as schema v1 created their triggers (migrations must not change with the code).
_V1_SCOPES: dict[str, tuple[str, ...]] = {
    "catalog": ("users", "items", "interactions"),
    "experiments": ("experiments", "assignments", "events"),
}

_SCHEMA_V1 = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE CHECK (length(username) > 0),
    created_at REAL NOT NULL
);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) > 0),
    category TEXT NOT NULL CHECK (length(category) > 0),
    description TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE interactions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('view', 'click', 'purchase')),
    ts REAL NOT NULL
);
CREATE INDEX interactions_user_ts ON interactions(user_id, ts);
CREATE INDEX interactions_item ON interactions(item_id);
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),
    description TEXT NOT NULL DEFAULT '',
    control TEXT NOT NULL,
    treatment TEXT NOT NULL,
    traffic_fraction REAL NOT NULL CHECK (traffic_fraction > 0 AND traffic_fraction <= 1),
    treatment_share REAL NOT NULL CHECK (treatment_share > 0 AND treatment_share < 1),
    primary_metric TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped')),
    created_at REAL NOT NULL,
    stopped_at REAL
);
CREATE TABLE assignments (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    variant TEXT NOT NULL CHECK (variant IN ('A', 'B')),
    assigned_at REAL NOT NULL,
    PRIMARY KEY (experiment_id, user_id)
) WITHOUT ROWID;
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    variant TEXT NOT NULL CHECK (variant IN ('A', 'B')),
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_id INTEGER REFERENCES items(id) ON DELETE SET NULL,
    type TEXT NOT NULL CHECK (type IN ('impression', 'click', 'purchase', 'engagement')),
    value REAL,
    ts REAL NOT NULL
);
CREATE INDEX events_exp_variant_type ON events(experiment_id, variant, type);
CREATE INDEX events_exp_ts ON events(experiment_id, ts);
CREATE INDEX events_exp_user ON events(experiment_id, user_id);
CREATE TABLE revisions (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""


def _revision_triggers(scope: str, table: str, *, if_not_exists: bool = False) -> list[str]:
    maybe = "IF NOT EXISTS " if if_not_exists else ""
    return [
        f"CREATE TRIGGER {maybe}{table}_{op.lower()}_rev AFTER {op} ON {table} "
        f"BEGIN UPDATE revisions SET value = value + 1 WHERE name = '{scope}'; END;"
        for op in ("INSERT", "UPDATE", "DELETE")
    ]


def _revision_sql() -> str:
    parts = []
    for scope, tables in _V1_SCOPES.items():
        parts.append(f"INSERT INTO revisions(name, value) VALUES ('{scope}', 0);")
        for table in tables:
            parts.extend(_revision_triggers(scope, table))
    return "\n".join(parts)


#: Forward migrations: ``MIGRATIONS[v]`` takes a database at version v-1 to version v.
# v2: covering indexes for the experiment KPIs (see smart_suggest/experiments/kpis.py).
# The per-user KPI pass groups an experiment's events by (variant, user) and reads type
# and value; the timeline counts events per (variant, type) in ts ranges. With these two
# indexes both read only the index, in order (no table lookups, no sort): results for
# 10M events in ~5 s instead of ~60 s. They replace the three v1 event indexes (the
# first extends (experiment_id, variant, type); (experiment_id, ts) and (experiment_id,
# user_id) had no reader but these KPIs), so an insert maintains two indexes, not three.
_SCHEMA_V2 = """
DROP INDEX events_exp_variant_type;
DROP INDEX events_exp_ts;
DROP INDEX events_exp_user;
CREATE INDEX events_exp_variant_type_ts ON events(experiment_id, variant, type, ts);
CREATE INDEX events_exp_variant_user ON events(experiment_id, variant, user_id, type, ts, value);
"""

# v3: the v2 indexes, reshaped after measuring at 10M events (keep v2 as it shipped):
#  - (experiment_id, variant, user_id, type): all the per-user KPI pass reads (clicks and
#    impressions per user, in GROUP BY order); a smaller key makes inserts cheaper;
#  - (experiment_id, variant, type, ts, user_id, value): timeline counts are range seeks,
#    and engagement sums and first purchases read only the range of their event type
#    (engagement and purchases no longer scan every event of the experiment).
_SCHEMA_V3 = """
DROP INDEX events_exp_variant_type_ts;
DROP INDEX events_exp_variant_user;
CREATE INDEX events_exp_variant_user ON events(experiment_id, variant, user_id, type);
CREATE INDEX events_exp_variant_type_ts ON events(experiment_id, variant, type, ts, user_id, value);
"""


def hour_sql(ts: str) -> str:
    """SQL for ``floor(ts / 3600.0)`` as an integer (the UTC hour of a Unix time).

    Written with CAST (which truncates toward zero) instead of floor(): SQLite's math
    functions are a compile-time option that not every Python's SQLite has. Python's
    ``math.floor(ts / 3600.0)`` gives the same integer (the same IEEE division).
    """
    h = f"({ts}) / 3600.0"
    return f"(CAST({h} AS INTEGER) - ({h} < CAST({h} AS INTEGER)))"


#: Adds a row to an hourly count (one event from a trigger, or a pre-tallied batch).
_COUNT_UPSERT = """\
ON CONFLICT (experiment_id, variant, type, hour) DO UPDATE SET
    n = n + excluded.n,
    first_ts = min(first_ts, excluded.first_ts),
    last_ts = max(last_ts, excluded.last_ts)"""

#: Adds a batch of pre-tallied counts: rows ``(experiment_id, variant, type, hour, n,
#: first_ts, last_ts)`` (the bulk paths, which set the per-row triggers aside).
ADD_EVENT_COUNTS_SQL = (
    "INSERT INTO event_counts(experiment_id, variant, type, hour, n, first_ts, last_ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)\n" + _COUNT_UPSERT
)

#: Recomputes ``event_counts`` from ``events`` (after a load that replaced the events).
REBUILD_EVENT_COUNTS_SQL = f"""\
INSERT INTO event_counts(experiment_id, variant, type, hour, n, first_ts, last_ts)
SELECT experiment_id, variant, type, {hour_sql("ts")}, COUNT(*), MIN(ts), MAX(ts)
FROM events
GROUP BY experiment_id, variant, type, {hour_sql("ts")}"""

#: Takes the OLD event out of its hourly count (and drops the count when it reaches 0).
#: The bucket's first_ts / last_ts stay as they were: events are deleted only with their
#: whole experiment, whose counts go with it.
_OLD_BUCKET = (
    "experiment_id = OLD.experiment_id AND variant = OLD.variant AND type = OLD.type "
    f"AND hour = {hour_sql('OLD.ts')}"
)
_COUNT_REMOVE_OLD = f"""\
UPDATE event_counts SET n = n - 1 WHERE {_OLD_BUCKET};
    DELETE FROM event_counts WHERE {_OLD_BUCKET} AND n <= 0;"""


def _per_type(row: str, kind: str, then: str = "1", other: str = "0") -> str:
    return f"CASE WHEN {row}.type = '{kind}' THEN {then} ELSE {other} END"


def _user_values(row: str) -> str:
    """One event's contribution to its user's row of ``event_users``."""
    return ", ".join(
        [
            f"{row}.experiment_id, {row}.variant, {row}.user_id",
            _per_type(row, "impression"),
            _per_type(row, "click"),
            _per_type(row, "purchase"),
            _per_type(row, "engagement"),
            _per_type(row, "engagement", f"COALESCE({row}.value, 0)"),
            _per_type(row, "engagement", f"COALESCE({row}.value * {row}.value, 0)"),
            _per_type(row, "purchase", f"{row}.ts", "NULL"),
        ]
    )


_USER_COLUMNS = (
    "experiment_id, variant, user_id, impressions, clicks, purchases, engagement_n, "
    "engagement_sum, engagement_sumsq, first_purchase_ts"
)

#: Adds to a user's row (one event from a trigger, or a pre-tallied batch).
_USER_UPSERT = """\
ON CONFLICT (experiment_id, variant, user_id) DO UPDATE SET
    impressions = impressions + excluded.impressions,
    clicks = clicks + excluded.clicks,
    purchases = purchases + excluded.purchases,
    engagement_n = engagement_n + excluded.engagement_n,
    engagement_sum = engagement_sum + excluded.engagement_sum,
    engagement_sumsq = engagement_sumsq + excluded.engagement_sumsq,
    first_purchase_ts = CASE
        WHEN excluded.first_purchase_ts IS NULL THEN first_purchase_ts
        WHEN first_purchase_ts IS NULL THEN excluded.first_purchase_ts
        ELSE min(first_purchase_ts, excluded.first_purchase_ts) END"""

#: Adds a batch of pre-tallied user rows (the bulk paths): ``(experiment_id, variant,
#: user_id, impressions, clicks, purchases, engagement_n, engagement_sum,
#: engagement_sumsq, first_purchase_ts)``.
ADD_EVENT_USERS_SQL = (
    f"INSERT INTO event_users({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)\n"
    + _USER_UPSERT
)

#: Recomputes ``event_users`` from ``events`` (after a load that replaced the events).
REBUILD_EVENT_USERS_SQL = f"""\
INSERT INTO event_users({_USER_COLUMNS})
SELECT experiment_id, variant, user_id,
       SUM(CASE WHEN type = 'impression' THEN 1 ELSE 0 END),
       SUM(CASE WHEN type = 'click' THEN 1 ELSE 0 END),
       SUM(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END),
       SUM(CASE WHEN type = 'engagement' THEN 1 ELSE 0 END),
       COALESCE(SUM(CASE WHEN type = 'engagement' THEN value END), 0),
       COALESCE(SUM(CASE WHEN type = 'engagement' THEN value * value END), 0),
       MIN(CASE WHEN type = 'purchase' THEN ts END)
FROM events
GROUP BY experiment_id, variant, user_id"""

#: Takes the OLD event out of its user's row (dropped when nothing is left). A user's
#: first purchase time is kept unless their last purchase goes: events are deleted only
#: with their whole experiment, whose rows go with it. (An event cannot be changed at all:
#: a trigger refuses it, since a summary could not take an earliest time back.)
_USER_REMOVE_OLD = f"""\
UPDATE event_users SET
        impressions = impressions - {_per_type("OLD", "impression")},
        clicks = clicks - {_per_type("OLD", "click")},
        purchases = purchases - {_per_type("OLD", "purchase")},
        engagement_n = engagement_n - {_per_type("OLD", "engagement")},
        engagement_sum = engagement_sum
            - {_per_type("OLD", "engagement", "COALESCE(OLD.value, 0)")},
        engagement_sumsq = engagement_sumsq
            - {_per_type("OLD", "engagement", "COALESCE(OLD.value * OLD.value, 0)")},
        first_purchase_ts = CASE WHEN OLD.type = 'purchase' AND purchases <= 1 THEN NULL
                                 ELSE first_purchase_ts END
    WHERE experiment_id = OLD.experiment_id AND variant = OLD.variant
      AND user_id = OLD.user_id;
    DELETE FROM event_users
    WHERE experiment_id = OLD.experiment_id AND variant = OLD.variant
      AND user_id = OLD.user_id
      AND impressions + clicks + purchases + engagement_n <= 0;"""

_USER_ADD_NEW = f"""\
INSERT INTO event_users({_USER_COLUMNS}) VALUES ({_user_values("NEW")})
    {_USER_UPSERT};"""

_COUNT_ADD_NEW = f"""\
INSERT INTO event_counts(experiment_id, variant, type, hour, n, first_ts, last_ts)
    VALUES (NEW.experiment_id, NEW.variant, NEW.type, {hour_sql("NEW.ts")}, 1, NEW.ts, NEW.ts)
    {_COUNT_UPSERT};"""

# v4: two summaries of the events, kept by triggers in the same transaction as the events,
# replace both event indexes:
#  - event_counts, per (experiment, variant, type, UTC hour): n, first and last time; the
#    timeline and the event span read a few hundred rows;
#  - event_users, per (experiment, variant, user): counts per type, engagement sums and the
#    first purchase time; the KPIs read one row per user instead of grouping the events.
# Measured on 1M events appended to 1M: the (variant, type, ts) index cost ~3.3 s and the
# per-user index ~1.3 s of a ~5.8 s insert (an index entry per event, at a random place);
# the bulk paths now add one pre-tallied row per hour and per user instead. ``events``
# keeps no secondary index: nothing reads it by anything but the experiment. Events are
# facts: they cannot be updated (the item of a deleted item still becomes NULL: that
# column is not summarised).
_SCHEMA_V4 = f"""
DROP INDEX events_exp_variant_type_ts;
DROP INDEX events_exp_variant_user;
CREATE TABLE event_counts (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    variant TEXT NOT NULL,
    type TEXT NOT NULL,
    hour INTEGER NOT NULL,
    n INTEGER NOT NULL,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL,
    PRIMARY KEY (experiment_id, variant, type, hour)
) WITHOUT ROWID;
CREATE TABLE event_users (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    variant TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    impressions INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    purchases INTEGER NOT NULL,
    engagement_n INTEGER NOT NULL,
    engagement_sum REAL NOT NULL,
    engagement_sumsq REAL NOT NULL,
    first_purchase_ts REAL,
    PRIMARY KEY (experiment_id, variant, user_id)
) WITHOUT ROWID;
{REBUILD_EVENT_COUNTS_SQL};
{REBUILD_EVENT_USERS_SQL};
CREATE TRIGGER events_insert_summaries AFTER INSERT ON events BEGIN
    {_COUNT_ADD_NEW}
    {_USER_ADD_NEW}
END;
CREATE TRIGGER events_delete_summaries AFTER DELETE ON events BEGIN
    {_COUNT_REMOVE_OLD}
    {_USER_REMOVE_OLD}
END;
CREATE TRIGGER events_are_facts
BEFORE UPDATE OF experiment_id, variant, user_id, type, value, ts ON events BEGIN
    SELECT RAISE(ABORT, 'events cannot be changed, only logged or deleted with their experiment');
END;
"""


def _guard(table: str, rules: list[tuple[str, str, str]], updates: bool = True) -> str:
    """BEFORE INSERT (and UPDATE) triggers refusing a row that breaks one of ``rules``:
    (the NEW column it is about, the SQL condition that must hold, the message)."""
    ops = ("INSERT", "UPDATE") if updates else ("INSERT",)
    parts = []
    for op in ops:
        # An update may leave a value an older version stored as it was.
        keep = "" if op == "INSERT" else "NEW.{col} IS OLD.{col} OR "
        checks = "\n    ".join(
            f"SELECT RAISE(ABORT, '{message}') WHERE NOT ({keep.format(col=col)}{cond});"
            for col, cond, message in rules
        )
        parts.append(
            f"CREATE TRIGGER {table}_values_{op.lower()} BEFORE {op} ON {table} BEGIN\n"
            f"    {checks}\nEND;"
        )
    return "\n".join(parts)


def _schema_v5() -> str:
    """v5: the value rules of ``smart_suggest.validate`` where SQLite can hold them.

    Triggers rather than table CHECKs: ``assignments`` and ``events`` keep their
    definitions (a later version rebuilds them), and the other tables need no rebuild. The
    Python validator runs first on every write path and names the bad value; these catch
    whatever bypasses it. Rows already stored stay as they were: every reader copes with
    them (``clock.iso`` marks an out-of-range time). The bulk paths set triggers aside
    while they load validated rows, so these cost nothing there.
    """
    from smart_suggest.validate import sql_ts, sql_value

    def ts(col: str) -> tuple[str, str, str]:
        return col, sql_ts(f"NEW.{col}"), f"{col} out of range (1970..2200)"

    def text(col: str) -> tuple[str, str, str]:
        return col, f"typeof(NEW.{col}) = 'text'", f"{col} must be text"

    def ident(col: str) -> tuple[str, str, str]:
        cond = f"typeof(NEW.{col}) = 'integer' AND NEW.{col} > 0"
        return col, cond, f"{col} must be an id"

    return "\n".join(
        [
            _guard("users", [text("username"), ts("created_at")]),
            _guard(
                "items", [text("name"), text("category"), text("description"), ts("created_at")]
            ),
            _guard("interactions", [ts("ts")]),
            _guard(
                "experiments",
                [
                    ts("created_at"),
                    (
                        "stopped_at",
                        "NEW.stopped_at IS NULL OR " + sql_ts("NEW.stopped_at"),
                        "stopped_at out of range (1970..2200)",
                    ),
                    (
                        "primary_metric",
                        "NEW.primary_metric IS NULL OR NEW.primary_metric IN "
                        "('ctr', 'conversion_rate', 'engagement')",
                        "unknown primary_metric",
                    ),
                    (
                        "status",
                        "(NEW.status = 'stopped') = (NEW.stopped_at IS NOT NULL)",
                        "stopped_at must be set exactly when the experiment is stopped",
                    ),
                ],
            ),
            _guard("assignments", [ident("user_id"), ts("assigned_at")], updates=False),
            _guard(
                "events",
                [
                    ident("user_id"),
                    ts("ts"),
                    (
                        "value",
                        "CASE WHEN NEW.type = 'engagement' THEN "
                        + sql_value("NEW.value")
                        + " ELSE NEW.value IS NULL END",
                        "value must be engagement seconds (0 to 1e9) and only on engagement",
                    ),
                ],
                updates=False,  # events cannot be updated at all (events_are_facts)
            ),
        ]
    )


# v7: hyper-parameters chosen by ``smart-suggest tune`` (smart_suggest/tuning.py), one row
# per tuning run and strategy, tagged with the catalog data revision they were tuned on.
# Rows are only appended: the newest row of a strategy is the one in use, older ones are
# the history. Not part of any revision scope (tuning changes no data the models read).
# IF NOT EXISTS: a file whose version number was set back (by hand, or by a tool that
# re-applies an earlier migration) still upgrades.
_SCHEMA_V7 = """
CREATE TABLE IF NOT EXISTS tuned_params (
    id INTEGER PRIMARY KEY,
    strategy TEXT NOT NULL CHECK (length(strategy) > 0),
    params TEXT NOT NULL CHECK (json_valid(params) AND json_type(params) = 'object'),
    revision INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tuned_params_strategy ON tuned_params(strategy, id);
"""

#: Per (experiment, user, team) of an interleaving experiment: the events credited to that
#: team (``events.team``). Follow-ups are credited to the team the item was shown with.
REBUILD_EVENT_TEAMS_SQL = """\
INSERT INTO event_teams(experiment_id, user_id, team, impressions, clicks, purchases)
SELECT experiment_id, user_id, team,
       SUM(CASE WHEN type = 'impression' THEN 1 ELSE 0 END),
       SUM(CASE WHEN type = 'click' THEN 1 ELSE 0 END),
       SUM(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END)
FROM events
WHERE team IS NOT NULL
GROUP BY experiment_id, user_id, team"""

#: Per (experiment, user, item) of an interleaving experiment: the team of the item's
#: latest impression, which a later click or purchase of that item is credited to.
REBUILD_TEAM_ITEMS_SQL = """\
INSERT INTO team_items(experiment_id, user_id, item_id, team, ts)
SELECT experiment_id, user_id, item_id, team, ts FROM (
    SELECT experiment_id, user_id, item_id, team, ts,
           ROW_NUMBER() OVER (PARTITION BY experiment_id, user_id, item_id
                              ORDER BY ts DESC, id DESC) AS latest
    FROM events
    WHERE team IS NOT NULL AND type = 'impression' AND item_id IS NOT NULL
) WHERE latest = 1"""

_TEAM_UPSERT = """\
ON CONFLICT (experiment_id, user_id, team) DO UPDATE SET
    impressions = impressions + excluded.impressions,
    clicks = clicks + excluded.clicks,
    purchases = purchases + excluded.purchases"""

#: Adds pre-tallied team rows ``(experiment_id, user_id, team, impressions, clicks,
#: purchases)`` (the bulk paths, which set the per-row triggers aside).
ADD_EVENT_TEAMS_SQL = (
    "INSERT INTO event_teams(experiment_id, user_id, team, impressions, clicks, purchases) "
    "VALUES (?, ?, ?, ?, ?, ?)\n" + _TEAM_UPSERT
)
_ITEM_UPSERT = """\
ON CONFLICT (experiment_id, user_id, item_id) DO UPDATE SET
    team = CASE WHEN excluded.ts >= ts THEN excluded.team ELSE team END,
    ts = max(ts, excluded.ts)"""
#: Records the team items were shown with: rows ``(experiment_id, user_id, item_id, team,
#: ts)`` (the bulk paths).
ADD_TEAM_ITEMS_SQL = (
    "INSERT INTO team_items(experiment_id, user_id, item_id, team, ts) VALUES (?, ?, ?, ?, ?)\n"
    + _ITEM_UPSERT
)

#: The label of a variant: one capital letter (A is the control). ``AB`` marks the users
#: of an interleaving experiment, who see both strategies merged (their events carry the
#: contributing team in ``events.team``).
VARIANT_CHECK = "variant GLOB '[A-Z]' OR variant = 'AB'"
INTERLEAVED = "AB"

# v8: experiments with k variants and a design.
#  - experiments.design: 'ab' (each user sees one variant) or 'interleaving' (each user
#    sees both strategies' lists merged by team-draft interleaving);
#  - experiment_variants: label (A, B, C, ...), strategy and weight per experiment, filled
#    from control / treatment / treatment_share for the experiments already there (A =
#    control with weight 1 - share, B = treatment with weight share: the same assignment);
#  - assignments.variant and events.variant allow any label (the old CHECK allowed A and B
#    only; SQLite cannot alter a CHECK, so both tables are rebuilt, keeping every other
#    constraint, and every index and trigger, whoever added them);
#  - events.team ('A', 'B', 'both'; NULL outside interleaving) with two summaries kept by
#    triggers: event_teams (credit per user and team) and team_items (the team an item was
#    last shown with, to credit a later click).
_SCHEMA_V8_SQL = f"""
ALTER TABLE experiments ADD COLUMN design TEXT NOT NULL DEFAULT 'ab'
    CHECK (design IN ('ab', 'interleaving'));
CREATE TABLE experiment_variants (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    label TEXT NOT NULL CHECK (label GLOB '[A-Z]'),
    strategy TEXT NOT NULL CHECK (length(strategy) > 0),
    weight REAL NOT NULL CHECK (weight > 0),
    PRIMARY KEY (experiment_id, label)
) WITHOUT ROWID;
INSERT INTO experiment_variants(experiment_id, label, strategy, weight)
SELECT id, 'A', control, 1.0 - treatment_share FROM experiments
UNION ALL
SELECT id, 'B', treatment, treatment_share FROM experiments;
CREATE TRIGGER experiment_variants_insert_rev AFTER INSERT ON experiment_variants
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'experiments'; END;
CREATE TABLE event_teams (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    team TEXT NOT NULL CHECK (team IN ('A', 'B', 'both')),
    impressions INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    purchases INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, user_id, team)
) WITHOUT ROWID;
CREATE TABLE team_items (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    team TEXT NOT NULL CHECK (team IN ('A', 'B', 'both')),
    ts REAL NOT NULL,
    PRIMARY KEY (experiment_id, user_id, item_id)
) WITHOUT ROWID;
CREATE TRIGGER events_insert_teams AFTER INSERT ON events WHEN NEW.team IS NOT NULL BEGIN
    INSERT INTO event_teams(experiment_id, user_id, team, impressions, clicks, purchases)
    VALUES (NEW.experiment_id, NEW.user_id, NEW.team, {_per_type("NEW", "impression")},
            {_per_type("NEW", "click")}, {_per_type("NEW", "purchase")})
    {_TEAM_UPSERT};
    INSERT INTO team_items(experiment_id, user_id, item_id, team, ts)
    SELECT NEW.experiment_id, NEW.user_id, NEW.item_id, NEW.team, NEW.ts
    WHERE NEW.type = 'impression' AND NEW.item_id IS NOT NULL
    {_ITEM_UPSERT};
END;
CREATE TRIGGER events_delete_teams AFTER DELETE ON events WHEN OLD.team IS NOT NULL BEGIN
    UPDATE event_teams SET
        impressions = impressions - {_per_type("OLD", "impression")},
        clicks = clicks - {_per_type("OLD", "click")},
        purchases = purchases - {_per_type("OLD", "purchase")}
    WHERE experiment_id = OLD.experiment_id AND user_id = OLD.user_id AND team = OLD.team;
    DELETE FROM event_teams
    WHERE experiment_id = OLD.experiment_id AND user_id = OLD.user_id AND team = OLD.team
      AND impressions + clicks + purchases <= 0;
END;
CREATE TRIGGER events_team_is_fact BEFORE UPDATE OF team ON events BEGIN
    SELECT RAISE(ABORT, 'events cannot be changed, only logged or deleted with their experiment');
END;
"""

_OLD_VARIANT_CHECK = re.compile(r"CHECK\s*\(\s*variant\s+IN\s*\(\s*'A'\s*,\s*'B'\s*\)\s*\)")


def _rebuild_table(conn: sqlite3.Connection, table: str, transform: Any) -> None:
    """Rebuild ``table`` with ``transform(create_sql)`` as its definition (SQLite cannot
    alter a constraint). The caller has set every trigger aside; the table's indexes are
    read from ``sqlite_master`` here and recreated as they were."""
    (create,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        )
    ]
    new_sql = transform(create)
    head = re.match(r"\s*CREATE\s+TABLE\s+(\"[^\"]+\"|\S+)", new_sql, re.IGNORECASE)
    if head is None:
        raise sqlite3.DatabaseError(f"cannot read the definition of table {table}")
    temp = f"_v8_new_{table}"
    new_sql = f'CREATE TABLE "{temp}"' + new_sql[head.end() :]
    conn.execute(new_sql)
    cols = ", ".join(f'"{r[1]}"' for r in conn.execute(f'PRAGMA table_info("{table}")'))
    conn.execute(f'INSERT INTO "{temp}"({cols}) SELECT {cols} FROM "{table}"')
    conn.execute(f'DROP TABLE "{table}"')
    conn.execute(f'ALTER TABLE "{temp}" RENAME TO "{table}"')
    for sql in indexes:
        conn.execute(sql)


def _schema_v8(conn: sqlite3.Connection) -> None:
    cols = {r[1] for r in conn.execute("PRAGMA table_info(experiments)")}
    if "design" in cols:
        # The schema is already v8's (a file whose version number was set back, e.g. by
        # hand): nothing to do, and rebuilding again would fail on the widened CHECK.
        return
    # Every trigger is set aside while the two tables are rebuilt: a trigger of another
    # table that names them (the revision counters, the summaries, value checks added by
    # other migrations) would make the DROP / RENAME fail or be rewritten. They are
    # recreated from their own text afterwards, in their original order.
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY rowid"
    ).fetchall()
    for name, _sql in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')

    def widen_variant(sql: str) -> str:
        new, n = _OLD_VARIANT_CHECK.subn(f"CHECK ({VARIANT_CHECK})", sql)
        if n != 1:
            raise sqlite3.DatabaseError("unexpected definition of the variant column")
        return new

    for table in ("assignments", "events"):
        _rebuild_table(conn, table, widen_variant)
    conn.execute("ALTER TABLE events ADD COLUMN team TEXT CHECK (team IN ('A', 'B', 'both'))")
    for _name, sql in triggers:
        conn.execute(sql)
    for statement in _split_sql(_SCHEMA_V8_SQL):
        conn.execute(statement)


#: The tables derived from ``events`` (kept by its triggers), emptied and rebuilt with it.
EVENT_SUMMARIES: dict[str, str] = {
    "event_counts": REBUILD_EVENT_COUNTS_SQL,
    "event_users": REBUILD_EVENT_USERS_SQL,
    "event_teams": REBUILD_EVENT_TEAMS_SQL,
    "team_items": REBUILD_TEAM_ITEMS_SQL,
    "served_items": "",  # filled in below, with its migration (v10)
}

#: What ``items.category`` holds for an item without any category (the column is NOT NULL).
NO_CATEGORY = "unknown"

# v6: several categories per item (genres, tags). ``item_categories`` holds each of an
# item's categories once, in the order given (``position``: "Action|Adventure" keeps
# Action first). ``items.category`` stays, as the item's first category (or "unknown"
# when it has none): the single label a narrow table column, the category filter and the
# diversity metric need, with no join on every read. Writers keep the two together
# (tracking.set_categories, the importer, the generators); two triggers keep a write
# that only knows ``items.category`` (a single-category item, as before v6) consistent:
# the item gets that one category. Today's categories migrate as one row per item;
# "unknown", the old placeholder of imports without an items file, means "no category"
# and gets no row. Every statement may meet its own result (IF NOT EXISTS, OR IGNORE): a
# file whose user_version was set back (as tests do to replay v5) migrates again cleanly.
_SCHEMA_V6 = f"""
CREATE TABLE IF NOT EXISTS item_categories (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    category TEXT NOT NULL CHECK (length(category) > 0),
    position INTEGER NOT NULL,
    PRIMARY KEY (item_id, category)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS item_categories_category ON item_categories(category);
INSERT OR IGNORE INTO item_categories(item_id, category, position)
    SELECT id, category, 0 FROM items WHERE category <> '{NO_CATEGORY}';
CREATE TRIGGER IF NOT EXISTS items_insert_category AFTER INSERT ON items
WHEN NEW.category <> '{NO_CATEGORY}' BEGIN
    INSERT OR IGNORE INTO item_categories(item_id, category, position)
    VALUES (NEW.id, NEW.category, 0);
END;
CREATE TRIGGER IF NOT EXISTS items_update_category AFTER UPDATE OF category ON items
WHEN NEW.category IS NOT OLD.category AND NOT EXISTS (
    SELECT 1 FROM item_categories WHERE item_id = NEW.id AND category = NEW.category
) BEGIN
    DELETE FROM item_categories WHERE item_id = NEW.id;
    INSERT OR IGNORE INTO item_categories(item_id, category, position)
    SELECT NEW.id, NEW.category, 0 WHERE NEW.category <> '{NO_CATEGORY}';
END;
{chr(10).join(_revision_triggers("catalog", "item_categories", if_not_exists=True))}
"""

#: v9: the looks of group-sequential tests (``analyze --sequential group --record-look``):
#: each look keeps the boundary and the alpha spent as they were computed then, so later
#: looks (in any process) continue the same design and never re-decide an earlier one.
#: The design (metric, spending, looks, planned units, alpha) is fixed by look 1 and
#: repeated on every row so a row is self-describing in an export.
_SCHEMA_V9 = """
CREATE TABLE IF NOT EXISTS sequential_looks (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    look INTEGER NOT NULL CHECK (look >= 1),
    ts REAL NOT NULL,
    metric TEXT NOT NULL CHECK (metric IN ('ctr', 'conversion_rate', 'engagement')),
    spending TEXT NOT NULL CHECK (spending IN ('obf', 'pocock')),
    planned_looks INTEGER NOT NULL CHECK (planned_looks >= 1),
    planned_units INTEGER NOT NULL CHECK (planned_units >= 1),
    alpha REAL NOT NULL CHECK (alpha > 0 AND alpha < 1),
    information REAL NOT NULL CHECK (information > 0 AND information <= 1),
    z REAL NOT NULL,
    boundary REAL CHECK (boundary IS NULL OR boundary >= 0),
    alpha_spent REAL NOT NULL CHECK (alpha_spent >= 0 AND alpha_spent <= alpha),
    PRIMARY KEY (experiment_id, look)
) WITHOUT ROWID;
"""

#: Per (experiment, user, item): the item was shown to the user in the experiment (an
#: impression). A click or purchase needs one (``experiments.events.was_served``).
REBUILD_SERVED_ITEMS_SQL = """\
INSERT OR IGNORE INTO served_items(experiment_id, user_id, item_id)
SELECT DISTINCT experiment_id, user_id, item_id FROM events
WHERE type = 'impression' AND item_id IS NOT NULL
ORDER BY 1, 2, 3"""
EVENT_SUMMARIES["served_items"] = REBUILD_SERVED_ITEMS_SQL

#: Adds the served pairs of bulk-loaded impressions (whose trigger is set aside).
ADD_SERVED_ITEMS_SQL = (
    "INSERT OR IGNORE INTO served_items(experiment_id, user_id, item_id) VALUES (?, ?, ?)"
)

#: v10: served items and unserved follow-ups.
#:  - ``served_items`` answers "was this item shown to this user in this experiment?" with
#:    one primary-key seek; before, ``was_served`` scanned ``events`` (which keeps no index,
#:    for bulk logging: see v4), ~1 s at 10M events for every refused click. One row per
#:    distinct (experiment, user, item), not per impression, kept by a trigger and by the
#:    bulk paths (which add each chunk's distinct pairs in key order).
#:  - ``unserved_events`` holds the clicks and purchases logged with ``--unserved`` on items
#:    the user was never shown here: they have no exposure, so they stay out of ``events``
#:    and every KPI, and the results count them on their own line.
_SCHEMA_V10 = f"""
CREATE TABLE IF NOT EXISTS served_items (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    PRIMARY KEY (experiment_id, user_id, item_id)
) WITHOUT ROWID;
{REBUILD_SERVED_ITEMS_SQL};
CREATE TRIGGER IF NOT EXISTS events_insert_served AFTER INSERT ON events
WHEN NEW.type = 'impression' AND NEW.item_id IS NOT NULL BEGIN
    INSERT OR IGNORE INTO served_items(experiment_id, user_id, item_id)
    VALUES (NEW.experiment_id, NEW.user_id, NEW.item_id);
END;
CREATE TABLE IF NOT EXISTS unserved_events (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    variant TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_id INTEGER REFERENCES items(id) ON DELETE SET NULL,
    type TEXT NOT NULL CHECK (type IN ('click', 'purchase')),
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS unserved_events_exp ON unserved_events(experiment_id, variant, type);
{chr(10).join(_revision_triggers("experiments", "unserved_events", if_not_exists=True))}
"""

#: v11: what a data source says about its users beyond their id (MovieLens ``users.dat``
#: and ``u.user``: gender, age, occupation, zip code; any users file: its columns), one
#: row per user and attribute, ``position`` keeping the file's column order. Name/value
#: rows rather than fixed columns: every source has other attributes (MovieLens 1M codes
#: the age as a group, 100K gives it in years), and nothing here computes with them.
#: Not a revision scope: the recommenders do not read attributes.
_SCHEMA_V11 = """
CREATE TABLE IF NOT EXISTS user_attributes (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) > 0),
    value TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (user_id, name)
);
"""


#: v12: a random stamp beside the catalog revision, drawn anew by every change (the same
#: triggers, ``stamp = random()``; a bulk load draws one for all its rows). The counter
#: alone cannot name the data: a backup restored over a file and written to again
#: reaches the same counter with other rows. (revision, stamp) can, so a recommender
#: snapshot saved to disk under that key (``recommend/persist.py``) is reused only by a
#: database holding exactly the data it was built from, whatever file or process wrote it.
#: Idempotent (a file whose user_version was set back migrates again cleanly).
def _schema_v12(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(revisions)")}
    if "stamp" not in columns:
        conn.execute("ALTER TABLE revisions ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE revisions SET stamp = random()")
    for table in ("users", "items", "item_categories", "interactions"):
        for op in ("INSERT", "UPDATE", "DELETE"):
            name = f"{table}_{op.lower()}_rev"
            conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
            conn.execute(
                f"CREATE TRIGGER {name} AFTER {op} ON {table} BEGIN UPDATE revisions "
                "SET value = value + 1, stamp = random() WHERE name = 'catalog'; END"
            )


#: v13: the lineage of the catalog key. Each write transaction through ``Store.write``
#: that moves the catalog (revision, stamp) records the key it started from beside the
#: key it left. A snapshot saved under an older key is then reusable after such writes,
#: row by row (``recommend/persist.py``), because the chain proves the saved data is an
#: ancestor of the current data. A write through any other path (the sqlite3 shell, a
#: bulk load's own bump is still recorded) leaves no record, so the chain breaks and
#: the snapshot is built again; a restored backup holds its own past only. Only keys
#: within ``LINEAGE_SPAN`` revisions are kept: further back a rebuild is cheaper.
_SCHEMA_V13 = """
CREATE TABLE IF NOT EXISTS catalog_lineage (
    after_revision INTEGER NOT NULL,
    after_stamp INTEGER NOT NULL,
    before_revision INTEGER NOT NULL,
    before_stamp INTEGER NOT NULL,
    PRIMARY KEY (after_revision, after_stamp)
) WITHOUT ROWID;
"""
#: Revisions of lineage kept: as many as the rows ``recommend.incremental`` applies.
LINEAGE_SPAN = 20_000


#: A migration is a SQL script or, where Python logic is needed, a callable on the
#: connection (run inside the migration's transaction).
Migration = str | Callable[[sqlite3.Connection], None]

MIGRATIONS: dict[int, Migration] = {
    1: _SCHEMA_V1 + _revision_sql(),
    2: _SCHEMA_V2,
    3: _SCHEMA_V3,
    4: _SCHEMA_V4,
    5: _schema_v5(),
    6: _SCHEMA_V6,
    7: _SCHEMA_V7,
    8: _schema_v8,
    9: _SCHEMA_V9,
    10: _SCHEMA_V10,
    11: _SCHEMA_V11,
    12: _schema_v12,
    13: _SCHEMA_V13,
}

#: Every table holding data, parents before children (export order; cleared in reverse).
TABLES = (
    "users",
    "items",
    "item_categories",
    "interactions",
    "user_attributes",
    "experiments",
    "experiment_variants",
    "assignments",
    "events",
    "sequential_looks",
    "unserved_events",
)

SCHEMA_VERSION = max(MIGRATIONS)


def default_db_path() -> Path:
    """``$SMART_SUGGEST_DB``, else ``smart-suggest.db`` in the user's data directory (XDG)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs  # only needed for the default location

    return platformdirs.user_data_path("smart-suggest") / "smart-suggest.db"


class Store:
    """An open smart-suggest database: its connection, transactions and revisions."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, *, read_only: str | None = None
    ) -> None:
        self.path = path
        self.conn = conn
        #: Why this store refuses writes ("opened read-only", "the file is read-only", ...),
        #: or None for a writable store.
        self.read_only = read_only
        self._db: Any = None
        self._file_key: tuple[int, int] | None = None
        self._checked = False  # passed the check for writes (smart_suggest.integrity)
        self._early_check: Any = None  # started by prepare_write, awaited by the first write

    @property
    def db(self) -> Any:
        """A sqlite-utils ``Database`` over the same connection (schema introspection).

        Imported on first use: sqlite-utils imports numpy (and pandas where installed) at
        import time, which would add about a second to every CLI command.
        """
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def prepare_write(self) -> None:
        """Start the integrity check of the first write now, in a thread (SQLite reads
        the file without the GIL), so that write does not wait for it: for a long-running
        process that will probably write (the TUI). Its first write still waits for the
        result and refuses a damaged file."""
        if self.read_only is not None or self._checked or self._early_check is not None:
            return
        from smart_suggest.integrity import start_check

        self._early_check = start_check(self.path)

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error.

        IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
        instead of failing with "database is locked" when a read lock cannot be upgraded.
        Nested use joins the outer transaction. A read-only store refuses before BEGIN.
        """
        if self.read_only is not None:
            raise ReadOnlyError(
                f"{self.path}: the database is open read-only ({self.read_only}); "
                "nothing was written"
            )
        if self.conn.in_transaction:
            yield self.conn
            return
        check = None
        if not self._checked:
            # Never write into a damaged file (``smart_suggest.integrity``): checked beside
            # the first write, which commits only once the check passed.
            from smart_suggest.integrity import start_check

            check, self._early_check = self._early_check, None
            if check is None:
                check = start_check(self.path)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            before = self.revision_stamp("catalog")
            try:
                yield self.conn
            except sqlite3.DatabaseError as exc:
                if check is not None and "malformed" in str(exc):
                    check.result()  # say so with the way out, when the check agrees
                raise
            if check is not None:
                check.result()
            self._record_lineage(before)
        except BaseException:
            _rollback(self.conn)
            raise
        self.conn.execute("COMMIT")
        self._checked = True

    def _record_lineage(self, before: tuple[int, int]) -> None:
        """Record that this transaction moved the catalog key from ``before`` (schema v13)."""
        after = self.revision_stamp("catalog")
        if after == before:
            return
        self.conn.execute(
            "INSERT OR REPLACE INTO catalog_lineage VALUES (?, ?, ?, ?)", (*after, *before)
        )
        self.conn.execute(
            "DELETE FROM catalog_lineage WHERE after_revision < ?", (after[0] - LINEAGE_SPAN,)
        )

    def catalog_parent(self, key: tuple[int, int]) -> tuple[int, int] | None:
        """The catalog key a recorded write transaction left ``key`` from, if any."""
        row = self.conn.execute(
            "SELECT before_revision, before_stamp FROM catalog_lineage "
            "WHERE after_revision = ? AND after_stamp = ?",
            key,
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    @contextmanager
    def bulk_load(
        self, tables: tuple[str, ...], *, drop_indexes: bool = True, trusted: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """Load many rows into ``tables`` fast, inside one write transaction.

        Per-row index maintenance and revision triggers dominate a million-row load, so
        the indexes and triggers of ``tables`` are dropped, rebuilt in one pass afterwards
        and the revisions bumped once. All of it is in the same transaction: a crash rolls
        back to the old data, indexes and triggers included. Worth it for large loads
        (seeding, importing into a mostly empty table); small appends should not use it.
        ``drop_indexes=False`` drops only the triggers: for appending many rows to a table
        already much bigger than the load (rebuilding its indexes would cost more).
        ``trusted=True`` skips per-row foreign-key checks (about a third of the insert
        cost) for rows that are consistent by construction, such as generated data.

        ``event_counts`` and ``event_users`` follow ``events`` through triggers, which are
        set aside here too: with ``drop_indexes`` they are rebuilt from ``events`` at the
        end; without, the caller keeps them (``ADD_EVENT_COUNTS_SQL`` and
        ``ADD_EVENT_USERS_SQL``, or a delete of the experiment's rows).
        """
        kinds = ("index", "trigger") if drop_indexes else ("trigger",)
        if trusted and not self.conn.in_transaction:
            # The pragma is a no-op inside a transaction, so it goes before BEGIN.
            self.conn.execute("PRAGMA foreign_keys = OFF")
            try:
                with self.bulk_load(tables, drop_indexes=drop_indexes) as conn:
                    yield conn
            finally:
                self.conn.execute("PRAGMA foreign_keys = ON")
            return
        with self.write() as conn:
            marks = ",".join("?" * len(tables))
            saved = conn.execute(
                "SELECT type, name, sql FROM sqlite_master "
                f"WHERE type IN ({','.join('?' * len(kinds))}) "
                f"AND tbl_name IN ({marks}) AND sql IS NOT NULL",
                (*kinds, *tables),
            ).fetchall()
            old_cache = conn.execute("PRAGMA cache_size").fetchone()[0]
            conn.execute("PRAGMA cache_size = -262144")  # 256 MiB while loading
            for kind, name, _sql in saved:
                conn.execute(f'DROP {kind.upper()} "{name}"')
            yield conn
            if drop_indexes:
                # Index builds and summary rebuilds sort the whole table: with the usual
                # in-memory temp store their sorters held every row (10M events: ~1 GB of
                # RSS). On disk, each sorter keeps a cache's worth in memory and merges
                # runs from temporary files. (Changing it drops temp tables: none here.)
                conn.execute("PRAGMA temp_store = FILE")
            try:
                for _kind, _name, sql in sorted(saved, key=lambda r: r[0] != "index"):
                    conn.execute(sql)
                if "events" in tables and drop_indexes:
                    # The events were replaced wholesale: summarise them again in one pass.
                    for table, rebuild in EVENT_SUMMARIES.items():
                        conn.execute(f"DELETE FROM {table}")
                        conn.execute(rebuild)
            finally:
                if drop_indexes:
                    conn.execute("PRAGMA temp_store = MEMORY")
            for scope, scope_tables in REVISION_SCOPES.items():
                if set(scope_tables) & set(tables):
                    conn.execute(
                        "UPDATE revisions SET value = value + 1, stamp = random() WHERE name = ?",
                        (scope,),
                    )
            conn.execute(f"PRAGMA cache_size = {int(old_cache)}")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot across several queries (a deferred transaction)."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        except BaseException:
            # Not a COMMIT in a finally: after an I/O error SQLite may have ended the
            # transaction itself, and "cannot commit - no transaction is active" would
            # replace the real error (a full disk) in the user's message.
            _rollback(self.conn)
            raise
        self.conn.execute("COMMIT")

    # -- queries --------------------------------------------------------------------------
    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    # -- revision -------------------------------------------------------------------------
    def revision(self, scope: str = "catalog") -> int:
        """Counter that changes whenever a table of ``scope`` changes, in any process."""
        value = self.scalar("SELECT value FROM revisions WHERE name = ?", (scope,))
        if value is None:
            raise KeyError(scope)
        return int(value)

    def revision_stamp(self, scope: str = "catalog") -> tuple[int, int]:
        """``revision(scope)`` and the random stamp every change of the scope draws anew
        (schema v12): together they name the data, across files and processes."""
        row = self.conn.execute(
            "SELECT value, stamp FROM revisions WHERE name = ?", (scope,)
        ).fetchone()
        if row is None:
            raise KeyError(scope)
        return int(row[0]), int(row[1])

    def counts(self) -> dict[str, int]:
        with self.read():
            return {t: int(self.scalar(f"SELECT count(*) FROM {t}")) for t in TABLES}

    def is_empty(self) -> bool:
        return not any(self.counts().values())

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def clear(self) -> None:
        """Delete every row of every table, in one transaction (all or nothing)."""
        with self.write() as conn:
            for table in EVENT_SUMMARIES:
                conn.execute(f"DELETE FROM {table}")
            for table in reversed(TABLES):
                conn.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        self.conn.close()
        _release(self)
        if self._checked:
            # The file as this Store leaves it (its last connection's checkpoint included)
            # differs from the checked one only by smart-suggest's own writes.
            from smart_suggest.integrity import remember

            self._checked = False
            remember(self.path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Database files, by (device, inode), that a Store of this process holds open.
#: Such a file must never be read with a plain open()/close(): closing *any* descriptor of
#: a file drops every POSIX lock the process holds on it, SQLite's included, and another
#: process may then take our connections for gone, checkpoint and delete the WAL under
#: them ("database disk image is malformed"; sqlite.org/howtocorrupt.html, section 2.2).
#: The TUI, for one, opens a second Store while its first is in use. Weak references: a
#: Store dropped without close() must not vouch for a later file that reuses the inode.
_OPEN_HERE: dict[tuple[int, int], weakref.WeakSet[Store]] = {}
_OPEN_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _register(store: Store) -> None:
    """Note that ``store`` holds its file open (before its first statement takes a lock)."""
    with _OPEN_LOCK:
        key = _file_key(store.path)
        if key is not None:
            _OPEN_HERE.setdefault(key, weakref.WeakSet()).add(store)
        store._file_key = key


def _release(store: Store) -> None:
    with _OPEN_LOCK:
        key, store._file_key = store._file_key, None
        if key is not None and key in _OPEN_HERE:
            _OPEN_HERE[key].discard(store)
            if not _OPEN_HERE[key]:
                del _OPEN_HERE[key]


def _held_here(path: Path) -> bool:
    key = _file_key(path)
    return key is not None and bool(_OPEN_HERE.get(key))


def _check_file(path: Path) -> bool:
    """Validate an existing file without writing to it; return True if it holds data."""
    if path.is_dir():
        raise DatabaseError(f"{path}: is a directory, not a database file")
    if not path.is_file():
        # A FIFO would block the read below forever; a device would get a journal beside it.
        raise DatabaseError(f"{path}: not a regular file (a device, pipe or socket)")
    with _OPEN_LOCK:
        if _held_here(path):
            return True  # validated when our open Store opened it; reading it would unlock it
        return _read_header(path)


def _read_header(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except PermissionError as exc:
        raise DatabaseError(f"{path}: cannot read the file ({exc.strerror})") from None
    except OSError as exc:
        raise DatabaseError(f"{path}: cannot read the file ({exc.strerror})") from None
    if header == b"":
        return False
    if header != SQLITE_HEADER:
        raise DatabaseError(f"{path}: not a SQLite database (wrong file header)")
    return True


def _writable(path: Path) -> bool:
    """Writable, and meant to be: root passes ``os.access`` whatever the mode bits say, so a
    file or folder without any write bit counts as read-only for root too."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(mode & 0o222)


def _connect(path: Path, uri_query: str = "") -> sqlite3.Connection:
    try:
        if uri_query:
            # A URI path: '?' and '#' in a file name must not start the query.
            from urllib.parse import quote

            target: str | Path = f"file:{quote(str(path.absolute()))}?{uri_query}"
        else:
            target = path
        conn = sqlite3.connect(
            target,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
            uri=bool(uri_query),
        )
    except sqlite3.Error as exc:
        raise DatabaseError(f"{path}: cannot open the database ({exc})") from None
    return conn


def _read_only_reason(path: Path, requested: bool) -> str | None:
    """Why an existing database must be opened read-only, or None to open it for writing."""
    if not _writable(path):
        return "the file is read-only"
    if not Path(f"{path}-wal").exists() and not _writable(path.parent):
        # SQLite must create the -wal and -shm files beside it to write (and to read a WAL
        # database without ``immutable``).
        return f"folder {path.parent} is read-only"
    if requested:
        return "opened read-only"
    return None


def open_store(path: Path | str | None = None, *, read_only: bool = False) -> Store:
    """Open (creating if needed) and migrate the database at ``path`` (default: see above).

    ``read_only=True`` opens an existing database for reading only; a file or folder that
    cannot (or, without any write bit, should not) be written is opened read-only by
    itself. Either way ``Store.read_only`` says why, and ``Store.write`` refuses. A database
    that nobody can be writing (no ``-wal`` file, and the file or its folder read-only) is
    opened ``immutable``: SQLite then creates no ``-wal``/``-shm`` files beside it, so the
    folder is left exactly as it was; otherwise ``mode=ro`` still sees other processes'
    commits (a server showing a shared database read-only while someone else writes).

    Raises ``DatabaseError`` with a one-line message naming the file and the cause; in
    that case the file on disk is left exactly as it was.
    """
    explicit = path is not None or bool(os.environ.get(ENV_VAR))
    path = Path(path).expanduser() if path is not None else default_db_path()
    if not path.parent.exists():
        if explicit or read_only:
            raise DatabaseError(f"{path}: folder {path.parent} does not exist")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"{path}: cannot create folder ({exc.strerror})") from None
    has_data = path.exists() and _check_file(path)
    reason = _read_only_reason(path, read_only) if path.exists() else None
    if reason is not None:
        if not has_data:
            raise DatabaseError(f"{path}: an empty file, and {reason}: nothing to read")
        return _open_read_only(path, reason)
    if not path.exists():
        if read_only:
            raise DatabaseError(f"{path}: no such database (read-only: not creating it)")
        if not _writable(path.parent):
            raise DatabaseError(f"{path}: cannot create the database, folder is read-only")
    conn = _connect(path)
    store = Store(path, conn)
    _register(store)  # before the first statement takes a lock (see _OPEN_HERE)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if has_data:
            _check_identity(conn, path)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < SCHEMA_VERSION:
            mode = _switch_to_wal(conn)
            if str(mode).lower() != "wal":
                raise DatabaseError(f"{path}: cannot switch the database to WAL mode ({mode})")
            _migrate(conn, version)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Statement journals and sorter spills go to memory: on a million-row load in one
        # transaction the on-disk statement journal alone cost ~7 writes per row.
        conn.execute("PRAGMA temp_store = MEMORY")
    except sqlite3.DatabaseError as exc:
        store.close()
        raise open_error(path, exc) from None
    except BaseException:
        store.close()
        raise
    return store


def _open_read_only(path: Path, reason: str) -> Store:
    """Open an existing database for reading only (see ``open_store``); never migrates."""
    immutable = not Path(f"{path}-wal").exists() and reason != "opened read-only"
    conn = _connect(path, "mode=ro&immutable=1" if immutable else "mode=ro")
    store = Store(path, conn, read_only=reason)
    _register(store)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _check_identity(conn, path)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < SCHEMA_VERSION:
            raise DatabaseError(
                f"{path}: schema {version} must be upgraded to {SCHEMA_VERSION} before it can "
                f"be read, which needs write access ({reason}); open it once with write access"
            )
        conn.execute("PRAGMA temp_store = MEMORY")
    except sqlite3.DatabaseError as exc:
        store.close()
        raise open_error(path, exc) from None
    except BaseException:
        store.close()
        raise
    return store


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """``PRAGMA journal_mode = WAL``, waiting for the lock like any other statement.

    The switch needs the database to itself, and SQLite reports "database is locked" at
    once (no busy handler) while another process creates or migrates the schema; several
    processes opening one new file at once would fail. Retried up to the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _check_identity(conn: sqlite3.Connection, path: Path) -> None:
    # One read snapshot: another process may be creating the schema right now, and reading
    # application_id before its commit and sqlite_master after it would call our own fresh
    # database "another application's".
    conn.execute("BEGIN")
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("COMMIT")
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{path}: written by a newer smart-suggest (schema {version}, this version "
                f"reads up to {SCHEMA_VERSION}); upgrade smart-suggest"
            )
        return
    if app_id != 0 or tables:
        raise DatabaseError(f"{path}: a SQLite database of another application, not smart-suggest")


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Apply every migration above ``version`` in one transaction (all or nothing)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read inside the lock: another process may have migrated meanwhile.
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        # Versions in order; a number may be skipped (work developed in parallel reserves
        # its version numbers up front), so iterate over the keys, not a range.
        for target in sorted(v for v in MIGRATIONS if current < v <= SCHEMA_VERSION):
            apply_migration(conn, target)
            conn.execute(f"PRAGMA user_version = {target}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def apply_migration(conn: sqlite3.Connection, target: int) -> None:
    """Run ``MIGRATIONS[target]`` (a script or a callable) on ``conn``, in its transaction."""
    migration = MIGRATIONS[target]
    if callable(migration):
        migration(conn)
        return
    for statement in _split_sql(migration):
        conn.execute(statement)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open, keeping the error that got us here.

    After a disk I/O error or a full disk SQLite may already have rolled back; a second
    error from ROLLBACK itself must not replace the first one in the user's message.
    """
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _split_sql(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def is_environment_error(exc: sqlite3.Error) -> bool:
    """A failure of the environment (lock held, full disk, I/O), not of the file itself."""
    if getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return True
    msg = str(exc)
    return "locked" in msg or "disk is full" in msg or "disk I/O" in msg


def open_error(path: Path, exc: sqlite3.Error) -> Exception:
    """The error to raise for ``exc`` on ``path``: a lock held too long, a full disk or an
    I/O error is the environment's (exit 1, like the same error in mid-command); anything
    else says the file cannot be used (exit 2)."""
    from smart_suggest.errors import SmartSuggestError

    cls = SmartSuggestError if is_environment_error(exc) else DatabaseError
    return cls(f"{path}: {describe_sqlite_error(exc)}")


def describe_sqlite_error(exc: sqlite3.Error) -> str:
    msg = str(exc)
    if "locked" in msg or getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
        return (
            f"the database is locked (another process held it for over "
            f"{BUSY_TIMEOUT_MS // 1000} s); try again"
        )
    if "readonly" in msg or "read-only" in msg:
        return "the database is read-only"
    if "disk is full" in msg or "database or disk is full" in msg:
        return "the disk is full"
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_IOERR_WRITE":
        # e.g. EFBIG (file size limit) or EIO: say it was a write, the likely causes.
        return "disk I/O error while writing (the disk may be full or failing)"
    if name in ("SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_SHMMAP", "SQLITE_IOERR_SHMOPEN"):
        # Even a read needs room for the WAL index (-shm) beside the database.
        return "disk I/O error on the WAL index file -shm (the disk may be full)"
    if name.startswith("SQLITE_IOERR"):
        return f"disk I/O error ({name}; the disk may be full or failing)"
    if "file is not a database" in msg or "malformed" in msg:
        return "not a valid SQLite database (corrupt or encrypted)"
    return msg
