"""v3: an item-item model learnt from the interactions, EASE or RP3beta by catalogue size.

Both methods score an item j for user u as ``score(j) = sum over items i in u's history of
h[u, i] W[i, j]``, so the reason of every recommendation is the pair of history items with
the largest pull towards it ("because you liked X and Y"). The history weight h is the
square root of each pair's summed action weights (view 1, click 3, purchase 5; it scored
above both the binary history and the raw weights), times ``0.5 ** (rank / half_life)``
where rank counts the items the user touched after i (``recency_weights``): on the real
MovieLens 100K the films a user rated last say most about the next ones (README).

* **EASE** (Steck 2019, "Embarrassingly Shallow Autoencoders"), up to ``EASE_ITEM_LIMIT``
  items: the closed form of the ridge regression of every item on all the others with a
  zero diagonal, ``P = (X^T X + lambda I)^-1``, ``W[i, j] = -P[i, j] / P[j, j]``, ``W[j, j] =
  0``. It is the most accurate of the candidates measured (see the README), but it is a
  dense items x items matrix whose inverse costs ~items^3: 3,706 items fit in about a
  second, 10,000 take ~1 GB and minutes on two cores.
* **RP3beta** (Paudel et al. 2017) above that size: a three-step random walk item -> user
  -> item with transition probabilities raised to ``alpha``, divided by the popularity of
  the target raised to ``beta``, ``W[i, j] = sum_u P(u|i)^a P(j|u)^a / deg(j)^b``, keeping
  the ``TOP_NEIGHBOURS`` largest weights of each row. It is a sparse matrix product computed
  in blocks of rows, so memory stays linear in the catalogue.

Hyper-parameters (``Options.params``, chosen by ``smart-suggest tune``): ``lambda`` for
EASE, ``alpha`` and ``beta`` for RP3beta, and ``half_life`` for both (scoring only: models
that differ only in it share one fit). A fitted model is kept per snapshot (that is, per
data revision) and per parameter set, so only the first answer after a change pays the fit.

Users with fewer than ``count`` positively scored items (e.g. no history) get the most
popular unseen items in the free slots, source "popular", as v1 does.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from smart_suggest.recommend._ops import (
    assemble,
    dense_rows,
    mark,
    row_of,
    top_rows,
)
from smart_suggest.recommend.base import (
    SOURCE_CODE,
    Options,
    Ranking,
    Recommendation,
    register,
)
from smart_suggest.recommend.popular import popular_block
from smart_suggest.recommend.reasons import Slots, history_evidence, listing, popularity_texts
from smart_suggest.recommend.snapshot import Snapshot, block_size

#: Up to this many items v3 fits EASE (dense: ~items^3 time, a few items^2 arrays of 4 and
#: 8 bytes a cell); above it RP3beta (sparse). A cost limit, measured: see the README.
EASE_ITEM_LIMIT = 5_000
#: Default hyper-parameters: lambda between the values tune chose on synthetic data at
#: 100K (500) and at 1M x 3,706 items (3,000); alpha and beta near the chosen ones.
DEFAULT_LAMBDA = 1000.0
DEFAULT_ALPHA = 0.5
DEFAULT_BETA = 0.5
#: Recency: a history item's weight halves every ``half_life`` more recent items the user
#: touched after it (0: off). Measured on the real MovieLens 100K (README): 0.5 ** (rank /
#: 10..30) lifts NDCG@10 by 12-15% on the chronological split; on data whose order says
#: nothing it costs little once tuned away (``tune`` tries 0). The default is the middle
#: of the range that helped on the real ratings.
DEFAULT_HALF_LIFE = 20.0
#: Pair products (a user's items squared, summed) per block of the Gram matrix: bounds the
#: sparse product of a block (12 bytes an entry) at ~240 MB.
GRAM_BLOCK_PAIRS = 20_000_000
#: Item-item weights kept per item by RP3beta.
TOP_NEIGHBOURS = 200
#: Hyper-parameters each method reads from ``Options.params`` (the fit's; ``half_life``
#: only re-weights the history the fitted weights are applied to, so it needs no refit).
PARAMETERS: dict[str, tuple[str, ...]] = {"ease": ("lambda",), "rp3beta": ("alpha", "beta")}
SCORING_PARAMETERS = ("half_life",)
DEFAULTS: dict[str, float] = {
    "lambda": DEFAULT_LAMBDA,
    "alpha": DEFAULT_ALPHA,
    "beta": DEFAULT_BETA,
    "half_life": DEFAULT_HALF_LIFE,
}


def method_for(n_items: int) -> str:
    """The method v3 uses for a catalogue of ``n_items`` items: "ease" or "rp3beta"."""
    return "ease" if n_items <= EASE_ITEM_LIMIT else "rp3beta"


def history_matrix(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The model's input: the square root of each pair's summed action weights.

    Measured on the synthetic data (README): binary input and raw weights both score lower;
    the root keeps "touched several times / bought" above "viewed once" without letting a
    heavy pair dominate the Gram matrix.
    """
    out = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    out.eliminate_zeros()
    out.data = np.sqrt(out.data)
    return out


