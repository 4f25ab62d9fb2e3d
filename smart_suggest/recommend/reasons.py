"""Reasons for a whole block of users at once: the evidence from arrays, the text from one
template per kind of reason, the rows straight from flat lists.

Explaining every user once cost as much as ranking them: the evidence was worked out on
(users x history x items) blocks padded to the longest history, and the text and the rows
were built user by user from numpy slices. Here every step runs over the block's
recommended slots as flat arrays; Python touches each reason once, to format it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from smart_suggest.recommend._ops import csr_keys, find, short_name
from smart_suggest.recommend.base import SOURCES, Ranking, Recommendation

if TYPE_CHECKING:
    from smart_suggest.recommend.snapshot import Catalogue, Snapshot

#: Upper bound on the (slot, history item) pairs read at once (~60 MB of temporaries).
PAIR_CHUNK = 1_000_000
#: Blocks of at least this many users read similarity cells from the dense similarity when
#: the catalogue keeps one (worth building for a block, not for one user's answer).
DENSE_BLOCK = 64


class Slots:
    """The valid entries of a ranking as flat arrays, in list order (user by user)."""

    def __init__(self, ranking: Ranking) -> None:
        self.ranking = ranking
        valid = ranking.items >= 0
        #: block row and column of every entry
        self.b, self.col = np.nonzero(valid)
        self.items = ranking.items[self.b, self.col]
        self.codes = ranking.sources[self.b, self.col]
        self.counts = valid.sum(axis=1)
        self.reasons = np.full(len(self.items), "", dtype=object)

    def of(self, code: int) -> np.ndarray:
        """Positions (into the flat arrays) of the entries of source ``code``."""
        return np.flatnonzero(self.codes == code)

    def rows(self, snap: Snapshot) -> list[list[Recommendation]]:
        """One list of recommendations per block row, with the reasons set so far."""
        ids = snap.catalogue.item_ids[self.items].tolist()
        scores = self.ranking.scores[self.b, self.col].tolist()
        names = np.array(SOURCES, dtype=object)[self.codes].tolist()
        flat = list(map(Recommendation, ids, scores, self.reasons.tolist(), names))
        out: list[list[Recommendation]] = []
        at = 0
        for n in self.counts.tolist():
            out.append(flat[at : at + n])
            at += n
        return out


def segment_top(
    values: np.ndarray, seg: np.ndarray, n: int, limit: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """``_ops.top_contributors`` of ``n`` segments at once.

    ``values[k]`` belongs to segment ``seg[k]`` (non-decreasing). Returns (best, more):
    best (n, limit) positions in ``values`` of each segment's largest positive values,
    best first, ties to the lower position, -1 where fewer are positive; more (n,) how
    many more positive values each segment has.
    """
    best = np.full((n, limit), -1, dtype=np.int64)
    # Only positive values can be named: the rest (most pairs) never enter the passes.
    keep = np.flatnonzero(values > 0)
    counts = np.bincount(seg[keep], minlength=n)
    more = np.maximum(counts - limit, 0)
    if len(keep) == 0:
        return best, more
    full = np.flatnonzero(counts)
    sizes = counts[full]
    starts = np.cumsum(sizes) - sizes
    owner = np.repeat(np.arange(len(full)), sizes)
    work = values[keep].astype(np.float64)
    position = np.arange(len(keep))
    beyond = len(keep)
    for slot in range(min(limit, int(sizes.max()))):
        top = np.maximum.reduceat(work, starts)
        # The first position holding the maximum: ties go to the lower one, as argmax does.
        first = np.minimum.reduceat(np.where(work == top[owner], position, beyond), starts)
        ok = top > 0
        best[full[ok], slot] = keep[first[ok]]
        work[first[ok]] = -np.inf
    return best, more


def similarity_pairs(
    cat: Catalogue, liked: np.ndarray, items: np.ndarray, *, dense: bool
) -> np.ndarray:
    """similarity[liked[k], items[k]] for every k (the cells ``similarity_block`` reads).

    ``dense``: read the dense similarity when the catalogue keeps one (worth building for
    a block of many users, not for one user's answer)."""
    table = cat.similarity_dense if dense and cat.exact else None
    if table is not None:
        # One flat index: a little cheaper than indexing with two arrays.
        return np.asarray(table.ravel()[liked * table.shape[1] + items], dtype=np.float64)
    if cat.exact:
        m, keys, rows = cat.similarity, cat.similarity_keys, liked
    else:
        # Only the liked items' rows, computed once each (the ranking computed them).
        # A mask and a lookup table, not unique() and a search: there are ~10 pairs per
        # liked item of the block.
        seen = np.zeros(cat.n_items, dtype=bool)
        seen[liked] = True
        distinct = np.flatnonzero(seen)
        m = cat.similarity_of(distinct)
        keys = csr_keys(m)
        at = np.zeros(cat.n_items, dtype=np.int64)
        at[distinct] = np.arange(len(distinct))
        rows = at[liked]
    if keys is None:  # not canonical (never built so; kept correct anyway)
        return np.asarray(m[rows, items], dtype=np.float64).ravel()
    # Not scipy's m[rows, items]: below nnz / 10 cells it scans whole rows (900 entries
    # of a 3,706-item similarity for each cell), where the cached keys need a search.
    return find(m, keys, rows * m.shape[1] + items)


def history_evidence(
    cat: Catalogue,
    history: sp.csr_matrix,
    b: np.ndarray,
    items: np.ndarray,
    *,
    dense: bool = True,
    pull: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each k, which items of user ``history[b[k]]`` pull most towards ``items[k]``:
    their contribution is similarity x the user's weight of the liked item (or
    ``pull(liked, items)``, cell by cell, instead of the similarity: v3's weights).

    Returns (liked, sims, more): liked (k, 2) item indices, best first (ties: the lower
    index), -1 where fewer contribute; sims (k, 2) their similarity to ``items[k]``; more
    (k,) how many more of the user's items contribute. Only the (item, history item) pairs
    asked for are read: no block padded to the longest history.
    """
    n = len(items)
    liked_out = np.full((n, 2), -1, dtype=np.int64)
    sims_out = np.zeros((n, 2), dtype=np.float64)
    more_out = np.zeros(n, dtype=np.int64)
    indptr = history.indptr.astype(np.int64)
    lengths = indptr[b + 1] - indptr[b]
    ends = np.cumsum(lengths)
    lo = 0
    while lo < n:
        # As many slots as keep the pairs under PAIR_CHUNK (at least one slot).
        base = ends[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + PAIR_CHUNK, side="right")))
        lens = lengths[lo:hi]
        seg = np.repeat(np.arange(hi - lo), lens)
        # Every stored entry of each slot's history row, slot after slot.
        entry = np.arange(int(lens.sum())) + np.repeat(
            indptr[b[lo:hi]] - (np.cumsum(lens) - lens), lens
        )
        liked = history.indices[entry].astype(np.int64)
        wanted = items[lo:hi][seg]
        sims = (
            similarity_pairs(cat, liked, wanted, dense=dense)
            if pull is None
            else pull(liked, wanted)
        )
        best, more = segment_top(sims * history.data[entry], seg, hi - lo)
        ok = best >= 0
        at = np.maximum(best, 0)
        liked_out[lo:hi] = np.where(ok, liked[at] if len(liked) else -1, -1)
        sims_out[lo:hi] = np.where(ok, sims[at] if len(sims) else 0.0, 0.0)
        more_out[lo:hi] = more
        lo = hi
    return liked_out, sims_out, more_out


def neighbour_evidence(
    matrix: sp.csr_matrix, nbrs: np.ndarray, nsims: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each k, which neighbours ``nbrs[k]`` (users, -1 padded) pull most towards
    ``items[k]``: their contribution is their similarity ``nsims[k]`` x their weight of
    the item. Returns (who, sims, more) as ``history_evidence`` does (ties: the earlier
    neighbour, i.e. the more similar one, then the lower id)."""
    n = len(items)
    who = np.full((n, 2), -1, dtype=np.int64)
    sims = np.zeros((n, 2), dtype=np.float64)
    seg, pos = np.nonzero(nbrs >= 0)  # slot by slot, neighbours in their order
    users = nbrs[seg, pos]
    # scipy reads single cells row by row (a binary search in the row, or a scan of it
    # for a few cells): no keys of the whole matrix to build for one user's answer.
    weight = (
        np.asarray(matrix[users, items[seg]], dtype=np.float64).ravel()
        if len(users)
        else np.zeros(0)
    )
    best, more = segment_top(weight * nsims[seg, pos], seg, n)
    ok = best >= 0
    at = np.maximum(best, 0)
    if len(users):
        who[ok] = users[at][ok]
        sims[ok] = nsims[seg[at], pos[at]][ok]
    return who, sims, more


def listing(
    prefix: str,
    names: Sequence[str],
    who: np.ndarray,
    sims: np.ndarray | None,
    sep: str,
    more: np.ndarray | None = None,
    suffix: str = "",
) -> list[str]:
    """``prefix`` + "name (0.91)" for the one or two contributors of each row of ``who``
    (indices into ``names``, -1 = none) joined by ``sep``, + ``suffix % more`` when more
    contribute; without ``sims``, the names alone. One template for every reason of a
    kind; each name is cut once."""
    wanted = np.unique(who[who >= 0]).tolist()
    short = {i: short_name(names[i]) for i in wanted}
    if sims is None:
        short[-1] = ""
        first, second = who[:, 0].tolist(), who[:, 1].tolist()
        ends = (
            [suffix % m if m else "" for m in more.tolist()]
            if more is not None and suffix
            else [""] * len(first)
        )
        return [
            f"{prefix}{short[a]}{sep}{short[c]}{e}" if c >= 0 else f"{prefix}{short[a]}{e}"
            for a, c, e in zip(first, second, ends, strict=True)
        ]
    # Plain Python values: formatting numpy scalars one by one costs several times more.
    first, second = who[:, 0].tolist(), who[:, 1].tolist()
    x, y = sims[:, 0].tolist(), sims[:, 1].tolist()
    if more is not None and suffix:
        tail = [suffix % m if m else "" for m in more.tolist()]
    else:
        tail = [""] * len(first)
    # One f-string per case (the second contributor implies the first).
    return [
        f"{prefix}{short[a]} ({s:.2f}){sep}{short[c]} ({t:.2f}){e}"
        if c >= 0
        else (f"{prefix}{short[a]} ({s:.2f}){e}" if a >= 0 else prefix + e)
        for a, s, c, t, e in zip(first, x, second, y, tail, strict=True)
    ]


def popularity_texts(snap: Snapshot, items: np.ndarray) -> list[str]:
    """``popular.popularity_text`` of each item, each distinct item worked out once."""
    from smart_suggest.recommend.popular import popularity_text

    seq = items.tolist()
    done = {i: popularity_text(snap, i) for i in set(seq)}
    return [done[i] for i in seq]
