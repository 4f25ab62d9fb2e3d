"""Analysis of an experiment: sufficient statistics from a source -> the statistics -> a verdict.

The package shows the parts of one analysis:

* ``sources``  where the per-variant sufficient statistics come from (the local store, a
  ``--summary`` file); each gives one ``inputs.Inputs``; ``external`` runs them inside
  another SQL engine (DuckDB over files, PostgreSQL and any SQLAlchemy URL), with the SQL
  of ``sql`` (written once, transpiled per dialect);
* ``inputs``   what the statistics need, and summary files parsed and checked;
* ``metrics``  the tests of one metric (headline test, intervals, sample size, sequential
  and Bayesian views);
* ``verdict``  the whole analysis: SRM, Holm, power, novelty, the verdict, ``--fail-on``;
* ``report``   the frozen result types and their JSON form;
* ``tails``    heavy-tailed impressions per user and the ``--bootstrap`` interval of CTR
  (per-user data: the local store only);
* ``groupseq`` group-sequential looks with alpha spending, kept in ``sequential_looks``;
* ``multiarm`` A/B/n: each treatment against the control, Holm across the comparisons;
* ``cuped``    the pre-period covariate sums (from every source) and CUPED: with
  ``cuped=True`` (the CLI's default) the adjusted tests of CTR and conversion decide.


``analyze(store, exp)`` reads the per-variant sufficient statistics (``kpis.results``) and
the daily timeline in one read snapshot, runs every test of ``smart_suggest.stats`` on
them and returns one frozen :class:`Analysis` with ``to_dict()``.  ``analyze_summary``
does the same from per-variant sufficient statistics computed elsewhere (a warehouse
running ``SUFFICIENT_STATS_SQL``), so both paths share every line of the statistics.

What is tested, per metric (B versus A; differences B - A, relative lifts B / A - 1):

* **ctr** - headline: the user-level ratio test (clicks / impressions with the exposed
  user as the unit, delta-method variance; one user's impressions are correlated).  The
  per-impression two-proportion test is kept alongside, labelled "per impression (assumes
  independent impressions)": it is over-confident and is never used for the verdict.
* **conversion_rate** - users converted / users exposed: chi-square or Fisher's exact.
* **engagement** - mean engagement time per engagement event: Welch's t test from
  n, sum and sum of squares.

The primary metric is ``metric`` if given, else the experiment's declared
``primary_metric``, else ``ctr`` (with a warning that nothing was declared).  The other
two are secondary: their p-values get the Holm correction (family = the secondary
metrics), and the primary metric is tested at ``alpha`` unadjusted.  The overall verdict is
the primary metric's (``stats.VERDICT_RULES``).

Also: sample-ratio-mismatch check of the assigned users against the configured split
(a flagged SRM makes every verdict ``invalid``); the Bayesian P(B > A) and expected loss
(Beta-Binomial) for conversion, and for CTR per impression (labelled as such); with
``sequential=True`` the always-valid mSPRT p-value and confidence sequence replace the
fixed-horizon ones in the verdicts; achieved power to detect ``min_lift``, the sample
size and the expected remaining days at the observed assignment rate; a novelty check on
the daily relative CTR lift.

Sequential mixing variance: tau^2 = ``stats.default_tau2(baseline)`` = (10% of the
control's value)^2 per metric.  Here the baseline is read from the data at the look,
which is fine for a one-off look but makes tau^2 data-dependent across looks: a real
deployment fixes tau^2 before the start from the historical baseline (pass ``tau2``).

Degenerate data (no events, an empty arm, one user, all conversions) gives defined,
explained results, never an exception or NaN.  Inconsistent logging that makes a test
impossible (more clicks than impressions, more converted than exposed users) gives that
metric the verdict ``invalid`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smart_suggest.analysis.common import LABELS, METRICS, Progress, check_params, metric_name
from smart_suggest.analysis.groupseq import GroupDesign
from smart_suggest.analysis.inputs import SUMMARY_COLUMNS, SUMMARY_OPTIONAL_COLUMNS, load_summary
from smart_suggest.analysis.report import (
    Analysis,
    BayesSummary,
    ExperimentInfo,
    MetricAnalysis,
    NoveltySummary,
    PowerSummary,
    SequentialSummary,
)
from smart_suggest.analysis.sources import inputs_from_store, inputs_from_summary
from smart_suggest.analysis.sql import print_sql
from smart_suggest.analysis.verdict import FAIL_CONDITIONS, analyze_inputs, fail_conditions
from smart_suggest.errors import InputError
from smart_suggest.experiments.kpis import SUFFICIENT_STATS_SQL
from smart_suggest.experiments.lifecycle import Experiment
from smart_suggest.experiments.reads import StoredReads
from smart_suggest.store import Store

__all__ = [
    "FAIL_CONDITIONS",
    "LABELS",
    "METRICS",
    "SUFFICIENT_STATS_SQL",
    "SUMMARY_COLUMNS",
    "SUMMARY_OPTIONAL_COLUMNS",
    "Analysis",
    "BayesSummary",
    "ExperimentInfo",
    "MetricAnalysis",
    "NoveltySummary",
    "PowerSummary",
    "SequentialSummary",
    "analyze",
    "analyze_source",
    "analyze_summary",
    "fail_conditions",
    "load_summary",
    "print_sql",
]


def analyze(
    store: Store,
    exp_ref: int | str | Experiment,
    *,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    progress: Progress | None = None,
    bootstrap: bool = False,
    resamples: int = 2000,
    seed: int = 20240601,
    group: GroupDesign | None = None,
    planned_units: int | None = None,
    cuped: bool = False,
    reads: StoredReads | None = None,
) -> Analysis:
    """Analyse a stored experiment (see the package docstring for what is computed).

    ``cuped`` reads the pre-period covariate sums too and, when users have a pre-period,
    lets the CUPED-adjusted tests of CTR and conversion decide (``Analysis.cuped``).

    ``metric`` chooses the primary metric (ctr, conversion_rate or engagement; aliases
    accepted); ``tau2`` fixes the mSPRT mixing variance per metric (default: derived from
    the control's value at this look).  ``bootstrap`` adds a user-level cluster bootstrap
    interval of CTR (``resamples`` >= 2000, fixed ``seed``) next to the delta-method one.
    ``group`` runs (and with ``group.record`` records) a group-sequential look
    (``analysis.groupseq``) instead of the fixed-horizon decision of the primary metric;
    ``planned_units`` (per variant) is its planned size, and with ``sequential`` tunes the
    mSPRT's tau^2 to it.  ``reads``: the experiment's data already read by
    ``experiments.reads.read_experiment`` (with ``covariates=cuped``) in a read snapshot
    that is still open. Raises ``InputError`` for bad parameters and ``NotFoundError`` for
    an unknown experiment; never for degenerate data.
    """
    from smart_suggest.analysis.tails import check_options

    check_params(alpha, min_lift)
    metric_name(metric)
    options = check_options(resamples, seed) if bootstrap else None
    step = progress or (lambda stage, done, total: None)
    if group is not None and sequential:
        raise InputError("choose one sequential method: mSPRT or group-sequential")
    if planned_units is not None and not 2 <= planned_units <= 10**12:
        raise InputError(f"--planned-users must be between 2 and 10^12, got {planned_units}")
    if reads is not None and (reads.covariates is not None) != cuped:
        raise ValueError("reads must be read with covariates=cuped")
    inp = inputs_from_store(store, exp_ref, step, covariates=cuped, reads=reads)
    step("statistics", 2, 3)
    summary = None
    if group is not None:
        summary = _group_look(store, inp, group, planned_units, metric, alpha, min_lift)
    out = analyze_inputs(
        inp,
        alpha=alpha,
        metric=metric,
        sequential=sequential,
        min_lift=min_lift,
        tau2=tau2,
        bootstrap=options,
        group=summary,
        planned_units=planned_units,
        cuped=_cuped_of(inp, alpha),
    )
    step("statistics", 3, 3)
    return out


def _cuped_of(inp: Any, alpha: float) -> Any:
    """The CUPED summary of the covariate sums ``inp`` carries (None without them)."""
    if inp.covariates is None:
        return None
    from smart_suggest.analysis.cuped import cuped_from_rows

    return cuped_from_rows([inp.a.variant, inp.b.variant], inp.covariates, alpha=alpha)


def _group_look(
    store: Store,
    inp: Any,
    design: GroupDesign,
    planned_units: int | None,
    metric: str | None,
    alpha: float,
    min_lift: float,
) -> Any:
    from dataclasses import replace

    from smart_suggest.analysis.groupseq import group_sequential
    from smart_suggest.analysis.metrics import _sample_size, prepare

    primary = metric_name(metric) or inp.primary_declared or "ctr"
    prep = prepare(primary, inp, alpha, False, None)
    default_units = None
    if prep.res is not None:
        default_units = _sample_size(primary, prep.res, prep.value_a, min_lift, alpha)[0]
    if planned_units is not None:
        design = replace(design, planned_units=planned_units)
    assert inp.info.id is not None
    return group_sequential(store, inp.info.id, prep, alpha, design, default_units)


def analyze_summary(
    rows: Sequence[Mapping[str, Any]],
    *,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    name: str = "summary",
    source: str = "summary",
    planned_units: int | None = None,
    cuped: bool = False,
) -> Any:
    """Analyse per-variant sufficient statistics computed elsewhere.

    ``rows``: one mapping per variant (A, B, and C, D, ... for an A/B/n test) with the
    ``SUMMARY_COLUMNS`` (numbers or numeric strings) and optionally ``treatment_share``
    (two variants, default 0.5) or ``weight`` (default equal), and ``days`` (days the
    experiment has run, for the expected duration). With ``cuped``, the ``cov_*`` columns
    (when given) adjust CTR and conversion and the adjusted tests decide. Two variants give
    an ``Analysis``, more a ``multiarm.MultiAnalysis``. Bad input raises ``InputError``
    with one line naming ``source``. There is no timeline, so no novelty check.
    """
    from smart_suggest.analysis.inputs import parse_variants

    check_params(alpha, min_lift)
    metric_name(metric)
    if planned_units is not None and len(rows) > 2:
        raise InputError("--planned-users is for two-variant analyses")
    arms, weights, _share, days = parse_variants(rows, source)
    summary = None
    if cuped:
        from smart_suggest.analysis.cuped import cuped_from_summary

        summary = cuped_from_summary([dict(r) for r in rows], source, alpha=alpha)
    try:
        if len(arms) > 2:
            from smart_suggest.analysis.multiarm import analyze_sums

            return analyze_sums(
                arms,
                weights,
                days,
                name=name,
                source="summary",
                note="no daily data in a summary: novelty check not run",
                alpha=alpha,
                metric=metric,
                sequential=sequential,
                min_lift=min_lift,
                tau2=tau2,
                cuped=summary,
            )
        inp = inputs_from_summary(rows, name, source)
        return analyze_inputs(
            inp,
            alpha=alpha,
            metric=metric,
            sequential=sequential,
            min_lift=min_lift,
            tau2=tau2,
            planned_units=planned_units,
            cuped=summary,
        )
    except ValueError as exc:  # impossible sums the parser could not see
        raise InputError(f"{source}: inconsistent statistics: {exc}") from None


def analyze_source(
    source: str,
    experiment: str,
    *,
    assignments: str | None = None,
    events_table: str | None = None,
    assignments_table: str | None = None,
    users_table: str | None = None,
    interactions_table: str | None = None,
    treatment_share: float = 0.5,
    weights: Sequence[float] | None = None,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    planned_units: int | None = None,
    cuped: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Analyse an experiment whose events live in an external SQL engine (``external``).

    The engine computes the per-variant sums; they are checked and analysed exactly like
    the local store's: two variants give an ``Analysis``, more (split by ``weights``,
    default equal) a ``multiarm.MultiAnalysis``. With ``cuped`` the engine also computes
    the covariate sums (``sql.covariate_sql``, reading the users and interactions there);
    when it cannot, the analysis is unadjusted and says why. Returns the analysis and a
    description of the source (kind, label without password, dialect, seconds spent in the
    engine).
    """
    from smart_suggest.analysis import external
    from smart_suggest.analysis.inputs import parse_variants

    check_params(alpha, min_lift)
    metric_name(metric)
    if not (0.0 < treatment_share < 1.0):
        raise InputError(f"--share must be in (0, 1), got {treatment_share:g}")
    src = external.parse_source(
        source,
        assignments=assignments,
        events_table=events_table,
        assignments_table=assignments_table,
        users_table=users_table,
        interactions_table=interactions_table,
    )
    rows, key, took = external.sums_from_source(
        src, experiment, treatment_share=None if weights else treatment_share
    )
    if weights and len(weights) != len(rows):
        raise InputError(
            f"--weights gives {len(weights)} weights for the {len(rows)} variants there"
        )
    arms, split, _share, days = parse_variants(
        [{**r, "weight": w} for r, w in zip(rows, weights, strict=True)] if weights else rows,
        src.label,
    )
    summary = None
    cov_note = ""
    if cuped:
        from smart_suggest.analysis.cuped import cuped_from_rows

        cov_rows, cov_note, cov_took = external.fetch_covariates(src, key)
        took += cov_took
        if cov_rows is not None:
            summary = cuped_from_rows([a.variant for a in arms], cov_rows, alpha=alpha)
    info = {**external.describe(src), "seconds_in_engine": took}
    if cov_note:
        info["cuped_note"] = cov_note
    common = {
        "alpha": alpha,
        "metric": metric,
        "sequential": sequential,
        "min_lift": min_lift,
        "tau2": tau2,
        "cuped": summary,
    }
    if len(arms) > 2:
        from smart_suggest.analysis.multiarm import analyze_sums

        if planned_units is not None:
            raise InputError("--planned-users is for two-variant analyses")
        multi = analyze_sums(
            arms,
            split,
            days,
            name=str(key),
            source=f"{src.kind}:{src.dialect}",
            note=external.NO_TIMELINE,
            id=key if isinstance(key, int) else None,
            **common,  # type: ignore[arg-type]
        )
        return multi, info
    inp = external.inputs_of_rows(src, rows, key)
    out = analyze_inputs(inp, planned_units=planned_units, **common)  # type: ignore[arg-type]
    return out, info
