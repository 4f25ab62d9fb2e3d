"""Team-draft interleaving: merge two rankings into one list, remembering who chose each item.

Radlinski, Kurup and Joachims (2008), "How does clickthrough data reflect retrieval
quality?", with the common-item rule of Chapelle et al. (2012). Round by round:

* when both teams' best item not yet shown is the same item, it is shown once with team
  ``both`` (the lists agree; neither team gains credit from it);
* otherwise a fair coin decides which team picks first; each team then adds its best item
  not yet shown (the second team's is still its own best: the first took a different one).

A team whose list runs out stops picking; the other fills the remaining places. An item a
list repeats is skipped like any shown item, so a strategy cannot gain by producing
duplicates. Clicks and purchases are credited to the team of the item; per user the
preference is the sign of (credit B - credit A).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

TEAM_A = "A"
TEAM_B = "B"
BOTH = "both"
TEAMS = (TEAM_A, TEAM_B, BOTH)


@dataclass(frozen=True, slots=True)
class Pick:
    """One shown item, its team, and which team led the round that added it."""

    item: int
    team: str
    round: int
    first: str  # the team that picked first in this round ("both" for a shared item)


class _Cursor:
    """A team's position in its ranking: the next item not yet shown."""

    def __init__(self, ranking: Sequence[int]) -> None:
        self.ranking = ranking
        self.pos = 0

    def peek(self, shown: set[int]) -> int | None:
        while self.pos < len(self.ranking) and self.ranking[self.pos] in shown:
            self.pos += 1
        return self.ranking[self.pos] if self.pos < len(self.ranking) else None


def team_draft(
    ranking_a: Sequence[int],
    ranking_b: Sequence[int],
    count: int,
    rng: random.Random | None = None,
) -> list[Pick]:
    """Merge two rankings (best first) into at most ``count`` items by team draft."""
    rng = rng if rng is not None else random.Random()
    a, b = _Cursor(ranking_a), _Cursor(ranking_b)
    shown: set[int] = set()
    out: list[Pick] = []
    rnd = 0
    while len(out) < count:
        next_a, next_b = a.peek(shown), b.peek(shown)
        if next_a is None and next_b is None:
            break
        if next_a is not None and next_a == next_b:
            shown.add(next_a)
            out.append(Pick(next_a, BOTH, rnd, BOTH))
            rnd += 1
            continue
        first = TEAM_A if rng.random() < 0.5 else TEAM_B
        order = (TEAM_A, TEAM_B) if first == TEAM_A else (TEAM_B, TEAM_A)
        for team in order:
            if len(out) >= count:
                break
            pick = (a if team == TEAM_A else b).peek(shown)
            if pick is None:
                continue
            shown.add(pick)
            out.append(Pick(pick, team, rnd, first))
        rnd += 1
    return out


def credit_difference(credit_a: float, credit_b: float) -> int:
    """A user's preference: +1 prefers B, -1 prefers A, 0 no preference."""
    return (credit_b > credit_a) - (credit_b < credit_a)
