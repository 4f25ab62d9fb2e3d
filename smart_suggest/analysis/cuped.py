"""CUPED for CTR and conversion: the pre-period covariate sums, and the adjusted results.

The pre-period of a user is the ``PRE_PERIOD_DAYS`` (14) days before their assignment.
The covariate x is the number of their interactions (views, clicks and purchases in
``interactions``) in that window; h = 1 when their account existed for the whole window
(created at least 14 days before the assignment), else 0. A user who joined later has no
(full) pre-period: x = 0 and h = 0 even if they interacted in the days they had, "covariate
0 plus an indicator", so they are compared with their own kind instead of being taken for
inactive users (``stats.cuped`` relies on x = 0 wherever h = 0).

Only data from before each user's assignment enters the covariate, so the treatment
cannot have changed it, which is what keeps the adjusted estimate unbiased.

``COVARIATE_SUMS_SQL`` (in ``experiments.covariates``) is standard SQL over ``assignments``,
``users``, ``interactions`` and ``events`` (``--print-sql`` prints it for other engines; its
columns are the ``--summary`` covariate columns); ``STORED_COVARIATE_SUMS_SQL`` reads the
per-user event sums from ``event_users`` instead of grouping the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The SQL lives with the other experiment queries (no numpy there); names kept here too.
from smart_suggest.experiments.covariates import (  # noqa: F401
    COVARIATE_SUMS_SQL,
    PRE_PERIOD_DAYS,
    PRE_PERIOD_SECONDS,
    STORED_COVARIATE_SUMS_SQL,
    covariate_sums,
)
from smart_suggest.stats.cuped import CovSums, CupedResult, cuped
from smart_suggest.store import Store

#: Covariate columns a ``--summary`` row may carry (per variant).
COVARIATE_COLUMNS: tuple[str, ...] = (
    "cov_n",  # exposed users (the unit of both metrics)
    "cov_sum_x",
    "cov_sum_xx",
    "cov_n_pre",
    "cov_converted",
    "cov_sum_x_converted",
    "cov_sum_h_converted",
    "cov_clicks",
    "cov_clicks_sq",
    "cov_impressions",
    "cov_impressions_sq",
    "cov_clicks_x_impressions",
    "cov_sum_x_clicks",
    "cov_sum_x_impressions",
    "cov_sum_h_clicks",
    "cov_sum_h_impressions",
)


def cov_sums(label: str, row: dict[str, Any], metric: str) -> CovSums:
    """The ``stats.cuped`` input of one variant for ``metric`` from a row of sums."""

    def f(key: str) -> float:
        return float(row.get(key) or 0)

    n, n_pre = int(f("cov_n")), int(f("cov_n_pre"))
    if metric == "conversion_rate":
        conv = f("cov_converted")
        return CovSums(
            label,
            n,
            conv,
            conv,
            f("cov_sum_x"),
            f("cov_sum_xx"),
            n_pre,
            f("cov_sum_x_converted"),
            f("cov_sum_h_converted"),
        )
    return CovSums(
        label,
        n,
        f("cov_clicks"),
        f("cov_clicks_sq"),
        f("cov_sum_x"),
        f("cov_sum_xx"),
        n_pre,
        f("cov_sum_x_clicks"),
        f("cov_sum_h_clicks"),
        sum_m=f("cov_impressions"),
        sum_mm=f("cov_impressions_sq"),
        sum_ym=f("cov_clicks_x_impressions"),
        sum_xm=f("cov_sum_x_impressions"),
        sum_hm=f("cov_sum_h_impressions"),
    )


@dataclass(frozen=True, slots=True)
class CupedSummary:
    """CUPED for CTR and conversion, or why it did not run."""

    applied: bool
    pre_period_days: int
    users_with_pre_period: int
    users: int
    results: dict[str, CupedResult]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "pre_period_days": self.pre_period_days,
            "covariates": "interactions in the pre-period (x) and has-a-full-pre-period (h); "
            "users without one get x = 0, h = 0",
            "users_with_pre_period": self.users_with_pre_period,
            "users": self.users,
            "metrics": {k: v.to_dict() for k, v in self.results.items()},
            "note": self.note,
        }


def cuped_from_rows(
    labels: list[str], rows: dict[str, dict[str, Any]], *, alpha: float = 0.05
) -> CupedSummary:
    """CUPED for CTR and conversion from per-variant covariate sums (A first)."""
    users = sum(int(rows.get(v, {}).get("cov_n") or 0) for v in labels)
    with_pre = sum(int(rows.get(v, {}).get("cov_n_pre") or 0) for v in labels)
    activity = sum(float(rows.get(v, {}).get("cov_sum_x") or 0) for v in labels)
    if with_pre == 0 and activity == 0:
        return CupedSummary(
            False,
            PRE_PERIOD_DAYS,
            0,
            users,
            {},
            f"no user has data in the {PRE_PERIOD_DAYS} days before their assignment: "
            "nothing to adjust with (unadjusted results only)",
        )
    out = {}
    for metric in ("ctr", "conversion_rate"):
        groups = [cov_sums(v, rows.get(v, {}), metric) for v in labels]
        out[metric] = cuped(metric, groups, alpha=alpha)
    return CupedSummary(True, PRE_PERIOD_DAYS, with_pre, users, out, "")


def cuped_for(
    store: Store, experiment_id: int, labels: list[str], *, alpha: float = 0.05
) -> CupedSummary:
    return cuped_from_rows(labels, covariate_sums(store, experiment_id), alpha=alpha)


def cuped_from_summary(
    rows: list[dict[str, Any]], source: str, *, alpha: float = 0.05
) -> CupedSummary | None:
    """CUPED from the covariate columns of a ``--summary`` file (None when it has none).

    Every row needs all of ``COVARIATE_COLUMNS`` once any is given: finite numbers, counts
    not negative. Bad input raises ``InputError`` naming ``source``.
    """
    import math

    from smart_suggest.errors import InputError

    clean = [{str(k).strip().lower(): v for k, v in r.items()} for r in rows]
    if not any(c in r for r in clean for c in COVARIATE_COLUMNS):
        return None
    by_variant: dict[str, dict[str, Any]] = {}
    for r in clean:
        label = str(r.get("variant", "")).strip().upper()
        missing = [c for c in COVARIATE_COLUMNS if r.get(c) in (None, "")]
        if missing:
            raise InputError(
                f"{source}: variant {label[:5]}: CUPED needs every covariate column; "
                f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
            )
        nums: dict[str, Any] = {}
        for c in COVARIATE_COLUMNS:
            try:
                value = float(r[c])
            except (TypeError, ValueError):
                raise InputError(
                    f"{source}: variant {label[:5]}, column {c}: not a number"
                ) from None
            if not math.isfinite(value):
                raise InputError(f"{source}: variant {label[:5]}, column {c}: not finite")
            if value < 0 and c in (
                "cov_n",
                "cov_n_pre",
                "cov_sum_xx",
                "cov_converted",
                "cov_clicks",
                "cov_impressions",
                "cov_clicks_sq",
                "cov_impressions_sq",
            ):
                raise InputError(f"{source}: variant {label[:5]}, column {c}: must not be negative")
            nums[c] = value
        if nums["cov_n_pre"] > nums["cov_n"] or nums["cov_converted"] > nums["cov_n"]:
            raise InputError(f"{source}: variant {label[:5]}: more users in a subset than cov_n")
        by_variant[label] = nums
    labels = sorted(by_variant)
    return cuped_from_rows(labels, by_variant, alpha=alpha)


def combined_sql() -> str:
    """``SUFFICIENT_STATS_SQL`` and ``COVARIATE_SUMS_SQL`` as one statement (two derived
    tables joined on the variant): one run gives every ``--summary`` column. SQLite's
    SQL, the definition ``--print-sql`` transpiles for the other dialects."""
    from smart_suggest.experiments.kpis import SUFFICIENT_STATS_SQL

    cov_cols = ",\n       ".join(f"c.{c}" for c in COVARIATE_COLUMNS)

    def indent(sql: str) -> str:
        return "\n".join("    " + ln if ln else ln for ln in sql.rstrip().splitlines())

    return (
        f"SELECT s.*,\n       {cov_cols}\nFROM (\n{indent(SUFFICIENT_STATS_SQL)}\n) s\n"
        f"LEFT JOIN (\n{indent(COVARIATE_SUMS_SQL)}\n) c ON c.variant = s.variant\n"
        "ORDER BY s.variant\n"
    )


def covariate_header(tables: dict[str, str]) -> str:
    """The ``--print-sql`` comment lines about the CUPED columns (``tables``: the names)."""
    return (
        f"-- The cov_* columns are the CUPED covariate sums: pre-period = the {PRE_PERIOD_DAYS}"
        " days before each\n"
        f"-- user's assignment; also reads {tables['assignments']}(user_id, assigned_at),\n"
        f"--   {tables['users']}(id, created_at) and {tables['interactions']}(user_id, ts), "
        "times in Unix seconds.\n"
    )
