"""Where the sufficient statistics come from: the local store, or a summary file.

Every source produces one ``Inputs``; everything after it is the same statistics code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smart_suggest import clock
from smart_suggest.analysis.inputs import Inputs, parse_rows
from smart_suggest.analysis.report import ExperimentInfo
from smart_suggest.analysis.tails import pairs_of_rows
from smart_suggest.experiments.kpis import ExperimentResults
from smart_suggest.experiments.lifecycle import Experiment
from smart_suggest.experiments.reads import StoredReads, read_experiment
from smart_suggest.store import Store


def days_run(exp: Experiment, results: ExperimentResults) -> float:
    """Days from the start (creation or first event) to now, or to the stop time."""
    start = exp.created_at
    if results.first_event_ts is not None:
        start = min(start, results.first_event_ts)
    end = clock.now() if exp.active else (exp.stopped_at or exp.created_at)
    if results.last_event_ts is not None and not exp.active:
        end = max(end, results.last_event_ts)
    return max(0.0, (end - start) / clock.DAY)


#: Centred second moment of engagement from the raw values, two passes over one arm's
#: engagement events: the mean first, then sum (x - mean)^2, which cannot cancel.
_ENGAGEMENT_MEAN_SQL = """\
SELECT COUNT(value), SUM(value) FROM events
WHERE experiment_id = :experiment_id AND variant = :variant AND type = 'engagement'
"""
_ENGAGEMENT_CENTRED_SQL = """\
SELECT SUM((value - :mean) * (value - :mean)) FROM events
WHERE experiment_id = :experiment_id AND variant = :variant AND type = 'engagement'
"""


def centred_engagement(store: Store, experiment_id: int, k: Any) -> Any:
    """n, mean and variance of one arm's engagement from centred raw values, or None when
    the sums already carry the variance (the usual case: no extra pass over events)."""
    from smart_suggest import stats

    if stats.sums_resolve_variance(k.engagement_n, k.engagement_sum, k.engagement_sumsq):
        return None
    params = {"experiment_id": experiment_id, "variant": k.variant}
    n, total = store.conn.execute(_ENGAGEMENT_MEAN_SQL, params).fetchone()
    if not n or n < 2:
        return None
    mean = float(total) / n
    # One more pass removes the mean's own rounding error from the deviations.
    (dev,) = store.conn.execute(
        "SELECT SUM(value - :mean) FROM events WHERE experiment_id = :experiment_id "
        "AND variant = :variant AND type = 'engagement'",
        {**params, "mean": mean},
    ).fetchone()
    mean += float(dev or 0.0) / n
    (m2,) = store.conn.execute(_ENGAGEMENT_CENTRED_SQL, {**params, "mean": mean}).fetchone()
    return stats.MeanVar(int(n), mean, max(float(m2 or 0.0), 0.0) / (n - 1))


def inputs_from_store(
    store: Store,
    exp_ref: int | str | Experiment,
    step: Any,
    *,
    covariates: bool = False,
    reads: StoredReads | None = None,
) -> Inputs:
    """The inputs of a stored experiment: KPIs, the daily timeline and (``covariates``)
    the CUPED covariate sums, in one read snapshot. ``reads``: what
    ``experiments.reads.read_experiment`` already read, in a read snapshot still open
    (the rare extra pass over engagement values must see the same data)."""
    with store.read():
        if reads is None:
            reads = read_experiment(store, exp_ref, covariates=covariates, step=step)
        exp, res = reads.experiment, reads.results
        centred = {}
        for k in (res.a, res.b):
            mv = centred_engagement(store, exp.id, k)
            if mv is not None:
                centred[k.variant] = mv
    days = []
    if reads.timeline is not None:
        pts_a, pts_b = reads.timeline.series("A"), reads.timeline.series("B")
        days = [
            (clock.iso(pa.start_ts)[:10], pa.impressions, pa.clicks, pb.impressions, pb.clicks)
            for pa, pb in zip(pts_a, pts_b, strict=True)
        ]
    return Inputs(
        info=ExperimentInfo.of(exp, days_run(exp, res)),
        a=res.a,
        b=res.b,
        primary_declared=exp.primary_metric,
        days=days,
        daily_assigned=[d.to_dict() for d in res.daily_assigned],
        revision=res.revision,
        timeline_note=reads.timeline_note,
        engagement_centred=centred,
        user_pairs=pairs_of_rows(reads.user_pairs),
        covariates=reads.covariates,
    )


def inputs_from_summary(rows: Sequence[Mapping[str, Any]], name: str, source: str) -> Inputs:
    """The inputs of per-variant sufficient statistics computed elsewhere (no timeline)."""
    a, b, share, days = parse_rows(rows, source)
    info = ExperimentInfo.elsewhere(name, share, days, "summary")
    return Inputs(
        info, a, b, None, timeline_note="no daily data in a summary: novelty check not run"
    )
