"""The data every strategy works on, built once per data revision.

A ``Snapshot`` holds the weighted user-item matrix (scipy CSR: one row per user, one column
per item, each cell the sum of ``tracking.ACTION_WEIGHTS`` over that pair's interactions)
with the id maps, item popularity, and a ``Catalogue``: users and items with the content
features of the items. Memory grows with the number of interactions, never with
users x items: dense arrays exist only for one block of users at a time.

Item content features (v2, and v1's cold-item fill), in the spirit of scikit-learn's
``TfidfVectorizer`` + a one-hot category block:

* tokens: the description lower-cased, split into runs of letters and digits (no stop words);
* tf-idf: raw term count x idf, with the smoothed idf = ln((1 + N) / (1 + df)) + 1 (N items,
  df = items whose description has the term); each item's tf-idf vector is then
  l2-normalised (an empty description stays all zero);
* categories: one extra column per category. An item's categories together weigh
  ``CATEGORY_WEIGHT`` (3.0) in l2 norm, what a single category weighed before items could
  have several, shared out in proportion to each category's idf (as for words). So
  "Action|Adventure|Thriller" and "Action|Thriller" share two of their features (cosine
  0.82 from the categories alone when the three are equally common), where the old
  whole-string category made them strangers. These columns are indexed
  apart from the description vocabulary, so no description word (not even "category" or
  the category's own name) can collide with them;
* the concatenated vector is l2-normalised again, so a dot product is the cosine.

Item-item similarity for v2 keeps, per item, the other items with cosine >= 0.25 (the
issue's cut-off; smaller pairs are ignored anyway), as a sparse matrix. Up to
``EXACT_ITEM_LIMIT`` (5,000) items all of them are kept and the whole matrix is built on
first use (about a second at 3,706 items). Above that only the ``TOP_SIMILAR`` (200) most
similar items per item are kept, and a row is computed the first time a user who touched
that item is served, so memory stays linear in the catalogue and the first answer never
waits for all n x n products.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from smart_suggest.errors import InputError
from smart_suggest.store import NO_CATEGORY
from smart_suggest.tracking import WEIGHT_SQL

if TYPE_CHECKING:
    from pathlib import Path

    from smart_suggest.recommend.incremental import Marks
    from smart_suggest.store import Store

#: Weight of the category indicator next to the l2-normalised description vector.
CATEGORY_WEIGHT = 3.0
#: Item pairs less similar than this are ignored by v2 (and by v1's cold-item fill).
MIN_ITEM_SIMILARITY = 0.25
#: Up to this many items every similar pair is kept; above it only the top ones per item.
EXACT_ITEM_LIMIT = 5_000
#: Similar items kept per item in catalogues larger than ``EXACT_ITEM_LIMIT``.
TOP_SIMILAR = 200
#: Upper bound on the cells of one dense block (users x users or users x items), ~32 MB.
BLOCK_CELLS = 4_000_000

_TOKEN = re.compile(r"[^\W_]+")
_CHUNK_ROWS = 1_000_000


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: "Wi-Fi 6E router!" -> [wi, fi, 6e, router]."""
    return _TOKEN.findall(text.lower())


