"""The baseline: the most popular items the user has not interacted with yet.

Popularity is the weighted interaction count (``tracking.ACTION_WEIGHTS`` summed over all of
an item's interactions); ties go to the item with more interactions, then the lower id.
The score of a popular item is that weighted count. Items nobody has interacted with are
never "popular".
"""

from __future__ import annotations

import numpy as np

from smart_suggest.recommend._ops import assemble, fill_rows, take
from smart_suggest.recommend.base import (
    SOURCE_CODE,
    Options,
    Ranking,
    Recommendation,
    register,
)
from smart_suggest.recommend.snapshot import Snapshot


def popularity_text(snap: Snapshot, item: int) -> str:
    n = int(snap.item_interactions[item])
    users = int(snap.item_users[item])
    weight = float(snap.item_weight[item])
    return (
        f"{n} interaction{'s' if n != 1 else ''} by {users} user{'s' if users != 1 else ''} "
        f"(weighted {weight:g})"
    )


def popular_block(
    snap: Snapshot, excluded: np.ndarray, need: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``need`` most popular items per row outside ``excluded``: (items, scores)."""
    items = fill_rows(excluded, snap.popular_order, need)
    scores = take(snap.item_weight, items)
    return items, scores


class Popular:
    name = "popular"
    description = "baseline: most popular items (weighted interaction count) not yet seen"

    def rank(self, snap: Snapshot, rows: np.ndarray, options: Options) -> Ranking:
        need = np.full(len(rows), options.count, dtype=np.int64)
        items, scores = popular_block(snap, snap.seen_mask(rows), need)
        return assemble(rows, [(items, scores, SOURCE_CODE["popular"])])

    def explain(
        self, snap: Snapshot, ranking: Ranking, options: Options
    ) -> list[list[Recommendation]]:
        from smart_suggest.recommend.reasons import Slots, popularity_texts

        slots = Slots(ranking)
        slots.reasons[:] = ["popular: " + t for t in popularity_texts(snap, slots.items)]
        return slots.rows(snap)


POPULAR = register(Popular())
