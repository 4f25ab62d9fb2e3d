"""Serving: assign a user to a variant, recommend with its strategy, log the impressions.

``assign_user`` applies the documented rule of ``assignment.py`` and stores the result with
``INSERT OR IGNORE`` on the primary key (experiment, user): calling it again, from any
process, returns the stored variant and never writes a second row.

Users outside the traffic fraction are *not in the experiment*: ``serve`` gives them the
control strategy's recommendations (what everyone would get without the experiment) but
stores no assignment and logs no impressions, so they never count in its KPIs.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smart_suggest import clock, validate
from smart_suggest.errors import InputError
from smart_suggest.experiments.assignment import experiment_variant, experiment_variants
from smart_suggest.experiments.events import (
    INSERT_EVENT_SQL,
    INSERT_TEAM_EVENT_SQL,
    insert_events,
)
from smart_suggest.experiments.lifecycle import Experiment, get_experiment, require_active
from smart_suggest.store import Store

if TYPE_CHECKING:
    from smart_suggest.recommend import Recommendation, Recommender

DEFAULT_COUNT = 5
MAX_COUNT = 100

ASSIGN_SQL = (
    "INSERT OR IGNORE INTO assignments(experiment_id, user_id, variant, assigned_at) "
    "VALUES (?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A user's place in an experiment. ``variant`` is None outside the traffic."""

    experiment_id: int
    user_id: int
    variant: str | None
    enrolled: bool
    new: bool  # this call stored the assignment
    assigned_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "user_id": self.user_id,
            "variant": self.variant,
            "enrolled": self.enrolled,
            "new": self.new,
            "assigned_at": None if self.assigned_at is None else clock.iso(self.assigned_at),
        }


def lookup_assignment(store: Store, exp: Experiment, user_id: int) -> Assignment:
    """The stored assignment, else what the rule *would* assign (read-only)."""
    row = store.conn.execute(
        "SELECT variant, assigned_at FROM assignments WHERE experiment_id = ? AND user_id = ?",
        (exp.id, user_id),
    ).fetchone()
    if row is not None:
        return Assignment(exp.id, user_id, str(row[0]), True, False, float(row[1]))
    variant = experiment_variant(exp, user_id)
    return Assignment(exp.id, user_id, variant, variant is not None, False, None)


def store_assignments(
    store: Store,
    exp: Experiment,
    user_ids: Iterable[int],
    assigned_at: float | Sequence[float],
) -> list[str | None]:
    """Assign many users by the rule and store the enrolled ones (INSERT OR IGNORE).

    ``assigned_at`` is one time for all or one per user. Returns each user's variant as
    stored (an earlier assignment wins). Must run inside ``store.write()``; the caller has
    checked that the experiment is active.
    """
    if not store.conn.in_transaction:
        raise RuntimeError("store_assignments must run inside store.write()")
    ids = list(user_ids)
    variants = experiment_variants(exp, ids)
    times = (
        [float(assigned_at)] * len(ids)
        if isinstance(assigned_at, int | float)
        else [float(t) for t in assigned_at]
    )
    if len(times) != len(ids):
        raise ValueError("assigned_at: one time per user")
    store.conn.executemany(
        ASSIGN_SQL,
        (
            (exp.id, uid, v, t)
            for uid, v, t in zip(ids, variants, times, strict=True)
            if v is not None
        ),
    )
    # Read back: a row stored earlier (by any process) is the truth.
    stored: dict[int, str] = {}
    for lo in range(0, len(ids), 500):
        chunk = ids[lo : lo + 500]
        marks = ",".join("?" * len(chunk))
        for uid, v in store.conn.execute(
            f"SELECT user_id, variant FROM assignments WHERE experiment_id = ? "
            f"AND user_id IN ({marks})",
            (exp.id, *chunk),
        ):
            stored[int(uid)] = str(v)
    return [stored.get(uid, v) if v else None for uid, v in zip(ids, variants, strict=True)]


def assign_user(
    store: Store, exp_ref: int | str | Experiment, user_ref: int | str, *, ts: float | None = None
) -> Assignment:
    """Assign a user (idempotent: the stored variant wins, never a second row)."""
    from smart_suggest.tracking import get_user

    with store.write() as conn:
        exp = require_active(get_experiment(store, exp_ref))
        user = get_user(store, user_ref)
        current = lookup_assignment(store, exp, user.id)
        if current.assigned_at is not None or current.variant is None:
            return current
        when = validate.check_ts(clock.now() if ts is None else ts)
        cur = conn.execute(ASSIGN_SQL, (exp.id, user.id, current.variant, when))
        if cur.rowcount == 1:
            return Assignment(exp.id, user.id, current.variant, True, True, when)
        return lookup_assignment(store, exp, user.id)


