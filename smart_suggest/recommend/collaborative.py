"""v1: user-based collaborative filtering.

For a user u with weighted history r_u (a row of the snapshot matrix):

1. sim(u, v) = cosine(r_u, r_v) against every other user v, as one sparse product;
2. neighbours: the K (``--neighbours``, default 20) most similar users with
   sim >= ``--threshold`` (default 0.30) and sim > 0; ties go to the lower user id;
3. score(i) = sum over neighbours v of sim(u, v) x r_v[i], for items u never touched;
4. the top N by score (ties: lower item id), source "neighbours";
5. fewer than N such items (or no history at all): the free slots go to the most popular
   unseen items, source "popular" (score = the weighted interaction count);
6. cold items (nobody has interacted with them, so no neighbour can) are scored by their
   content similarity to the user's items, sum of sim(c, j) x r_u[j] over pairs with
   sim >= 0.25, times 0.05, and up to N of them are *appended* after the N slots above,
   source "cold-item", so the count limit never crowds a new item out.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from smart_suggest.recommend._ops import (
    assemble,
    mark,
    row_products,
    top_rows,
    weighted_rows,
)
from smart_suggest.recommend.base import (
    SOURCE_CODE,
    Options,
    Ranking,
    Recommendation,
    register,
)
from smart_suggest.recommend.popular import popular_block
from smart_suggest.recommend.reasons import (
    Slots,
    history_evidence,
    listing,
    neighbour_evidence,
    popularity_texts,
)
from smart_suggest.recommend.snapshot import Snapshot

#: Discount of a cold item's content score relative to collaborative scores.
COLD_ITEM_DISCOUNT = 0.05


def neighbours(
    snap: Snapshot, rows: np.ndarray, k: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` neighbours of each user in ``rows`` at or above ``threshold``.

    Returns (users, similarities), each (rows x k), users -1 where there are fewer.
    """
    sims = row_products(snap.normalized, rows, snap.normalized_t)
    sims[np.arange(len(rows)), rows] = 0.0  # never your own neighbour
    sims[sims < threshold] = 0.0
    return top_rows(sims, k)


def cold_item_block(snap: Snapshot, rows: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` cold items per row by discounted content score: (items, scores)."""
    cold = snap.cold_items
    if len(cold) == 0 or count <= 0:
        return np.full((len(rows), 0), -1, dtype=np.int64), np.zeros((len(rows), 0))
    scores = (snap.matrix[rows] @ snap.cold_similarity).toarray() * COLD_ITEM_DISCOUNT
    cols, vals = top_rows(scores, count)
    items = np.where(cols >= 0, cold[np.maximum(cols, 0)], -1)
    return items, vals


class Collaborative:
    name = "v1"
    description = "collaborative: what the most similar users liked (cosine, top-K neighbours)"

    def rank(self, snap: Snapshot, rows: np.ndarray, options: Options) -> Ranking:
        count = options.count
        rows = np.asarray(rows, dtype=np.int64)
        b = len(rows)
        nbr, nsim = neighbours(snap, rows, options.neighbours, options.threshold)
        scores = weighted_rows(snap.matrix, nbr, nsim)
        if scores is None:
            r, k = np.nonzero(nbr >= 0)
            weights = sp.csr_matrix((nsim[r, k], (r, nbr[r, k])), shape=(b, snap.catalogue.n_users))
            scores = (weights @ snap.matrix).toarray()
        seen = snap.seen_mask(rows)
        scores[seen] = 0.0
        top, top_scores = top_rows(scores, count)
        segments = [(top, top_scores, SOURCE_CODE["neighbours"])]
        need = count - (top >= 0).sum(axis=1)
        if need.any():
            mark(seen, top)
            fill, fill_scores = popular_block(snap, seen, need)
            segments.append((fill, fill_scores, SOURCE_CODE["popular"]))
        if options.cold_items:
            cold, cold_scores = cold_item_block(snap, rows, count)
            segments.append((cold, cold_scores, SOURCE_CODE["cold-item"]))
        ranking = assemble(rows, segments)
        ranking.extra["neighbours"] = nbr
        ranking.extra["similarity"] = nsim
        ranking.extra["from_neighbours"] = (top >= 0).sum(axis=1)
        return ranking

    def explain(
        self, snap: Snapshot, ranking: Ranking, options: Options
    ) -> list[list[Recommendation]]:
        cat = snap.catalogue
        slots = Slots(ranking)
        nbr_all = ranking.extra["neighbours"]
        sim_all = ranking.extra["similarity"]
        at = slots.of(SOURCE_CODE["neighbours"])
        if len(at):
            # Who contributed to each neighbour-sourced item: every (item, neighbour) cell
            # of the block at once, found by binary search.
            b = slots.b[at]
            who, sims, more = neighbour_evidence(
                snap.matrix, nbr_all[b], sim_all[b], slots.items[at]
            )
            slots.reasons[at] = listing(
                "liked by similar users ", cat.usernames, who, sims, ", ", more, " and %d more"
            )
        at = slots.of(SOURCE_CODE["popular"])
        if len(at):
            b = slots.b[at]
            whys = {}
            for row in np.unique(b).tolist():
                if not snap.history_length[ranking.rows[row]] > 0:
                    whys[row] = "popular (no history yet)"
                elif not (nbr_all[row] >= 0).any():
                    whys[row] = (
                        f"popular fill-in (no similar user at or above {options.threshold:g})"
                    )
                else:
                    got = int(ranking.extra["from_neighbours"][row])
                    whys[row] = f"popular fill-in (neighbours gave only {got})"
            texts = popularity_texts(snap, slots.items[at])
            slots.reasons[at] = [
                f"{whys[row]}: {text}" for row, text in zip(b.tolist(), texts, strict=True)
            ]
        at = slots.of(SOURCE_CODE["cold-item"])
        if len(at):
            slots.reasons[at] = _cold_reasons(snap, ranking, slots, at)
        return slots.rows(snap)


def _cold_reasons(snap: Snapshot, ranking: Ranking, slots: Slots, at: np.ndarray) -> list[str]:
    """The reasons of the cold items at ``at``: the two liked items that resemble each most
    (similarity x the user's weight of the liked item).

    Worked out for every cold slot of the block at once, reading only the (cold item, liked
    item) cells asked for: one user at a time cost 0.4 ms each, twice the ranking itself."""
    cat = snap.catalogue
    liked, sims, _more = history_evidence(
        cat,
        snap.matrix,
        ranking.rows[slots.b[at]],
        slots.items[at],
        # Always the dense similarity when the catalogue keeps one: a TUI or CLI answer
        # reads it too (built once, then one lookup per cell instead of a search).
        dense=True,
    )
    return listing(
        "new item (no interactions yet), resembles ", cat.item_names, liked, sims, " and "
    )


COLLABORATIVE = register(Collaborative())