def recency_weights(last_touch: sp.csr_matrix, half_life: float) -> np.ndarray:
    """Per stored pair of ``last_touch`` (sorted CSR): ``0.5 ** (rank / half_life)``, where
    rank counts the items the user touched strictly later (0 for the latest; equal times
    share a rank, so a history without real times is not re-weighted at all)."""
    n = len(last_touch.data)
    if half_life <= 0 or n == 0:
        return np.ones(n)
    rows = np.repeat(np.arange(last_touch.shape[0]), np.diff(last_touch.indptr))
    t = last_touch.data
    order = np.lexsort((-t, rows))
    r, ts = rows[order], t[order]
    position = np.arange(n) - last_touch.indptr[r]
    # Ties take the rank of the first of their group (the user's latest time first).
    new = np.r_[True, (r[1:] != r[:-1]) | (ts[1:] != ts[:-1])]
    rank = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    rank = position - (np.arange(n) - rank)
    out = np.empty(n)
    out[order] = 0.5 ** (rank / half_life)
    return out


def gram(x: sp.csr_matrix, dtype: type = np.float32) -> np.ndarray:
    """Dense ``x^T x`` (items x items), summed over blocks of users.

    One sparse product over all users would hold every item pair as a sparse entry (12
    bytes each, ~1.2 GB at 10,000 items); blocks bound that.
    """
    n_users, n = x.shape
    out = np.zeros((n, n), dtype=dtype, order="F")
    lengths = np.diff(x.indptr)
    # Blocks of about GRAM_BLOCK_PAIRS pair products each (heavy users get small blocks).
    cost = np.cumsum(lengths.astype(np.float64) ** 2)
    step = GRAM_BLOCK_PAIRS
    cuts: list[int] = []
    if n_users:
        marks = np.arange(1, int(cost[-1] // step) + 2) * step
        cuts = np.unique(np.minimum(np.searchsorted(cost, marks) + 1, n_users)).tolist()
    lo = 0
    for hi in [*cuts, n_users]:
        if hi <= lo:
            continue
        block = x[lo:hi]
        out += sp.csr_matrix(block.T @ block, dtype=dtype).toarray()
        lo = hi
    return out


def ease_weights(x: sp.csr_matrix, lam: float, dtype: type = np.float32) -> np.ndarray:
    """EASE's item-item matrix for the (users x items) matrix ``x``: dense, zero diagonal.

    ``P = (X^T X + lambda I)^-1`` through a Cholesky factorisation, ``P = U^-1 U^-T`` (the
    Gram matrix plus lambda I is symmetric positive definite): LAPACK's potrf and trtri,
    then one BLAS product, about items^3 flops in all. Single precision by default: ~5x
    faster than double on two cores (measured at 3,706 items) and half the memory, with a
    relative error of ~1e-6 in ``W``, far below what changes a ranking.
    """
    if lam <= 0:
        raise ValueError("lambda must be positive")
    n = x.shape[1]
    if n == 0:
        return np.zeros((0, 0), dtype=dtype)
    # Imported here: only fitting v3 needs LAPACK, and scipy.linalg costs every command
    # that ranks ~50 ms of start-up.
    import scipy.linalg

    single = np.dtype(dtype) == np.float32
    potrf = scipy.linalg.lapack.spotrf if single else scipy.linalg.lapack.dpotrf
    trtri = scipy.linalg.lapack.strtri if single else scipy.linalg.lapack.dtrtri
    g = gram(x, dtype)
    g[np.diag_indices(n)] += dtype(lam)
    factor, info = potrf(g, lower=False, overwrite_a=True, clean=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky factorisation failed ({info})")
    del g
    inv_factor, info = trtri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"triangular inverse failed ({info})")
    del factor
    p = inv_factor @ inv_factor.T
    del inv_factor
    p /= -np.diag(p)[None, :]
    p[np.diag_indices(n)] = 0.0
    return np.ascontiguousarray(p)


def rp3beta_weights(
    x: sp.csr_matrix, alpha: float, beta: float, top: int = TOP_NEIGHBOURS
) -> sp.csr_matrix:
    """RP3beta's item-item matrix for the (users x items) ``x``: sparse, ``top`` weights
    per row, zero diagonal. The walk's transition probabilities are ``x``'s rows (and
    columns) normalised to sum 1."""
    n = x.shape[1]
    deg_u = np.asarray(x.sum(axis=1)).ravel()
    deg_i = np.asarray(x.sum(axis=0)).ravel()
    inv_u = np.divide(1.0, deg_u, out=np.zeros_like(deg_u), where=deg_u > 0)
    inv_i = np.divide(1.0, deg_i, out=np.zeros_like(deg_i), where=deg_i > 0)
    p_ui = sp.csr_matrix(sp.diags(inv_u) @ x)
    p_iu = sp.csr_matrix(sp.diags(inv_i) @ sp.csr_matrix(x.T))
    p_ui.data **= alpha
    p_iu.data **= alpha
    penalty = np.divide(1.0, deg_i**beta, out=np.zeros_like(deg_i), where=deg_i > 0)
    step = block_size(n)
    blocks: list[sp.csr_matrix] = []
    for lo in range(0, n, step):
        rows = np.arange(lo, min(lo + step, n))
        w = (p_iu[rows] @ p_ui).toarray()
        w *= penalty[None, :]
        w[np.arange(len(rows)), rows] = 0.0
        cols, vals = top_rows(w, top)
        r, k = np.nonzero(cols >= 0)
        blocks.append(sp.csr_matrix((vals[r, k], (r, cols[r, k])), shape=(len(rows), n)))
    if not blocks:
        return sp.csr_matrix((n, n), dtype=np.float64)
    out = sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float64)
    out.sort_indices()
    return out


@dataclass(frozen=True, slots=True)
class ItemModel:
    """A fitted v3 model: the method, its parameters and the item-item weights."""

    method: str
    params: tuple[tuple[str, float], ...]
    weights: np.ndarray | sp.csr_matrix  # (items x items): W[i, j] = pull of i towards j
    history: sp.csr_matrix  # (users x items) input the model scores from

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x items) scores of the users at ``rows``."""
        if isinstance(self.weights, np.ndarray):
            if len(rows) <= 8:
                # One user (an interactive call): add up the rows of the history items.
                out = np.zeros((len(rows), self.weights.shape[1]))
                for b, row in enumerate(np.asarray(rows).tolist()):
                    liked, values = row_of(self.history, row)
                    if len(liked):
                        out[b] = values @ self.weights[liked]
                return out
            return dense_rows(self.history, rows) @ self.weights
        return np.asarray((self.history[rows] @ self.weights).toarray(), dtype=np.float64)

    def cells(self, liked: np.ndarray, items: np.ndarray) -> np.ndarray:
        """W[liked[k], items[k]] for every k (the cells ``pull`` reads), as float64."""
        if len(liked) == 0:
            return np.zeros(0)
        if isinstance(self.weights, np.ndarray):
            return np.asarray(self.weights[liked, items], dtype=np.float64)
        return np.asarray(self.weights[liked, items], dtype=np.float64).ravel()

    def pull(self, liked: np.ndarray, items: np.ndarray) -> np.ndarray:
        """W[liked][:, items] as a dense array (the contributions to explain)."""
        if isinstance(self.weights, np.ndarray):
            return np.asarray(self.weights[np.ix_(liked, items)], dtype=np.float64)
        return np.asarray(self.weights[liked][:, items].toarray(), dtype=np.float64)


_FITTED: weakref.WeakKeyDictionary[Snapshot, dict[tuple[object, ...], ItemModel]] = (
    weakref.WeakKeyDictionary()
)
_FIT_LOCK = threading.Lock()


def model_params(n_items: int, options: Options) -> tuple[str, tuple[tuple[str, float], ...]]:
    """The method for this catalogue and its parameters (``options`` over the defaults):
    the fit's parameters, then the scoring ones."""
    method = method_for(n_items)
    names = (*PARAMETERS[method], *SCORING_PARAMETERS)
    return method, tuple((name, float(options.param(name, DEFAULTS[name]))) for name in names)


