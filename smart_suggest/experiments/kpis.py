"""KPIs per variant, aggregated in SQL: counts, sums and sums of squares.

Nothing here loads events into Python. One SQL statement, ``SUFFICIENT_STATS_SQL``,
computes per variant every number the statistics engine needs; it is plain standard SQL
(CTEs, CASE, COUNT/SUM, LEFT JOIN, COALESCE; no SQLite-only function), so the same
statistics can come from any SQL engine that holds an ``events`` and an ``assignments``
table with the columns of smart-suggest's schema (``analyze --print-sql`` prints it).
Here the same sums come from ``STORED_STATS_SQL`` over ``event_users``, the per-user
summary that triggers keep with the events, so reading them does not grow with the number
of events (integers equal; sums of seconds equal to rounding, added in another order).

Definitions (per variant):

* users_assigned: rows in ``assignments``; users_exposed: users with >= 1 impression;
* impressions, clicks, purchases: event counts; ctr = clicks / impressions;
* users_converted: distinct users with >= 1 purchase; conversion_rate = converted / exposed;
* engagement: one observation per engagement event (seconds): n, sum, sum of squares,
  mean and sample standard deviation (n - 1);
* the per-user ratio statistics of CTR, with the *exposed user* as the unit:
  n_users, sum_clicks, sum_impressions, sum_clicks_sq, sum_impressions_sq,
  sum_clicks_x_impressions (sums over users of x, y, x^2, y^2, x*y with x = clicks and
  y = impressions of the user). Clicks of users without an impression (possible only when
  clicks are logged without serving) count in ``clicks`` but not in these sums.

Undefined values (a rate with a zero denominator, an SD of fewer than two observations,
a relative lift over zero) are ``None``, never NaN, so JSON stays valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from smart_suggest import clock, validate
from smart_suggest.experiments.lifecycle import Experiment, get_experiment
from smart_suggest.store import Store

#: Users assigned per variant, and the variants: A and B always, and every other label
#: users were assigned to (C, D, ... of an A/B/n experiment).
_ASSIGNED_AND_VARIANTS = """\
assigned AS (
    SELECT variant, COUNT(*) AS users_assigned
    FROM assignments
    WHERE experiment_id = :experiment_id
    GROUP BY variant
),
variants AS (
    SELECT 'A' AS variant
    UNION
    SELECT 'B' AS variant
    UNION
    SELECT variant FROM assigned
)
"""

#: Per-variant sufficient statistics of one experiment (parameter ``:experiment_id``).
#: Reads ``events(experiment_id, variant, user_id, type, value)`` and
#: ``assignments(experiment_id, variant)``; returns rows A and B and one per other label.
#: This is the definition (``analyze --print-sql`` prints it); smart-suggest itself runs
#: ``STORED_STATS_SQL``, the same sums over the per-user summary ``event_users``.
SUFFICIENT_STATS_SQL = f"""\
WITH per_user AS (
    SELECT variant,
           user_id,
           SUM(CASE WHEN type = 'impression' THEN 1 ELSE 0 END) AS impressions,
           SUM(CASE WHEN type = 'click' THEN 1 ELSE 0 END) AS clicks,
           SUM(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END) AS purchases
    FROM events
    WHERE experiment_id = :experiment_id
    GROUP BY variant, user_id
),
per_variant AS (
    SELECT variant,
           SUM(CASE WHEN impressions > 0 THEN 1 ELSE 0 END) AS users_exposed,
           SUM(impressions) AS impressions,
           SUM(clicks) AS clicks,
           SUM(CASE WHEN purchases > 0 THEN 1 ELSE 0 END) AS users_converted,
           SUM(purchases) AS purchases,
           SUM(CASE WHEN impressions > 0 THEN clicks ELSE 0 END) AS sum_clicks,
           SUM(CASE WHEN impressions > 0 THEN clicks * clicks ELSE 0 END) AS sum_clicks_sq,
           SUM(impressions * impressions) AS sum_impressions_sq,
           SUM(clicks * impressions) AS sum_clicks_x_impressions
    FROM per_user
    GROUP BY variant
),
engagement AS (
    SELECT variant,
           COUNT(*) AS engagement_n,
           SUM(value) AS engagement_sum,
           SUM(value * value) AS engagement_sumsq
    FROM events
    WHERE experiment_id = :experiment_id AND type = 'engagement'
    GROUP BY variant
),
{_ASSIGNED_AND_VARIANTS}SELECT v.variant,
       COALESCE(a.users_assigned, 0) AS users_assigned,
       COALESCE(p.users_exposed, 0) AS users_exposed,
       COALESCE(p.impressions, 0) AS impressions,
       COALESCE(p.clicks, 0) AS clicks,
       COALESCE(p.users_converted, 0) AS users_converted,
       COALESCE(p.purchases, 0) AS purchases,
       COALESCE(g.engagement_n, 0) AS engagement_n,
       COALESCE(g.engagement_sum, 0) AS engagement_sum,
       COALESCE(g.engagement_sumsq, 0) AS engagement_sumsq,
       COALESCE(p.users_exposed, 0) AS n_users,
       COALESCE(p.sum_clicks, 0) AS sum_clicks,
       COALESCE(p.impressions, 0) AS sum_impressions,
       COALESCE(p.sum_clicks_sq, 0) AS sum_clicks_sq,
       COALESCE(p.sum_impressions_sq, 0) AS sum_impressions_sq,
       COALESCE(p.sum_clicks_x_impressions, 0) AS sum_clicks_x_impressions
