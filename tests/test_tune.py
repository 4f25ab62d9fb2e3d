"""tune: the validation split, the grid, parameters stored per data revision and used by
default (explicit options win), stale parameters reported."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from smart_suggest import tracking
from smart_suggest.errors import InputError
from smart_suggest.evaluate import split_interactions
from smart_suggest.recommend import Recommender
from smart_suggest.recommend.snapshot import load_catalogue, load_interactions
from smart_suggest.store import Store, open_store
from smart_suggest.tuning import (
    V1_GRID,
    V3_GRIDS,
    build_options,
    load_tuned,
    save_tuned,
    tune,
    validation_split,
)


def test_validation_split_is_cut_from_the_training_part_only(demo_store: Store) -> None:
    with demo_store.read():
        cat = load_catalogue(demo_store)
        inter = load_interactions(demo_store, cat, with_time=True)
    test = split_interactions(inter, cat.n_users, method="time", test_fraction=0.2)
    val = validation_split(inter, cat, 0.2)
    train_ts, train_user = inter.ts[~test], inter.user[~test]
    assert val.test.shape == train_ts.shape  # a mask over the training part
    assert val.n_test > 0
    for u in np.unique(inter.user[test]):
        # Every validation interaction of a user is no later than each of their test ones,
        # and the validation part is the end of what is left.
        v = train_ts[(train_user == u) & val.test]
        t = inter.ts[test & (inter.user == u)]
        rest = train_ts[(train_user == u) & ~val.test]
        if len(v):
            assert v.max() <= t.min()
            assert len(rest) == 0 or rest.max() <= v.min()


def test_tune_tries_the_grid_and_stores_the_best_per_revision(demo_store: Store) -> None:
    revision = demo_store.revision("catalog")
    results = tune(demo_store)
    assert [r.strategy for r in results] == ["v1", "v3"]
    v1, v3 = results
    assert len(v1.grid) == len(V1_GRID["threshold"]) * len(V1_GRID["neighbours"])
    ease = V3_GRIDS["ease"]
    assert v3.method == "ease" and len(v3.grid) == len(ease["lambda"]) * len(ease["half_life"])
    for result in results:
        best = max(result.grid, key=lambda g: g.ndcg)
        assert result.best == best.params and result.best_ndcg == best.ndcg
        assert result.revision == revision and result.validation_users > 0
        stored = load_tuned(demo_store, result.strategy)
        assert stored is not None and not stored.stale
        assert stored.params == result.best and stored.revision == revision
        assert stored.metric == "ndcg@10" and stored.value == pytest.approx(result.best_ndcg)
    # Stored, and used by default; explicit values win.
    engine = Recommender(demo_store)
    opts = engine.options("v1")
    assert (opts.neighbours, opts.threshold) == (v1.best["neighbours"], v1.best["threshold"])
    assert engine.options("v1", neighbours=3, threshold=0.9).neighbours == 3
    assert engine.options("v3").params == tuple(
        sorted((k, v3.best[k]) for k in ("lambda", "half_life"))
    )
    assert engine.options("v2").params == ()  # not a tuned strategy
    # Tuning does not change the data revision (the models stay valid).
    assert demo_store.revision("catalog") == revision


def test_a_new_revision_reports_the_tuning_as_stale(
    run_cli, demo_store: Store, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    save_tuned(demo_store, "v1", {"threshold": 0.0, "neighbours": 7}, 1, "ndcg@10", 0.5)
    code, out, err = run_cli("recommend", "alice", "-s", "v1", "--db", db_path, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["neighbours"], data["threshold"]) == (7, 0.0)
    assert data["tuned"][0]["stale"] is True  # tuned at revision 1, the demo is far beyond
    assert err.count("\n") == 1 and "tuned at data revision 1" in err and "rerun" in err
    # Freshly tuned: not stale, no note; one logged click later it is stale again.
    code, out, err = run_cli("tune", "-s", "v1", "--db", db_path, "--json")
    assert code == 0, err
    code, out, err = run_cli("recommend", "alice", "-s", "v1", "--db", db_path)
    assert code == 0 and err == ""
    tracking.log_interaction(demo_store, "alice", 1, "click")
    stored = load_tuned(demo_store, "v1")
    assert stored is not None and stored.stale
    code, out, err = run_cli("evaluate", "-s", "v1", "--db", db_path)
    assert code == 0 and "data now at" in err


def test_tune_command_prints_the_grid_and_honours_dry_run(
    run_cli, demo_store: Store, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("tune", "--strategy", "v3", "--dry-run", "--db", db_path)
    assert code == 0, err
    assert "v3 (ease): NDCG@10 on the validation split" in out
    for value in V3_GRIDS["ease"]["lambda"]:
        assert f"\n {value:g} " in out
    assert "not stored (--dry-run)" in out
    assert load_tuned(demo_store, "v3") is None
    code, out, err = run_cli("tune", "-s", "v1", "--k", "5", "--db", db_path, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["saved"] and data["k"] == 5
    (result,) = data["results"]
    assert result["strategy"] == "v1" and len(result["grid"]) == 16
    assert result["best_ndcg"] == max(g["ndcg"] for g in result["grid"])
    stored = load_tuned(demo_store, "v1")
    assert stored is not None and stored.metric == "ndcg@5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-s", "popular"), "has no hyper-parameters to tune"),
        (("-s", "v9"), "unknown strategy"),
        (("--test-fraction", "1"), "test fraction"),
        (("--k", "0"), "--k"),
    ],
)
def test_tune_bad_input_exits_2_and_writes_nothing(
    run_cli, demo_store: Store, db_path: Path, args: tuple[str, ...], message: str
) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("tune", *args, "--db", db_path)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err
    assert demo_store.scalar("SELECT count(*) FROM tuned_params") == 0


def test_tuned_params_table_checks_its_json(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError), store.write() as conn:
        conn.execute(
            "INSERT INTO tuned_params(strategy, params, revision, metric, value, created_at)"
            " VALUES ('v1', 'not json', 1, 'ndcg@10', 0.1, 0)"
        )
    with pytest.raises(InputError):
        build_options("v1", {"threshold": 2.0}).validate()


def test_the_newest_row_wins_and_survives_reopening(db_path: Path) -> None:
    with open_store(db_path) as s:
        save_tuned(s, "v3", {"method": "ease", "lambda": 100.0}, 0, "ndcg@10", 0.1)
        save_tuned(s, "v3", {"method": "ease", "lambda": 400.0}, 0, "ndcg@10", 0.2)
    with open_store(db_path) as s:
        stored = load_tuned(s, "v3")
        assert stored is not None and stored.params["lambda"] == 400.0 and not stored.stale
        assert Recommender(s).options("v3").params == (("lambda", 400.0),)


def test_tune_on_an_empty_database_says_there_is_nothing_to_score(
    run_cli, store: Store, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("tune", "--db", db_path)
    assert code == 0, err
    assert "v1: no user has a validation item: nothing chosen" in err
    assert "NDCG@10 0" not in out
    assert store.scalar("SELECT count(*) FROM tuned_params") == 0


def test_evaluate_uses_the_stored_parameters_unless_told_otherwise(
    run_cli, demo_store: Store, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    save_tuned(demo_store, "v1", {"threshold": 0.1, "neighbours": 5}, 0, "ndcg@10", 0.5)
    save_tuned(demo_store, "v3", {"method": "ease", "lambda": 30.0}, 0, "ndcg@10", 0.5)
    code, out, err = run_cli("evaluate", "-s", "v1,v3", "--db", db_path, "--json")
    assert code == 0, err
    data = json.loads(out)
    params = {r["strategy"]: r["params"] for r in data["results"]}
    assert params == {"v1": {"neighbours": 5, "threshold": 0.1}, "v3": {"lambda": 30.0}}
    assert set(data["tuned"]) == {"v1", "v3"}
    code, out, err = run_cli("evaluate", "-s", "v1,v3", "--untuned", "--db", db_path, "--json")
    data = json.loads(out)
    params = {r["strategy"]: r["params"] for r in data["results"]}
    assert params == {"v1": {"neighbours": 20, "threshold": 0.3}, "v3": {}}
    assert data["tuned"] == {}
    # An explicit option wins over the stored one, the other stored value stays.
    code, out, err = run_cli(
        "evaluate", "-s", "v1", "--threshold", "0.25", "--db", db_path, "--json"
    )
    data = json.loads(out)
    assert data["results"][0]["params"] == {"neighbours": 5, "threshold": 0.25}
