"""Interleaving results: impressions and credit per team, and the per-user preference sums.

An interleaving experiment shows each enrolled user one list merged from both strategies
(team draft); every impression carries the team that contributed the item (A, B, or both
when the lists agreed), and a click or purchase is credited to the team of the item.
A user's credit for a team is their clicks on that team's items; the preference is the
sign of credit B - credit A ("both" items count for neither side).

``TEAM_STATS_SQL`` is the definition in standard SQL over ``events`` (``analyze
--print-sql`` prints it for other engines); ``STORED_TEAM_STATS_SQL`` reads the same sums
from ``event_teams``, the per-user summary triggers keep in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smart_suggest.experiments.lifecycle import Experiment, get_experiment
from smart_suggest.store import Store

_AGGREGATE = """\
SELECT COUNT(*) AS users,
       SUM(CASE WHEN clicks_b > clicks_a THEN 1 ELSE 0 END) AS prefer_b,
       SUM(CASE WHEN clicks_a > clicks_b THEN 1 ELSE 0 END) AS prefer_a,
       SUM(clicks_b - clicks_a) AS sum_diff,
       SUM((clicks_b - clicks_a) * (clicks_b - clicks_a)) AS sum_diff_sq,
       SUM(impressions_a) AS impressions_a,
       SUM(impressions_b) AS impressions_b,
       SUM(impressions_both) AS impressions_both,
       SUM(clicks_a) AS clicks_a,
       SUM(clicks_b) AS clicks_b,
       SUM(clicks_both) AS clicks_both,
       SUM(purchases_a) AS purchases_a,
       SUM(purchases_b) AS purchases_b,
       SUM(purchases_both) AS purchases_both
FROM per_user
WHERE impressions_a + impressions_b + impressions_both > 0"""


_KINDS = {"impressions": "impression", "clicks": "click", "purchases": "purchase"}
_TEAMS = {"a": "A", "b": "B", "both": "both"}


def _per_user(source: str, *, from_events: bool) -> str:
    """Per-user sums by team: from the events (one row each) or from ``event_teams``."""
    cols = []
    for what, kind in _KINDS.items():
        for name, team in _TEAMS.items():
            cond = f"team = '{team}'" + (f" AND type = '{kind}'" if from_events else "")
            value = "1" if from_events else what
            cols.append(f"SUM(CASE WHEN {cond} THEN {value} ELSE 0 END) AS {what}_{name}")
    body = ",\n           ".join(cols)
    return f"""\
WITH per_user AS (
    SELECT user_id,
           {body}
    FROM {source}
    WHERE experiment_id = :experiment_id AND team IS NOT NULL
    GROUP BY user_id
)
"""


#: Team sums of one interleaving experiment (``:experiment_id``) from ``events`` (standard
#: SQL, for any engine).
TEAM_STATS_SQL = _per_user("events", from_events=True) + _AGGREGATE
#: The same sums from ``event_teams`` (one row per user and team).
STORED_TEAM_STATS_SQL = _per_user("event_teams", from_events=False) + _AGGREGATE


@dataclass(frozen=True, slots=True)
class TeamStats:
    """Impressions, clicks and purchases per team, and the preference sums."""

    users: int
    prefer_a: int
    prefer_b: int
    sum_diff: int
    sum_diff_sq: int
    impressions: dict[str, int]
    clicks: dict[str, int]
    purchases: dict[str, int]

    @property
    def ties(self) -> int:
        return self.users - self.prefer_a - self.prefer_b

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "prefer_a": self.prefer_a,
            "prefer_b": self.prefer_b,
            "ties": self.ties,
            "sum_diff": self.sum_diff,
            "sum_diff_sq": self.sum_diff_sq,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "purchases": self.purchases,
        }


def team_stats(
    store: Store, exp_ref: int | str | Experiment, sql: str = STORED_TEAM_STATS_SQL
) -> TeamStats:
    exp = get_experiment(store, exp_ref)
    row = store.query(sql, {"experiment_id": exp.id})[0]

    def n(key: str) -> int:
        return int(row[key] or 0)

    def teams(what: str) -> dict[str, int]:
        return {"A": n(f"{what}_a"), "B": n(f"{what}_b"), "both": n(f"{what}_both")}

    return TeamStats(
        users=n("users"),
        prefer_a=n("prefer_a"),
        prefer_b=n("prefer_b"),
        sum_diff=n("sum_diff"),
        sum_diff_sq=n("sum_diff_sq"),
        impressions=teams("impressions"),
        clicks=teams("clicks"),
        purchases=teams("purchases"),
    )