FROM variants v
LEFT JOIN assigned a ON a.variant = v.variant
LEFT JOIN per_variant p ON p.variant = v.variant
LEFT JOIN engagement g ON g.variant = v.variant
ORDER BY v.variant
"""

#: The event sums per variant of ``STORED_STATS_SQL`` alone (no users assigned, no rows
#: for variants without events): ``results`` counts the assigned users from the daily
#: assignments it reads anyway, one pass over the assignments instead of two.
_EVENT_SUMS = """\
    SELECT variant,
           SUM(CASE WHEN impressions > 0 THEN 1 ELSE 0 END) AS users_exposed,
           SUM(impressions) AS impressions,
           SUM(clicks) AS clicks,
           SUM(CASE WHEN purchases > 0 THEN 1 ELSE 0 END) AS users_converted,
           SUM(purchases) AS purchases,
           SUM(CASE WHEN impressions > 0 THEN clicks ELSE 0 END) AS sum_clicks,
           SUM(CASE WHEN impressions > 0 THEN clicks * clicks ELSE 0 END) AS sum_clicks_sq,
           SUM(impressions * impressions) AS sum_impressions_sq,
           SUM(clicks * impressions) AS sum_clicks_x_impressions,
           SUM(engagement_n) AS engagement_n,
           SUM(engagement_sum) AS engagement_sum,
           SUM(engagement_sumsq) AS engagement_sumsq
    FROM event_users
    WHERE experiment_id = :experiment_id
    GROUP BY variant"""
_STORED_EVENT_SUMS_SQL = _EVENT_SUMS + "\nORDER BY variant\n"

#: ``SUFFICIENT_STATS_SQL`` over ``event_users`` (one row per user, kept by triggers in the
#: same transaction as the events): the per-user pass is already done. Tests check that
#: both give the same numbers.
STORED_STATS_SQL = f"""\
WITH per_variant AS (
{_EVENT_SUMS}
),
{_ASSIGNED_AND_VARIANTS}SELECT v.variant,
       COALESCE(a.users_assigned, 0) AS users_assigned,
       COALESCE(p.users_exposed, 0) AS users_exposed,
       COALESCE(p.impressions, 0) AS impressions,
       COALESCE(p.clicks, 0) AS clicks,
       COALESCE(p.users_converted, 0) AS users_converted,
       COALESCE(p.purchases, 0) AS purchases,
       COALESCE(p.engagement_n, 0) AS engagement_n,
       COALESCE(p.engagement_sum, 0) AS engagement_sum,
       COALESCE(p.engagement_sumsq, 0) AS engagement_sumsq,
       COALESCE(p.users_exposed, 0) AS n_users,
       COALESCE(p.sum_clicks, 0) AS sum_clicks,
       COALESCE(p.impressions, 0) AS sum_impressions,
       COALESCE(p.sum_clicks_sq, 0) AS sum_clicks_sq,
       COALESCE(p.sum_impressions_sq, 0) AS sum_impressions_sq,
       COALESCE(p.sum_clicks_x_impressions, 0) AS sum_clicks_x_impressions
