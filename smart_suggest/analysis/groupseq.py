"""Group-sequential looks at a stored experiment (``analyze --sequential group``).

The design - primary metric, spending function, number of looks, planned units per
variant, alpha - is fixed by the first recorded look; every look is a row of
``sequential_looks`` with the information fraction, z, the boundary and the alpha spent
as computed then.  A later process continues the same design from those rows, so the
boundaries of earlier looks are never recomputed with hindsight and a crossing stays a
crossing.  Without ``--record-look`` the current data are shown as a preview of the next
look (nothing is written).

The decision for the primary metric: reject H0 at the first look where |z| >= boundary.
Its p-value is reported on the boundary's scale, p x alpha / p_boundary (below alpha
exactly when |z| crosses, and the running minimum over the recorded looks), and its
interval is the repeated confidence interval diff +- boundary x SE (Jennison & Turnbull
2000, ch. 9), which excludes 0 exactly when the boundary is crossed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from smart_suggest import clock
from smart_suggest.analysis.report import _ToDict
from smart_suggest.errors import InputError
from smart_suggest.store import Store

DEFAULT_LOOKS = 14
DEFAULT_SPENDING = "obf"
SPENDING_NAMES = {"obf": "O'Brien-Fleming type", "pocock": "Pocock type"}

_COLUMNS = (
    "look, ts, metric, spending, planned_looks, planned_units, alpha, information, z, "
    "boundary, alpha_spent"
)


@dataclass(frozen=True, slots=True)
class GroupDesign:
    """What the command line asked for (None: keep the recorded design or the default)."""

    looks: int | None = None
    spending: str | None = None
    planned_units: int | None = None
    record: bool = False


@dataclass(frozen=True, slots=True)
class GroupSummary(_ToDict):
    metric: str
    spending: str
    planned_looks: int
    planned_units: int
    alpha: float
    status: str  # "reject", "continue", "final: not significant", "not run"
    message: str
    recorded: bool  # this look was written to the database
    look: Any  # stats.GroupLook of this look (or the last recorded one) | None
    looks: tuple[dict[str, Any], ...]  # every recorded look, oldest first
    p_value: float | None  # on the boundary's scale (< alpha exactly when crossed)
    ci: Any  # repeated confidence interval of the difference | None


def recorded_looks(store: Store, experiment_id: int) -> list[dict[str, Any]]:
    cur = store.conn.execute(
        f"SELECT {_COLUMNS} FROM sequential_looks WHERE experiment_id = ? ORDER BY look",
        (experiment_id,),
    )
    cols = [c.strip() for c in _COLUMNS.split(",")]
    rows = [dict(zip(cols, row, strict=True)) for row in cur]
    for r in rows:
        r["ts"] = clock.iso(r["ts"])
    return rows


def _check(design: GroupDesign) -> None:
    if design.looks is not None and not 1 <= design.looks <= 100:
        raise InputError(f"--looks must be between 1 and 100, got {design.looks}")
    if design.spending is not None and design.spending not in SPENDING_NAMES:
        raise InputError(f"--spending must be obf or pocock, got {design.spending!r}")
    if design.planned_units is not None and not 2 <= design.planned_units <= 10**12:
        raise InputError(f"--planned-users must be between 2 and 10^12, got {design.planned_units}")


def _scaled_p(z: float, boundary: float | None, alpha: float) -> float:
    from smart_suggest.stats import _dist as st

    if boundary is None or not math.isfinite(boundary):
        return 1.0
    p_nominal = float(2.0 * st.norm.sf(abs(z)))
    p_boundary = float(2.0 * st.norm.sf(boundary))
    if p_boundary <= 0:
        return 1.0
    return min(1.0, p_nominal * alpha / p_boundary)


def group_sequential(
    store: Store,
    experiment_id: int,
    prep: Any,
    alpha: float,
    design: GroupDesign,
    default_units: int | None,
) -> GroupSummary:
    """The look at the current data for the primary metric ``prep`` (``metrics.Prepared``),
    recorded when ``design.record``."""
    from smart_suggest import stats
    from smart_suggest.analysis.metrics import _se, _sizes

    _check(design)
    metric = prep.metric
    with store.write() if design.record else store.read():
        rows = recorded_looks(store, experiment_id)
        first = rows[0] if rows else None
        if first is not None:
            fixed = {
                "--metric": (metric, first["metric"]),
                "--spending": (design.spending, first["spending"]),
                "--looks": (design.looks, first["planned_looks"]),
                "--planned-users": (design.planned_units, first["planned_units"]),
                "--alpha": (alpha, first["alpha"]),
            }
            for flag, (given, kept) in fixed.items():
                if given is not None and given != kept:
                    raise InputError(
                        f"{flag} {given} differs from the design fixed at look 1 ({kept}): "
                        "a group-sequential design cannot change while it runs"
                    )
            spending, n_looks = str(first["spending"]), int(first["planned_looks"])
            planned = int(first["planned_units"])
        else:
            spending = design.spending or DEFAULT_SPENDING
            n_looks = design.looks or DEFAULT_LOOKS
            planned_opt = design.planned_units or default_units
            if planned_opt is None:
                raise InputError(
                    "--sequential group needs the planned size: give --planned-users N (per "
                    "variant, in the primary metric's unit); no sample size could be derived "
                    "from --min-lift yet"
                )
            planned = int(planned_opt)
        previous = [(float(r["information"]), r["boundary"], float(r["z"])) for r in rows]
        common = {
            "metric": metric,
            "spending": spending,
            "planned_looks": n_looks,
            "planned_units": planned,
            "alpha": alpha,
            "looks": tuple(rows),
        }
        done = next(
            (
                r
                for r in rows
                if r["information"] >= 1.0
                or r["look"] >= n_looks
                or (r["boundary"] is not None and abs(r["z"]) >= r["boundary"])
            ),
            None,
        )
        best_p = min((_scaled_p(r["z"], r["boundary"], alpha) for r in rows), default=1.0)
        res = prep.res
        if done is not None:
            crossed = done["boundary"] is not None and abs(done["z"]) >= done["boundary"]
            ci_done = None
            se_now = _se(metric, res) if res is not None and res.test != "none" else 0.0
            if done["boundary"] is not None and se_now > 0:
                b_done = float(done["boundary"])
                ci_done = stats.Interval(
                    res.diff - b_done * se_now, res.diff + b_done * se_now, 1.0 - alpha
                )
            if design.record:
                raise InputError(
                    f"the group-sequential test ended at look {done['look']}: no more looks"
                )
            return GroupSummary(
                **common,
                status="reject" if crossed else "final: not significant",
                message=(
                    f"group-sequential test over: look {done['look']} "
                    + (
                        f"crossed its boundary (|z| = {abs(done['z']):.3f} >= "
                        f"{done['boundary']:.3f})"
                        if crossed
                        else "was the final one and did not cross its boundary"
                    )
                ),
                recorded=False,
                look=None,
                p_value=best_p,
                ci=ci_done,
            )
        se = _se(metric, res) if res is not None else 0.0
        if res is None or res.test == "none" or not se > 0:
            if design.record:
                raise InputError("no look recorded: the primary metric has no test yet")
            return GroupSummary(
                **common,
                status="not run",
                message="group-sequential look not possible yet: no test of the primary metric",
                recorded=False,
                look=None,
                p_value=None,
                ci=None,
            )
        z = float(res.diff) / se
        n_a, n_b = _sizes(metric, res)
        info = (n_a + n_b) / (2.0 * planned)
        final = len(rows) + 1 >= n_looks
        try:
            look = stats.group_look(z, info, previous, alpha, spending, final=final)
        except ValueError as exc:
            raise InputError(f"no group-sequential look: {exc}") from None
        if design.record:
            store.conn.execute(
                f"INSERT INTO sequential_looks(experiment_id, {_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    experiment_id,
                    look.look,
                    clock.now(),
                    metric,
                    spending,
                    n_looks,
                    planned,
                    alpha,
                    look.information,
                    z,
                    look.boundary if math.isfinite(look.boundary) else None,
                    look.alpha_spent,
                ),
            )
            rows = recorded_looks(store, experiment_id)
    b = look.boundary
    p = min(best_p, _scaled_p(z, b if math.isfinite(b) else None, alpha))
    ci = None
    if math.isfinite(b):
        ci = stats.Interval(res.diff - b * se, res.diff + b * se, 1.0 - alpha)
    what = "recorded" if design.record else "preview, not recorded (add --record-look)"
    status = "reject" if look.rejected else ("final: not significant" if look.final else "continue")
    advice = {
        "reject": "the boundary is crossed: stop and decide",
        "continue": "keep running to the next look",
        "final: not significant": "final look, boundary not crossed: no significant effect",
    }[status]
    message = (
        f"look {look.look} of {n_looks} ({what}): information {look.information * 100:.1f}% "
        f"of {planned:,} per variant, |z| = {abs(z):.3f} vs boundary {b:.3f} "
        f"({SPENDING_NAMES[spending]} spending, alpha spent {look.alpha_spent:.4g} of "
        f"{alpha:g}) - {advice}"
    )
    return GroupSummary(
        **{**common, "looks": tuple(rows)},
        status=status,
        message=message,
        recorded=design.record,
        look=look,
        p_value=p,
        ci=ci,
    )