def block_size(width: int) -> int:
    """Rows per dense block so that rows x ``width`` stays under ``BLOCK_CELLS``."""
    return max(1, min(2048, BLOCK_CELLS // max(width, 1)))


def category_features(item_categories: list[tuple[int, ...]], n_categories: int) -> sp.csr_matrix:
    """Items x categories: an item's k categories weigh CATEGORY_WEIGHT together (l2 norm),
    shared out by their idf (a category few items carry says more than "Drama").

    ``item_categories[i]`` are the category indices of item i (none: an all-zero row).
    The idf is the description's, ln((1 + N) / (1 + df)) + 1, over the N items. On the real
    MovieLens 100K genres this lifted v2's NDCG@10 from 0.033 to 0.039, level with a
    TF-IDF item-kNN on the genres (README); with equal weights "Drama|Thriller" resembled
    every drama as much as every thriller, though a third of the films are dramas.
    """
    n = len(item_categories)
    counts = np.fromiter((len(c) for c in item_categories), dtype=np.int64, count=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    cols = np.fromiter(
        (c for cats in item_categories for c in cats), dtype=np.int64, count=int(indptr[-1])
    )
    df = np.bincount(cols, minlength=n_categories)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    values = idf[cols]
    rows = np.repeat(np.arange(n), counts)
    norms = np.sqrt(np.bincount(rows, weights=values**2, minlength=n))
    norms = np.where(counts > 0, norms, 1.0)
    values = CATEGORY_WEIGHT * values / np.repeat(norms, counts)
    return sp.csr_matrix((values, cols, indptr), shape=(n, n_categories))


def tfidf_features(
    descriptions: list[str], categories: np.ndarray | sp.csr_matrix
) -> sp.csr_matrix:
    """Item feature matrix (items x (vocabulary + categories)), rows l2-normalised.

    ``categories`` is ``category_features(...)``, or one category index per item.
    """
    n = len(descriptions)
    vocab: dict[str, int] = {}
    indptr = [0]
    cols: list[int] = []
    tfs: list[int] = []
    for text in descriptions:
        counts = Counter(tokenize(text))
        for term, tf in counts.items():
            cols.append(vocab.setdefault(term, len(vocab)))
            tfs.append(tf)
        indptr.append(len(cols))
    n_terms = len(vocab)
    col_arr = np.asarray(cols, dtype=np.int64)
    tf = sp.csr_matrix(
        (np.asarray(tfs, dtype=np.float64), col_arr, np.asarray(indptr, dtype=np.int64)),
        shape=(n, n_terms),
    )
    df = np.bincount(col_arr, minlength=n_terms)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    desc = _l2_rows(sp.csr_matrix(tf @ sp.diags(idf)))
    if isinstance(categories, np.ndarray):
        n_cat = int(categories.max()) + 1 if n else 0
        categories = category_features([(int(c),) for c in categories.tolist()], n_cat)
    cat = sp.csr_matrix(categories)
    return _l2_rows(sp.csr_matrix(sp.hstack([desc, cat], format="csr")))


def _l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv) @ m)


def dense_to_csr(a: np.ndarray) -> sp.csr_matrix:
    """``sp.csr_matrix(a)`` (zeros dropped) without its COO detour: one pass over the
    non-zeros in row order, already sorted (4x faster on a 2,000 x 2,000 similarity)."""
    n_rows, n_cols = a.shape
    flat = np.flatnonzero(a)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(flat // max(n_cols, 1), minlength=n_rows), out=indptr[1:])
    values = np.ascontiguousarray(a).ravel()[flat]
    return sp.csr_matrix((values, flat % max(n_cols, 1), indptr), shape=(n_rows, n_cols))


def similarity_rows(
    features: sp.csr_matrix, rows: np.ndarray, dense: np.ndarray | None = None
) -> sp.csr_matrix:
    """Cosine of items ``rows`` against every item, pairs below the cut-off dropped.

    The diagonal (an item with itself) is dropped too. Above ``EXACT_ITEM_LIMIT`` items only
    the ``TOP_SIMILAR`` largest entries of each row survive (ties: lower index). ``dense``
    is ``features`` as a dense array when it is small enough (BLAS products are faster).
    """
    from smart_suggest.recommend._ops import top_rows

    n = features.shape[0]
    rows = np.asarray(rows, dtype=np.int64)
    step = block_size(n)
    blocks: list[sp.csr_matrix] = []
    for lo in range(0, len(rows), step):
        blk = rows[lo : lo + step]
        sims = dense[blk] @ dense.T if dense is not None else (features[blk] @ features.T).toarray()
        sims[np.arange(len(blk)), blk] = 0.0
        sims[sims < MIN_ITEM_SIMILARITY] = 0.0
        if n > EXACT_ITEM_LIMIT and n > TOP_SIMILAR:
            cols, vals = top_rows(sims, TOP_SIMILAR)
            r, k = np.nonzero(cols >= 0)
            block = sp.csr_matrix((vals[r, k], (r, cols[r, k])), shape=(len(blk), n))
        else:
            block = dense_to_csr(sims)
        blocks.append(block)
    if not blocks:
        return sp.csr_matrix((len(rows), n), dtype=np.float64)
    out = sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float64)
    out.sort_indices()
    return out


def similarity_to(
    features: sp.csr_matrix, cols: np.ndarray, dense: np.ndarray | None = None
) -> sp.csr_matrix:
    """Cosine of every item against the items ``cols``: (items x len(cols)), cut-off applied.

    An item's similarity with itself is dropped. When items x cols exceeds
    ``BLOCK_CELLS`` x 5 (20M cells), only the ``TOP_SIMILAR`` largest entries of each row
    survive, bounding memory; below that all are kept (the top-k pass would cost more
    than the product: measured at 10,000 x 243, 1.3 of 1.9 s).
    """
    from smart_suggest.recommend._ops import top_rows

    n = features.shape[0]
    cols = np.asarray(cols, dtype=np.int64)
    target = dense[cols] if dense is not None else None
    target_t = sp.csr_matrix(features[cols].T)
    step = block_size(max(len(cols), 1))
    position = np.full(n, -1, dtype=np.int64)
    position[cols] = np.arange(len(cols))
    blocks: list[sp.csr_matrix] = []
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        if dense is not None and target is not None:
            sims = dense[lo:hi] @ target.T
        else:
            sims = (features[lo:hi] @ target_t).toarray()
        own = position[lo:hi]
        r = np.flatnonzero(own >= 0)
        sims[r, own[r]] = 0.0
        sims[sims < MIN_ITEM_SIMILARITY] = 0.0
        if n * len(cols) > 5 * BLOCK_CELLS and len(cols) > TOP_SIMILAR:
            top, vals = top_rows(sims, TOP_SIMILAR)
            rr, kk = np.nonzero(top >= 0)
            block = sp.csr_matrix((vals[rr, kk], (rr, top[rr, kk])), shape=(hi - lo, len(cols)))
        else:
            block = dense_to_csr(sims)
        blocks.append(block)
    if not blocks:
        return sp.csr_matrix((0, len(cols)), dtype=np.float64)
    return sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float64)