def check_params(method: str, params: dict[str, float]) -> None:
    """Raise ``ValueError`` for a parameter outside its range."""
    if method == "ease" and not params.get("lambda", DEFAULT_LAMBDA) > 0:
        raise ValueError("lambda must be positive")
    if method == "rp3beta":
        if not params.get("alpha", DEFAULT_ALPHA) > 0:
            raise ValueError("alpha must be positive")
        if not 0 <= params.get("beta", DEFAULT_BETA) <= 1:
            raise ValueError("beta must be between 0 and 1")
    if not params.get("half_life", DEFAULT_HALF_LIFE) >= 0:
        raise ValueError("half_life must not be negative (0: off)")


def history_for(snap: Snapshot, half_life: float) -> sp.csr_matrix:
    """What the weights are applied to: ``history_matrix``, each pair times its recency
    weight (the snapshot's times; without times, or with ``half_life`` 0, unchanged)."""
    x = history_matrix(snap.matrix)
    touch = snap.last_touch
    if half_life > 0 and touch is not None and touch.nnz == x.nnz:
        x.data *= recency_weights(touch, half_life)
    return x


def fit(snap: Snapshot, options: Options) -> ItemModel:
    """The v3 model of ``snap`` with ``options``' parameters (fitted once, then cached)."""
    method, params = model_params(snap.catalogue.n_items, options)
    key = (method, params)
    n_fit = len(PARAMETERS[method])
    fit_key = (method, params[:n_fit])
    with _FIT_LOCK:
        cached = _FITTED.get(snap, {})
        if key in cached:
            return cached[key]
        values = dict(params)
        check_params(method, values)
        # Models that differ only in the history's recency weighting share the weights.
        same_fit = [m for m in cached.values() if (m.method, m.params[:n_fit]) == fit_key]
        weights: np.ndarray | sp.csr_matrix
        if same_fit:
            weights = same_fit[0].weights
        elif method == "ease":
            # Solved in single precision (fast), kept in double: one user alone and a block
            # of users are then scored with the same arithmetic (same ranking, same ties).
            weights = ease_weights(history_matrix(snap.matrix), values["lambda"]).astype(np.float64)
        else:
            weights = rp3beta_weights(history_matrix(snap.matrix), values["alpha"], values["beta"])
        model = ItemModel(method, params, weights, history_for(snap, values["half_life"]))
        # One fit per snapshot is what serving needs; tuning tries several, and keeping
        # all of them would hold one dense matrix each. Scorings of the same fit share it.
        kept = {k: m for k, m in cached.items() if m.weights is weights} if same_fit else {}
        _FITTED[snap] = {**kept, key: model}
        return model


