"""The analysis bridge: store -> KPIs -> statistics -> one Analysis with verdicts."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import table_rows

from smart_suggest import __version__, clock, stats
from smart_suggest.analysis import (
    FAIL_CONDITIONS,
    SUMMARY_COLUMNS,
    Analysis,
    analyze,
    analyze_summary,
    fail_conditions,
    load_summary,
    print_sql,
)
from smart_suggest.errors import InputError, NotFoundError
from smart_suggest.experiments.kpis import results
from smart_suggest.experiments.lifecycle import create_experiment, stop_experiment
from smart_suggest.store import Store, open_store

#: (variant, user id, event type, value, seconds after the experiment's creation)
Event = tuple[str, int, str, float | None, float]


def _no_nan(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"JSON contains {name}")

    return json.loads(text, parse_constant=refuse)


def _check_well_formed(an: Analysis) -> dict[str, Any]:
    """Every analysis: JSON without NaN, a verdict and a paragraph per metric."""
    data = _no_nan(json.dumps(an.to_dict(), allow_nan=False))
    assert data["metrics"][0]["metric"] == an.primary_metric
    assert {m["metric"] for m in data["metrics"]} == {"ctr", "conversion_rate", "engagement"}
    for m in data["metrics"]:
        assert m["verdict"] in stats.VERDICTS
        assert m["summary"].strip()
        assert 0.0 <= m["p_value"] <= 1.0
        assert m["test"] and m["method"]
    assert data["verdict"] == data["metrics"][0]["verdict"]
    assert data["conclusion"] == data["metrics"][0]["summary"]
    return data


def _make_experiment(
    store: Store,
    name: str,
    assignments: Iterable[tuple[int, str]],
    events: Iterable[Event] = (),
    *,
    treatment_share: float = 0.5,
    primary_metric: str | None = None,
) -> int:
    """An experiment whose rows are written directly (to build skewed or odd data)."""
    assignments = list(assignments)
    events = list(events)
    exp = create_experiment(
        store, name, treatment_share=treatment_share, primary_metric=primary_metric
    )
    users = sorted({u for u, _ in assignments} | {e[1] for e in events})
    start = exp.created_at
    with store.write() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO users(id, username, created_at) VALUES (?, ?, ?)",
            [(u, f"u{u}", start) for u in users],
        )
        conn.executemany(
            "INSERT INTO assignments(experiment_id, user_id, variant, assigned_at) "
            "VALUES (?, ?, ?, ?)",
            [(exp.id, u, v, start) for u, v in assignments],
        )
        conn.executemany(
            "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
            "VALUES (?, ?, ?, NULL, ?, ?, ?)",
            [(exp.id, v, u, t, val, start + ts) for v, u, t, val, ts in events],
        )
    return exp.id


# --- the seeded demo ---------------------------------------------------------------------


def test_demo_analysis_has_verdict_paragraphs_and_methods(demo_store: Store) -> None:
    an = analyze(demo_store, 1)
    data = _check_well_formed(an)
    assert an.primary_metric == "ctr" and an.primary_declared
    # The demo's treatment truly has a much higher CTR: the user-level test finds it.
    ctr = an.metric("ctr")
    assert ctr.role == "primary" and ctr.test == "delta_method_z"
    assert ctr.significant and ctr.direction == "better"
    assert an.verdict == "worth_shipping"
    assert "higher CTR" in an.conclusion and "Verdict: worth shipping" in an.conclusion
    # The per-impression test is kept, labelled, and never the headline.
    assert ctr.per_impression is not None
    assert ctr.per_impression_label == "per impression (assumes independent impressions)"
    assert "per-impression" in ctr.summary
    # Metadata the JSON promises.
    assert data["version"] == __version__
    assert data["alpha"] == 0.05
    assert data["generated_at"] == clock.iso(clock.now())
    assert data["experiment"]["name"] == "homepage-recs-v1-vs-v2"
    assert data["experiment"]["source"] == "database"
    for key in ("ctr", "ctr_per_impression", "conversion_rate", "engagement", "srm", "bayes"):
        assert data["methods"][key]
    assert data["srm"]["flagged"] is False
    assert data["variants"]["A"]["users_assigned"] + data["variants"]["B"]["users_assigned"] == 50
    assert data["novelty"]["trend"]["n_days"] >= 7
    assert len(data["novelty"]["lifts"]) == len(data["novelty"]["days"])


def test_demo_numbers_match_the_stats_functions(demo_store: Store) -> None:
    res = results(demo_store, 1)
    a, b = res.a, res.b
    an = analyze(demo_store, 1, alpha=0.1)
    ratio = stats.ratio_test(
        stats.RatioSums(
            a.n_users,
            a.sum_clicks,
            a.sum_impressions,
            a.sum_clicks_sq,
            a.sum_impressions_sq,
            a.sum_clicks_x_impressions,
        ),
        stats.RatioSums(
            b.n_users,
            b.sum_clicks,
            b.sum_impressions,
            b.sum_clicks_sq,
            b.sum_impressions_sq,
            b.sum_clicks_x_impressions,
        ),
        0.1,
    )
    assert an.metric("ctr").detail == ratio
    assert an.metric("ctr").per_impression == stats.two_proportion_test(
        a.clicks, a.impressions, b.clicks, b.impressions, 0.1
    )
    conv = stats.two_proportion_test(
        a.users_converted, a.users_exposed, b.users_converted, b.users_exposed, 0.1
    )
    assert an.metric("conversion_rate").detail == conv
    eng = stats.welch_t_test_from_sums(
        a.engagement_n,
        a.engagement_sum,
        a.engagement_sumsq,
        b.engagement_n,
        b.engagement_sum,
        b.engagement_sumsq,
        0.1,
    )
    assert an.metric("engagement").detail == eng
    # Holm over the two secondary metrics, and the verdicts use the adjusted p-values.
    holm = stats.holm([conv.p_value, eng.p_value], 0.1)
    assert an.holm == holm and an.holm_metrics == ("conversion_rate", "engagement")
    assert an.metric("engagement").p_value == holm.adjusted[1]
    assert an.metric("engagement").p_value_test == eng.p_value
    assert an.metric("engagement").p_value_label == "Holm-adjusted"
    assert an.metric("ctr").p_value_adjusted is None
    srm = stats.srm_check(a.users_assigned, b.users_assigned, treatment_share=0.5)
    assert an.srm == srm
    # The headline Bayesian view is on the headline test's unit (the exposed user); the
    # per-impression Beta-Binomial stays, labelled, beside it.
    ctr = an.metric("ctr").detail
    user_level = stats.normal_posterior(ctr.ratio_a, ctr.ratio_b, ctr.se_diff)
    assert an.metric("ctr").bayes == user_level
    assert an.bayes is not None and an.bayes.prob_b_beats_a == user_level.prob_b_better
    assert "per exposed user" in an.bayes.label
    per_imp = stats.beta_binomial(a.clicks, a.impressions, b.clicks, b.impressions)
    assert an.metric("ctr").bayes_per_impression == per_imp
    assert "per impression" in an.metric("ctr").bayes_per_impression_label


def test_novelty_uses_the_daily_ctr_lift(demo_store: Store) -> None:
    from smart_suggest.experiments.timeline import timeline

    an = analyze(demo_store, 1)
    tl = timeline(demo_store, 1, bucket="day")
    lifts, weights = [], []
    for pa, pb in zip(tl.series("A"), tl.series("B"), strict=True):
        if pa.impressions and pb.impressions and pa.clicks:
            lifts.append((pb.clicks / pb.impressions) / (pa.clicks / pa.impressions) - 1)
            weights.append(pa.impressions + pb.impressions)
    assert an.novelty.lifts == pytest.approx(tuple(lifts), rel=1e-12)
    assert an.novelty.weights == tuple(float(w) for w in weights)
    assert an.novelty.trend.n_days == len(lifts)


def test_metric_choice_and_declared_primary(demo_store: Store) -> None:
    an = analyze(demo_store, 1, metric="conversion")
    assert an.primary_metric == "conversion_rate"
    assert [m.metric for m in an.metrics] == ["conversion_rate", "ctr", "engagement"]
    assert an.holm_metrics == ("ctr", "engagement")
    assert an.verdict == an.metric("conversion_rate").verdict
    # An experiment without a declared primary metric: CTR by default, with a warning.
    exp_id = _make_experiment(demo_store, "undeclared", [(1, "A"), (2, "B")])
    an2 = analyze(demo_store, exp_id)
    assert an2.primary_metric == "ctr" and not an2.primary_declared
    assert any("no primary metric was declared" in w for w in an2.warnings)


def test_sequential_mode(demo_store: Store) -> None:
    res = results(demo_store, 1)
    a, b = res.a, res.b
    an = analyze(demo_store, 1, sequential=True)
    _check_well_formed(an)
    ctr = an.metric("ctr")
    tau2 = stats.default_tau2(a.sum_clicks / a.sum_impressions)
    expected = stats.sequential_ratio(
        stats.RatioSums(
            a.n_users,
            a.sum_clicks,
            a.sum_impressions,
            a.sum_clicks_sq,
            a.sum_impressions_sq,
            a.sum_clicks_x_impressions,
        ),
        stats.RatioSums(
            b.n_users,
            b.sum_clicks,
            b.sum_impressions,
            b.sum_clicks_sq,
            b.sum_impressions_sq,
            b.sum_clicks_x_impressions,
        ),
        tau2,
        0.05,
    )
    assert ctr.sequential == expected
    assert ctr.p_value == expected.p_value and ctr.ci == expected.ci
    assert ctr.p_value_label == "always-valid"
    # Always-valid p-values are never smaller than the fixed-horizon ones at one look.
    assert ctr.p_value >= ctr.p_value_test
    assert an.mode == "sequential" and an.sequential is not None
    assert an.sequential.status in ("significant", "keep running")
    assert "tau^2" in an.sequential.tau2_basis
    eng = an.metric("engagement")
    assert eng.p_value_label == "Holm-adjusted always-valid"
    # A caller can fix tau^2 before the start.
    fixed = analyze(demo_store, 1, sequential=True, tau2={"ctr": 0.0004})
    assert fixed.metric("ctr").sequential.tau2 == 0.0004
    assert fixed.sequential is not None and fixed.sequential.tau2_basis.endswith(
        "fixed by the caller"
    )
    with pytest.raises(InputError):
        analyze(demo_store, 1, sequential=True, tau2={"ctr": -1.0})


def test_power_and_duration(demo_store: Store) -> None:
    an = analyze(demo_store, 1, metric="conversion_rate")
    # 50 demo users cannot power a conversion test: far more users are needed.
    conv = an.power
    assert conv.n_needed_per_variant is not None
    assert conv.n_needed_per_variant > 100 * conv.users_assigned_a
    assert conv.power < 0.8
    an = analyze(demo_store, 1)
    p = an.power
    ctr = an.metric("ctr")
    assert p.metric == "ctr" and p.power == ctr.power == ctr.judgement.power
    assert p.n_needed_per_variant is not None and p.n_needed_per_variant > 0
    # Users assigned per day so far drive the expected duration.
    days_run = an.experiment.days_run
    assigned = p.users_assigned_a + p.users_assigned_b
    assert days_run is not None and p.daily_users is not None
    assert p.daily_users == pytest.approx(assigned / days_run)
    assert p.duration is not None and p.users_needed_per_variant is not None
    expected = stats.expected_duration(
        p.users_needed_per_variant,
        p.daily_users,
        treatment_share=0.5,
        enrolled_a=p.users_assigned_a,
        enrolled_b=p.users_assigned_b,
    )
    assert p.duration == expected and p.days_remaining == expected.days
    assert "power" in p.message


def test_parameter_validation(demo_store: Store) -> None:
    before = table_rows(demo_store)
    cases: tuple[dict[str, Any], ...] = (
        {"alpha": 0.0},
        {"alpha": 1.0},
        {"alpha": math.nan},
        {"min_lift": -0.1},
        {"min_lift": math.inf},
        {"metric": "revenue"},
    )
    for kwargs in cases:
        with pytest.raises(InputError):
            analyze(demo_store, 1, **kwargs)
    with pytest.raises(NotFoundError):
        analyze(demo_store, "no-such-experiment")
    assert table_rows(demo_store) == before


# --- SRM and degenerate data ---------------------------------------------------------------


def test_skewed_assignment_is_flagged_invalid(store: Store) -> None:
    assign = [(u, "A") for u in range(1, 301)] + [(u, "B") for u in range(301, 451)]
    events = []
    for u, v in assign:
        events.append((v, u, "impression", None, 100.0 + u))
        if u % 3 == 0:
            events.append((v, u, "click", None, 105.0 + u))
    exp_id = _make_experiment(store, "skewed", assign, events, primary_metric="ctr")
    an = analyze(store, exp_id)
    _check_well_formed(an)
    assert an.srm.flagged and an.srm_flagged
    assert an.verdict == "invalid"
    assert all(m.verdict == "invalid" for m in an.metrics)
    assert "Sample ratio mismatch" in an.srm_message
    assert "Sample ratio mismatch" in an.conclusion
    assert any("Sample ratio mismatch" in w for w in an.warnings)
    held = fail_conditions(an)
    assert held["srm"] and held["invalid"] and held["no-win"]


def test_configured_split_is_respected(store: Store) -> None:
    # 2:1 is exactly the configured 1/3 treatment share: no mismatch.
    assign = [(u, "A") for u in range(1, 301)] + [(u, "B") for u in range(301, 451)]
    exp_id = _make_experiment(store, "third", assign, treatment_share=1 / 3)
    an = analyze(store, exp_id)
    assert not an.srm.flagged and an.srm.p_value > 0.5


def test_new_experiment_without_data(store: Store) -> None:
    exp = create_experiment(store, "fresh")
    for seq in (False, True):
        an = analyze(store, exp.id, sequential=seq)
        data = _check_well_formed(an)
        assert an.verdict == "no_effect"
        assert all(m.test == "none" and m.p_value == 1.0 for m in an.metrics)
        assert "Not enough data" in an.conclusion
        assert an.srm_message.startswith("No users assigned")
        assert data["power"]["duration"] is None
        assert an.novelty.trend is None or an.novelty.trend.n_days == 0
        if seq:
            assert an.sequential is not None and an.sequential.status == "not run"
    held = fail_conditions(analyze(store, exp.id))
    assert held == {
        "srm": False,
        "invalid": False,
        "negative": False,
        "underpowered": True,
        "no-win": True,
    }


def test_one_arm_empty(store: Store) -> None:
    assign = [(u, "A") for u in range(1, 41)]
    events: list[Event] = [("A", u, "impression", None, 10.0 * u) for u in range(1, 41)]
    events += [("A", u, "click", None, 10.0 * u + 1) for u in range(1, 41, 4)]
    events += [("A", u, "engagement", 30.0 + u, 10.0 * u + 2) for u in range(1, 41, 4)]
    exp_id = _make_experiment(store, "lonely", assign, events)
    for seq in (False, True):
        an = analyze(store, exp_id, sequential=seq)
        _check_well_formed(an)
        ctr = an.metric("ctr")
        assert ctr.value_b is None and ctr.value_a == pytest.approx(10 / 40)
        assert ctr.test == "none" and not ctr.significant
        assert an.srm.flagged  # 40 vs 0 at 50/50 is a mismatch
        assert an.verdict == "invalid"


def test_single_user_per_arm_and_zero_variance(store: Store) -> None:
    events: list[Event] = []
    for v, u in (("A", 1), ("B", 2)):
        for k in range(4):
            events.append((v, u, "impression", None, float(k)))
        events.append((v, u, "click", None, 10.0))
        events.append((v, u, "engagement", 30.0, 11.0))
        events.append((v, u, "engagement", 30.0, 12.0))
    exp_id = _make_experiment(store, "tiny", [(1, "A"), (2, "B")], events)
    an = analyze(store, exp_id, sequential=True)
    _check_well_formed(an)
    assert an.metric("ctr").test == "none"  # variance undefined with one user
    eng = an.metric("engagement")
    assert eng.test == "none" and "zero variance" in eng.note


def test_inconsistent_logging_is_explained_not_raised(store: Store) -> None:
    # Clicks and purchases logged for users who never saw an impression.
    events = [("A", 1, "impression", None, 1.0), ("B", 2, "impression", None, 1.0)]
    events += [("A", 3, "click", None, 2.0), ("A", 3, "click", None, 3.0)]
    events += [("A", 4, "purchase", None, 4.0), ("A", 5, "purchase", None, 5.0)]
    assign = [(1, "A"), (2, "B"), (3, "A"), (4, "A"), (5, "A")]
    exp_id = _make_experiment(store, "leaky", assign, events, primary_metric="conversion")
    an = analyze(store, exp_id)
    _check_well_formed(an)
    conv = an.metric("conversion_rate")
    assert conv.verdict == "invalid" and "more converted users than exposed users" in conv.note
    assert an.verdict == "invalid"
    ctr = an.metric("ctr")
    assert ctr.per_impression is None and "more clicks than impressions" in ctr.note


def test_stopped_experiment_is_analysed(demo_store: Store) -> None:
    stop_experiment(demo_store, 1)
    an = analyze(demo_store, 1)
    assert an.experiment.status == "stopped" and an.verdict == "worth_shipping"


def test_negative_result_is_caught(tmp_path: Path) -> None:
    from smart_suggest.sample import SyntheticSpec, generate

    with open_store(tmp_path / "neg.db") as s:
        spec = SyntheticSpec(
            users=600, items=20, interactions=0, events=30_000, days=10, ctr_a=0.42, ctr_b=0.30
        )
        generate(s, spec)
        an = analyze(s, 1)
    ctr = an.metric("ctr")
    assert ctr.significant and ctr.direction == "worse"
    assert an.verdict == "stat_sig_but_small_effect" and "B is worse" in ctr.summary
    held = fail_conditions(an)
    assert held["negative"] and held["no-win"] and not held["srm"]


# --- summaries and the SQL --------------------------------------------------------------


def _sql_rows(path: Path, exp_id: int) -> list[dict[str, Any]]:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = conn.execute(print_sql(), {"experiment_id": exp_id})
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


def test_printed_sql_matches_results(demo_store: Store, db_path: Path) -> None:
    rows = _sql_rows(db_path, 1)
    assert [r["variant"] for r in rows] == ["A", "B"]
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    res = results(demo_store, 1)
    for row, kpi in zip(rows, res.variants, strict=True):
        for col in SUMMARY_COLUMNS[1:]:
            if isinstance(row[col], int):
                assert row[col] == getattr(kpi, col), col
            else:  # results sums per-user rows: the same seconds, added in another order
                assert row[col] == pytest.approx(getattr(kpi, col), rel=1e-12), col


def test_summary_gives_the_same_analysis(
    demo_store: Store, db_path: Path, approx_tree: Callable[[Any], Any]
) -> None:
    rows = _sql_rows(db_path, 1)
    db = analyze(demo_store, 1, sequential=True)
    for row in rows:
        row["days"] = db.experiment.days_run
    summ = analyze_summary(rows, metric="ctr", sequential=True, name="warehouse")
    assert summ.experiment.source == "summary" and summ.experiment.name == "warehouse"
    d1, d2 = db.to_dict(), summ.to_dict()
    for key in ("metrics", "srm", "holm", "bayes", "sequential", "power", "verdict", "variants"):
        if key == "variants":
            for v in ("A", "B"):
                d1[key][v].pop("strategy")
                d2[key][v].pop("strategy")
        # The database's analysis reads the per-user summary, the printed SQL the events.
        assert approx_tree(d1[key]) == d2[key], key


def test_summary_defaults_and_share(demo_store: Store, db_path: Path) -> None:
    rows = _sql_rows(db_path, 1)
    an = analyze_summary(rows)
    assert not an.primary_declared and an.primary_metric == "ctr"
    assert any("--metric" in w for w in an.warnings)
    assert an.novelty.trend is None and "summary" in an.novelty.message
    assert an.power.duration is None
    for r in rows:
        r["treatment_share"] = "0.25"
    an = analyze_summary(rows)
    assert an.experiment.treatment_share == 0.25 and an.srm.expected_share == (0.75, 0.25)


def _row(variant: str, **over: Any) -> dict[str, Any]:
    """A possible row: every identity and inequality of the sums holds."""
    base: dict[str, Any] = {
        "variant": variant,
        "users_assigned": 10,
        "users_exposed": 10,
        "impressions": 30,
        "clicks": 6,
        "users_converted": 2,
        "purchases": 3,
        "engagement_n": 10,
        "engagement_sum": 100.0,
        "engagement_sumsq": 2000.0,
        "n_users": 10,
        "sum_clicks": 6,
        "sum_impressions": 30,
        "sum_clicks_sq": 8,
        "sum_impressions_sq": 100,
        "sum_clicks_x_impressions": 20,
    }
    base.update(over)
    return base


def test_a_huge_value_gives_a_short_message() -> None:
    with pytest.raises(InputError) as exc:
        analyze_summary([_row("A"), _row("B", users_assigned="7" * 100_000)], source="s.csv")
    assert len(str(exc.value)) < 200 and "..." in str(exc.value)


def test_the_possible_row_is_accepted() -> None:
    an = analyze_summary([_row("A"), _row("B")], source="s.csv")
    assert an.variants["A"].users_assigned == 10


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([_row("A")], "no row for variant B"),
        ([_row("A"), _row("A")], "appears twice"),
        ([_row("A"), _row("C")], "no row for variant B"),
        ([_row("A"), _row("AB")], "must be a letter"),
        ([_row("A"), {k: v for k, v in _row("B").items() if k != "clicks"}], "missing column"),
        ([_row("A"), _row("B", clicks="abc")], "'abc' is not a number"),
        ([_row("A"), _row("B", clicks=2.5)], "not a whole number"),
        ([_row("A"), _row("B", clicks=-1)], "must not be negative"),
        ([_row("A"), _row("B", engagement_sum="nan")], "is not a number"),
        ([_row("A"), _row("B", engagement_sum=float("nan"))], "not a finite number"),
        ([_row("A"), _row("B", users_assigned="1_500")], "'1_500' is not a number"),
        ([_row("A"), _row("B", users_assigned="9" * 401)], "is not a number"),
        ([_row("A"), _row("B", users_assigned=int("9" * 401))], "too large (counts up to 1e15)"),
        (
            [_row("A"), _row("B", users_assigned="1e308")],
            "column users_assigned: '1e308' is too large",
        ),
        (
            [_row("A"), _row("B", users_assigned="7" * 100_000)],
            "is not a number",
        ),
        # Identities and inequalities of the sums (issue reproducers).
        ([_row("A"), _row("B", sum_clicks=35, clicks=35)], "CTR above 100%"),
        ([_row("A"), _row("B", sum_clicks_sq=1)], "column sum_clicks_sq: 1 < the plain sum 6"),
        ([_row("A"), _row("B", sum_clicks_x_impressions=10**9)], "column sum_clicks_x_impressions"),
        ([_row("A"), _row("B", engagement_sumsq=1.0)], "column engagement_sumsq"),
        ([_row("A"), _row("B", users_exposed=11, n_users=11)], "exposed users > 10 assigned"),
        ([_row("A"), _row("B", n_users=9)], "must equal users_exposed"),
        ([_row("A"), _row("B", sum_clicks=7)], "sum_clicks: 7 > clicks (6)"),
        (
            [
                _row("A"),
                _row(
                    "B",
                    users_exposed=0,
                    n_users=0,
                    impressions=0,
                    sum_impressions=0,
                    sum_clicks=0,
                    sum_clicks_sq=0,
                    sum_impressions_sq=0,
                ),
            ],
            "must be 0 when n_users is 0",
        ),
        ([_row("A"), _row("B", engagement_sum=-1.0)], "must not be negative"),
        ([_row("A"), _row("B", users_converted=4)], "converted users > 3 purchases"),
        ([_row("A"), _row("B", clicks="")], "empty value"),
        ([_row("A"), _row("B", clicks=True)], "expected a number"),
        ([_row("A"), _row("B", engagement_sumsq=-5)], "must not be negative"),
        ([_row("A", treatment_share=0.5), _row("B", treatment_share=0.4)], "differs"),
        ([_row("A", treatment_share=1.5), _row("B", treatment_share=1.5)], "(0, 1)"),
        ([_row("A", days=0), _row("B", days=0)], "days must be > 0"),
    ],
)
def test_summary_rejects_bad_rows(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(InputError) as exc:
        analyze_summary(rows, source="s.csv")
    text = str(exc.value)
    assert message in text and text.startswith("s.csv:") and "\n" not in text


def test_summary_rows_parse_strings_and_odd_sums() -> None:
    rows = [
        {k: str(v) for k, v in _row("a").items()},
        {k: str(v) for k, v in _row("b", clicks="7.0").items()},
    ]
    an = analyze_summary(rows)
    assert an.variants["B"].clicks == 7
    # Parseable but impossible sums (second moments too small for the first) are refused:
    # treated as zero variance they would make the result look more certain.
    for odd in (
        [_row("A", sum_clicks_sq=0), _row("B")],
        [_row("A"), _row("B", sum_impressions_sq=0)],
    ):
        with pytest.raises(InputError, match=r"Cauchy-Schwarz|x <= x\^2"):
            analyze_summary(odd)


def test_load_summary_formats(
    tmp_path: Path, demo_store: Store, db_path: Path, approx_tree: Callable[[Any], Any]
) -> None:
    rows = _sql_rows(db_path, 1)
    csv_path = tmp_path / "s.csv"
    with csv_path.open("w", newline="") as fh:
        import csv

        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    loaded = load_summary(csv_path)
    assert [r["variant"] for r in loaded] == ["A", "B"]
    an_csv = analyze_summary(loaded)
    for doc in (rows, {"A": rows[0], "B": rows[1]}, {"variants": {"A": rows[0], "B": rows[1]}}):
        p = tmp_path / "s.json"
        p.write_text(json.dumps(doc))
        assert analyze_summary(load_summary(p)).metrics == an_csv.metrics
    # The JSON of `experiment results` works as a summary too (its sums come from the
    # per-user summary: the same seconds, added in another order).
    p.write_text(json.dumps(results(demo_store, 1).to_dict()))
    from_results = analyze_summary(load_summary(p)).to_dict()["metrics"]
    assert approx_tree(from_results) == an_csv.to_dict()["metrics"]
    for content, message in (
        ("", "empty"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a list of row objects"),
        ("variant,clicks\n", "no data rows"),
        ("a,b\n1,2,3\n", "more fields"),
    ):
        p = tmp_path / "bad.txt"
        p.write_text(content)
        with pytest.raises(InputError, match=message):
            load_summary(p)
    with pytest.raises(InputError, match="no such file"):
        load_summary(tmp_path / "missing.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="not UTF-8"):
        load_summary(tmp_path / "bin.csv")


def test_fail_conditions_table_is_consistent() -> None:
    codes = [code for code, _ in FAIL_CONDITIONS.values()]
    assert len(set(codes)) == len(codes) and min(codes) >= 3


def test_secondary_intervals_agree_with_the_holm_decision() -> None:
    """Once a secondary metric showed a 95% CI excluding 0 beside a Holm-adjusted
    'p = 0.0852, not significant'; its intervals are now at the Bonferroni level."""
    seen_disagreement = False
    for conv_b in range(2, 200, 3):
        rows = [
            _row("A", users_assigned=2000, users_exposed=2000, n_users=2000, impressions=6000,
                 sum_impressions=6000, sum_impressions_sq=20000, users_converted=100,
                 purchases=120),
            _row("B", users_assigned=2000, users_exposed=2000, n_users=2000, impressions=6000,
                 sum_impressions=6000, sum_impressions_sq=20000, users_converted=100 + conv_b,
                 purchases=120 + conv_b),
        ]  # fmt: skip
        an = analyze_summary(rows, metric="ctr")
        conv = an.metric("conversion_rate")
        assert conv.role == "secondary" and conv.p_value_adjusted is not None
        excludes_zero = conv.ci.low > 0 or conv.ci.high < 0
        if excludes_zero:  # an interval without 0 always comes with a significant decision
            assert conv.significant
        if 0.025 < conv.p_value_test < 0.05 and not conv.significant:
            # A plain 95% interval would have excluded 0 here; the reported one does not.
            assert conv.detail.diff_ci.low > 0 and conv.ci.low <= 0
            assert conv.ci.level == pytest.approx(0.975) and "Bonferroni" in conv.ci_note
            seen_disagreement = True
    assert seen_disagreement