@dataclass(frozen=True, slots=True)
class Served:
    """What ``serve`` showed a user and what it logged."""

    experiment: Experiment
    user_id: int
    variant: str | None  # None: outside the traffic, served control, nothing logged
    enrolled: bool
    strategy: str
    recommendations: list[Recommendation] = field(default_factory=list)
    impressions: int = 0
    new_assignment: bool = False
    ts: float = 0.0
    #: Interleaving: the team of each shown item ("A", "B" or "both"), else empty.
    teams: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        recs = [r.to_dict() for r in self.recommendations]
        for rec, team in zip(recs, self.teams, strict=False):
            rec["team"] = team
        return {
            "experiment": self.experiment.name,
            "experiment_id": self.experiment.id,
            "user_id": self.user_id,
            "variant": self.variant,
            "enrolled": self.enrolled,
            "strategy": self.strategy,
            "new_assignment": self.new_assignment,
            "impressions": self.impressions,
            "ts": clock.iso(self.ts),
            "design": self.experiment.design,
            "recommendations": recs,
        }


def serve(
    store: Store,
    exp_ref: int | str | Experiment,
    user_ref: int | str,
    count: int = DEFAULT_COUNT,
    recommender: Recommender | None = None,
    rng: random.Random | None = None,
) -> Served:
    """Assign ``user_ref``, recommend ``count`` items with the variant's strategy, log them.

    One impression event per shown item, tagged with the experiment and the variant, all
    in one transaction with the assignment. In an interleaving experiment the list merges
    both strategies' rankings by team draft (``rng`` flips its coins) and each impression
    also carries the team that contributed the item. The recommendations are computed before the
    write lock is taken, so a slow strategy never blocks other writers.
    """
    from smart_suggest.recommend import Recommender, get_strategy
    from smart_suggest.tracking import get_user

    if not 1 <= count <= MAX_COUNT:
        raise InputError(f"count must be between 1 and {MAX_COUNT} (got {count})")
    exp = require_active(get_experiment(store, exp_ref))
    user = get_user(store, user_ref)
    planned = lookup_assignment(store, exp, user.id)
    if exp.interleaving and planned.variant is not None:
        return _serve_interleaved(store, exp, user.id, planned, count, recommender, rng)
    strategy = exp.strategy(planned.variant)
    get_strategy(strategy)  # a strategy removed from the registry: clear InputError
    engine = recommender if recommender is not None else Recommender(store)
    # A strategy may append extra items after its top-N (v1's cold items); a user is
    # shown exactly ``count``.
    recs = list(engine.recommend(user.id, strategy, count))[:count]
    when = validate.check_ts(clock.now(), "the current time")
    if planned.variant is None:
        return Served(exp, user.id, None, False, strategy, recs, 0, False, when)
    with store.write() as conn:
        exp = require_active(get_experiment(store, exp.id))  # stopped meanwhile?
        cur = conn.execute(ASSIGN_SQL, (exp.id, user.id, planned.variant, when))
        new = cur.rowcount == 1
        variant = lookup_assignment(store, exp, user.id).variant
        if variant != planned.variant:  # cannot happen with one rule; refuse loudly if it does
            raise InputError(f"user {user.id} changed variant during serve; nothing logged")
        insert_events(
            store,
            [(exp.id, variant, user.id, r.item_id, "impression", None, when) for r in recs],
        )
    return Served(exp, user.id, variant, True, strategy, recs, len(recs), new, when)


def _serve_interleaved(
    store: Store,
    exp: Experiment,
    user_id: int,
    planned: Assignment,
    count: int,
    recommender: Recommender | None,
    rng: random.Random | None,
) -> Served:
    from smart_suggest.experiments.interleaving import team_draft
    from smart_suggest.recommend import Recommender, get_strategy

    a, b = exp.variants[0].strategy, exp.variants[1].strategy
    get_strategy(a)
    get_strategy(b)
    engine = recommender if recommender is not None else Recommender(store)
    recs_a = list(engine.recommend(user_id, a, count))[:count]
    recs_b = list(engine.recommend(user_id, b, count))[:count]
    by_item = {r.item_id: r for r in recs_b}
    by_item.update({r.item_id: r for r in recs_a})
    picks = team_draft([r.item_id for r in recs_a], [r.item_id for r in recs_b], count, rng)
    recs = [by_item[p.item] for p in picks]
    teams = [p.team for p in picks]
    when = clock.now()
    label = f"{a} x {b} (interleaved)"
    with store.write() as conn:
        exp = require_active(get_experiment(store, exp.id))
        cur = conn.execute(ASSIGN_SQL, (exp.id, user_id, planned.variant, when))
        new = cur.rowcount == 1
        variant = lookup_assignment(store, exp, user_id).variant
        if variant != planned.variant:
            raise InputError(f"user {user_id} changed variant during serve; nothing logged")
        conn.executemany(
            INSERT_TEAM_EVENT_SQL,
            [(exp.id, variant, user_id, p.item, "impression", None, when, p.team) for p in picks],
        )
    return Served(exp, user_id, variant, True, label, recs, len(recs), new, when, teams)


__all__ = [
    "ASSIGN_SQL",
    "DEFAULT_COUNT",
    "INSERT_EVENT_SQL",
    "INSERT_TEAM_EVENT_SQL",
    "Assignment",
    "Served",
    "assign_user",
    "lookup_assignment",
    "serve",
    "store_assignments",
]