class ItemItem:
    name = "v3"
    description = (
        "item-item model: items that go with your history (EASE; RP3beta in large catalogues)"
    )

    def rank(self, snap: Snapshot, rows: np.ndarray, options: Options) -> Ranking:
        rows = np.asarray(rows, dtype=np.int64)
        count = options.count
        model = fit(snap, options)
        scores = model.scores(rows)
        seen = snap.seen_mask(rows)
        scores[seen] = 0.0
        top, top_scores = top_rows(scores, count)
        segments = [(top, top_scores, SOURCE_CODE["neighbours"])]
        need = count - (top >= 0).sum(axis=1)
        if need.any():
            mark(seen, top)
            fill, fill_scores = popular_block(snap, seen, need)
            segments.append((fill, fill_scores, SOURCE_CODE["popular"]))
        ranking = assemble(rows, segments)
        ranking.extra["from_model"] = (top >= 0).sum(axis=1)
        return ranking

    def explain(
        self, snap: Snapshot, ranking: Ranking, options: Options
    ) -> list[list[Recommendation]]:
        model = fit(snap, options)
        cat = snap.catalogue
        slots = Slots(ranking)
        at = slots.of(SOURCE_CODE["neighbours"])
        if len(at):
            # The history items with the largest pull towards each item, for the whole
            # block at once (one W cell per (item, history item) pair).
            who, _pulls, more = history_evidence(
                cat, model.history, ranking.rows[slots.b[at]], slots.items[at], pull=model.cells
            )
            slots.reasons[at] = listing(
                "because you liked ", cat.item_names, who, None, " and ", more, " (and %d more)"
            )
        at = slots.of(SOURCE_CODE["popular"])
        if len(at):
            b = slots.b[at]
            lengths = np.diff(model.history.indptr)
            got = ranking.extra["from_model"]
            whys = {
                row: "popular (no history yet)"
                if lengths[ranking.rows[row]] == 0
                else f"popular fill-in (the model found only {int(got[row])})"
                for row in np.unique(b).tolist()
            }
            texts = popularity_texts(snap, slots.items[at])
            slots.reasons[at] = [
                f"{whys[row]}: {text}" for row, text in zip(b.tolist(), texts, strict=True)
            ]
        return slots.rows(snap)


ITEM_ITEM = register(ItemItem())
