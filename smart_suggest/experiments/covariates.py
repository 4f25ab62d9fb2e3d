"""The CUPED pre-period covariate sums in SQL (``analysis.cuped`` runs CUPED on them).

The pre-period of a user is the ``PRE_PERIOD_DAYS`` (14) days before their assignment; x is
the number of their interactions in it and h = 1 when their account existed for the whole
window (``analysis.cuped`` explains the choice). Here only the SQL and its reader: this
module imports no numpy or statistics, so a command can run the query while those load.
"""

from __future__ import annotations

from typing import Any

from smart_suggest.store import Store

PRE_PERIOD_DAYS = 14
PRE_PERIOD_SECONDS = PRE_PERIOD_DAYS * 86_400


def _sql(per_user: str) -> str:
    # x comes from one grouped join of the assigned users' interactions (one pass, not a
    # correlated subquery per user and per sum: engines inline a CTE at every use).
    return f"""\
WITH pre AS (
    SELECT a.user_id, a.variant, COUNT(*) AS x
    FROM assignments a
    JOIN interactions i
      ON i.user_id = a.user_id
     AND i.ts >= a.assigned_at - {PRE_PERIOD_SECONDS}
     AND i.ts < a.assigned_at
    WHERE a.experiment_id = :experiment_id
    GROUP BY a.user_id, a.variant
),
per_user AS (
{per_user}
),
joined AS (
    SELECT p.variant, p.clicks, p.impressions,
           CASE WHEN p.purchases > 0 THEN 1 ELSE 0 END AS converted,
           CASE WHEN u.created_at <= a.assigned_at - {PRE_PERIOD_SECONDS}
                THEN COALESCE(pre.x, 0) ELSE 0 END AS x,
           CASE WHEN u.created_at <= a.assigned_at - {PRE_PERIOD_SECONDS} THEN 1 ELSE 0 END AS h
    FROM per_user p
    LEFT JOIN assignments a
      ON a.experiment_id = :experiment_id AND a.user_id = p.user_id AND a.variant = p.variant
    LEFT JOIN users u ON u.id = a.user_id
    LEFT JOIN pre ON pre.user_id = p.user_id AND pre.variant = p.variant
    WHERE p.impressions > 0
)
SELECT variant,
       COUNT(*) AS cov_n,
       SUM(x) AS cov_sum_x,
       SUM(x * x) AS cov_sum_xx,
       SUM(h) AS cov_n_pre,
       SUM(converted) AS cov_converted,
       SUM(x * converted) AS cov_sum_x_converted,
       SUM(h * converted) AS cov_sum_h_converted,
       SUM(clicks) AS cov_clicks,
       SUM(clicks * clicks) AS cov_clicks_sq,
       SUM(impressions) AS cov_impressions,
       SUM(impressions * impressions) AS cov_impressions_sq,
       SUM(clicks * impressions) AS cov_clicks_x_impressions,
       SUM(x * clicks) AS cov_sum_x_clicks,
       SUM(x * impressions) AS cov_sum_x_impressions,
       SUM(h * clicks) AS cov_sum_h_clicks,
       SUM(h * impressions) AS cov_sum_h_impressions
FROM joined
GROUP BY variant
ORDER BY variant
"""


#: The definition over ``events`` (standard SQL; ``--print-sql``).
COVARIATE_SUMS_SQL = _sql("""\
    SELECT variant, user_id,
           SUM(CASE WHEN type = 'impression' THEN 1 ELSE 0 END) AS impressions,
           SUM(CASE WHEN type = 'click' THEN 1 ELSE 0 END) AS clicks,
           SUM(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END) AS purchases
    FROM events
    WHERE experiment_id = :experiment_id
    GROUP BY variant, user_id""")

#: The same sums with the per-user counts read from ``event_users``.
STORED_COVARIATE_SUMS_SQL = _sql("""\
    SELECT variant, user_id, impressions, clicks, purchases
    FROM event_users
    WHERE experiment_id = :experiment_id""")


def covariate_sums(
    store: Store, experiment_id: int, sql: str = STORED_COVARIATE_SUMS_SQL
) -> dict[str, dict[str, Any]]:
    return {str(r["variant"]): r for r in store.query(sql, {"experiment_id": experiment_id})}
