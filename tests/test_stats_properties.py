"""Property tests: every public function's to_dict() is plain JSON with finite floats,
for arbitrary valid inputs (including the degenerate corners), and basic invariants hold.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_suggest.stats import (
    RatioSums,
    achieved_power,
    beta_binomial,
    expected_duration,
    holm,
    mde_proportions,
    msprt,
    newcombe_diff_interval,
    novelty_check,
    ratio_test,
    sample_size_proportions,
    sequential_proportions,
    srm_check,
    two_proportion_test,
    verdict,
    welch_t_test,
    welch_t_test_from_sums,
    wilson_interval,
)
from smart_suggest.stats._common import Result

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
alphas = st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.2])


def assert_clean(result: Result) -> dict[str, Any]:
    d = result.to_dict()
    json.dumps(d, allow_nan=False)  # no NaN / inf anywhere

    def walk(v: Any) -> None:
        if isinstance(v, float):
            assert math.isfinite(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        else:
            assert v is None or isinstance(v, (bool, int, str)), type(v)

    walk(d)
    return d


@st.composite
def binomial(draw: st.DrawFn, max_n: int) -> tuple[int, int]:
    n = draw(st.one_of(st.integers(0, 20), st.integers(0, max_n)))
    x = draw(st.one_of(st.just(0), st.just(n), st.integers(0, n)))
    return x, n


@SETTINGS
@given(binomial(10**6), binomial(10**6), alphas)
def test_two_proportion_test_is_clean(a: tuple[int, int], b: tuple[int, int], alpha: float) -> None:
    r = two_proportion_test(a[0], a[1], b[0], b[1], alpha)
    assert_clean(r)
    assert 0.0 <= r.p_value <= 1.0
    assert r.diff_ci.low <= r.diff_ci.high
    assert_clean(verdict("CTR", r))


@SETTINGS
@given(binomial(10**9), binomial(10**9), alphas)
def test_intervals_are_clean_at_huge_n(
    a: tuple[int, int], b: tuple[int, int], alpha: float
) -> None:
    w = wilson_interval(a[0], a[1], alpha)
    assert_clean(w)
    assert 0.0 <= w.low <= w.high <= 1.0
    assert_clean(newcombe_diff_interval(a[0], a[1], b[0], b[1], alpha))


pairs = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 50)).map(lambda t: (min(t), max(t))),
    max_size=30,
)


def _sums(rows: list[tuple[int, int]], scale: float) -> RatioSums:
    xs = [x * scale for x, _ in rows]
    ys = [y * scale for _, y in rows]
    return RatioSums(
        len(rows),
        sum(xs),
        sum(ys),
        sum(x * x for x in xs),
        sum(y * y for y in ys),
        sum(x * y for x, y in zip(xs, ys, strict=True)),
    )


@SETTINGS
@given(pairs, pairs, st.sampled_from([1.0, 1e-3, 1e4]), alphas)
def test_ratio_test_is_clean(
    a: list[tuple[int, int]], b: list[tuple[int, int]], scale: float, alpha: float
) -> None:
    r = ratio_test(_sums(a, scale), _sums(b, scale), alpha)
    assert_clean(r)
    assert 0.0 <= r.p_value <= 1.0
    assert_clean(verdict("CTR", r))


sizes = st.one_of(st.integers(0, 5), st.integers(0, 10**8))
means = st.floats(-1e6, 1e6, allow_nan=False)
variances = st.one_of(st.just(0.0), st.floats(0.0, 1e12, allow_nan=False))


@SETTINGS
@given(sizes, means, variances, sizes, means, variances, alphas)
def test_welch_is_clean(
    na: int, ma: float, va: float, nb: int, mb: float, vb: float, alpha: float
) -> None:
    r = welch_t_test(na, ma, va, nb, mb, vb, alpha)
    assert_clean(r)
    assert 0.0 <= r.p_value <= 1.0
    assert_clean(verdict("engagement", r))


samples = st.lists(st.floats(0.0, 1e5, allow_nan=False), max_size=30)


@SETTINGS
@given(samples, samples)
def test_welch_from_sums_is_clean(a: list[float], b: list[float]) -> None:
    r = welch_t_test_from_sums(
        len(a), sum(a), sum(x * x for x in a), len(b), sum(b), sum(x * x for x in b)
    )
    assert_clean(r)


@SETTINGS
@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.floats(0.01, 0.99),
    st.one_of(st.none(), st.integers(0, 10**9)),
    st.floats(0.001, 1.0),
)
def test_srm_is_clean(a: int, b: int, share: float, ne: int | None, tf: float) -> None:
    r = srm_check(a, b, treatment_share=share, not_enrolled=ne, traffic_fraction=tf)
    assert_clean(r)
    assert 0.0 <= r.p_value <= 1.0


@SETTINGS
@given(st.lists(st.floats(0.0, 1.0), max_size=20), alphas)
def test_holm_is_clean(ps: list[float], alpha: float) -> None:
    r = holm(ps, alpha)
    assert_clean(r)
    assert all(a >= p for a, p in zip(r.adjusted, ps, strict=True))


@SETTINGS
@given(
    st.floats(1e-4, 0.9999),
    st.floats(-0.5, 0.5).filter(lambda v: abs(v) > 1e-6),
    st.booleans(),
    st.integers(0, 10**9),
    alphas,
)
def test_power_functions_are_clean(
    baseline: float, mde: float, relative: bool, n: int, alpha: float
) -> None:
    target = baseline * (1 + mde) if relative else baseline + mde
    if 0.0 < target < 1.0 and target != baseline:
        assert_clean(sample_size_proportions(baseline, mde, relative=relative, alpha=alpha))
    assert_clean(mde_proportions(baseline, n, alpha=alpha))
    assert_clean(achieved_power(baseline, min(1.0, max(0.0, target)), n, n // 2, alpha))
    assert_clean(expected_duration(n, n / 7.0, traffic_fraction=0.5, treatment_share=0.3))


@SETTINGS
@given(
    st.lists(
        st.tuples(st.floats(-1.0, 1.0), st.floats(0.0, 1.0), st.floats(1e-12, 1.0)),
        min_size=1,
        max_size=10,
    ),
    alphas,
)
def test_msprt_is_clean(looks: list[tuple[float, float, float]], alpha: float) -> None:
    prev = None
    tau2 = looks[0][2]
    for diff, var, _ in looks:
        cur = msprt(diff, var, tau2, alpha, prev)
        assert_clean(cur)
        if prev is not None:
            assert cur.p_value <= prev.p_value
        prev = cur


@SETTINGS
@given(binomial(10**7), binomial(10**7))
def test_sequential_and_bayes_are_clean(a: tuple[int, int], b: tuple[int, int]) -> None:
    assert_clean(sequential_proportions(a[0], a[1], b[0], b[1], 1e-4))
    r = beta_binomial(a[0], a[1], b[0], b[1])
    assert_clean(r)
    assert 0.0 <= r.prob_b_better <= 1.0


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.floats(-5, 5), st.floats(0, 1e4)),
        max_size=40,
    )
)
def test_novelty_check_is_clean(rows: list[tuple[int, float, float]]) -> None:
    r = novelty_check([d for d, _, _ in rows], [v for _, v, _ in rows], [w for _, _, w in rows])
    assert_clean(r)
    assert 0.0 <= r.p_value <= 1.0
