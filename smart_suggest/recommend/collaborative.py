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

from typing import Any

import numpy as np
import scipy.sparse as sp

from smart_suggest.recommend._ops import (
    assemble,
    block_cells,
    block_top_contributors,
    cells,
    csr_keys,
    last_axis_top_contributors,
    mark,
    padded_rows,
    row_products,
    short_name,
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
from smart_suggest.recommend.popular import popular_block, popularity_text
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


#: Blocks of at least this many users find reason cells by binary search (one pass over
#: the matrix to make the keys pays off; a single user's answer does not need it).
KEYED_BLOCK = 64


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
        out: list[list[Recommendation]] = []
        # Who contributed to each neighbour-sourced item, for the whole block at once.
        nbr_all = ranking.extra["neighbours"]
        sim_all = ranking.extra["similarity"]
        from_nbrs = (ranking.items >= 0) & (ranking.sources == SOURCE_CODE["neighbours"])
        wanted = np.where(from_nbrs, ranking.items, -1)
        keys = csr_keys(snap.matrix) if len(ranking.rows) >= KEYED_BLOCK else None
        if keys is not None:
            # (user, item, neighbour) cells by binary search: the block's neighbours' whole
            # rows are ~10x more entries than the cells wanted.
            block = cells(snap.matrix, keys, nbr_all[:, None, :], wanted[:, :, None])
            best_all, more_all = last_axis_top_contributors(block * sim_all[:, None, :])
        else:
            block = block_cells(snap.matrix, nbr_all, wanted)
            best_all, more_all = block_top_contributors(block * sim_all[:, :, None])
        cold_reasons = _cold_reasons(snap, ranking)
        for b, row in enumerate(ranking.rows.tolist()):
            valid = ranking.items[b] >= 0
            columns = np.flatnonzero(valid)
            items = ranking.items[b][valid]
            scores = ranking.scores[b][valid].tolist()
            sources = [SOURCES[int(c)] for c in ranking.sources[b][valid]]
            reasons = [""] * len(items)
            nbr_mask = ranking.extra["neighbours"][b] >= 0
            nbrs = ranking.extra["neighbours"][b][nbr_mask]
            sims = ranking.extra["similarity"][b][nbr_mask]
            by_source: dict[str, list[int]] = {}
            for at, src in enumerate(sources):
                by_source.setdefault(src, []).append(at)
            if "neighbours" in by_source:
                # Plain Python values: formatting numpy scalars one by one cost more than
                # the ranking itself over all users.
                best_b, more_b = best_all[b].tolist(), more_all[b].tolist()
                nbr_names = [short_name(cat.usernames[n]) for n in nbrs.tolist()]
                sims_b = sims.tolist()
                for p in by_source["neighbours"]:
                    col = int(columns[p])
                    more = more_b[col]
                    names = ", ".join(
                        f"{nbr_names[j]} ({sims_b[j]:.2f})" for j in best_b[col] if j >= 0
                    )
                    reasons[p] = f"liked by similar users {names}" + (
                        f" and {more} more" if more else ""
                    )
            if "popular" in by_source:
                has_history = bool(snap.history_length[row] > 0)
                got = int(ranking.extra["from_neighbours"][b])
                if not has_history:
                    why = "popular (no history yet)"
                elif len(nbrs) == 0:
                    why = f"popular fill-in (no similar user at or above {options.threshold:g})"
                else:
                    why = f"popular fill-in (neighbours gave only {got})"
                for p in by_source["popular"]:
                    reasons[p] = f"{why}: {popularity_text(snap, int(items[p]))}"
            if "cold-item" in by_source:
                for p, text in zip(by_source["cold-item"], cold_reasons[b], strict=True):
                    reasons[p] = text
            ids = cat.item_ids[items].tolist()
            out.append(
                [
                    Recommendation(int(i), float(s), reason, src)
                    for i, s, reason, src in zip(ids, scores, reasons, sources, strict=True)
                ]
            )
        return out


#: Users whose cold-item reasons are worked out together (their liked items x cold items
#: cells are one dense block: 64 users x a long history x 10 items stay a few MB).
_COLD_CHUNK = 64


def _cold_reasons(snap: Snapshot, ranking: Ranking) -> list[list[str]]:
    """The reasons of each block row's cold items, in ranking order: the two liked items
    that resemble each most (similarity x the user's weight of the liked item).

    Worked out for many users at once (one gather of the similarity cells, the best two by
    ``argmax``): one user at a time cost 0.4 ms each, twice the ranking itself."""
    cat = snap.catalogue
    is_cold = (ranking.items >= 0) & (ranking.sources == SOURCE_CODE["cold-item"])
    out: list[list[str]] = [[] for _ in range(len(ranking.rows))]
    users = np.flatnonzero(is_cold.any(axis=1))
    for lo in range(0, len(users), _COLD_CHUNK):
        chunk = users[lo : lo + _COLD_CHUNK]
        liked, weights = padded_rows(snap.matrix, ranking.rows[chunk])
        mask = is_cold[chunk]
        # Each user's cold items first, in ranking order, padded with -1.
        order = np.argsort(~mask, axis=1, kind="stable")
        cold = np.where(
            np.take_along_axis(mask, order, axis=1),
            np.take_along_axis(ranking.items[chunk], order, axis=1),
            -1,
        )[:, : int(mask.sum(axis=1).max())]
        sims = _similarity_cells(cat, liked, cold)
        best, _more = block_top_contributors(sims * weights[:, :, None])
        counts = mask.sum(axis=1).tolist()
        for u, b in enumerate(chunk.tolist()):
            texts, liked_u, sims_u = out[b], liked[u].tolist(), sims[u]
            for column, top in enumerate(best[u, : counts[u]].tolist()):
                names = " and ".join(
                    f"{short_name(cat.item_names[liked_u[j]])} ({float(sims_u[j, column]):.2f})"
                    for j in top
                    if j >= 0
                )
                texts.append(f"new item (no interactions yet), resembles {names}")
    return out


def _similarity_cells(cat: Any, liked: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """(u, L, k): similarity[liked[u, i], cold[u, j]], 0 where either is -1. Only the cells
    asked for are read (whole similarity rows of the liked items were ~1,000x more)."""
    rows, cols = liked[:, :, None], cold[:, None, :]
    dense = cat.similarity_dense
    if dense is not None:
        asked = (rows >= 0) & (cols >= 0)
        return np.where(asked, dense[np.maximum(rows, 0), np.maximum(cols, 0)], 0.0)
    if cat.exact:
        m, keys = cat.similarity, cat.similarity_keys
    else:
        # Only the liked items' rows of the similarity, computed once each.
        distinct = np.unique(liked[liked >= 0])
        m = cat.similarity_of(distinct)
        keys = csr_keys(m)
        rows = np.where(rows >= 0, np.searchsorted(distinct, np.maximum(rows, 0)), -1)
    if keys is None:  # not canonical (never built so; kept correct anyway)
        return block_cells(m, rows[:, :, 0], cold)
    return np.asarray(cells(m, keys, rows, cols))


COLLABORATIVE = register(Collaborative())