class Catalogue:
    """Users and items (ids, names, categories, descriptions) and the item content model.

    Index ``k`` of every array is the ``k``-th user (or item) in id order; the snapshot's
    matrix rows and columns follow the same order.
    """

    def __init__(
        self,
        user_ids: np.ndarray,
        usernames: list[str],
        item_ids: np.ndarray,
        item_names: list[str],
        item_categories: Sequence[str | Sequence[str]],
        descriptions: list[str],
    ) -> None:
        """``item_categories[i]``: item i's categories in order (a plain string is one)."""
        self.user_ids = np.asarray(user_ids, dtype=np.int64)
        self.usernames = list(usernames)
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self.item_names = list(item_names)
        self.descriptions = list(descriptions)
        for ids, what in ((self.user_ids, "user"), (self.item_ids, "item")):
            if len(ids) > 1 and not bool(np.all(np.diff(ids) > 0)):
                raise ValueError(f"{what} ids must be unique and sorted")
        self._similar_rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        sets = [(c,) if isinstance(c, str) else tuple(c) for c in item_categories]
        primary = [c[0] if c else NO_CATEGORY for c in sets]
        #: every category name, sorted (the primary labels' "unknown" included)
        self.categories: list[str] = sorted({c for cats in sets for c in cats} | set(primary))
        lookup = {c: k for k, c in enumerate(self.categories)}
        #: each item's first category (its single label: diversity, narrow displays)
        self.item_category = np.fromiter(
            (lookup[c] for c in primary), dtype=np.int64, count=len(primary)
        )
        #: each item's categories as indices into ``categories`` (v2's features)
        self.item_category_sets: list[tuple[int, ...]] = [
            tuple(lookup[c] for c in cats) for cats in sets
        ]

    def with_users(self, user_ids: np.ndarray, usernames: list[str]) -> Catalogue:
        """This catalogue plus users appended after the last one; the item side (and its
        content model, built or not) is shared, because new users do not change it."""
        out = Catalogue.__new__(Catalogue)
        out.__dict__.update(self.__dict__)
        out.user_ids = np.concatenate([self.user_ids, np.asarray(user_ids, dtype=np.int64)])
        out.usernames = [*self.usernames, *usernames]
        if len(out.user_ids) > 1 and not bool(np.all(np.diff(out.user_ids) > 0)):
            raise ValueError("user ids must be unique and sorted")
        return out

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, user_id: int) -> int | None:
        k = int(np.searchsorted(self.user_ids, user_id))
        return k if k < self.n_users and int(self.user_ids[k]) == user_id else None

    def item_index(self, item_id: int) -> int | None:
        k = int(np.searchsorted(self.item_ids, item_id))
        return k if k < self.n_items and int(self.item_ids[k]) == item_id else None

    @cached_property
    def features(self) -> sp.csr_matrix:
        cats = category_features(self.item_category_sets, len(self.categories))
        return tfidf_features(self.descriptions, cats)

    @cached_property
    def has_content(self) -> bool:
        """Whether any item has a category or a description word (else v2 has nothing)."""
        return self.features.nnz > 0

    @cached_property
    def dense_features(self) -> np.ndarray | None:
        """``features`` as a dense array when small (<= 8M cells): BLAS beats sparse products."""
        x = self.features
        return x.toarray() if x.shape[0] * x.shape[1] <= 8_000_000 else None

    @property
    def exact(self) -> bool:
        """Small catalogue: the whole item x item similarity is kept (else top ones, lazily)."""
        return self.n_items <= EXACT_ITEM_LIMIT

    @cached_property
    def similarity(self) -> sp.csr_matrix:
        """Item x item cosine >= the cut-off (no diagonal; top ones only when large)."""
        if self.exact:
            return similarity_rows(self.features, np.arange(self.n_items), self.dense_features)
        return self.similarity_of(np.arange(self.n_items))

    @cached_property
    def similarity_dense(self) -> np.ndarray | None:
        """``similarity`` as a dense array when small (<= 4M cells, 32 MB), else None:
        explaining many users reads ~1M single cells of it."""
        n = self.n_items
        return self.similarity.toarray() if self.exact and n * n <= 4_000_000 else None

    @cached_property
    def similarity_keys(self) -> np.ndarray | None:
        """``_ops.csr_keys(similarity)``: for reading single cells of it fast."""
        from smart_suggest.recommend._ops import csr_keys

        return csr_keys(self.similarity)

    @cached_property
    def similarity_t(self) -> sp.csr_matrix:
        """``similarity`` transposed (CSR): row i holds column i, the same stored values."""
        return sp.csr_matrix(self.similarity.T)

    def similarity_of(self, rows: np.ndarray) -> sp.csr_matrix:
        """Rows ``rows`` of ``similarity``.

        A large catalogue computes only the rows asked for, once each (a user's items),
        so the first answer never waits for all n x n products.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if self.exact or "similarity" in self.__dict__:
            return sp.csr_matrix(self.similarity[rows])
        cache = self._similar_rows
        missing = np.array([r for r in np.unique(rows).tolist() if r not in cache], dtype=np.int64)
        if len(missing):
            block = similarity_rows(self.features, missing, self.dense_features)
            for k, r in enumerate(missing.tolist()):
                lo, hi = block.indptr[k], block.indptr[k + 1]
                cache[r] = (block.indices[lo:hi].copy(), block.data[lo:hi].copy())
        parts = [cache[r] for r in rows.tolist()]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(p[0]) for p in parts])
        indices = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
        data = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        return sp.csr_matrix((data, indices, indptr), shape=(len(rows), self.n_items))

    def similarity_block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Dense similarity[rows][:, cols]."""
        from smart_suggest.recommend._ops import submatrix

        if self.exact:
            return submatrix(self.similarity, rows, cols)
        return submatrix(self.similarity_of(rows), np.arange(len(rows)), cols)

    @cached_property
    def representativeness(self) -> np.ndarray:
        """Mean cosine of each item with every other item (the centroid trick, exact)."""
        x = self.features
        n = self.n_items
        if n < 2:
            return np.zeros(n)
        total = np.asarray(x.sum(axis=0)).ravel()
        self_sim = np.asarray(x.multiply(x).sum(axis=1)).ravel()
        return np.asarray((x @ total - self_sim) / (n - 1), dtype=np.float64)

    @cached_property
    def representative_order(self) -> np.ndarray:
        """Item indices, most representative first (ties: lower id first)."""
        rep = self.representativeness
        return np.lexsort((np.arange(self.n_items), -rep))


