"""A simulated population with a position-biased click model, for A/B tests and interleaving.

The same population can be run as an A/B test (each user sees one ranker's list) or as
an interleaving experiment (each user sees both rankers' lists merged by team draft), so
the two designs can be compared on equal terms (``benchmarks/bench_interleaving.py``, and
``experiment simulate --click-model position``).

* Each user has ``candidates`` items with a true relevance: the probability that they
  click the item when they look at it. Relevance = the user's activity (log-normal) times
  the item's appeal for them (Beta), capped at ``MAX_RELEVANCE``.
* A ranker orders a user's candidates by relevance seen through noise: the score is
  log(relevance) + ``noise`` * N(0, 1). Less noise is a better ranker; equal noise is the
  same quality (an A/A or A/I test).
* The click model is position-based (cascade-like): the user scans down the list and
  looks at position p (0-based) with probability 1 / (p + 1); a looked-at item is clicked
  with its relevance. So P(click at p) = relevance x 1 / (p + 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_RELEVANCE = 0.9
DEFAULT_CANDIDATES = 30


def examination(k: int) -> np.ndarray:
    """P(the user looks at position p) for p = 0..k-1."""
    return 1.0 / (np.arange(k) + 1.0)


@dataclass(frozen=True)
class Population:
    relevance: np.ndarray  # (users, candidates)

    @property
    def users(self) -> int:
        return int(self.relevance.shape[0])


def make_population(
    rng: np.random.Generator,
    users: int,
    candidates: int = DEFAULT_CANDIDATES,
    activity_sigma: float = 0.8,
    activity_mean: float = -1.0,
) -> Population:
    """``activity`` is log-normal(``activity_mean``, ``activity_sigma``): how heavy-tailed
    users' engagement is (real engagement is very heavy-tailed)."""
    activity = rng.lognormal(mean=activity_mean, sigma=activity_sigma, size=(users, 1))
    appeal = rng.beta(0.6, 2.0, size=(users, candidates))
    return Population(np.minimum(activity * appeal, MAX_RELEVANCE))


def rank(
    rng: np.random.Generator, pop: Population, noise: float, k: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """Top-``k`` candidate indexes per user by noisy relevance: (users, k)."""
    rel = pop.relevance if rows is None else pop.relevance[rows]
    score = np.log(rel + 1e-12) + noise * rng.standard_normal(rel.shape)
    top = np.argpartition(-score, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(score, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def clicks(
    rng: np.random.Generator, pop: Population, shown: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """Bernoulli clicks (users, k) on the shown candidates under the position model."""
    rel = pop.relevance if rows is None else pop.relevance[rows]
    p = np.take_along_axis(rel, shown, axis=1) * examination(shown.shape[1])
    return rng.random(shown.shape) < p


def clicks_over(
    rng: np.random.Generator, pop: Population, shown: np.ndarray, sessions: int
) -> np.ndarray:
    """Total clicks per user over ``sessions`` independent sessions with the same list."""
    p = np.take_along_axis(pop.relevance, shown, axis=1) * examination(shown.shape[1])
    return rng.binomial(sessions, p).sum(axis=1)


def team_draft_batch(
    rng: np.random.Generator, list_a: np.ndarray, list_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Team draft for many users at once (the rule of ``interleaving.team_draft``).

    Returns (shown, team): candidate indexes (users, k) and team codes 0 = A, 1 = B,
    2 = both. Lists must hold at least ``k`` distinct items each.
    """
    n = list_a.shape[0]
    shown = np.full((n, k), -1, dtype=np.int64)
    team = np.zeros((n, k), dtype=np.int8)
    pos_a = np.zeros(n, dtype=np.int64)
    pos_b = np.zeros(n, dtype=np.int64)
    filled = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    la, lb = list_a.shape[1], list_b.shape[1]

    def advance(lst: np.ndarray, pos: np.ndarray, length: int) -> None:
        # Skip items already shown (each list has distinct items, so this ends).
        while True:
            ok = pos < length
            cur = np.where(ok, lst[rows, np.minimum(pos, length - 1)], -2)
            dup = ok & (shown == cur[:, None]).any(axis=1)
            if not dup.any():
                return
            pos[dup] += 1

    while (filled < k).any():
        active = filled < k
        advance(list_a, pos_a, la)
        advance(list_b, pos_b, lb)
        a_item = np.where(pos_a < la, list_a[rows, np.minimum(pos_a, la - 1)], -1)
        b_item = np.where(pos_b < lb, list_b[rows, np.minimum(pos_b, lb - 1)], -1)
        same = active & (a_item == b_item) & (a_item >= 0)
        if same.any():
            shown[same, filled[same]] = a_item[same]
            team[same, filled[same]] = 2
            filled[same] += 1
        differ = active & ~same
        if not differ.any():
            continue
        a_first = rng.random(n) < 0.5
        for step in (0, 1):
            pick_a = differ & (a_first if step == 0 else ~a_first) & (filled < k)
            pick_b = differ & (~a_first if step == 0 else a_first) & (filled < k)
            if step == 1:
                advance(list_a, pos_a, la)
                advance(list_b, pos_b, lb)
            for picks, lst, pos, length, code in (
                (pick_a, list_a, pos_a, la, 0),
                (pick_b, list_b, pos_b, lb, 1),
            ):
                ok = picks & (pos < length)
                if ok.any():
                    item = lst[ok, pos[ok]]
                    shown[ok, filled[ok]] = item
                    team[ok, filled[ok]] = code
                    filled[ok] += 1
                    pos[ok] += 1
        exhausted = active & (pos_a >= la) & (pos_b >= lb)
        filled[exhausted] = k  # nothing left to show (lists shorter than k)
    return shown, team
