"""Team-draft interleaving: fairness, duplicates, credit attribution, serving and analysis."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smart_suggest.experiments.events import log_event
from smart_suggest.experiments.interleaving import BOTH, TEAM_A, TEAM_B, team_draft
from smart_suggest.experiments.lifecycle import create_experiment
from smart_suggest.experiments.population import (
    clicks,
    make_population,
    rank,
    team_draft_batch,
)
from smart_suggest.experiments.serving import serve
from smart_suggest.experiments.teams import TEAM_STATS_SQL, team_stats
from smart_suggest.store import Store


def test_each_team_leads_half_of_the_rounds() -> None:
    rng = random.Random(4)
    leads = {TEAM_A: 0, TEAM_B: 0}
    for _ in range(4000):
        a = rng.sample(range(100), 10)
        b = rng.sample(range(100), 10)
        for pick in team_draft(a, b, 10, rng):
            if pick.first != BOTH and pick.team == pick.first:
                leads[pick.first] += 1
    n = leads[TEAM_A] + leads[TEAM_B]
    # Binomial(n, 1/2): within 4 standard deviations.
    assert abs(leads[TEAM_A] - n / 2) < 4 * (n * 0.25) ** 0.5


def test_disjoint_lists_alternate_and_identical_lists_are_all_both() -> None:
    picks = team_draft([1, 2, 3], [4, 5, 6], 6, random.Random(0))
    assert sorted(p.item for p in picks) == [1, 2, 3, 4, 5, 6]
    for rnd in range(3):
        teams = [p.team for p in picks if p.round == rnd]
        assert sorted(teams) == [TEAM_A, TEAM_B]  # each round: one pick per team
    same = team_draft([1, 2, 3], [1, 2, 3], 3, random.Random(0))
    assert [(p.item, p.team) for p in same] == [(1, BOTH), (2, BOTH), (3, BOTH)]
    # Shared next item: shown once as "both"; the rest continue by team.
    mixed = team_draft([1, 2, 3], [1, 4, 5], 5, random.Random(1))
    assert mixed[0].item == 1 and mixed[0].team == BOTH
    assert {p.item: p.team for p in mixed[1:]} == {2: TEAM_A, 3: TEAM_A, 4: TEAM_B, 5: TEAM_B}


def test_a_strategy_cannot_gain_by_producing_duplicates() -> None:
    """Repeating items in a ranking never gives its team more shown items (or credit)."""
    rng = random.Random(9)
    for _ in range(500):
        a = rng.sample(range(40), 8)
        b = rng.sample(range(40), 8)
        b_dup = [x for item in b for x in (item, item)]  # every item twice
        seed = rng.random()
        plain = team_draft(a, b, 8, random.Random(seed))
        duped = team_draft(a, b_dup, 8, random.Random(seed))
        assert [(p.item, p.team) for p in duped] == [(p.item, p.team) for p in plain]
        assert len({p.item for p in duped}) == len(duped)  # never an item twice


def test_batch_team_draft_has_the_same_rules() -> None:
    rng = np.random.default_rng(3)
    n, k = 20_000, 6
    la = np.stack([rng.permutation(12)[:k] for _ in range(n)])
    lb = np.stack([rng.permutation(12)[:k] for _ in range(n)])
    shown, team = team_draft_batch(rng, la, lb, k)
    assert (np.sort(shown, axis=1)[:, 1:] != np.sort(shown, axis=1)[:, :-1]).all()  # distinct
    for i in range(200):  # every shown item comes from the team's list (both: from both)
        for item, t in zip(shown[i], team[i], strict=True):
            if t == 0:
                assert item in la[i]
            elif t == 1:
                assert item in lb[i]
            else:
                assert item in la[i] and item in lb[i]
    # Team A's item is first in half of the rounds opened by a disagreement.
    first = team[:, 0]
    opened = first != 2
    assert abs((first[opened] == 0).mean() - 0.5) < 0.02
    # Equal rankers: no preference on average.
    pop = make_population(rng, 50_000)
    l1, l2 = rank(rng, pop, 1.0, k), rank(rng, pop, 1.0, k)
    s, t = team_draft_batch(rng, l1, l2, k)
    c = clicks(rng, pop, s)
    assert abs((c & (t == 0)).sum() - (c & (t == 1)).sum()) < 4 * c.sum() ** 0.5


@pytest.fixture
def demo_db(demo_template: Path, db_path: Path) -> Path:
    import shutil

    shutil.copy(demo_template, db_path)
    return db_path


def _il_experiment(store: Store) -> Any:
    return create_experiment(store, "il", "v1", "v2", design="interleaving")


def test_serve_logs_one_impression_per_item_with_its_team(demo_store: Store) -> None:
    exp = _il_experiment(demo_store)
    served = serve(demo_store, exp, "alice", 6, rng=random.Random(2))
    assert served.variant == "AB" and len(served.teams) == len(served.recommendations) == 6
    rows = demo_store.conn.execute(
        "SELECT item_id, team, variant FROM events WHERE experiment_id = ? AND type = "
        "'impression' ORDER BY id",
        (exp.id,),
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        (rec.item_id, team) for rec, team in zip(served.recommendations, served.teams, strict=True)
    ]
    assert {r[2] for r in rows} == {"AB"}
    assert len({r[0] for r in rows}) == 6  # one impression per shown item


def test_clicks_are_credited_to_the_team_that_showed_the_item(demo_store: Store) -> None:
    exp = _il_experiment(demo_store)
    served = serve(demo_store, exp, "alice", 6, rng=random.Random(5))
    by_item = dict(zip([r.item_id for r in served.recommendations], served.teams, strict=True))
    for item, team in by_item.items():
        event = log_event(demo_store, exp, "alice", item, "click")
        assert event.team == team
    b_items = [i for i, t in by_item.items() if t == "B"]
    log_event(demo_store, exp, "alice", b_items[0], "purchase")
    stats = team_stats(demo_store, exp)
    counts = {t: list(by_item.values()).count(t) for t in ("A", "B", "both")}
    assert stats.clicks == counts and stats.impressions == counts
    assert stats.purchases == {"A": 0, "B": 1, "both": 0}
    assert stats.users == 1
    diff = counts["B"] - counts["A"]
    assert stats.sum_diff == diff and stats.sum_diff_sq == diff * diff
    assert (stats.prefer_b, stats.prefer_a) == (
        (1, 0) if diff > 0 else (0, 1) if diff < 0 else (0, 0)
    )
    # The standard SQL over the events gives the same sums as the stored summary.
    assert team_stats(demo_store, exp, TEAM_STATS_SQL) == stats
    # A click on an item never shown (accepted only with unserved=True) has no team.
    shown = set(by_item)
    other = next(i for i in range(1, 21) if i not in shown)
    assert log_event(demo_store, exp, "alice", other, "click", unserved=True).team is None


def test_team_summaries_survive_a_bulk_rebuild_and_the_delete(demo_store: Store) -> None:
    from smart_suggest.experiments.lifecycle import delete_experiment
    from smart_suggest.store import EVENT_SUMMARIES

    exp = _il_experiment(demo_store)
    for user in ("alice", "bob", "carol"):
        served = serve(demo_store, exp, user, 5, rng=random.Random(1))
        log_event(demo_store, exp, user, served.recommendations[0].item_id, "click")
    before = team_stats(demo_store, exp)
    with demo_store.write() as conn:
        for table, rebuild in EVENT_SUMMARIES.items():
            conn.execute(f"DELETE FROM {table}")
            conn.execute(rebuild)
    assert team_stats(demo_store, exp) == before
    delete_experiment(demo_store, exp.id)
    for table in ("event_teams", "team_items"):
        assert demo_store.scalar(f"SELECT COUNT(*) FROM {table}") == 0


def test_cli_interleaving_round_trip(demo_db: Path, run_cli: Any) -> None:
    code, out, err = run_cli(
        "experiment",
        "create",
        "il",
        "--design",
        "interleaving",
        "-a",
        "v1",
        "-b",
        "v2",
        "--db",
        demo_db,
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["design"] == "interleaving"
    code, out, err = run_cli("experiment", "serve", "il", "alice", "--db", demo_db, "--json")
    assert code == 0, err
    recs = json.loads(out)["recommendations"]
    assert all(r["team"] in ("A", "B", "both") for r in recs)
    code, out, err = run_cli(
        "experiment", "log", "il", "alice", str(recs[0]["item_id"]), "click", "--db", demo_db
    )
    assert code == 0 and f"credited to team {recs[0]['team']}" in out
    code, out, err = run_cli("analyze", "il", "--db", demo_db, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["design"] == "interleaving" and data["verdict"] == "insufficient_data"
    assert data["teams"]["clicks"][recs[0]["team"]] == 1
    code, out, err = run_cli("analyze", "il", "--db", demo_db)
    assert code == 0 and "Interleaving" in out and "insufficient_data" in out
    # Refused: interleaving takes exactly two variants (nothing written).
    code, _, err = run_cli(
        "experiment",
        "create",
        "x",
        "--design",
        "interleaving",
        "--variant",
        "v1",
        "--variant",
        "v2",
        "--variant",
        "popular",
        "--db",
        demo_db,
    )
    assert code == 2 and "exactly two" in err and "Traceback" not in err


@pytest.mark.parametrize("design", ["ab", "interleaving"])
def test_simulated_population_runs_as_either_design(
    demo_db: Path, run_cli: Any, design: str
) -> None:
    args = ["experiment", "create", "sim", "-a", "v1", "-b", "v2", "--design", design]
    assert run_cli(*args, "--db", demo_db)[0] == 0
    code, out, err = run_cli(
        "experiment",
        "simulate",
        "sim",
        "--users",
        "300",
        "--days",
        "3",
        "--click-model",
        "position",
        "--ranker-noise",
        "1.0,0.5",
        "--seed",
        "3",
        "--db",
        demo_db,
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["events"]["impression"] > 0 and report["events"]["click"] > 0
    code, out, err = run_cli("analyze", "sim", "--db", demo_db, "--json")
    assert code == 0, err
    data = json.loads(out)
    if design == "interleaving":
        assert data["preference"]["users"] > 0
        assert sum(data["teams"]["impressions"].values()) == report["events"]["impression"]
    else:
        assert data["variants"]["A"]["users_exposed"] > 0


def test_bulk_logging_credits_interleaving_follow_ups(demo_store: Store) -> None:
    import io

    from smart_suggest.experiments.bulk import log_events_csv

    exp = _il_experiment(demo_store)
    served = serve(demo_store, exp, "alice", 6, rng=random.Random(8))
    items = [r.item_id for r in served.recommendations]
    text = "user,item,type\n" + "".join(f"alice,{i},click\n" for i in items)
    report = log_events_csv(demo_store, exp.id, io.StringIO(text))
    assert report.rows == 6 and report.by_variant == {"AB": 6}
    teams = [
        r[0]
        for r in demo_store.conn.execute(
            "SELECT team FROM events WHERE experiment_id = ? AND type = 'click' ORDER BY id",
            (exp.id,),
        )
    ]
    assert teams == served.teams
    stats = team_stats(demo_store, exp)
    assert stats == team_stats(demo_store, exp, TEAM_STATS_SQL)
    assert sum(stats.clicks.values()) == 6


def test_bulk_logging_into_a_three_variant_experiment(demo_store: Store) -> None:
    import io

    from smart_suggest.experiments.bulk import log_events_csv
    from smart_suggest.experiments.kpis import SUFFICIENT_STATS_SQL, results, sufficient_stats
    from smart_suggest.experiments.serving import assign_user

    exp = create_experiment(demo_store, "abc", variants=["v1", "v2", "popular"])
    labels = {u: assign_user(demo_store, exp, u).variant for u in range(1, 51)}
    assert set(labels.values()) == {"A", "B", "C"}
    text = "user,item,type\n" + "".join(f"{u},1,impression\n{u},1,click\n" for u in range(1, 51))
    report = log_events_csv(demo_store, exp.id, io.StringIO(text))
    assert sum(report.by_variant.values()) == 100 and set(report.by_variant) == {"A", "B", "C"}
    res = results(demo_store, exp)
    for arm in res.variants:
        n = sum(1 for v in labels.values() if v == arm.variant)
        assert (arm.users_assigned, arm.impressions, arm.clicks) == (n, n, n)
    assert sufficient_stats(demo_store, exp.id) == sufficient_stats(
        demo_store, exp.id, SUFFICIENT_STATS_SQL
    )


def _teams_of(store: Store, exp_id: int, kind: str) -> list[str | None]:
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT team FROM events WHERE experiment_id = ? AND type = ? ORDER BY id",
            (exp_id, kind),
        )
    ]


def test_bulk_impressions_carry_the_team_of_the_file(demo_store: Store, tmp_path: Path) -> None:
    """A system that interleaves itself logs each impression with its team: the file's
    team column is stored, and clicks in the same file are credited by it."""
    from smart_suggest.experiments.bulk import log_events_csv
    from smart_suggest.experiments.serving import assign_user

    exp = _il_experiment(demo_store)
    for u in (1, 2):
        assign_user(demo_store, exp, u)
    path = tmp_path / "log.csv"
    path.write_text(
        "user,item,type,team\n"
        "1,10,impression,A\n"
        "1,11,impression,b\n"
        "\n"  # a blank line does not shift the teams of the rows after it
        "1,12,impression,both\n"
        "2,10,impression,B\n"
        "1,11,click,\n"  # no team: the item's team in the list the user was shown (B)
        "2,10,click,\n"
        "1,10,purchase,\n"
    )
    report = log_events_csv(demo_store, exp.id, path)
    assert report.rows == 7
    assert _teams_of(demo_store, exp.id, "impression") == ["A", "B", "both", "B"]
    assert _teams_of(demo_store, exp.id, "click") == ["B", "B"]
    assert _teams_of(demo_store, exp.id, "purchase") == ["A"]
    stats = team_stats(demo_store, exp)
    assert stats == team_stats(demo_store, exp, TEAM_STATS_SQL)
    assert stats.impressions == {"A": 1, "B": 2, "both": 1}
    assert stats.clicks == {"A": 0, "B": 2, "both": 0}


def test_bulk_impressions_without_a_team_take_the_served_list_or_are_refused(
    demo_store: Store, tmp_path: Path, run_cli: Any, db_path: Path
) -> None:
    import io

    from smart_suggest.errors import InputError
    from smart_suggest.experiments.bulk import log_events_csv
    from smart_suggest.experiments.serving import assign_user

    exp = _il_experiment(demo_store)
    served = serve(demo_store, exp, "alice", 4, rng=random.Random(3))
    items = [r.item_id for r in served.recommendations]
    before = _teams_of(demo_store, exp.id, "impression")
    # Impressions of the served list, logged again from a file without teams: the list's.
    text = "user,item,type\n" + "".join(f"alice,{i},impression\n" for i in items)
    log_events_csv(demo_store, exp.id, io.StringIO(text))
    assert _teams_of(demo_store, exp.id, "impression") == before + list(served.teams)
    # An impression nobody can attribute: the whole file is refused, nothing written.
    assign_user(demo_store, exp, 3)
    n = demo_store.scalar("SELECT COUNT(*) FROM events")
    bad = "user,item,type\n3,5,impression\n3,5,click\n"
    with pytest.raises(InputError, match=r"row 1 of the file: .* has no team"):
        log_events_csv(demo_store, exp.id, io.StringIO(bad))
    with pytest.raises(InputError, match=r"line 3: team 'C' must be A, B or both"):
        log_events_csv(
            demo_store,
            exp.id,
            io.StringIO("user,item,type,team\n3,5,impression,A\n3,6,impression,C\n"),
        )
    assert demo_store.scalar("SELECT COUNT(*) FROM events") == n
    # A team column in an A/B experiment is a mistake, said in one line (exit 2).
    create_experiment(demo_store, "plain-ab", control="v1", treatment="v2")
    path = tmp_path / "ab.csv"
    path.write_text("user,item,type,team\n1,1,impression,A\n")
    demo_store.close()
    code, _out, err = run_cli("experiment", "log", "plain-ab", "--file", path, "--db", db_path)
    assert code == 2 and "interleaving experiments only" in err
    assert len(err.strip().splitlines()) == 1