FROM variants v
LEFT JOIN assigned a ON a.variant = v.variant
LEFT JOIN per_variant p ON p.variant = v.variant
ORDER BY v.variant
"""

#: Users assigned per UTC day and variant (for duration estimates and novelty checks).
DAILY_ASSIGNED_SQL = """\
SELECT CAST(assigned_at / 86400 AS INTEGER) AS day, variant, COUNT(*) AS users
FROM assignments
WHERE experiment_id = :experiment_id
GROUP BY CAST(assigned_at / 86400 AS INTEGER), variant
ORDER BY day, variant
"""

#: The hours of the accepted times (``validate``): events an older database holds outside
#: them are left out of spans and timelines, which could not show them.
HOURS_IN_RANGE = f"hour >= {int(validate.MIN_TS // 3600)} AND hour < {int(validate.MAX_TS // 3600)}"

#: First and last event time of an experiment, from the hourly ``event_counts`` (a few
#: hundred rows however many events there are).
SPAN_SQL = (
    "SELECT MIN(first_ts), MAX(last_ts) FROM event_counts WHERE experiment_id = :experiment_id "
    f"AND {HOURS_IN_RANGE}"
)


#: The metrics compared between variants (``lifts``): name -> VariantKPIs attribute.
LIFT_METRICS: dict[str, str] = {
    "ctr": "ctr",
    "conversion_rate": "conversion_rate",
    "engagement": "engagement_mean",
}


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


@dataclass(frozen=True, slots=True)
class VariantKPIs:
    """KPIs and sufficient statistics of one variant (all sums exact, nothing rounded)."""

    variant: str
    strategy: str
    users_assigned: int
    users_exposed: int
    impressions: int
    clicks: int
    ctr: float | None
    users_converted: int
    conversion_rate: float | None
    purchases: int
    engagement_n: int
    engagement_sum: float
    engagement_sumsq: float
    engagement_mean: float | None
    engagement_sd: float | None
    # CTR with the exposed user as the unit (x = clicks, y = impressions per user).
    n_users: int
    sum_clicks: int
    sum_impressions: int
    sum_clicks_sq: int
    sum_impressions_sq: int
    sum_clicks_x_impressions: int

    @classmethod
    def from_sums(cls, variant: str, strategy: str, row: dict[str, Any]) -> VariantKPIs:
        ints = {k: int(row[k] or 0) for k in _INT_FIELDS}
        n = ints["engagement_n"]
        total = float(row["engagement_sum"] or 0.0)
        total_sq = float(row["engagement_sumsq"] or 0.0)
        mean = total / n if n > 0 else None
        sd = None
        if n >= 2 and mean is not None:
            # Clamp: rounding can make a zero variance come out a hair below zero.
            sd = math.sqrt(max(total_sq - n * mean * mean, 0.0) / (n - 1))
        return cls(
            variant=variant,
            strategy=strategy,
            ctr=_ratio(ints["clicks"], ints["impressions"]),
            conversion_rate=_ratio(ints["users_converted"], ints["users_exposed"]),
            engagement_sum=total,
            engagement_sumsq=total_sq,
            engagement_mean=mean,
            engagement_sd=sd,
            **ints,
        )

    def metric(self, name: str) -> float | None:
        value: float | None = getattr(self, LIFT_METRICS.get(name, name))
        return value

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Lift:
    """B compared with A: ``absolute`` = b - a, ``relative`` = (b - a) / a."""

    metric: str
    a: float | None
    b: float | None
    absolute: float | None
    relative: float | None

    @classmethod
    def of(cls, metric: str, a: float | None, b: float | None) -> Lift:
        if a is None or b is None:
            return cls(metric, a, b, None, None)
        return cls(metric, a, b, b - a, (b - a) / a if a != 0 else None)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class DailyAssigned:
    """Users newly assigned on one UTC day (``day_start`` in Unix seconds)."""

    day_start: float
    a: int
    b: int
    #: Every variant's count (A and B included), for experiments with more than two.
    by_variant: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"day": clock.iso(self.day_start)[:10], "a": self.a, "b": self.b}
        for label, n in sorted(self.by_variant.items()):
            if label not in ("A", "B"):
                d[label.lower()] = n
        return d


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    experiment: Experiment
    a: VariantKPIs
    b: VariantKPIs
    lifts: dict[str, Lift]
    daily_assigned: list[DailyAssigned] = field(default_factory=list)
    first_event_ts: float | None = None
    last_event_ts: float | None = None
    revision: int = 0  # the "experiments" data revision the numbers were read at
    #: Every variant, A first (``a`` and ``b`` are the first two); empty means (a, b).
    arms: tuple[VariantKPIs, ...] = ()
    #: Each treatment (B, C, ...) against the control A, per metric.
    lifts_by_variant: dict[str, dict[str, Lift]] = field(default_factory=dict)
    #: Clicks and purchases logged with ``--unserved`` (on items never served to the user
    #: here), per variant and type: counted apart, in none of the KPIs above.
    unserved: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def variants(self) -> tuple[VariantKPIs, ...]:
        return self.arms or (self.a, self.b)

    def variant(self, name: str) -> VariantKPIs:
        for v in self.variants:
            if v.variant == name:
                return v
        raise KeyError(name)

    @property
    def duration_days(self) -> float:
        """Days between the first and the last event (0 without events)."""
        if self.first_event_ts is None or self.last_event_ts is None:
            return 0.0
        return (self.last_event_ts - self.first_event_ts) / clock.DAY

    @property
    def total_events(self) -> int:
        return sum(v.impressions + v.clicks + v.purchases + v.engagement_n for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.to_dict(),
            "variants": {v.variant: v.to_dict() for v in self.variants},
            "lift": {k: v.to_dict() for k, v in self.lifts.items()},
            "lifts": {
                label: {k: v.to_dict() for k, v in lifts.items()}
                for label, lifts in self.lifts_by_variant.items()
            },
            "daily_assigned": [d.to_dict() for d in self.daily_assigned],
            "first_event_ts": None
            if self.first_event_ts is None
            else clock.iso(self.first_event_ts),
            "last_event_ts": None if self.last_event_ts is None else clock.iso(self.last_event_ts),
            "duration_days": self.duration_days,
            "revision": self.revision,
            "unserved": self.unserved_dict(),
        }

    def unserved_dict(self) -> dict[str, Any]:
        """The unserved follow-ups for output: totals by type, and per variant."""
        total = {"click": 0, "purchase": 0}
        for per in self.unserved.values():
            for kind, n in per.items():
                total[kind] = total.get(kind, 0) + n
        return {
            "note": "clicks and purchases logged with --unserved on items never served to "
            "the user in this experiment; not in any KPI",
            **total,
            "variants": self.unserved,
        }


def sufficient_stats(
    store: Store, experiment_id: int, sql: str = STORED_STATS_SQL
) -> dict[str, dict[str, Any]]:
    """The rows of ``STORED_STATS_SQL`` (or ``sql``: ``SUFFICIENT_STATS_SQL`` reads the
    events themselves) by variant: raw sums, as the SQL returns them."""
    rows = store.query(sql, {"experiment_id": experiment_id})
    return {str(r["variant"]): r for r in rows}


#: The columns of a ``STORED_STATS_SQL`` row, in its order (also the columns of an
#: ``analyze --summary`` file: the same sufficient statistics, computed elsewhere).
STATS_COLUMNS: tuple[str, ...] = (
    "variant",
    "users_assigned",
    "users_exposed",
    "impressions",
    "clicks",
    "users_converted",
    "purchases",
    "engagement_n",
    "engagement_sum",
    "engagement_sumsq",
    "n_users",
    "sum_clicks",
    "sum_impressions",
    "sum_clicks_sq",
    "sum_impressions_sq",
    "sum_clicks_x_impressions",
)
#: The counts among them (the engagement sums are floats).
_INT_FIELDS = tuple(
    c for c in STATS_COLUMNS if c not in ("variant", "engagement_sum", "engagement_sumsq")
)


def stats_and_daily(
    store: Store, experiment_id: int
) -> tuple[dict[str, dict[str, Any]], list[DailyAssigned]]:
    """``sufficient_stats`` and ``daily_assigned`` with one pass over the assignments.

    The users assigned per variant are the sums of the daily counts (every assignment falls
    on exactly one day), so grouping the assignments a second time by variant alone, which
    costs as much as the daily grouping (a sort of every assignment), is left out. The rows
    equal ``STORED_STATS_SQL``'s (tests compare them).
    """
    days = daily_assigned(store, experiment_id)
    assigned: dict[str, int] = {}
    for day in days:
        for label, n in day.by_variant.items():
            assigned[label] = assigned.get(label, 0) + n
    sums = {
        str(r["variant"]): r
        for r in store.query(_STORED_EVENT_SUMS_SQL, {"experiment_id": experiment_id})
    }
    stats: dict[str, dict[str, Any]] = {}
    for label in sorted({"A", "B", *assigned}):
        p = sums.get(label, {})
        row = {c: p.get(c, 0) for c in STATS_COLUMNS}
        row["variant"] = label
        row["users_assigned"] = assigned.get(label, 0)
        row["n_users"] = row["users_exposed"]
        row["sum_impressions"] = row["impressions"]
        stats[label] = row
    return stats, days


def unserved_counts(store: Store, experiment_id: int) -> dict[str, dict[str, int]]:
    """Clicks and purchases logged with ``unserved`` per variant: {"A": {"click": n, ...}}."""
    out: dict[str, dict[str, int]] = {}
    for variant, kind, n in store.conn.execute(
        "SELECT variant, type, COUNT(*) FROM unserved_events WHERE experiment_id = ? "
        "GROUP BY variant, type ORDER BY variant, type",
        (experiment_id,),
    ):
        out.setdefault(str(variant), {"click": 0, "purchase": 0})[str(kind)] = int(n)
    return out


def event_span(store: Store, experiment_id: int) -> tuple[float | None, float | None]:
    """(first, last) event timestamp of an experiment, or (None, None)."""
    first, last = store.conn.execute(SPAN_SQL, {"experiment_id": experiment_id}).fetchone()
    return (None if first is None else float(first), None if last is None else float(last))


def daily_assigned(store: Store, experiment_id: int) -> list[DailyAssigned]:
    per_day: dict[int, dict[str, int]] = {}
    for day, variant, n in store.conn.execute(DAILY_ASSIGNED_SQL, {"experiment_id": experiment_id}):
        per_day.setdefault(int(day), {})[str(variant)] = int(n)
    return [
        DailyAssigned(d * clock.DAY, by.get("A", 0), by.get("B", 0), by)
        for d, by in sorted(per_day.items())
    ]


def results(store: Store, exp_ref: int | str | Experiment) -> ExperimentResults:
    """Per-variant KPIs, lifts of B over A, daily assignments and the event span.

    All queries run in one read snapshot, so the numbers agree with each other even while
    other processes log events.
    """
    with store.read():
        exp = get_experiment(store, exp_ref)
        revision = store.revision("experiments")
        stats, days = stats_and_daily(store, exp.id)
        first, last = event_span(store, exp.id)
        apart = unserved_counts(store, exp.id)
    empty: dict[str, Any] = {k: 0 for k in (*_INT_FIELDS, "engagement_sum", "engagement_sumsq")}
    labels = list(exp.labels) + sorted(set(stats) - set(exp.labels))
    arms = tuple(
        VariantKPIs.from_sums(label, exp.strategy(label), stats.get(label, empty))
        for label in labels
        if label in exp.labels or stats.get(label, empty)["users_assigned"]
    )
    a, b = arms[0], arms[1]
    by_variant = {
        arm.variant: {n: Lift.of(n, a.metric(n), arm.metric(n)) for n in LIFT_METRICS}
        for arm in arms[1:]
    }
    return ExperimentResults(
        exp, a, b, by_variant["B"], days, first, last, revision, arms, by_variant, apart
    )
