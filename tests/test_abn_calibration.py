"""Reduced forms of benchmarks/bench_interleaving.py (full size: 500+ replications there).

Fixed seeds, so the figures are reproducible; the bounds are the targets widened by about
three binomial standard errors of the smaller replication counts used here.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_interleaving.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_interleaving", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_interleaving"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_interleaving_needs_far_fewer_users_than_ab(bench: ModuleType) -> None:
    rng = np.random.default_rng(11)
    a = bench._pool_ab(rng, bench.NOISE_V1, 200_000)
    b = bench._pool_ab(rng, bench.NOISE_V3, 200_000)
    d = bench._pool_interleaving(rng, bench.NOISE_V1, bench.NOISE_V3, 20_000)
    reps = 120
    ab_sizes = [16_000, 32_000, 64_000, 128_000]
    il_sizes = [400, 800, 1_600, 3_200]
    ab = [bench._ab_rejects(rng, a, b, n, reps) for n in ab_sizes]
    il = [bench._il_rejects(rng, d, n, reps) for n in il_sizes]
    n_ab, n_il = bench._n_for_power(ab_sizes, ab), bench._n_for_power(il_sizes, il)
    assert math.isfinite(n_ab) and math.isfinite(n_il), (ab, il)
    assert n_ab / n_il >= 10, (n_ab, n_il)


def test_ai_false_positive_rate(bench: ModuleType) -> None:
    rng = np.random.default_rng(12)
    d = bench._pool_interleaving(rng, 1.0, 1.0, 20_000)
    fpr = bench._il_rejects(rng, d, 1_000, 800)
    assert 0.025 <= fpr <= 0.075, fpr


def test_cuped_width_false_positives_and_coverage(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.cuped_calibration(np.random.default_rng(13), 1_200) or True
    out = capsys.readouterr().out
    narrower = float(out.split("% narrower")[0].rsplit(": ", 1)[1])
    fpr = float(out.split("A/A false-positive rate ")[1].split()[0])
    coverage = float(out.split("coverage of the 95% CI ")[1].split()[0])
    assert narrower >= 20.0, out
    assert 0.03 <= fpr <= 0.07, out
    assert 0.935 <= coverage <= 0.965, out


def test_abn_family_wise_rate(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    bench.abn_fwer(np.random.default_rng(14), 200, True)
    out = capsys.readouterr().out
    fwer = float(out.split("family-wise rate ")[1].split()[0])
    assert fwer <= 0.065, out
