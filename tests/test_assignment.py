"""The assignment rule: pinned by hand-computed values, balanced, independent, stable."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from scipy import stats

from smart_suggest.experiments.assignment import (
    CODE_A,
    CODE_B,
    CODE_NONE,
    assign_codes,
    assign_many,
    assign_variant,
    hash_numbers,
)

N = 100_000
USERS = range(1, N + 1)

# (experiment_id, user_id, traffic, share, md5 hex of "{e}:{u}", expected variant), worked
# out with hashlib by hand: enrol = int(h[0:8], 16) / 2**32, split = int(h[8:16], 16) / 2**32.
PINNED = [
    (1, 1, 1.0, 0.5, "d0bd571dc19c083d82f023c9666c5574", "A"),  # enrol .8154, split .7563
    (1, 2, 1.0, 0.5, "def474a313bffa002eae8941b2e12620", "B"),  # split .0771 < .5
    (7, 42, 1.0, 0.5, "ad177c67bdafbc3743d61c3bd5840b0e", "A"),  # split .7410
    (7, 42, 0.1, 0.5, "ad177c67bdafbc3743d61c3bd5840b0e", None),  # enrol .6761 >= .1
    (12, 1000, 1.0, 0.5, "12dce2654fa295659f56a1deece33204", "B"),  # split .3111
    (3, 99, 0.5, 0.2, "1fc22d9f0e630dcd032f892db62bd483", "B"),  # enrol .1241, split .0562
    (2, 6, 1.0, 0.5, "3a0dee9db8289dfe34d06afbf067c346", "A"),  # split .7194
]


@pytest.mark.parametrize(("exp", "user", "traffic", "share", "digest", "variant"), PINNED)
def test_pinned_values_follow_the_documented_rule(
    exp: int, user: int, traffic: float, share: float, digest: str, variant: str | None
) -> None:
    assert hashlib.md5(f"{exp}:{user}".encode()).hexdigest() == digest
    enrol, split = hash_numbers(exp, user)
    assert enrol == int(digest[0:8], 16) / 2**32
    assert split == int(digest[8:16], 16) / 2**32
    assert assign_variant(exp, user, traffic, share) == variant
    assert assign_many(exp, [user], traffic, share) == [variant]


def test_fast_path_equals_the_reference_rule_user_by_user() -> None:
    users = list(range(1, 20_001))
    for exp, traffic, share in [(1, 1.0, 0.5), (9, 0.37, 0.21), (123, 0.05, 0.9)]:
        expected = [assign_variant(exp, u, traffic, share) for u in users]
        assert assign_many(exp, users, traffic, share) == expected
    # Boundaries of the comparison: a fraction equal to a user's own number excludes them
    # (strict <), exactly as the documented rule.
    enrol, split = hash_numbers(5, 77)
    assert assign_variant(5, 77, enrol, 0.5) is None
    assert assign_many(5, [77], enrol, 0.5) == [None]
    assert assign_many(5, [77], 1.0, split) == ["A"] == [assign_variant(5, 77, 1.0, split)]


def test_empty_input() -> None:
    assert assign_many(1, []) == []
    assert len(assign_codes(1, [])) == 0


@pytest.mark.parametrize("exp", [1, 2, 17])
def test_50_50_split_passes_the_srm_chi_square(exp: int) -> None:
    codes = assign_codes(exp, USERS, 1.0, 0.5)
    assert (codes != CODE_NONE).all()
    n_a, n_b = int((codes == CODE_A).sum()), int((codes == CODE_B).sum())
    assert n_a + n_b == N
    assert stats.chisquare([n_a, n_b]).pvalue > 0.001


def test_uneven_split_matches_its_share() -> None:
    codes = assign_codes(4, USERS, 1.0, 0.2)
    n_b = int((codes == CODE_B).sum())
    assert stats.chisquare([N - n_b, n_b], [0.8 * N, 0.2 * N]).pvalue > 0.001


def test_ten_percent_traffic_enrols_about_ten_percent() -> None:
    codes = assign_codes(3, USERS, 0.1, 0.5)
    enrolled = int((codes != CODE_NONE).sum())
    # Binomial(100000, 0.1): sd 94.9; the exact test keeps the bound tight (about +-330).
    assert stats.binomtest(enrolled, N, 0.1).pvalue > 0.001
    assert abs(enrolled - 10_000) < 400
    n_b = int((codes == CODE_B).sum())
    assert stats.binomtest(n_b, enrolled, 0.5).pvalue > 0.001


def test_ramping_traffic_up_never_moves_an_enrolled_user() -> None:
    low = assign_codes(8, USERS, 0.1, 0.5)
    high = assign_codes(8, USERS, 0.6, 0.5)
    was_in = low != CODE_NONE
    assert (high[was_in] == low[was_in]).all()
    assert int((high != CODE_NONE).sum()) > int(was_in.sum())


def test_variants_are_independent_between_experiments() -> None:
    one = assign_codes(1, USERS, 1.0, 0.5)
    two = assign_codes(2, USERS, 1.0, 0.5)
    table = [
        [int(((one == a) & (two == b)).sum()) for b in (CODE_A, CODE_B)] for a in (CODE_A, CODE_B)
    ]
    assert sum(map(sum, table)) == N
    assert stats.chi2_contingency(table).pvalue > 0.001
    # Not the same split: about half the users change variant between experiments.
    same = int((one == two).sum())
    assert stats.binomtest(same, N, 0.5).pvalue > 0.001


def test_same_variants_in_another_process() -> None:
    users = list(range(1, 2_001))
    code = (
        "import json; from smart_suggest.experiments.assignment import assign_many; "
        "print(json.dumps(assign_many(31, range(1, 2001), 0.7, 0.4)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's own hash salt is irrelevant
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert json.loads(out) == assign_many(31, users, 0.7, 0.4)
    assert json.loads(out) == [assign_variant(31, u, 0.7, 0.4) for u in users]
