"""v2: content-based recommendations from item descriptions and categories.

Item vectors and their cosine similarity are described in ``snapshot`` (tf-idf of the
description with the smoothed idf, plus a category indicator of weight 3.0). For a user u:

    score(i) = sum over items j u interacted with of sim(i, j) x w_u[j]

where w_u[j] is u's summed action weight on j halved for every ``HALF_LIFE`` items u
touched after j (recency, as v3), and pairs with sim < 0.25 are ignored. Items u already
touched are never recommended. Equal scores (items that resemble the history equally, such
as films with the same genres) go to the item more users chose, then the lower id: "equally
similar, more often chosen"; a cold item with a higher score still ranks above them. A
user without history gets the most representative items (highest mean similarity to the
rest of the catalogue), and so do the slots left free when fewer than N items clear the
cut-off (source "representative", score = that mean similarity).

A catalogue with no description word and no category at all gives v2 nothing to compare:
it then says so (``Ranking.note``, ``NO_CONTENT_NOTE``) and serves the popular items,
marked as such (source "popular"), never items in id order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from smart_suggest.recommend._ops import (
    assemble,
    fill_rows,
    mark,
    padded_rows,
    row_products,
    take,
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
    DENSE_BLOCK,
    Slots,
    history_evidence,
    listing,
    popularity_texts,
)
from smart_suggest.recommend.snapshot import Snapshot

#: A history item's weight halves for every ``HALF_LIFE`` items the user touched after it
#: (v3's recency rule). On the real MovieLens 100K this lifted v2's NDCG@10 from 0.053 to
#: 0.063 (time split) and from 0.017 to 0.023 (leave-last-out), with 20 to 0.053 and 0.016:
#: people go from a film to similar ones, so the latest say most about the next (README,
#: benchmarks/bench_v2.py).
HALF_LIFE = 5.0


def history_rows(snap: Snapshot, rows: np.ndarray) -> sp.csr_matrix:
    """(rows x items) each user's summed action weight r_u[j] on their items, times the
    recency weight of j (unchanged when the snapshot has no times)."""
    from smart_suggest.recommend.itemitem import recency_weights

    rows = np.asarray(rows, dtype=np.int64)
    out = sp.csr_matrix(snap.matrix[rows], dtype=np.float64, copy=True)
    touch = snap.last_touch
    if touch is not None and HALF_LIFE > 0:
        times = sp.csr_matrix(touch[rows])
        # Same pairs in the same (sorted) order: the weights line up with ``out.data``.
        if times.nnz == out.nnz and np.array_equal(times.indices, out.indices):
            out.data *= recency_weights(times, HALF_LIFE)
    return out


def content_scores(
    snap: Snapshot, rows: np.ndarray, history: sp.csr_matrix | None = None
) -> np.ndarray:
    """Dense (rows x items): sum over each user's items j of w_u[j] x sim(j, item), with
    w_u from ``history_rows`` (or ``history``: users x items, any weights of the pairs)."""
    cat = snap.catalogue
    if history is None:
        matrix, at = history_rows(snap, rows), np.arange(len(rows))
    else:
        matrix, at = history, np.asarray(rows, dtype=np.int64)
    if cat.exact:
        return row_products(matrix, at, cat.similarity)
    # Large catalogue: only the similarity rows of the block's items are needed.
    cols, weights = padded_rows(matrix, at)
    items = np.unique(cols[cols >= 0])
    sim = cat.similarity_of(items)
    pos = np.where(cols >= 0, np.searchsorted(items, np.maximum(cols, 0)), -1)
    out = weighted_rows(sim, pos, weights)
    if out is None:
        r, k = np.nonzero(pos >= 0)
        history = sp.csr_matrix((weights[r, k], (r, pos[r, k])), shape=(len(at), len(items)))
        out = np.asarray((history @ sim).toarray(), dtype=np.float64)
    return out


#: Scores closer than this are one score: sums of the same similarities taken in another
#: order differ in the last bits, and that must not decide a ranking.
TIE_DECIMALS = 9


def top_by_score(snap: Snapshot, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_rows`` with equal scores ranked by popularity (then the lower id), not by id.

    Items with the same categories and no description resemble a history equally; of
    those, the one more users chose comes first ("equally similar, more often chosen").
    Only ties are reordered: a cold item with a higher score still ranks above.
    """
    n_items = scores.shape[1]
    order = np.lexsort((np.arange(n_items), -snap.item_interactions, -snap.item_weight))
    # top_rows breaks ties by the lower column: columns in popularity order make that the
    # more popular item.
    top, top_scores = top_rows(np.round(scores[:, order], TIE_DECIMALS), n)
    return np.where(top >= 0, order[np.maximum(top, 0)], -1), top_scores