def load_catalogue(store: Store) -> Catalogue:
    users = store.conn.execute("SELECT id, username FROM users ORDER BY id").fetchall()
    items = store.conn.execute("SELECT id, name, description FROM items ORDER BY id").fetchall()
    cats: dict[int, list[str]] = {}
    for item_id, category in store.conn.execute(
        "SELECT item_id, category FROM item_categories ORDER BY item_id, position"
    ):
        cats.setdefault(item_id, []).append(category)
    return Catalogue(
        np.fromiter((u[0] for u in users), dtype=np.int64, count=len(users)),
        [u[1] for u in users],
        np.fromiter((i[0] for i in items), dtype=np.int64, count=len(items)),
        [i[1] for i in items],
        [tuple(cats.get(i[0], ())) for i in items],
        [i[2] or "" for i in items],
    )


@dataclass(frozen=True, slots=True)
class InteractionArrays:
    """Every interaction as parallel arrays, in id order (the tie-breaker for equal ts)."""

    user: np.ndarray  # snapshot user index
    item: np.ndarray  # snapshot item index
    weight: np.ndarray  # float32 action weight
    ts: np.ndarray | None  # float64 Unix seconds, when asked for

    def __len__(self) -> int:
        return len(self.user)


def _concat_ints(store: Store, expr: str, lo: int, hi: int) -> np.ndarray:
    # One string per chunk parsed in C: ~4x faster than building a Python tuple per row.
    text = store.scalar(
        f"SELECT group_concat(v, ' ') FROM (SELECT {expr} AS v FROM interactions "
        "WHERE id BETWEEN ? AND ? ORDER BY id)",
        (lo, hi),
    )
    if not text:
        return np.zeros(0, dtype=np.int64)
    return np.fromstring(text, dtype=np.int64, sep=" ")


