"""Power analysis: formula values, statsmodels agreement, inversions, duration."""

from __future__ import annotations

import json

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from smart_suggest.stats import (
    achieved_power,
    expected_duration,
    mde_proportions,
    power_from_se,
    sample_size_means,
    sample_size_proportions,
)


def test_hand_computed_sample_size() -> None:
    # 10% -> 12%, alpha 0.05, power 0.8: (1.95996*sqrt(2*.11*.89) + 0.84162*sqrt(.09+.1056))^2
    # / 0.02^2 = 3840.85 -> 3841 per variant.
    s = sample_size_proportions(0.10, 0.02)
    assert s.n_exact == pytest.approx(3840.85, abs=0.01)
    assert s.n_per_variant == 3841 and s.n_total == 7682
    rel = sample_size_proportions(0.10, 0.20, relative=True)
    assert rel.n_per_variant == 3841 and rel.mde_absolute == pytest.approx(0.02)
    json.dumps(s.to_dict(), allow_nan=False)


@pytest.mark.parametrize("baseline", [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5])
@pytest.mark.parametrize("mde", [0.02, 0.05, 0.1, 0.2, 0.3])
def test_agrees_with_statsmodels_arcsine_power(baseline: float, mde: float) -> None:
    ours = sample_size_proportions(baseline, mde, relative=True).n_exact
    es = proportion_effectsize(baseline * (1 + mde), baseline)
    ref = NormalIndPower().solve_power(effect_size=es, alpha=0.05, power=0.8, ratio=1.0)
    assert ours == pytest.approx(ref, rel=0.005)  # stated agreement: within 0.5%


@pytest.mark.parametrize(("sd", "mde"), [(20.0, 2.0), (1.0, 0.01), (300.0, 45.0)])
def test_means_sample_size_matches_statsmodels(sd: float, mde: float) -> None:
    ours = sample_size_means(sd, mde).n_exact
    ref = NormalIndPower().solve_power(effect_size=mde / sd, alpha=0.05, power=0.8)
    assert ours == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize("baseline", [0.003, 0.05, 0.3, 0.9])
@pytest.mark.parametrize("n", [50, 1000, 123_457, 10_000_000])
def test_mde_inverts_sample_size(baseline: float, n: int) -> None:
    m = mde_proportions(baseline, n)
    if m.mde_absolute is None:
        assert "no rate" in m.note
        return
    back = sample_size_proportions(baseline, m.mde_absolute).n_exact
    assert back == pytest.approx(n, rel=1e-9)


@pytest.mark.parametrize(("p1", "p2"), [(0.1, 0.12), (0.02, 0.021), (0.5, 0.45), (0.9, 0.95)])
def test_achieved_power_inverts_sample_size(p1: float, p2: float) -> None:
    s = sample_size_proportions(p1, p2 - p1, power=0.8)
    n = s.n_exact
    pw = achieved_power(p1, p2, n, n).power  # type: ignore[arg-type]
    # The extra term is the (negligible) opposite rejection tail.
    assert pw == pytest.approx(0.8, abs=1e-6)
    assert achieved_power(p1, p1, 1000, 1000).power == pytest.approx(0.05, abs=1e-12)


def test_power_from_se() -> None:
    assert power_from_se(0.0, 1.0) == pytest.approx(0.05)
    assert power_from_se(2.8016, 1.0) == pytest.approx(0.8, abs=1e-4)
    assert power_from_se(1.0, 0.0) == 1.0 and power_from_se(0.0, 0.0) == 0.0


def test_duration() -> None:
    d = expected_duration(3841, 1000, traffic_fraction=0.5, treatment_share=0.5)
    assert d.daily_a == 250 and d.days == pytest.approx(3841 / 250) and d.days_whole == 16
    uneven = expected_duration(1000, 1000, treatment_share=0.2)
    assert uneven.days == pytest.approx(1000 / 200)  # the small arm sets the pace
    partly = expected_duration(1000, 100, enrolled_a=900, enrolled_b=950)
    assert partly.remaining_a == 100 and partly.days == pytest.approx(2.0)
    done = expected_duration(1000, 0, enrolled_a=1000, enrolled_b=2000)
    assert done.days == 0.0 and done.days_whole == 0
    stuck = expected_duration(1000, 0)
    assert stuck.days is None and "no traffic" in stuck.note
    json.dumps(stuck.to_dict(), allow_nan=False)


def test_degenerate_power_inputs() -> None:
    assert achieved_power(0.1, 0.2, 0, 10).power == 0.0
    det = achieved_power(0.0, 1.0, 10, 10)
    assert det.power == 1.0 and "deterministic" in det.note
    assert achieved_power(0.0, 0.0, 10, 10).power == 0.0
    assert mde_proportions(0.5, 0).mde_absolute is None


def test_impossible_designs_raise() -> None:
    with pytest.raises(ValueError):
        sample_size_proportions(0.0, 0.01)
    with pytest.raises(ValueError):
        sample_size_proportions(0.5, 0.0)
    with pytest.raises(ValueError):
        sample_size_proportions(0.95, 0.1)
    with pytest.raises(ValueError):
        sample_size_proportions(0.5, 0.1, power=1.0)
    with pytest.raises(ValueError):
        sample_size_means(0.0, 1.0)
