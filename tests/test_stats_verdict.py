"""Verdict rules, the plain-English paragraph, and the novelty (trend) check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm

from smart_suggest.stats import (
    VERDICT_RULES,
    VERDICTS,
    RatioSums,
    classify,
    default_tau2,
    novelty_check,
    ratio_test,
    sequential_proportions,
    srm_check,
    two_proportion_test,
    verdict,
    welch_t_test,
)

# --- classify: one case per rule -------------------------------------------------------


def test_every_rule_in_order() -> None:
    big = {"improvement": 0.01, "relative_improvement": 0.10, "power": 0.9}
    assert classify(significant=True, srm_flagged=True, **big) == "invalid"
    assert classify(significant=True, srm_flagged=False, **big) == "worth_shipping"
    assert (
        classify(significant=True, improvement=0.001, relative_improvement=0.01, power=0.9)
        == "stat_sig_but_small_effect"
    )
    assert (
        classify(significant=True, improvement=-0.01, relative_improvement=-0.10, power=0.9)
        == "stat_sig_but_small_effect"
    )
    assert (
        classify(significant=False, improvement=0.01, relative_improvement=0.1, power=0.5)
        == "promising_but_underpowered"
    )
    assert (
        classify(significant=False, improvement=0.01, relative_improvement=0.1, power=0.95)
        == "no_effect"
    )
    assert (
        classify(significant=False, improvement=-0.01, relative_improvement=-0.1, power=0.2)
        == "no_effect"
    )
    # Lift over a zero baseline is unbounded: significant and positive ships.
    assert (
        classify(significant=True, improvement=0.01, relative_improvement=None, power=0.9)
        == "worth_shipping"
    )


def test_rules_text_names_every_verdict() -> None:
    for v in VERDICTS:
        assert v in VERDICT_RULES
    assert "0.001" in VERDICT_RULES and "80%" in VERDICT_RULES and "5%" in VERDICT_RULES


# --- the paragraph ---------------------------------------------------------------------


def test_worth_shipping_paragraph() -> None:
    t = two_proportion_test(316, 1000, 420, 1000)
    v = verdict("CTR", t, srm=srm_check(1000, 1000))
    assert v.verdict == "worth_shipping" and v.direction == "better"
    assert v.summary.startswith("Variant B has 33% higher CTR than A (0.420 vs 0.316; 95% CI")
    assert "p < 0.0001, chi-square test" in v.summary
    assert "Verdict: worth shipping" in v.summary
    json.dumps(v.to_dict(), allow_nan=False)


def test_invalid_on_srm() -> None:
    t = two_proportion_test(30_000, 821_588, 33_000, 815_482)
    v = verdict("CTR", t, srm=srm_check(821_588, 815_482))
    assert v.verdict == "invalid" and v.srm_flagged
    assert v.summary.startswith("Sample ratio mismatch")


def test_b_worse_is_called_out() -> None:
    t = two_proportion_test(420, 1000, 316, 1000)
    v = verdict("CTR", t)
    assert v.verdict == "stat_sig_but_small_effect" and v.direction == "worse"
    assert "B is worse than A" in v.summary and "do not ship B" in v.summary


def test_small_but_significant() -> None:
    t = two_proportion_test(100_000, 1_000_000, 102_000, 1_000_000)
    v = verdict("CTR", t)
    assert v.verdict == "stat_sig_but_small_effect" and "below the 5%" in v.summary


def test_underpowered_reports_needed_sample() -> None:
    t = two_proportion_test(30, 300, 36, 300)
    v = verdict("CTR", t)
    assert v.verdict == "promising_but_underpowered"
    assert v.power < 0.8 and v.n_needed_per_variant is not None
    assert v.n_needed_per_variant > 300 and "users per variant" in v.summary


def test_no_effect_when_well_powered() -> None:
    t = two_proportion_test(100_000, 1_000_000, 100_050, 1_000_000)
    v = verdict("CTR", t)
    assert v.verdict == "no_effect" and v.power > 0.99


def test_ratio_and_welch_paragraphs() -> None:
    r = ratio_test(
        RatioSums(5000, 5000, 50000, 9000, 700000, 70000),
        RatioSums(5000, 5800, 50000, 11000, 700000, 80000),
    )
    v = verdict("CTR", r)
    assert "user-level delta-method z test" in v.summary and v.verdict == "worth_shipping"
    w = welch_t_test(2000, 30.0, 900.0, 2000, 30.2, 900.0)
    vw = verdict("engagement time", w)
    assert "Welch's t test" in vw.summary and vw.verdict in {"promising_but_underpowered"}
    assert vw.n_needed_per_variant is not None


def test_lower_is_better_flips_direction() -> None:
    w = welch_t_test(5000, 3.0, 1.0, 5000, 2.5, 1.0)  # e.g. seconds to first click
    v = verdict("time to click", w, higher_is_better=False)
    assert v.verdict == "worth_shipping" and v.direction == "better"


def test_overrides_and_degenerate_results() -> None:
    t = two_proportion_test(316, 1000, 420, 1000)
    v = verdict("CTR", t, p_value=0.2, p_value_label="Holm-adjusted")
    assert not v.significant and "Holm-adjusted p = 0.2" in v.summary
    empty = verdict("CTR", two_proportion_test(0, 0, 0, 0))
    assert empty.verdict == "no_effect" and "Note:" in empty.summary
    none_ratio = verdict(
        "CTR", ratio_test(RatioSums(0, 0, 0, 0, 0, 0), RatioSums(0, 0, 0, 0, 0, 0))
    )
    for res in (v, empty, none_ratio, verdict("t", welch_t_test(1, 1.0, 0.0, 1, 2.0, 0.0))):
        json.dumps(res.to_dict(), allow_nan=False)


def test_sequential_mode_uses_always_valid_numbers() -> None:
    t = two_proportion_test(1000, 10_000, 1090, 10_000)
    seq = sequential_proportions(1000, 10_000, 1090, 10_000, default_tau2(0.1))
    fixed = verdict("CTR", t)
    v = verdict("CTR", t, sequential=seq)
    assert fixed.significant and not v.significant  # always-valid is more demanding
    assert "always-valid p = " in v.summary and "mSPRT" in v.summary
    assert "always-valid CI" in v.summary
    assert v.p_value == seq.p_value


def test_novelty_warning_is_appended() -> None:
    days = list(range(14))
    lifts = [0.30 - 0.02 * d for d in days]
    lifts = [v + (0.005 if d % 2 else -0.005) for d, v in zip(days, lifts, strict=True)]
    trend = novelty_check(days, lifts)
    t = two_proportion_test(316, 1000, 420, 1000)
    v = verdict("CTR", t, trend=trend)
    assert v.verdict == "worth_shipping" and "shrinking" in v.summary and v.warnings


# --- trend -----------------------------------------------------------------------------


def test_trend_matches_statsmodels_wls() -> None:
    rng = np.random.default_rng(51)
    for _ in range(100):
        n = int(rng.integers(3, 40))
        x = np.sort(rng.choice(60, n, replace=False)).astype(float)
        w = rng.uniform(0.1, 10.0, n)
        y = rng.normal(0.1, 0.05, n) + rng.normal(0, 0.002) * x
        r = novelty_check(x.tolist(), y.tolist(), w.tolist())
        fit = sm.WLS(y, sm.add_constant(x), weights=w).fit()
        assert r.slope == pytest.approx(fit.params[1], rel=1e-9, abs=1e-14)
        assert r.intercept == pytest.approx(fit.params[0], rel=1e-9, abs=1e-14)
        assert r.slope_se == pytest.approx(fit.bse[1], rel=1e-9)
        assert r.p_value == pytest.approx(fit.pvalues[1], rel=1e-9, abs=1e-12)


def test_trend_flags() -> None:
    flat = novelty_check(range(14), [0.1 + 0.001 * (-1) ** d for d in range(14)])
    assert not flat.shrinking and not flat.too_short and flat.warning == ""
    short = novelty_check(range(5), [0.1, 0.12, 0.09, 0.11, 0.1])
    assert short.too_short and "only 5 day(s)" in short.warning
    growing = novelty_check(range(14), [0.01 * d + 0.001 * (-1) ** d for d in range(14)])
    assert not growing.shrinking  # moving away from zero is not a novelty effect
    negative_fading = novelty_check(range(14), [-0.3 + 0.02 * d for d in range(14)])
    assert negative_fading.shrinking  # a negative effect shrinking towards zero


@pytest.mark.parametrize(
    ("days", "lifts"),
    [
        ([], []),
        ([1], [0.1]),
        ([1, 2], [0.1, 0.2]),
        ([3, 3, 3], [0.1, 0.2, 0.3]),
        ([1, 2, 3], [0.1] * 3),
    ],
)
def test_trend_degenerate(days: list[int], lifts: list[float]) -> None:
    r = novelty_check(days, lifts)
    assert r.p_value == 1.0 and not r.shrinking
    json.dumps(r.to_dict(), allow_nan=False)
