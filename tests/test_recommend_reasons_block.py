"""Reasons explained for a whole block of users at once name exactly the contributors the
per-item computation (``top_contributors`` on one user's submatrix) names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from smart_suggest.recommend import (
    Options,
    Ranking,
    Recommender,
    Snapshot,
    get_strategy,
    rank_users,
)
from smart_suggest.recommend._ops import (
    row_of,
    short_name,
    submatrix,
    top_contributors,
)
from smart_suggest.recommend.content import history_rows
from smart_suggest.recommend.itemitem import fit
from smart_suggest.store import Store


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


# -- the flat helpers --------------------------------------------------------------------
def test_segment_top_names_what_top_contributors_names() -> None:
    from smart_suggest.recommend.reasons import segment_top

    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 9, size=300)
    lengths[:3] = 0  # empty segments first, as a user without history gives
    # Few distinct values, zeros and negatives: ties must go to the lower position.
    values = rng.integers(-2, 4, size=int(lengths.sum())).astype(np.float64) / 2
    seg = np.repeat(np.arange(len(lengths)), lengths)
    best, more = segment_top(values, seg, len(lengths))
    starts = np.cumsum(lengths) - lengths
    ties = 0
    for k, (lo, n) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        part = values[lo : lo + n]
        ref, ref_more = top_contributors(part)
        assert [j - lo for j in best[k].tolist() if j >= 0] == ref.tolist()
        assert int(more[k]) == ref_more
        ties += int(len(ref) == 2 and part[ref[0]] == part[ref[1]])
    assert ties > 10  # the tie-break was exercised


@pytest.mark.parametrize("count", [50, 5_000])  # one search per cell / sorted first
def test_find_reads_the_stored_cells(count: int) -> None:
    import scipy.sparse as sp

    from smart_suggest.recommend._ops import SORTED_SEARCH, csr_keys, find

    rng = np.random.default_rng(3)
    dense = rng.integers(0, 4, size=(60, 70)).astype(np.float64)
    dense[dense == 2] = 0
    m = sp.csr_matrix(dense)
    keys = csr_keys(m)
    assert keys is not None
    want = rng.integers(0, 60 * 70, size=count)
    assert (count >= SORTED_SEARCH) == (count == 5_000)
    assert np.array_equal(find(m, keys, want), dense.ravel()[want])


# -- every user of a generated database, against the definitions --------------------------
def _named(names: list[str], sims: list[float], order: list[int], sep: str) -> str:
    return sep.join(f"{short_name(names[j])} ({sims[j]:.2f})" for j in order)


def _contributors(contrib: np.ndarray) -> tuple[list[int], int]:
    """The two largest positive contributions (ties: the lower index), how many more."""
    positive = sorted(
        (j for j in range(len(contrib)) if contrib[j] > 0), key=lambda j: (-contrib[j], j)
    )
    return positive[:2], max(0, len(positive) - 2)


def _reference(
    snap: Snapshot, strategy: str, ranking: Ranking, b: int, options: Options
) -> list[str]:
    """The reasons of block row ``b``, worked out item by item from the definitions."""
    cat = snap.catalogue
    matrix = snap.matrix
    row = int(ranking.rows[b])
    extra = ranking.extra
    model = fit(snap, options)  # v3's weights (fitted once per snapshot)
    out = []
    for column in np.flatnonzero(ranking.items[b] >= 0).tolist():
        item = int(ranking.items[b, column])
        source = int(ranking.sources[b, column])
        score = float(ranking.scores[b, column])
        kind = ("neighbours", "content", "popular", "cold-item", "representative")[source]
        if kind == "neighbours" and strategy == "v3":
            liked, values = row_of(model.history, row)
            pulls = model.pull(liked, np.array([item]))[:, 0] * values
            top, more = _contributors(pulls)
            liked_names = " and ".join(short_name(cat.item_names[liked[j]]) for j in top)
            out.append(f"because you liked {liked_names}" + (f" (and {more} more)" if more else ""))
        elif kind == "neighbours":
            nbrs = [int(n) for n in extra["neighbours"][b] if n >= 0]
            sims = extra["similarity"][b][: len(nbrs)].tolist()
            weights = submatrix(matrix, np.array(nbrs, dtype=np.int64), np.array([item]))[:, 0]
            top, more = _contributors(weights * np.array(sims))
            names = [cat.usernames[n] for n in nbrs]
            out.append(
                f"liked by similar users {_named(names, sims, top, ', ')}"
                + (f" and {more} more" if more else "")
            )
        elif kind in ("content", "cold-item"):
            # v2 weighs the history by recency; v1's cold items take the plain weights.
            history = history_rows(snap, np.array([row])) if kind == "content" else matrix[[row]]
            liked, weights = row_of(history, 0)
            sims = cat.similarity_block(liked, np.array([item]))[:, 0].tolist()
            top, more = _contributors(np.array(sims) * weights)
            names = [cat.item_names[j] for j in liked]
            if kind == "content":
                out.append(
                    f"resembles {_named(names, sims, top, ' and ')}"
                    + (f" (+{more} more of your items)" if more else "")
                )
            else:
                out.append(
                    f"new item (no interactions yet), resembles {_named(names, sims, top, ' and ')}"
                )
        elif kind == "representative":
            why = "fill-in, " if matrix[row].nnz else "no history yet: "
            out.append(f"{why}representative of the catalogue (mean similarity {score:.2f})")
        elif strategy == "v3":
            assert kind == "popular"
            got = int(extra["from_model"][b])
            why = (
                f"popular fill-in (the model found only {got})"
                if model.history[row].nnz
                else "popular (no history yet)"
            )
            n, users = int(snap.item_interactions[item]), int(snap.item_users[item])
            out.append(
                f"{why}: {n} interaction{'s' if n != 1 else ''} by {users} "
                f"user{'s' if users != 1 else ''} (weighted {float(snap.item_weight[item]):g})"
            )
        else:
            assert strategy == "v1"
            if not matrix[row].nnz:
                why = "popular (no history yet)"
            elif not (extra["neighbours"][b] >= 0).any():
                why = f"popular fill-in (no similar user at or above {options.threshold:g})"
            else:
                why = f"popular fill-in (neighbours gave only {int(extra['from_neighbours'][b])})"
            n, users = int(snap.item_interactions[item]), int(snap.item_users[item])
            out.append(
                f"{why}: {n} interaction{'s' if n != 1 else ''} by {users} "
                f"user{'s' if users != 1 else ''} (weighted {float(snap.item_weight[item]):g})"
            )
    return out


@pytest.fixture(scope="module")
def generated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated database (300 users, 400 items, 15,000 interactions) plus items nobody
    touched yet (copies of old ones under new names) and a user without history."""
    from smart_suggest.sample import SyntheticSpec, generate
    from smart_suggest.store import open_store
    from smart_suggest.tracking import add_item, add_user

    path = tmp_path_factory.mktemp("generated") / "generated.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMART_SUGGEST_NOW", "2026-11-20T12:00:00Z")
        with open_store(path) as store:
            generate(store, SyntheticSpec(300, 400, 15_000, events=0, seed=3))
            old = store.conn.execute(
                "SELECT id, name, description FROM items ORDER BY id LIMIT 15"
            ).fetchall()
            for item_id, name, description in old:
                cats = [
                    c
                    for (c,) in store.conn.execute(
                        "SELECT category FROM item_categories WHERE item_id = ? ORDER BY position",
                        (item_id,),
                    )
                ]
                add_item(store, f"{name} (new)", cats, description)
            add_user(store, "newcomer")
    return path


