"""Reasons explained for a whole block of users at once name exactly the contributors the
per-item computation (``top_contributors`` on one user's submatrix) names."""

from __future__ import annotations

import numpy as np
import pytest

from smart_suggest.recommend import Options, Recommender, get_strategy, rank_users
from smart_suggest.recommend._ops import (
    block_cells,
    block_top_contributors,
    row_of,
    short_name,
    submatrix,
    top_contributors,
)
from smart_suggest.recommend.content import history_rows
from smart_suggest.store import Store


def test_block_helpers_match_the_per_row_ones() -> None:
    rng = np.random.default_rng(7)
    import scipy.sparse as sp

    dense = rng.integers(0, 4, size=(30, 25)).astype(np.float64)
    dense[dense == 2] = 0
    m = sp.csr_matrix(dense)
    rows = rng.integers(-1, 30, size=(6, 8))
    cols = np.array([rng.permutation(25)[:5] for _ in range(6)])
    cols[0, 3] = -1
    cells = block_cells(m, rows, cols)
    for b in range(6):
        for i in range(8):
            for j in range(5):
                want = dense[rows[b, i], cols[b, j]] if rows[b, i] >= 0 and cols[b, j] >= 0 else 0
                assert cells[b, i, j] == want
    ties = np.round(cells * 2) / 2  # many equal values: the lower index must win
    best, more = block_top_contributors(ties)
    for b in range(6):
        for j in range(5):
            ref, ref_more = top_contributors(ties[b, :, j])
            got = [k for k in best[b, j].tolist() if k >= 0]
            assert got == ref.tolist() and int(more[b, j]) == ref_more


def test_block_reasons_equal_per_item_reasons(demo_store: Store) -> None:
    engine = Recommender(demo_store)
    snap = engine.snapshot()
    rows = np.arange(snap.catalogue.n_users)
    cat = snap.catalogue
    for strategy in ("v1", "v2"):
        strat = get_strategy(strategy)
        options = Options(10)
        for ranking in rank_users(snap, strategy, rows, options):
            explained = strat.explain(snap, ranking, options)
            for b, row in enumerate(ranking.rows.tolist()):
                items = ranking.items[b][ranking.items[b] >= 0]
                for rec, item in zip(explained[b], items.tolist(), strict=True):
                    if strategy == "v1" and rec.source == "neighbours":
                        nbrs = ranking.extra["neighbours"][b]
                        sims = ranking.extra["similarity"][b]
                        keep = nbrs >= 0
                        nbrs, sims = nbrs[keep], sims[keep]
                        contrib = submatrix(snap.matrix, nbrs, np.array([item]))[:, 0] * sims
                        best, more = top_contributors(contrib)
                        names = ", ".join(
                            f"{short_name(cat.usernames[nbrs[j]])} ({sims[j]:.2f})" for j in best
                        )
                        want = f"liked by similar users {names}" + (
                            f" and {more} more" if more else ""
                        )
                        assert rec.reason == want
                    elif strategy == "v2" and rec.source == "content":
                        liked, weights = row_of(history_rows(snap, np.array([row])), 0)
                        sims2 = cat.similarity_block(liked, np.array([item]))[:, 0]
                        best, more = top_contributors(sims2 * weights)
                        names = " and ".join(
                            f"{short_name(cat.item_names[liked[j]])} ({sims2[j]:.2f})" for j in best
                        )
                        want = f"resembles {names}" + (
                            f" (+{more} more of your items)" if more else ""
                        )
                        assert rec.reason == want


def test_cells_and_last_axis_contributors_match_the_block_helpers() -> None:
    import scipy.sparse as sp

    from smart_suggest.recommend._ops import cells, csr_keys, last_axis_top_contributors

    rng = np.random.default_rng(11)
    dense = rng.integers(0, 4, size=(40, 40)).astype(np.float64)
    dense[dense == 2] = 0
    m = sp.csr_matrix(dense)
    keys = csr_keys(m)
    assert keys is not None and (np.diff(keys) > 0).all()
    liked = np.array([rng.permutation(40)[:9] for _ in range(7)])  # a user's distinct items
    liked[:, 7:] = -1  # pads of shorter histories
    wanted = np.array([rng.permutation(40)[:4] for _ in range(7)])  # a ranking: no repeats
    wanted[2, 1] = -1
    got = cells(m, keys, liked[:, None, :], wanted[:, :, None])  # (user, wanted, liked)
    # The same cells through the transpose, as block_cells reads them.
    want = block_cells(sp.csr_matrix(m.T), wanted, liked)
    assert got.shape == (7, 4, 9) and np.array_equal(got, want)
    ties = np.round(got * 2) / 2
    best, more = last_axis_top_contributors(ties)
    ref_best, ref_more = block_top_contributors(ties.transpose(0, 2, 1))
    assert np.array_equal(best, ref_best) and np.array_equal(more, ref_more)
    # A matrix with duplicate entries is not canonical: no keys (the caller falls back).
    dup = sp.csr_matrix((np.ones(2), np.array([1, 1]), np.array([0, 2])), shape=(1, 3))
    assert csr_keys(dup) is None


def _cold_reason(snap: object, row: int, item: int) -> str:
    """A cold item's reason worked out for one user and one item on its own."""
    cat = snap.catalogue  # type: ignore[attr-defined]
    liked, weights = row_of(snap.matrix, row)  # type: ignore[attr-defined]
    sims = cat.similarity_block(liked, np.array([item]))[:, 0]
    best, _more = top_contributors(sims * weights)
    names = " and ".join(f"{short_name(cat.item_names[liked[j]])} ({sims[j]:.2f})" for j in best)
    return f"new item (no interactions yet), resembles {names}"


@pytest.mark.parametrize("path", ["dense", "keys", "large catalogue"])
def test_cold_item_reasons_of_a_block_equal_per_item_reasons(
    demo_store: Store, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """v1's cold items (never interacted with) are explained for many users at once; each
    reason names the two liked items a per-user computation names, whichever way the
    similarity cells are read."""
    from smart_suggest.recommend import snapshot
    from smart_suggest.tracking import add_item

    old = demo_store.conn.execute(
        "SELECT name, category, description FROM items ORDER BY id LIMIT 12"
    ).fetchall()
    for k, (name, category, description) in enumerate(old):
        add_item(demo_store, f"{name} mk{k}", category, description)  # resembles an old one
    if path == "keys":
        monkeypatch.setattr(snapshot.Catalogue, "similarity_dense", None)
    elif path == "large catalogue":
        monkeypatch.setattr(snapshot, "EXACT_ITEM_LIMIT", 10)
    snap = Recommender(demo_store).snapshot()
    assert len(snap.cold_items) == 12
    assert snap.catalogue.exact == (path != "large catalogue")
    strat = get_strategy("v1")
    options = Options(10)
    seen = 0
    for ranking in rank_users(snap, "v1", np.arange(snap.catalogue.n_users), options):
        for b, recs in enumerate(strat.explain(snap, ranking, options)):
            row = int(ranking.rows[b])
            for rec in recs:
                if rec.source == "cold-item":
                    item = int(np.flatnonzero(snap.catalogue.item_ids == rec.item_id)[0])
                    assert rec.reason == _cold_reason(snap, row, item)
                    seen += 1
    assert seen > 100
