"""KPIs over time: impressions, clicks, CTR and conversions per variant per day or hour.

Buckets are UTC days or hours. The range runs from the bucket of the experiment's start
(its creation or its first event, whichever is earlier) to the bucket of its end (now for
an active experiment, its stop time for a stopped one, or its last event if later), and
*every* bucket in that range is present: a day without events shows zeros, not a gap.

Per bucket: impressions, clicks, CTR, purchases and ``conversions``: users whose *first*
purchase falls in the bucket (so the running total is the number of users converted).
With ``cumulative=True`` every count is the running total up to the end of the bucket and
CTR is cumulative clicks / cumulative impressions, so the last cumulative point equals the
experiment's ``results``.

The counting runs in SQL over the two summaries of the events that triggers keep in the
same transaction as the events (so they agree with ``events`` at every commit): sums of
the hourly ``event_counts``, and the first purchase time of each user in ``event_users``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from smart_suggest import clock, validate
from smart_suggest.errors import InputError
from smart_suggest.experiments.kpis import HOURS_IN_RANGE, event_span
from smart_suggest.experiments.lifecycle import Experiment, get_experiment
from smart_suggest.store import Store, hour_sql

BUCKETS: dict[str, float] = {"day": clock.DAY, "hour": clock.HOUR}
#: A guard against an accidental multi-year hourly timeline. Days always fit: the whole
#: accepted time range (``validate``) is ~84,000 days.
MAX_BUCKETS = 90_000

#: Counts per bucket, summed from the hourly ``event_counts`` (``:per`` hours a bucket;
#: ``:start_hour`` is the first bucket's hour, at or before every event's).
COUNTS_SQL = f"""\
SELECT variant, type, (hour - :start_hour) / :per AS bucket, SUM(n) AS n
FROM event_counts
WHERE experiment_id = :experiment_id AND type IN ('impression', 'click', 'purchase')
  AND {HOURS_IN_RANGE}
GROUP BY variant, type, (hour - :start_hour) / :per
"""

#: Users by the bucket of their first purchase (kept per user in ``event_users``).
FIRSTS_SQL = f"""\
SELECT variant, ({hour_sql("first_purchase_ts")} - :start_hour) / :per AS bucket,
       COUNT(*) AS users
FROM event_users
WHERE experiment_id = :experiment_id AND first_purchase_ts IS NOT NULL
  AND first_purchase_ts >= {validate.MIN_TS!r} AND first_purchase_ts < {validate.MAX_TS!r}
GROUP BY variant, ({hour_sql("first_purchase_ts")} - :start_hour) / :per
"""


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    start_ts: float
    variant: str
    impressions: int
    clicks: int
    ctr: float | None
    conversions: int
    purchases: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": clock.iso(self.start_ts),
            "start_ts": self.start_ts,
            "variant": self.variant,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "ctr": self.ctr,
            "conversions": self.conversions,
            "purchases": self.purchases,
        }


@dataclass(frozen=True, slots=True)
class Timeline:
    experiment: Experiment
    bucket: str
    width: float
    cumulative: bool
    start_ts: float
    end_ts: float  # exclusive end of the last bucket
    buckets: list[TimelinePoint] = field(default_factory=list)  # by time, then by label

    def series(self, variant: str) -> list[TimelinePoint]:
        return [p for p in self.buckets if p.variant == variant]

    @property
    def variants(self) -> list[str]:
        """The variants in the timeline, in label order (A first)."""
        return list(dict.fromkeys(p.variant for p in self.buckets))

    @property
    def starts(self) -> list[float]:
        first = self.buckets[0].variant if self.buckets else "A"
        return [p.start_ts for p in self.buckets if p.variant == first]

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.name,
            "experiment_id": self.experiment.id,
            "bucket": self.bucket,
            "cumulative": self.cumulative,
            "start": clock.iso(self.start_ts),
            "end": clock.iso(self.end_ts),
            "buckets": [p.to_dict() for p in self.buckets],
        }


def _range(exp: Experiment, store: Store, width: float) -> tuple[float, int]:
    first, last = event_span(store, exp.id)  # of the events within the accepted times
    # Only times within the accepted range bound the timeline (an older database may hold
    # others; the buckets could not show them).
    known = [t for t in (first, exp.created_at, last, clock.now()) if t is not None and _ok(t)]
    lo = min(known, default=0.0)
    ends = (exp.stopped_at, exp.created_at) if not exp.active else (clock.now(),)
    end = next((t for t in ends if t is not None and _ok(t)), lo)
    hi = end if last is None else max(last, end)
    start = math.floor(lo / width) * width
    n = int(math.floor(hi / width) - math.floor(lo / width)) + 1
    return start, max(n, 1)


def _ok(ts: float | None) -> bool:
    return ts is not None and validate.ts_ok(ts)


def _clamp(index: int, n: int) -> int:
    """A bucket index within [0, n): the range is computed from the same span as the
    buckets, so this only catches a timestamp a rounding step away from a bucket edge."""
    return min(max(int(index), 0), n - 1)


def timeline(
    store: Store,
    exp_ref: int | str | Experiment,
    bucket: str = "day",
    cumulative: bool = False,
) -> Timeline:
    """The experiment's KPIs per ``bucket`` ("day" or "hour"), empty buckets included."""
    if bucket not in BUCKETS:
        raise InputError(f"unknown bucket {bucket!r}: use one of {', '.join(BUCKETS)}")
    width = BUCKETS[bucket]
    with store.read():
        exp = get_experiment(store, exp_ref)
        start, n = _range(exp, store, width)
        if n > MAX_BUCKETS:
            raise InputError(
                f"the experiment spans {n:,} {bucket}s (at most {MAX_BUCKETS:,}); "
                + ("use day buckets" if bucket == "hour" else "use a larger bucket")
            )
        params = {
            "experiment_id": exp.id,
            "start_hour": round(start / clock.HOUR),
            "per": round(width / clock.HOUR),
        }
        columns = {"impression": 0, "click": 1, "purchase": 2}
        # Every variant of the experiment (interleaving: its one merged group, AB).
        labels = ("AB",) if exp.interleaving else exp.labels
        counts = {v: [[0, 0, 0] for _ in range(n)] for v in labels}
        for variant, kind, index, total in store.conn.execute(COUNTS_SQL, params):
            if variant in counts:
                counts[variant][_clamp(index, n)][columns[kind]] += int(total)
        conversions = {v: [0] * n for v in labels}
        for variant, index, users in store.conn.execute(FIRSTS_SQL, params):
            if variant in conversions:
                conversions[variant][_clamp(index, n)] += int(users)
    points: list[TimelinePoint] = []
    totals = {v: [0, 0, 0, 0] for v in labels}
    for i in range(n):
        for variant in labels:
            imp, clk, pur = counts[variant][i]
            conv = conversions[variant][i]
            if cumulative:
                t = totals[variant]
                t[0] += imp
                t[1] += clk
                t[2] += conv
                t[3] += pur
                imp, clk, conv, pur = t
            ctr = clk / imp if imp > 0 else None
            points.append(TimelinePoint(start + i * width, variant, imp, clk, ctr, conv, pur))
    return Timeline(exp, bucket, width, cumulative, start, start + n * width, points)
