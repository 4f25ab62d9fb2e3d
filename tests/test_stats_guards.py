"""SRM check and Holm correction against scipy / statsmodels."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from smart_suggest.stats import holm, srm_check


def close(got: float, want: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return abs(got - want) <= max(abs_, rel * abs(want))


def test_srm_reference_value() -> None:
    r = srm_check(821_588, 815_482)
    assert r.chi2 == pytest.approx(22.77, abs=0.005)
    assert r.p_value == pytest.approx(1.8e-6, rel=0.02)
    assert r.flagged and r.df == 1


def test_srm_agrees_with_scipy_chisquare() -> None:
    rng = np.random.default_rng(31)
    for _ in range(2000):
        share = rng.uniform(0.05, 0.95)
        tf = rng.uniform(0.05, 1.0) if rng.random() < 0.5 else None
        total = int(10 ** rng.uniform(1, 8))
        if tf is None:
            probs = [1 - share, share * rng.choice([1.0, 1.001, 1.05])]
        else:
            probs = [1 - tf, tf * (1 - share), tf * share * rng.choice([1.0, 1.01])]
        probs = np.array(probs) / sum(probs)
        obs = rng.multinomial(total, probs)
        if tf is None:
            r = srm_check(int(obs[0]), int(obs[1]), treatment_share=share)
            exp = total * np.array([1 - share, share])
        else:
            r = srm_check(
                int(obs[1]),
                int(obs[2]),
                treatment_share=share,
                not_enrolled=int(obs[0]),
                traffic_fraction=tf,
            )
            exp = total * np.array([1 - tf, tf * (1 - share), tf * share])
        ref = stats.chisquare(obs, exp)
        assert close(r.chi2, ref.statistic, rel=1e-9, abs_=1e-9)
        assert close(r.p_value, ref.pvalue)
        if abs(ref.pvalue - 0.001) > 1e-12:
            assert r.flagged == (ref.pvalue < 0.001)


def test_srm_degenerate_and_leaks() -> None:
    empty = srm_check(0, 0)
    assert empty.p_value == 1.0 and not empty.flagged and "no users" in empty.note
    leak = srm_check(500, 500, not_enrolled=3, traffic_fraction=1.0)
    assert leak.flagged and "traffic_fraction is 1" in leak.note
    fine = srm_check(500, 500, not_enrolled=0, traffic_fraction=1.0)
    assert not fine.flagged and fine.groups == ("A", "B")
    small = srm_check(3, 1)
    assert "below 5" in small.note
    for r in (empty, leak, fine, small, srm_check(0, 0, not_enrolled=5, traffic_fraction=1.0)):
        json.dumps(r.to_dict(), allow_nan=False)
    with pytest.raises(ValueError):
        srm_check(1, 1, treatment_share=1.0)


def test_holm_matches_statsmodels(monkeypatch: pytest.MonkeyPatch) -> None:
    # multipletests runs gc.collect() on every call (tens of ms in a big test process);
    # it has no bearing on the result, so skip it here.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    rng = np.random.default_rng(32)
    for _ in range(1000):
        m = int(rng.integers(1, 12))
        p = rng.choice([rng.uniform(0, 1), 10 ** rng.uniform(-15, 0), 0.0, 1.0], m)
        if rng.random() < 0.3:
            p[: m // 2] = p[0]  # ties
        r = holm(p.tolist())
        rej, adj, _, _ = multipletests(p, alpha=0.05, method="holm")
        assert all(close(a, b) for a, b in zip(r.adjusted, adj, strict=True))
        for mine, ref, a in zip(r.reject, rej, adj, strict=True):
            if abs(a - 0.05) > 1e-12:
                assert mine == bool(ref)


def test_holm_edge_cases() -> None:
    assert holm([]).adjusted == ()
    assert holm([0.01, 0.04, 0.03]).adjusted == pytest.approx((0.03, 0.06, 0.06))
    with pytest.raises(ValueError):
        holm([0.5, float("nan")])