#: From this many interactions, ``build_snapshot`` reads their times on a second connection.
PARALLEL_TIMES_ROWS = 200_000


class _TimesBeside:
    """Every interaction's time in whole seconds, in id order, read on a second (read-only)
    connection while the first reads the rest: SQLite steps without the GIL, so on two
    cores the two scans of a 1M-row build overlap (~0.15 s of ~0.5 s of SQL). The result
    counts only if that connection saw the same catalog key (revision and stamp) as the
    caller's read transaction: then it read the same rows."""

    def __init__(self, path: Path, key: tuple[int, int]) -> None:
        self.path, self.key = path, key
        self.times: np.ndarray | None = None
        self._thread = threading.Thread(target=self._run, name="snapshot-times", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error:
            return
        try:
            conn.execute("BEGIN")
            row = conn.execute("SELECT value, stamp FROM revisions WHERE name = 'catalog'")
            if tuple(row.fetchone() or ()) != self.key:
                return
            text = conn.execute(
                "SELECT group_concat(v, ' ') FROM (SELECT CAST(ts AS INTEGER) AS v "
                "FROM interactions ORDER BY id)"
            ).fetchone()[0]
            self.times = np.fromstring(text or "", dtype=np.int64, sep=" ").astype(np.float64)
        except (sqlite3.Error, ValueError):
            self.times = None
        finally:
            conn.close()

    def result(self) -> np.ndarray | None:
        self._thread.join()
        return self.times


def load_interactions(
    store: Store,
    catalogue: Catalogue,
    *,
    with_time: bool = False,
    whole_seconds: bool = False,
    times_beside: _TimesBeside | None = None,
) -> InteractionArrays:
    """All interactions mapped to ``catalogue`` indices (call inside ``store.read()``).

    ``whole_seconds``: the times truncated to seconds, read as integers (about a fifth of
    the cost of the exact values; enough to order a user's history, see ``last_touch``).
    """
    bounds = store.conn.execute(
        "SELECT min(id), max(id), min(user_id), max(user_id), min(item_id), max(item_id) "
        "FROM interactions"
    ).fetchone()
    if bounds[0] is None:
        empty = np.zeros(0, dtype=np.int64)
        return InteractionArrays(
            empty, empty, np.zeros(0, np.float32), np.zeros(0) if with_time else None
        )
    id_lo, id_hi, u_lo, u_hi, i_lo, i_hi = (int(b) for b in bounds)
    span_i = i_hi - i_lo + 1
    packed_ok = (u_hi - u_lo + 1) * span_i * 8 < 2**62
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    times: list[np.ndarray] = []
    for lo in range(id_lo, id_hi + 1, _CHUNK_ROWS):
        hi = min(lo + _CHUNK_ROWS - 1, id_hi)
        if packed_ok:
            expr = f"((user_id - {u_lo}) * {span_i} + item_id - {i_lo}) * 8 + {WEIGHT_SQL}"
            p = _concat_ints(store, expr, lo, hi)
            w = p % 8
            ui = p // 8
            users.append(ui // span_i + u_lo)
            items.append(ui % span_i + i_lo)
        else:
            users.append(_concat_ints(store, "user_id", lo, hi))
            p = _concat_ints(store, f"(item_id - {i_lo}) * 8 + {WEIGHT_SQL}", lo, hi)
            w = p % 8
            items.append(p // 8 + i_lo)
        weights.append(w.astype(np.float32))
        if times_beside is not None:
            pass  # read on the other connection
        elif with_time and whole_seconds:
            times.append(_concat_ints(store, "CAST(ts AS INTEGER)", lo, hi).astype(np.float64))
        elif with_time:
            text = store.scalar(
                "SELECT group_concat(v, ' ') FROM (SELECT ts AS v "
                "FROM interactions WHERE id BETWEEN ? AND ? ORDER BY id)",
                (lo, hi),
            )
            times.append(np.fromstring(text, dtype=np.float64, sep=" ") if text else np.zeros(0))
    user_ids = np.concatenate(users)
    item_ids = np.concatenate(items)
    u_idx, u_ok = _map_ids(catalogue.user_ids, user_ids)
    i_idx, i_ok = _map_ids(catalogue.item_ids, item_ids)
    ok = u_ok & i_ok  # rows of deleted users/items only exist with foreign keys off
    weight = np.concatenate(weights)
    if times_beside is not None:
        beside = times_beside.result()
        if beside is None or len(beside) != len(weight):  # the other connection saw other data
            return load_interactions(store, catalogue, with_time=with_time, whole_seconds=True)
        times = [beside]
    ts = np.concatenate(times)[ok] if with_time else None
    return InteractionArrays(u_idx[ok], i_idx[ok], weight[ok], ts)


def _map_ids(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
    lo, hi = int(sorted_ids[0]), int(sorted_ids[-1])
    if len(ids) > 4 * (hi - lo + 1) and lo <= int(ids.min()) and int(ids.max()) <= hi:
        # Ids are small integers: a table from id to index is a tenth of the search's cost
        # at a million rows (a binary search per row).
        table = np.full(hi - lo + 1, -1, dtype=np.int64)
        table[sorted_ids - lo] = np.arange(len(sorted_ids), dtype=np.int64)
        idx = table[ids - lo]
        ok = idx >= 0
        return np.where(ok, idx, 0), ok
    idx = np.searchsorted(sorted_ids, ids)
    idx = np.minimum(idx, len(sorted_ids) - 1)
    return idx.astype(np.int64), sorted_ids[idx] == ids


#: Added to the times stored in ``Snapshot.last_touch`` so that every stored value is
#: positive (a time of 0 would read as "no interaction" in a sparse matrix).
TIME_OFFSET = 1e10


def last_touch_matrix(
    user_index: np.ndarray, item_index: np.ndarray, times: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """(users x items): the latest time of each pair + ``TIME_OFFSET``, the pattern of the
    summed matrix (so ``.data`` lines up with the matrix's once both are sorted).

    Whole seconds: a served snapshot reads the times as integers (cheaper), and an
    evaluation's snapshot must order a history exactly as the served one does.
    """
    t = np.floor(np.asarray(times, dtype=np.float64)) + TIME_OFFSET
    n_users, n_items = shape
    key = np.asarray(user_index, dtype=np.int64) * n_items + np.asarray(item_index, np.int64)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else key
    # One sort by pair, then the largest time of each run of equal pairs.
    latest = np.maximum.reduceat(t[order], starts) if len(key) else t
    pairs = key[starts]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs // n_items, minlength=n_users), out=indptr[1:])
    return sp.csr_matrix((latest, pairs % n_items, indptr), shape=shape)


def pair_matrices(
    user_index: np.ndarray,
    item_index: np.ndarray,
    weights: np.ndarray,
    times: np.ndarray | None,
    shape: tuple[int, int],
) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """(users x items) summed weights of each pair, rows sorted, and with ``times`` the
    ``last_touch_matrix`` of the same pairs: both from one sort of the pairs (scipy's
    COO -> CSR sum and a second sort for the times took 2.3x as long at 1M rows)."""
    n_users, n_items = shape
    key = np.asarray(user_index, dtype=np.int64) * n_items + np.asarray(item_index, np.int64)
    order = np.argsort(key)
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else key
    w = np.asarray(weights, dtype=np.float64)[order]
    # Integer weights in float64: the sums are exact in any order.
    sums = np.add.reduceat(w, starts) if len(key) else w
    pairs = key[starts]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs // max(n_items, 1), minlength=n_users), out=indptr[1:])
    cols = pairs % max(n_items, 1)
    matrix = sp.csr_matrix((sums, cols, indptr), shape=shape, dtype=np.float64)
    if times is None:
        return matrix, None
    t = np.floor(np.asarray(times, dtype=np.float64))[order] + TIME_OFFSET
    latest = np.maximum.reduceat(t, starts) if len(key) else t
    return matrix, sp.csr_matrix((latest, matrix.indices, matrix.indptr), shape=shape)


class Snapshot:
    """The weighted user-item matrix of one data revision, plus what is derived from it.

    ``last_touch`` (when the times are known) holds each pair's latest time, in whole
    seconds, with the matrix's sparsity pattern: v3 weights a history by recency with it.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        user_index: np.ndarray,
        item_index: np.ndarray,
        weights: np.ndarray,
        *,
        revision: int | None = None,
        marks: Marks | None = None,
        times: np.ndarray | None = None,
        stamp: int | None = None,
    ) -> None:
        """``times``: each interaction's Unix time, for ``last_touch`` (None: unknown)."""
        self.catalogue = catalogue
        self.revision = revision
        #: the catalog's random stamp at ``revision`` (``Store.revision_stamp``): with it,
        #: the key the snapshot may be saved under (``persist``); None: never saved
        self.stamp = stamp
        #: where the data ends (see ``incremental``); None: cannot be updated in place
        self.marks = marks
        shape = (catalogue.n_users, catalogue.n_items)
        user_index = np.asarray(user_index, dtype=np.int64)
        item_index = np.asarray(item_index, dtype=np.int64)
        if len(user_index) and (
            user_index.min() < 0
            or user_index.max() >= shape[0]
            or item_index.min() < 0
            or item_index.max() >= shape[1]
        ):
            raise ValueError("interaction index outside the catalogue")
        matrix, last_touch = pair_matrices(user_index, item_index, weights, times, shape)
        self.matrix: sp.csr_matrix = matrix
        self.interaction_count = len(user_index)
        #: raw interactions per item, and the weighted sum per item (popularity)
        self.item_interactions = np.bincount(item_index, minlength=shape[1]).astype(np.int64)
        self.item_weight = np.bincount(
            item_index, weights=np.asarray(weights, dtype=np.float64), minlength=shape[1]
        )
        self.item_users = np.bincount(matrix.indices, minlength=shape[1]).astype(np.int64)
        self.last_touch = last_touch

    @classmethod
    def from_parts(
        cls,
        catalogue: Catalogue,
        matrix: sp.csr_matrix,
        *,
        interaction_count: int,
        item_interactions: np.ndarray,
        item_weight: np.ndarray,
        revision: int | None,
        marks: Marks | None,
        last_touch: sp.csr_matrix | None = None,
        stamp: int | None = None,
    ) -> Snapshot:
        """A snapshot from an already summed matrix (``incremental.update``, ``persist``)."""
        snap = cls.__new__(cls)
        snap.catalogue = catalogue
        snap.revision = revision
        snap.stamp = stamp
        snap.marks = marks
        snap.matrix = matrix
        snap.interaction_count = interaction_count
        snap.item_interactions = item_interactions
        snap.item_weight = item_weight
        snap.item_users = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.int64)
        snap.last_touch = last_touch
        return snap

    @classmethod
    def from_ids(
        cls,
        catalogue: Catalogue,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        weights: np.ndarray,
        *,
        revision: int | None = None,
    ) -> Snapshot:
        """A snapshot from interactions given by user and item *ids* (not indices)."""
        u, u_ok = _map_ids(catalogue.user_ids, np.asarray(user_ids, dtype=np.int64))
        i, i_ok = _map_ids(catalogue.item_ids, np.asarray(item_ids, dtype=np.int64))
        if not (bool(u_ok.all()) and bool(i_ok.all())):
            raise InputError("interaction with a user or item that is not in the catalogue")
        return cls(catalogue, u, i, weights, revision=revision)

    # -- derived, built on first use -------------------------------------------------------
    @cached_property
    def normalized(self) -> sp.csr_matrix:
        """Rows scaled to unit length: a row times another row is their cosine."""
        m = self.matrix
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv) @ m, dtype=np.float64)

    @cached_property
    def normalized_t(self) -> sp.csr_matrix:
        """Transpose of ``normalized`` in CSR (items x users) for fast row products."""
        return sp.csr_matrix(self.normalized.T)

    @cached_property
    def history_length(self) -> np.ndarray:
        """Distinct items each user interacted with."""
        return np.diff(self.matrix.indptr)

    @cached_property
    def cold_items(self) -> np.ndarray:
        """Items nobody has interacted with (indices)."""
        return np.flatnonzero(self.item_interactions == 0)

    @cached_property
    def cold_similarity(self) -> sp.csr_matrix:
        """Every item against the cold items only (items x cold), for v1's cold-item fill.

        Built once per snapshot: scoring the cold items of a block of users is then one
        sparse product of their histories with it, instead of content scores against the
        whole catalogue (which cost ~10x the rest of the ranking at 10,000 items).
        """
        cat = self.catalogue
        return similarity_to(cat.features, self.cold_items, cat.dense_features)

    @cached_property
    def popular_order(self) -> np.ndarray:
        """Items with at least one interaction, by weighted count, then count, then id."""
        n = self.catalogue.n_items
        order = np.lexsort((np.arange(n), -self.item_interactions, -self.item_weight))
        return order[self.item_interactions[order] > 0]

    def prepare(self) -> None:
        """Compute now what the first v1 and v2 answers read (the row-normalised copies,
        the item similarities, popularity): a background build calls it, so that the
        first question after it does not pay for them (0.1 s at 1M x 2,000)."""
        _ = (self.normalized_t, self.cold_similarity, self.popular_order, self.history_length)
        if self.catalogue.exact and self.catalogue.has_content:
            _ = self.catalogue.similarity

    def seen_mask(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x items) mask of the items each user already interacted with."""
        from smart_suggest.recommend._ops import gather

        pos, cols, _ = gather(self.matrix, rows)
        mask = np.zeros((len(rows), self.catalogue.n_items), dtype=bool)
        mask[pos, cols] = True
        return mask


def build_snapshot(store: Store) -> Snapshot:
    """Read the catalogue and every interaction in one consistent read transaction."""
    from smart_suggest.recommend.incremental import read_marks

    with store.read():
        revision, stamp = store.revision_stamp("catalog")
        marks = read_marks(store)
        beside = None
        if marks.interaction_id - marks.first_interaction_id >= PARALLEL_TIMES_ROWS:
            beside = _TimesBeside(store.path, (revision, stamp))
        catalogue = load_catalogue(store)
        inter = load_interactions(
            store, catalogue, with_time=True, whole_seconds=True, times_beside=beside
        )
    return Snapshot(
        catalogue,
        inter.user,
        inter.item,
        inter.weight,
        revision=revision,
        marks=marks,
        times=inter.ts,
        stamp=stamp,
    )
