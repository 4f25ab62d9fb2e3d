"""Row-wise array operations shared by the strategies (no Python loop over users or items)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from smart_suggest.recommend.base import Ranking

_NAME_LIMIT = 40
#: Above this many non-zeros touched, a block product goes through scipy's sparse product
#: (less memory) instead of numpy's scatter-add (less overhead for one user).
SCATTER_LIMIT = 1_000_000


def top_rows(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the columns of the ``n`` largest entries > 0, best first.

    Ties are broken by the lower column index, so the result is exactly reproducible (one
    user alone or in a block of thousands gives the same list). Returns ``(cols, values)``,
    both (rows x n), cols -1 where a row has fewer than ``n`` positive entries.
    """
    b, m = scores.shape
    n = min(n, m)
    if n <= 0 or b == 0:
        return np.full((b, 0), -1, dtype=np.int64), np.zeros((b, 0))
    if n < m:
        kth = np.partition(scores, m - n, axis=1)[:, m - n]
        # Only positive entries are candidates: a row whose n-th best is 0 takes all > 0.
        floor = np.maximum(kth, 0)
        sel = scores > floor[:, None]
        tied = np.flatnonzero(kth > 0)
        if len(tied):
            # Entries equal to the n-th best: take the lowest columns among them.
            sub = scores[tied] == kth[tied, None]
            need = n - sel[tied].sum(axis=1)
            crowded = sub.sum(axis=1) > need
            if crowded.any():
                sub[crowded] &= np.cumsum(sub[crowded], axis=1) <= need[crowded, None]
            sel[tied] |= sub
    else:
        sel = scores > 0
    r, c = np.nonzero(sel)  # at most n per row
    v = scores[r, c]
    order = np.lexsort((c, -v, r))
    r, c, v = r[order], c[order], v[order]
    counts = np.bincount(r, minlength=b)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(len(r)) - starts[r]
    cols = np.full((b, n), -1, dtype=np.int64)
    vals = np.zeros((b, n), dtype=np.float64)
    cols[r, pos] = c
    vals[r, pos] = v
    return cols, vals