@pytest.mark.parametrize("path", ["dense", "keys", "large catalogue", "small chunks"])
def test_every_users_reasons_match_the_definitions(
    generated_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Batch reasons (every user in one block), one user's reasons and reasons worked out
    item by item from the definitions are the same texts, for v1 (neighbours, popular
    fill-in, cold items), v2 (content, representative fill-in) and v3 (the model's pull,
    popular fill-in), whichever way the similarity cells are read."""
    import shutil

    from smart_suggest.recommend import itemitem, reasons, snapshot
    from smart_suggest.store import open_store

    if path == "keys":
        monkeypatch.setattr(snapshot.Catalogue, "similarity_dense", None)
    elif path == "large catalogue":  # top similar items only; v3 takes RP3beta (sparse)
        monkeypatch.setattr(snapshot, "EXACT_ITEM_LIMIT", 100)
        monkeypatch.setattr(itemitem, "EASE_ITEM_LIMIT", 100)
    elif path == "small chunks":
        monkeypatch.setattr(reasons, "PAIR_CHUNK", 50)
    db = tmp_path / "copy.db"
    shutil.copy(generated_db, db)
    with open_store(db) as store:
        engine = Recommender(store)
        snap = engine.snapshot()
        assert len(snap.cold_items) >= 15 and snap.catalogue.exact == (path != "large catalogue")
        sparse = isinstance(fit(snap, engine.options("v3", 10)).weights, sp.csr_matrix)
        assert sparse == (path == "large catalogue")
        kinds: dict[str, int] = {}
        for strategy in ("v1", "v2", "v3"):
            strat = get_strategy(strategy)
            options = engine.options(strategy, 10)
            rows = np.arange(snap.catalogue.n_users)
            (ranking,) = rank_users(snap, strategy, rows, options)  # one block: every user
            batch = dict(engine.recommend_all(strategy, 10))
            for b, recs in enumerate(strat.explain(snap, ranking, options)):
                user_id = int(snap.catalogue.user_ids[b])
                texts = [r.reason for r in recs]
                assert texts == _reference(snap, strategy, ranking, b, options)
                assert texts == [r.reason for r in batch[user_id]]
                if b % 7 == 0 or b == len(rows) - 1:  # one user alone: another code path
                    assert texts == [r.reason for r in engine.recommend(user_id, strategy, 10)]
                for r in recs:
                    kinds[r.source] = kinds.get(r.source, 0) + 1
                    kinds["more"] = kinds.get("more", 0) + ("more" in r.reason)
    # Every kind of reason was checked, the "N more" suffixes too.
    assert kinds.keys() >= {"neighbours", "content", "popular", "cold-item", "representative"}
    assert kinds["more"] > 1000
