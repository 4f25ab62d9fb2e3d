"""What every strategy shares: the result type, the strategy protocol, the registry.

A strategy ranks a *block* of users at once (rows of the snapshot's user-item matrix), so
the same vectorised code serves one user in the TUI, every user in a CSV export and every
user of an offline evaluation. Ranking and explaining are separate steps: the evaluation
and the CSV export need only the ranked item indices, a human needs the reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from smart_suggest.errors import InputError

if TYPE_CHECKING:
    from smart_suggest.recommend.snapshot import Snapshot

#: progress(stage, done, total), as everywhere in the core.
Progress = Callable[[str, int, int], None]

#: Where a recommended item came from; ``Recommendation.source`` is one of these.
SOURCES: tuple[str, ...] = ("neighbours", "content", "popular", "cold-item", "representative")
SOURCE_CODE: dict[str, int] = {name: code for code, name in enumerate(SOURCES)}

#: Defaults of the collaborative strategy (``--neighbours``, ``--threshold``).
DEFAULT_NEIGHBOURS = 20
DEFAULT_THRESHOLD = 0.30
DEFAULT_COUNT = 10


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One recommended item: its score, a short human reason and where it came from."""

    item_id: int
    score: float
    reason: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Options:
    """Settings of a ranking run; strategies ignore what they do not use."""

    count: int = DEFAULT_COUNT
    neighbours: int = DEFAULT_NEIGHBOURS
    threshold: float = DEFAULT_THRESHOLD
    #: v1 only: append cold items after the top-N (the evaluation scores the top-N only).
    cold_items: bool = True
    #: Strategy-specific hyper-parameters as sorted (name, value) pairs, e.g. v3's
    #: ``(("lambda", 250.0),)``; a strategy takes its defaults for the names missing here.
    params: tuple[tuple[str, float], ...] = ()

    def param(self, name: str, default: float) -> float:
        """The hyper-parameter ``name`` of ``params``, else ``default``."""
        for key, value in self.params:
            if key == name:
                return value
        return default

    def validate(self) -> Options:
        if self.count < 0:
            raise InputError(f"count must be at least 0 (got {self.count})")
        if self.neighbours < 1:
            raise InputError(f"neighbours must be at least 1 (got {self.neighbours})")
        if not 0.0 <= self.threshold <= 1.0:
            raise InputError(f"threshold must be between 0 and 1 (got {self.threshold})")
        return self


@dataclass(slots=True)
class Ranking:
    """Ranked item indices for a block of users.

    ``items[b]`` holds snapshot item indices; -1 marks an empty slot. The valid entries of a
    row, left to right, are that user's list. ``extra`` carries what a strategy needs later
    to explain its choices (e.g. v1's neighbours, v2's recency-weighted histories).
    """

    rows: np.ndarray  # (b,) snapshot user indices
    items: np.ndarray  # (b, L) int64, -1 = empty
    scores: np.ndarray  # (b, L) float64
    sources: np.ndarray  # (b, L) int8 codes into SOURCES
    extra: dict[str, Any] = field(default_factory=dict)
    #: One line for the user when the strategy could not work as designed (e.g. v2 on a
    #: catalogue without text or categories fell back to popular items); "" otherwise.
    note: str = ""

    def top(self, k: int) -> np.ndarray:
        """The first ``k`` valid items of every row, left-aligned, -1 padded: (b, k)."""
        b = len(self.rows)
        out = np.full((b, k), -1, dtype=np.int64)
        valid = self.items >= 0
        pos = np.cumsum(valid, axis=1) - 1
        keep = valid & (pos < k)
        r, c = np.nonzero(keep)
        out[r, pos[r, c]] = self.items[r, c]
        return out


class Strategy(Protocol):
    """A recommendation strategy: ranks blocks of users, explains its rankings."""

    name: str
    description: str

    def rank(self, snap: Snapshot, rows: np.ndarray, options: Options) -> Ranking: ...

    def explain(
        self, snap: Snapshot, ranking: Ranking, options: Options
    ) -> list[list[Recommendation]]: ...


_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    _REGISTRY[strategy.name] = strategy
    return strategy


def registry() -> dict[str, Strategy]:
    """Every registered strategy, in display order (v1, v2, v3, popular, then by name)."""
    return {name: _REGISTRY[name] for name in sorted(_REGISTRY, key=_display_order)}


def _display_order(name: str) -> tuple[int, str]:
    preferred = ("v1", "v2", "v3", "popular")
    return (preferred.index(name) if name in preferred else len(preferred), name)


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; an unknown name is an ``InputError`` listing the valid."""
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(_REGISTRY, key=_display_order))
        raise InputError(f"unknown strategy {name!r}: use one of {valid}") from None


def plain(ranking: Ranking, snap: Snapshot) -> list[list[Recommendation]]:
    """Recommendations without reasons (for exports that only need ids and scores)."""
    from smart_suggest.recommend.reasons import Slots

    return Slots(ranking).rows(snap)