def fill_rows(excluded: np.ndarray, order: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Per row, the first ``need[row]`` items of ``order`` not ``excluded`` in that row.

    ``excluded`` is a (rows x items) mask; returns (rows x max(need)) item indices, -1 padded.
    """
    b = excluded.shape[0]
    width = int(need.max()) if len(need) else 0
    out = np.full((b, max(width, 0)), -1, dtype=np.int64)
    if width <= 0 or len(order) == 0:
        return out
    rows = np.flatnonzero(need > 0)
    # A row can skip at most as many items as it excludes: look no further than that.
    depth = min(len(order), width + int(excluded[rows].sum(axis=1).max()))
    free = ~excluded[np.ix_(rows, order[:depth])]
    rank = np.cumsum(free, axis=1, dtype=np.int32)
    take = free & (rank <= need[rows, None])
    r, c = np.nonzero(take)
    out[rows[r], rank[r, c] - 1] = order[c]
    return out


def take(values: np.ndarray, idx: np.ndarray, default: float = 0.0) -> np.ndarray:
    """``values[idx]`` where ``idx >= 0``, ``default`` elsewhere (safe on empty ``values``)."""
    out = np.full(idx.shape, default, dtype=np.result_type(values.dtype, type(default)))
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def mark(mask: np.ndarray, cols: np.ndarray) -> None:
    """Set ``mask[row, col]`` for every valid (>= 0) entry of ``cols`` (rows x k)."""
    r, k = np.nonzero(cols >= 0)
    mask[r, cols[r, k]] = True


def assemble(rows: np.ndarray, segments: list[tuple[np.ndarray, np.ndarray, int]]) -> Ranking:
    """Concatenate (items, scores, source code) segments left to right into a Ranking."""
    b = len(rows)
    if not segments:
        empty = np.zeros((b, 0))
        return Ranking(rows, empty.astype(np.int64), empty, empty.astype(np.int8))
    items = np.hstack([s[0] for s in segments]).astype(np.int64)
    scores = np.hstack([s[1] for s in segments]).astype(np.float64)
    sources = np.hstack([np.full(s[0].shape, s[2], dtype=np.int8) for s in segments])
    scores[items < 0] = 0.0
    return Ranking(rows, items, scores, sources)


def short_name(name: str) -> str:
    """An item or user name cut to fit a one-line reason."""
    return name if len(name) <= _NAME_LIMIT else name[: _NAME_LIMIT - 1] + "…"


def top_contributors(contrib: np.ndarray, limit: int = 2) -> tuple[np.ndarray, int]:
    """Indices of the largest positive entries of ``contrib`` (best first) and how many
    more positive entries there are."""
    positive = np.flatnonzero(contrib > 0)
    order = positive[np.lexsort((positive, -contrib[positive]))]
    return order[:limit], max(0, len(order) - limit)


# -- CSR row access in plain numpy: scipy's fancy indexing costs ~50 us a call, too much
# -- for a 1 ms answer.
def gather(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zeros of rows ``rows`` of a CSR matrix: (position in ``rows``, column, value)."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = m.indptr[rows].astype(np.int64)
    lens = m.indptr[rows + 1].astype(np.int64) - starts
    total = int(lens.sum())
    pos = np.repeat(np.arange(len(rows)), lens)
    offsets = np.arange(total) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return pos, m.indices[offsets].astype(np.int64), m.data[offsets]


def dense_rows(m: sp.csr_matrix, rows: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Rows ``rows`` of a CSR matrix as a dense (len(rows) x columns) array."""
    pos, cols, vals = gather(m, rows)
    out = np.zeros((len(rows), m.shape[1]), dtype=dtype)
    out[pos, cols] = vals
    return out


def submatrix(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Dense ``m[rows][:, cols]`` (``cols`` without duplicates)."""
    lookup = np.full(m.shape[1], -1, dtype=np.int64)
    lookup[cols] = np.arange(len(cols))
    pos, c, vals = gather(m, rows)
    where = lookup[c]
    keep = where >= 0
    out = np.zeros((len(rows), len(cols)), dtype=np.float64)
    out[pos[keep], where[keep]] = vals[keep]
    return out


def weighted_rows(
    m: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray, limit: int | None = None
) -> np.ndarray | None:
    """Dense (b x columns): row r = sum over k of weights[r, k] x m[rows[r, k]].

    ``rows`` is (b x k), -1 = unused. Returns None when more than ``limit`` non-zeros would
    be touched (the caller then uses a sparse product, which needs less memory).
    """
    b, _k = rows.shape
    r, k = np.nonzero(rows >= 0)
    src = rows[r, k]
    lens = m.indptr[src + 1] - m.indptr[src]
    if int(lens.sum()) > (SCATTER_LIMIT if limit is None else limit):
        return None
    pos, cols, vals = gather(m, src)
    width = m.shape[1]
    flat = r[pos] * width + cols
    acc = np.bincount(flat, weights=vals * weights[r, k][pos], minlength=b * width)
    return acc.reshape(b, width)


def padded_rows(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a CSR matrix as (b x longest) column and value arrays, columns -1 padded."""
    b = len(rows)
    pos, cols, vals = gather(m, rows)
    lengths = np.bincount(pos, minlength=b)
    within = np.arange(len(pos)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    width = int(lengths.max()) if b else 0
    padded = np.full((b, width), -1, dtype=np.int64)
    weights = np.zeros((b, width), dtype=np.float64)
    padded[pos, within] = cols
    weights[pos, within] = vals
    return padded, weights


def row_products(
    left: sp.csr_matrix, rows: np.ndarray, right: sp.csr_matrix, limit: int | None = None
) -> np.ndarray:
    """Dense ``left[rows] @ right``: plain numpy for a few rows (an interactive call), one
    sparse product for a block of many (less memory than numpy's scatter)."""
    cols, weights = padded_rows(left, rows)
    out = weighted_rows(right, cols, weights, limit=limit)
    if out is None:
        product = left[rows] @ right
        out = np.asarray(product.toarray(), dtype=np.float64)
    return out


def row_of(m: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of one CSR row."""
    lo, hi = int(m.indptr[row]), int(m.indptr[row + 1])
    return m.indices[lo:hi].astype(np.int64), m.data[lo:hi].astype(np.float64)


def csr_keys(m: sp.csr_matrix) -> np.ndarray | None:
    """``row * columns + column`` of every stored entry, in storage order: sorted when the
    matrix is canonical (sorted indices, no duplicates), else None."""
    if not m.has_canonical_format:
        return None
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows * m.shape[1] + m.indices.astype(np.int64)


#: From this many cells on, ``find`` sorts them first: numpy's binary search then starts
#: each search where the previous one ended (2-3x faster for a block of users).
SORTED_SEARCH = 4096


def find(m: sp.csr_matrix, keys: np.ndarray, want: np.ndarray) -> np.ndarray:
    """The stored values of ``m`` at the flat positions ``want`` (row * columns + column),
    0 where nothing is stored; ``keys`` is ``csr_keys(m)``."""
    out = np.zeros(len(want), dtype=np.float64)
    if len(keys) == 0 or len(want) == 0:
        return out
    if len(want) >= SORTED_SEARCH:
        order = np.argsort(want)
        at = np.empty(len(want), dtype=np.int64)
        at[order] = np.searchsorted(keys, want[order])
    else:
        at = np.searchsorted(keys, want)
    at = np.minimum(at, len(keys) - 1)
    return np.where(keys[at] == want, m.data[at], 0.0)
