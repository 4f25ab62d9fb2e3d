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
    block_cells,
    cells,
    fill_rows,
    last_axis_top_contributors,
    mark,
    padded_rows,
    row_of,
    row_products,
    short_name,
    take,
    top_contributors,
    top_rows,
    weighted_rows,
)
from smart_suggest.recommend.base import (
    SOURCE_CODE,
    SOURCES,
    Options,
    Ranking,
    Recommendation,
    register,
)
from smart_suggest.recommend.collaborative import KEYED_BLOCK
from smart_suggest.recommend.popular import popular_block, popularity_text
from smart_suggest.recommend.snapshot import BLOCK_CELLS, Snapshot

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
        scores = content_scores(snap, rows)
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
        return assemble(rows, segments)

    def explain(
        self, snap: Snapshot, ranking: Ranking, options: Options
    ) -> list[list[Recommendation]]:
        cat = snap.catalogue
        out: list[list[Recommendation]] = []
        block = _ContentReasons(snap, ranking) if cat.exact else None
        for b, row in enumerate(ranking.rows.tolist()):
            valid = ranking.items[b] >= 0
            items = ranking.items[b][valid]
            scores = ranking.scores[b][valid].tolist()
            sources = [SOURCES[int(c)] for c in ranking.sources[b][valid]]
            reasons = [""] * len(items)
            pos = [p for p, s in enumerate(sources) if s == "content"]
            if pos and block is not None:
                columns = np.flatnonzero(valid).tolist()
                for p in pos:
                    liked, sims, top, more = block.of(b, columns[p])
                    # Plain floats: formatting numpy scalars one by one cost more.
                    names = " and ".join(
                        f"{short_name(cat.item_names[liked[j]])} ({float(sims[j]):.2f})"
                        for j in top
                    )
                    reasons[p] = f"resembles {names}" + (
                        f" (+{more} more of your items)" if more else ""
                    )
            elif pos:
                liked, weights = row_of(history_rows(snap, np.array([row])), 0)
                sims = cat.similarity_block(liked, items[pos])
                contrib = sims * weights[:, None]
                for column, p in enumerate(pos):
                    best, more = top_contributors(contrib[:, column])
                    names = " and ".join(
                        f"{short_name(cat.item_names[liked[j]])} ({sims[j, column]:.2f})"
                        for j in best
                    )
                    reasons[p] = f"resembles {names}" + (
                        f" (+{more} more of your items)" if more else ""
                    )
            has_history = bool(snap.history_length[row] > 0)
            for p, src in enumerate(sources):
                if src == "popular":
                    reasons[p] = "popular (no item text or categories to compare): " + (
                        popularity_text(snap, int(items[p]))
                    )
                if src == "representative":
                    why = "fill-in, " if has_history else "no history yet: "
                    reasons[p] = (
                        f"{why}representative of the catalogue (mean similarity {scores[p]:.2f})"
                    )
            ids = cat.item_ids[items].tolist()
            out.append(
                [
                    Recommendation(int(i), float(s), reason, src)
                    for i, s, reason, src in zip(ids, scores, reasons, sources, strict=True)
                ]
            )
        return out


class _ContentReasons:
    """Which of each user's items made each content-sourced item, for a block of users
    at once (a few array operations per chunk of users instead of several per item)."""

    def __init__(self, snap: Snapshot, ranking: Ranking) -> None:
        self.snap = snap
        self.ranking = ranking
        self.wanted = np.where(
            (ranking.items >= 0) & (ranking.sources == SOURCE_CODE["content"]), ranking.items, -1
        )
        self.lo = self.hi = 0

    def _load(self, b: int) -> None:
        history = np.diff(self.snap.matrix.indptr)[self.ranking.rows[b:]]
        longest = max(int(history.max()) if len(history) else 1, 1)
        # Chunks of users whose (users x history x items) block stays under ~4M cells.
        step = max(1, BLOCK_CELLS // (longest * max(self.wanted.shape[1], 1)))
        self.lo, self.hi = b, min(b + step, len(self.ranking.rows))
        rows = self.ranking.rows[self.lo : self.hi]
        self.liked, weights = padded_rows(history_rows(self.snap, rows), np.arange(len(rows)))
        wanted = self.wanted[self.lo : self.hi]
        cat = self.snap.catalogue
        dense = cat.similarity_dense if len(self.ranking.rows) >= KEYED_BLOCK else None
        keys = None if dense is not None else cat.similarity_keys
        if dense is not None:
            # (user, wanted item, liked item), straight from the dense similarity.
            liked, items = np.broadcast_arrays(self.liked[:, None, :], wanted[:, :, None])
            asked = (liked >= 0) & (items >= 0)  # most cells are history padding
            self.sims = np.zeros(asked.shape)
            self.sims[asked] = dense[liked[asked], items[asked]]
        elif keys is not None:
            # similarity[liked, item], each cell found by binary search.
            # (user, wanted item, liked item): the reduction below runs along the last,
            # contiguous axis (along the middle one it took as long as all the rest).
            self.sims = cells(cat.similarity, keys, self.liked[:, None, :], wanted[:, :, None])
        else:
            # Rows of the transpose for the few wanted items, not the long rows of every
            # item the users touched: similarity[liked, item] as similarity_t[item, liked].
            self.sims = block_cells(cat.similarity_t, wanted, self.liked)
        self.best, self.more = last_axis_top_contributors(self.sims * weights[:, None, :])

    def of(self, b: int, column: int) -> tuple[np.ndarray, np.ndarray, list[int], int]:
        """(user's items, their similarity to the item, best contributors, how many more)."""
        if not self.lo <= b < self.hi:
            self._load(b)
        k = b - self.lo
        best = [j for j in self.best[k, column].tolist() if j >= 0]
        return self.liked[k], self.sims[k, column], best, int(self.more[k, column])


CONTENT = register(ContentBased())