NO_CONTENT_NOTE = (
    "v2: no item has a description or a category, so there is nothing to compare; "
    "showing popular items instead"
)


def note(snap: Snapshot) -> str:
    """What v2 must tell the user about this snapshot ("" when it works as designed)."""
    return "" if snap.catalogue.has_content else NO_CONTENT_NOTE


class ContentBased:
    name = "v2"
    description = "content-based: items whose description and category resemble the user's"

    def note(self, snap: Snapshot) -> str:
        return note(snap)

    def rank(self, snap: Snapshot, rows: np.ndarray, options: Options) -> Ranking:
        rows = np.asarray(rows, dtype=np.int64)
        if not snap.catalogue.has_content:
            need = np.full(len(rows), options.count, dtype=np.int64)
            items, scores = popular_block(snap, snap.seen_mask(rows), need)
            ranking = assemble(rows, [(items, scores, SOURCE_CODE["popular"])])
            ranking.note = NO_CONTENT_NOTE
            return ranking
        # Kept for ``explain``: weighing the histories by recency again cost as much as
        # the rest of the evidence.
        history = history_rows(snap, rows)
        scores = content_scores(snap, np.arange(len(rows)), history)
        seen = snap.seen_mask(rows)
        scores[seen] = 0.0
        top, top_scores = top_by_score(snap, scores, options.count)
        segments = [(top, top_scores, SOURCE_CODE["content"])]
        need = options.count - (top >= 0).sum(axis=1)
        if need.any():
            mark(seen, top)
            rep = snap.catalogue.representativeness
            fill = fill_rows(seen, snap.catalogue.representative_order, need)
            fill_scores = take(rep, fill)
            segments.append((fill, fill_scores, SOURCE_CODE["representative"]))
        ranking = assemble(rows, segments)
        ranking.extra["history"] = history
        return ranking

    def explain(
        self, snap: Snapshot, ranking: Ranking, options: Options
    ) -> list[list[Recommendation]]:
        cat = snap.catalogue
        slots = Slots(ranking)
        at = slots.of(SOURCE_CODE["content"])
        if len(at):
            # Which of each user's items made each item: the whole block at once, reading
            # only the (item, history item) cells asked for.
            b = slots.b[at]
            history = ranking.extra.get("history")
            if history is None:  # a ranking made elsewhere
                history = history_rows(snap, ranking.rows)
            liked, sims, more = history_evidence(
                cat,
                history,
                b,
                slots.items[at],
                dense=len(ranking.rows) >= DENSE_BLOCK,
            )
            slots.reasons[at] = listing(
                "resembles ",
                cat.item_names,
                liked,
                sims,
                " and ",
                more,
                " (+%d more of your items)",
            )
        at = slots.of(SOURCE_CODE["popular"])
        if len(at):
            slots.reasons[at] = [
                "popular (no item text or categories to compare): " + text
                for text in popularity_texts(snap, slots.items[at])
            ]
        at = slots.of(SOURCE_CODE["representative"])
        if len(at):
            has_history = snap.history_length[ranking.rows[slots.b[at]]] > 0
            scores = ranking.scores[slots.b[at], slots.col[at]]
            slots.reasons[at] = [
                f"{'fill-in, ' if known else 'no history yet: '}"
                f"representative of the catalogue (mean similarity {score:.2f})"
                for known, score in zip(has_history.tolist(), scores.tolist(), strict=True)
            ]
        return slots.rows(snap)


CONTENT = register(ContentBased())
