"""Experiments core: lifecycle, serving, logging, KPIs in SQL, timeline, simulation."""

from __future__ import annotations

import io
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXED_NOW, table_rows

from smart_suggest import clock
from smart_suggest.errors import InputError, NotFoundError
from smart_suggest.experiments.assignment import assign_variant
from smart_suggest.experiments.bulk import log_events_csv
from smart_suggest.experiments.events import log_event
from smart_suggest.experiments.kpis import (
    STORED_STATS_SQL,
    SUFFICIENT_STATS_SQL,
    results,
    sufficient_stats,
)
from smart_suggest.experiments.lifecycle import (
    create_experiment,
    delete_experiment,
    get_experiment,
    list_experiments,
    stop_experiment,
)
from smart_suggest.experiments.serving import assign_user, serve
from smart_suggest.experiments.simulate import simulate
from smart_suggest.experiments.timeline import timeline
from smart_suggest.store import Store, open_store

NOW = clock.parse_time(FIXED_NOW)  # conftest freezes the clock here
DAY0 = clock.parse_time("2026-11-18T00:00:00Z")


@pytest.fixture(scope="module")
def _demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database, seeded once per module (under the fixed clock) and copied."""
    from smart_suggest.sample import load_demo

    path = tmp_path_factory.mktemp("template") / "demo.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMART_SUGGEST_NOW", FIXED_NOW)
        with open_store(path) as s:
            load_demo(s, seed=42)
            s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def demo_store(_demo_template: Path, db_path: Path) -> Iterator[Store]:
    """Shadows conftest's demo_store: the same data, copied instead of re-seeded."""
    shutil.copyfile(_demo_template, db_path)
    s = open_store(db_path)
    yield s
    s.close()


# -- lifecycle --------------------------------------------------------------------------------
def test_create_validates_everything_before_writing(store: Store) -> None:
    before = table_rows(store)
    bad = [
        dict(name=""),
        dict(name="   "),
        dict(name="123"),  # would be read as an id
        dict(name="x", control="v9"),
        dict(name="x", treatment="nope"),
        dict(name="x", traffic_fraction=0.0),
        dict(name="x", traffic_fraction=1.5),
        dict(name="x", traffic_fraction=float("nan")),
        dict(name="x", treatment_share=0.0),
        dict(name="x", treatment_share=1.0),
        dict(name="x", primary_metric="revenue"),
        dict(name="x", description="a\x00b"),
    ]
    for kwargs in bad:
        with pytest.raises(InputError):
            create_experiment(store, **kwargs)  # type: ignore[arg-type]
    assert table_rows(store) == before


def test_create_get_list_stop_delete(store: Store) -> None:
    exp = create_experiment(store, "homepage", description="test", primary_metric="conversion")
    assert (exp.control, exp.treatment, exp.traffic_fraction, exp.treatment_share) == (
        "v1",
        "v2",
        1.0,
        0.5,
    )
    assert exp.primary_metric == "conversion_rate" and exp.active and exp.created_at == NOW
    assert get_experiment(store, exp.id) == exp == get_experiment(store, "homepage")
    assert get_experiment(store, str(exp.id)) == exp
    with pytest.raises(NotFoundError):
        get_experiment(store, "nope")
    with pytest.raises(NotFoundError):
        get_experiment(store, 999)
    with pytest.raises(InputError, match="already exists"):
        create_experiment(store, "homepage")
    aa = create_experiment(store, "aa", control="v1", treatment="v1")  # A/A allowed
    assert aa.is_aa
    assert [e.name for e in list_experiments(store)] == ["homepage", "aa"]

    stopped = stop_experiment(store, "aa")
    assert stopped.status == "stopped" and stopped.stopped_at == NOW
    with pytest.raises(InputError, match="stopped"):
        stop_experiment(store, "aa")
    assert [e.name for e in list_experiments(store)] == ["homepage"]
    assert [e.name for e in list_experiments(store, include_stopped=True)] == ["homepage", "aa"]

    report = delete_experiment(store, "aa")
    assert report.experiment.name == "aa"
    assert [e.name for e in list_experiments(store, include_stopped=True)] == ["homepage"]


# -- assignment and serving ---------------------------------------------------------------------
def test_assignment_is_idempotent_and_the_stored_variant_wins(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "sticky")
    first = assign_user(demo_store, exp.id, 2)
    again = assign_user(demo_store, "sticky", "2")
    assert first.new and not again.new
    assert first.variant == again.variant == assign_variant(exp.id, 2)
    rows = demo_store.query("SELECT * FROM assignments WHERE experiment_id = ?", (exp.id,))
    assert len(rows) == 1
    # A row stored earlier (by another service, another rule version...) is the truth.
    other = "B" if first.variant == "A" else "A"
    with demo_store.write() as conn:
        conn.execute("INSERT INTO assignments VALUES (?, 4, ?, 0)", (exp.id, other))
    stored = assign_user(demo_store, exp.id, 4)
    assert stored.variant == other and not stored.new


def test_a_user_in_two_experiments_gets_independent_assignments(demo_store: Store) -> None:
    one = create_experiment(demo_store, "one")
    two = create_experiment(demo_store, "two")
    # Worked out with the rule: user 2 is A in experiment 2 and B in experiment 3.
    assert (one.id, two.id) == (2, 3)
    assert assign_user(demo_store, one.id, 2).variant == "A"
    assert assign_user(demo_store, two.id, 2).variant == "B"
    served = serve(demo_store, two.id, 2, count=3)
    assert served.variant == "B" and served.strategy == "v2"
    rows = demo_store.query(
        "SELECT experiment_id, variant FROM assignments WHERE user_id = 2 ORDER BY 1"
    )
    assert [(r["experiment_id"], r["variant"]) for r in rows] == [(1, "B"), (2, "A"), (3, "B")]


def test_serve_logs_one_impression_per_shown_item(demo_store: Store) -> None:
    from smart_suggest.recommend import Recommender

    exp = create_experiment(demo_store, "serve", control="popular", treatment="v2")
    engine = Recommender(demo_store)
    served = serve(demo_store, exp.id, 2, count=4, recommender=engine)
    assert served.enrolled and served.variant == "A" and served.strategy == "popular"
    assert served.new_assignment and served.impressions == 4
    assert [r.item_id for r in served.recommendations] == [
        r.item_id for r in engine.recommend(2, "popular", 4)
    ]
    events = demo_store.query(
        "SELECT variant, user_id, item_id, type, value, ts FROM events WHERE experiment_id = ?",
        (exp.id,),
    )
    assert [e["item_id"] for e in events] == [r.item_id for r in served.recommendations]
    assert {(e["variant"], e["user_id"], e["type"], e["value"], e["ts"]) for e in events} == {
        ("A", 2, "impression", None, NOW)
    }
    again = serve(demo_store, exp.id, 2, count=4, recommender=engine)
    assert not again.new_assignment and again.variant == "A"
    assert (
        demo_store.scalar("SELECT COUNT(*) FROM assignments WHERE experiment_id = ?", (exp.id,))
        == 1
    )
    b = serve(demo_store, exp.id, 1, count=2, recommender=engine)
    assert (b.variant, b.strategy, b.impressions) == ("B", "v2", 2)


def test_users_outside_the_traffic_get_control_and_nothing_is_logged(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "ten-percent", traffic_fraction=0.1)
    outside = next(u for u in range(1, 51) if assign_variant(exp.id, u, 0.1, 0.5) is None)
    before = table_rows(demo_store)
    served = serve(demo_store, exp.id, outside, count=3)
    assert (served.enrolled, served.variant, served.strategy) == (False, None, "v1")
    assert len(served.recommendations) == 3 and served.impressions == 0
    assert table_rows(demo_store) == before
    assert assign_user(demo_store, exp.id, outside).variant is None
    with pytest.raises(InputError, match="outside its 10% traffic"):
        log_event(demo_store, exp.id, outside, 1, "click")
    assert table_rows(demo_store) == before


def test_serve_refuses_bad_input(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "refuse")
    before = table_rows(demo_store)
    for args, error in [
        (("nope", 1), NotFoundError),
        ((exp.id, "nobody"), NotFoundError),
        ((exp.id, 1, 0), InputError),
        ((exp.id, 1, 101), InputError),
    ]:
        with pytest.raises(error):
            serve(demo_store, *args)  # type: ignore[arg-type]
    assert table_rows(demo_store) == before


# -- logging ----------------------------------------------------------------------------------
def test_log_event_refusals_write_nothing(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "log")
    assign_user(demo_store, exp.id, 2)
    before = table_rows(demo_store)
    cases = [
        ((exp.id, 4, 1, "click"), "never assigned"),  # user 4 is enrolled but not yet served
        ((exp.id, 2, 999, "click"), "no item"),
        ((exp.id, "ghost", 1, "click"), "no user"),
        (("ghost-exp", 2, 1, "click"), "no experiment"),
        ((exp.id, 2, 1, "like"), "unknown event type"),
        ((exp.id, 2, 1, "engagement"), "needs a value"),
        ((exp.id, 2, 1, "engagement", -1.0), "negative"),
        ((exp.id, 2, 1, "engagement", math.nan), "finite"),
        ((exp.id, 2, 1, "engagement", math.inf), "finite"),
        ((exp.id, 2, 1, "click", 3.0), "takes no value"),
    ]
    for args, message in cases:
        with pytest.raises(InputError, match=message):
            log_event(demo_store, *args)  # type: ignore[arg-type]
    for ts in (math.inf, math.nan, 1e22, -1e12):
        with pytest.raises(InputError, match="out of range"):
            log_event(demo_store, exp.id, 2, 1, "click", ts=ts)
    assert table_rows(demo_store) == before
    event = log_event(demo_store, exp.id, "bob", "1", "engagement", 0.0, ts=DAY0)
    assert (event.variant, event.user_id, event.value, event.ts) == ("A", 2, 0.0, DAY0)


def test_stopped_experiment_takes_nothing_new_but_still_reports(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "stop-me")
    served = serve(demo_store, exp.id, 2, count=2)
    log_event(demo_store, exp.id, 2, served.recommendations[0].item_id, "click", ts=DAY0)
    stop_experiment(demo_store, exp.id)
    before = table_rows(demo_store)
    for call in (
        lambda: serve(demo_store, exp.id, 2),
        lambda: serve(demo_store, exp.id, 3),
        lambda: assign_user(demo_store, exp.id, 3),
        lambda: log_event(demo_store, exp.id, 2, 1, "click"),
        lambda: log_events_csv(demo_store, exp.id, io.StringIO("user,item,type\n2,1,click\n")),
        lambda: simulate(demo_store, exp.id, users=5, days=1),
    ):
        with pytest.raises(InputError, match="is stopped"):
            call()
    assert table_rows(demo_store) == before
    res = results(demo_store, exp.id)
    assert (res.a.impressions, res.a.clicks, res.a.users_assigned) == (2, 1, 1)
    tl = timeline(demo_store, exp.id)
    assert sum(p.clicks for p in tl.buckets) == 1


# -- KPIs against a hand-computed fixture --------------------------------------------------------
def _kpi_fixture(store: Store) -> int:
    """Experiment 2 of the demo store with hand-made events (variants by the rule:
    users 2, 4, 6 are A; 1, 3 are B), and noise in experiment 3 that must not leak."""
    exp = create_experiment(store, "kpi")
    noise = create_experiment(store, "noise")
    assert [assign_variant(exp.id, u) for u in (2, 4, 6, 1, 3)] == ["A", "A", "A", "B", "B"]
    for u in (2, 4, 6, 1, 3):
        assign_user(store, exp.id, u, ts=DAY0)
        assign_user(store, noise.id, u, ts=DAY0)
    t = DAY0 + 3_600

    def ev(user: int, kind: str, n: int = 1, value: float | None = None, at: float = t) -> None:
        for _ in range(n):
            log_event(store, exp.id, user, 1, kind, value, ts=at)

    ev(2, "impression", 4)
    ev(2, "click", 2)
    ev(2, "purchase")
    ev(2, "engagement", value=10.0)
    ev(2, "engagement", value=20.0)
    ev(4, "impression", 2, at=t + 2 * clock.DAY)  # day 3; user 6 is assigned, never exposed
    ev(1, "impression", 3)
    ev(1, "click", 3)
    ev(1, "purchase", 2, at=t + clock.DAY)  # day 2
    ev(1, "engagement", value=30.0)
    ev(3, "impression", at=t + clock.DAY)
    ev(3, "click", at=t + clock.DAY)
    ev(3, "engagement", value=50.0, at=t + clock.DAY)
    # Same users, another experiment: huge engagement and clicks that must not leak.
    for u in (2, 1):
        log_event(store, noise.id, u, 2, "impression", ts=t)
        log_event(store, noise.id, u, 2, "click", ts=t)
        log_event(store, noise.id, u, 2, "engagement", 1000.0, ts=t)
    return exp.id


def test_kpis_match_the_hand_computed_fixture(demo_store: Store) -> None:
    exp_id = _kpi_fixture(demo_store)
    res = results(demo_store, exp_id)
    a, b = res.a, res.b
    assert (a.strategy, b.strategy) == ("v1", "v2")
    assert (a.users_assigned, a.users_exposed, a.impressions, a.clicks) == (3, 2, 6, 2)
    assert a.ctr == pytest.approx(2 / 6)
    assert (a.users_converted, a.purchases, a.conversion_rate) == (1, 1, 0.5)
    assert (a.engagement_n, a.engagement_sum, a.engagement_sumsq) == (2, 30.0, 500.0)
    assert a.engagement_mean == 15.0
    assert a.engagement_sd == pytest.approx(math.sqrt(50))
    assert (a.n_users, a.sum_clicks, a.sum_impressions) == (2, 2, 6)
    assert (a.sum_clicks_sq, a.sum_impressions_sq, a.sum_clicks_x_impressions) == (4, 20, 8)

    assert (b.users_assigned, b.users_exposed, b.impressions, b.clicks, b.ctr) == (2, 2, 4, 4, 1.0)
    assert (b.users_converted, b.purchases, b.conversion_rate) == (1, 2, 0.5)
    assert (b.engagement_n, b.engagement_sum, b.engagement_sumsq) == (2, 80.0, 3400.0)
    assert b.engagement_mean == 40.0
    assert b.engagement_sd == pytest.approx(math.sqrt(200))
    assert (b.n_users, b.sum_clicks, b.sum_impressions) == (2, 4, 4)
    assert (b.sum_clicks_sq, b.sum_impressions_sq, b.sum_clicks_x_impressions) == (10, 10, 10)

    ctr, conv, eng = res.lifts["ctr"], res.lifts["conversion_rate"], res.lifts["engagement"]
    assert ctr.absolute == pytest.approx(2 / 3) and ctr.relative == pytest.approx(2.0)
    assert (conv.absolute, conv.relative) == (0.0, 0.0)
    assert eng.absolute == 25.0 and eng.relative == pytest.approx(25 / 15)
    assert res.first_event_ts == DAY0 + 3_600
    assert res.last_event_ts == DAY0 + 3_600 + 2 * clock.DAY
    assert [(d.to_dict()["day"], d.a, d.b) for d in res.daily_assigned] == [("2026-11-18", 3, 2)]
    assert res.to_dict()["variants"]["B"]["ctr"] == 1.0

    # The statement analyze --print-sql shows is the one that ran.
    direct = demo_store.query(SUFFICIENT_STATS_SQL, {"experiment_id": exp_id})
    assert [r["variant"] for r in direct] == ["A", "B"]
    assert direct == list(sufficient_stats(demo_store, exp_id).values())
    assert direct[0]["engagement_sum"] == 30.0 and direct[1]["sum_clicks_sq"] == 10


def test_kpis_of_an_empty_experiment_are_zero_and_undefined_is_none(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "empty")
    res = results(demo_store, exp.id)
    for v in res.variants:
        assert (v.users_assigned, v.impressions, v.engagement_n, v.n_users) == (0, 0, 0, 0)
        assert v.ctr is v.conversion_rate is v.engagement_mean is v.engagement_sd is None
    assert all(lift.absolute is None and lift.relative is None for lift in res.lifts.values())
    assert res.first_event_ts is None and res.duration_days == 0.0


def test_unserved_clicks_are_counted_apart_from_every_kpi(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "odd")
    assign_user(demo_store, exp.id, 6)  # A, never served
    with pytest.raises(InputError, match="never served"):
        log_event(demo_store, exp.id, 6, 1, "click")
    event = log_event(demo_store, exp.id, 6, 1, "click", unserved=True)
    assert event.unserved and event.to_dict()["unserved"] is True
    log_event(demo_store, exp.id, 6, 2, "purchase", unserved=True)
    res = results(demo_store, exp.id)
    a = res.a
    assert (a.clicks, a.purchases, a.impressions, a.ctr, a.users_exposed) == (0, 0, 0, None, 0)
    assert (a.n_users, a.sum_clicks) == (0, 0)
    assert res.unserved == {"A": {"click": 1, "purchase": 1}}
    out = res.to_dict()["unserved"]
    assert (out["click"], out["purchase"]) == (1, 1)
    # Nothing of it reached events or their summaries.
    assert demo_store.scalar("SELECT COUNT(*) FROM events WHERE experiment_id = ?", [exp.id]) == 0
    assert not demo_store.scalar(
        "SELECT COUNT(*) FROM event_users WHERE experiment_id = ?", [exp.id]
    )


def test_with_unserved_a_served_item_is_an_ordinary_event(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "served", traffic_fraction=1.0)
    served = serve(demo_store, exp.id, "alice", count=3)
    item = served.recommendations[0].item_id
    event = log_event(demo_store, exp.id, "alice", item, "click", unserved=True)
    assert not event.unserved
    res = results(demo_store, exp.id)
    assert res.variant(served.variant).clicks == 1 and res.unserved == {}


def test_the_printed_sql_is_standard() -> None:
    sql = SUFFICIENT_STATS_SQL.lower()
    for sqlite_only in ("ifnull", "iif(", "total(", "group_concat", "strftime", "julianday",
                        "->>", "printf", "instr(", "glob", "`"):  # fmt: skip
        assert sqlite_only not in sql
    assert ":experiment_id" in sql and "from events" in sql and "from assignments" in sql


# -- timeline -----------------------------------------------------------------------------------
def test_timeline_has_every_bucket_and_cumulative_totals(demo_store: Store) -> None:
    exp_id = _kpi_fixture(demo_store)
    tl = timeline(demo_store, exp_id, "day")
    days = [clock.iso(s)[:10] for s in tl.starts]
    assert days == ["2026-11-18", "2026-11-19", "2026-11-20"]
    a, b = tl.series("A"), tl.series("B")
    assert [(p.impressions, p.clicks, p.conversions, p.purchases) for p in a] == [
        (4, 2, 1, 1),
        (0, 0, 0, 0),  # an empty day is a row of zeros, not a gap
        (2, 0, 0, 0),
    ]
    assert [p.ctr for p in a] == [0.5, None, 0.0]
    assert [(p.impressions, p.clicks, p.conversions, p.purchases) for p in b] == [
        (3, 3, 0, 0),
        (1, 1, 1, 2),  # user 1 converts (with 2 purchases) on day 2; user 3 comes in
        (0, 0, 0, 0),
    ]
    cum = timeline(demo_store, exp_id, "day", cumulative=True)
    assert [(p.impressions, p.clicks, p.conversions) for p in cum.series("A")] == [
        (4, 2, 1),
        (4, 2, 1),
        (6, 2, 1),
    ]
    last_b = cum.series("B")[-1]
    res = results(demo_store, exp_id)
    assert (last_b.impressions, last_b.clicks, last_b.conversions, last_b.purchases) == (
        res.b.impressions,
        res.b.clicks,
        res.b.users_converted,
        res.b.purchases,
    )
    assert last_b.ctr == res.b.ctr


def test_timeline_hours_and_bucket_edges(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "hours")
    assign_user(demo_store, exp.id, 2)
    midnight = clock.parse_time("2026-11-20T00:00:00Z")
    log_event(demo_store, exp.id, 2, 1, "impression", ts=midnight - 0.001)  # last ms of the 19th
    log_event(demo_store, exp.id, 2, 1, "impression", ts=midnight)  # first instant of the 20th
    days = timeline(demo_store, exp.id, "day").series("A")
    assert [(clock.iso(p.start_ts)[:10], p.impressions) for p in days] == [
        ("2026-11-19", 1),
        ("2026-11-20", 1),
    ]
    hours = timeline(demo_store, exp.id, "hour").series("A")
    # 23:00 on the 19th up to the hour of "now" (12:00 on the 20th): 14 buckets, no gaps.
    assert len(hours) == 14
    assert [p.impressions for p in hours[:3]] == [1, 1, 0]
    assert all(p.impressions == 0 for p in hours[2:])
    with pytest.raises(InputError, match="unknown bucket"):
        timeline(demo_store, exp.id, "week")


def test_timeline_of_a_stopped_experiment_ends_at_its_stop(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "short")
    assign_user(demo_store, exp.id, 2)
    log_event(demo_store, exp.id, 2, 1, "impression", ts=DAY0)
    stop_experiment(demo_store, exp.id)
    tl = timeline(demo_store, exp.id, "day")
    assert [clock.iso(s)[:10] for s in tl.starts] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert tl.to_dict()["buckets"][0]["impressions"] == 1


# -- bulk logging ---------------------------------------------------------------------------------
def _bulk_setup(store: Store) -> int:
    exp = create_experiment(store, "bulk")
    for u in (1, 2, 3):
        assign_user(store, exp.id, u)
    return exp.id


def test_bulk_csv_loads_every_row(demo_store: Store) -> None:
    exp_id = _bulk_setup(demo_store)
    rev = demo_store.revision("experiments")
    text = (
        "\ufeffUser,item,TYPE,value,ts\n"
        "2,1,impression,,2026-11-19T10:00:00Z\n"
        "bob,1,click,,1795600000\n"
        "2,1,engagement,12.5,\n"
        "\n"
        "1,3,impression,,\n"
        "1,3,purchase,,1795600000.5\n"
    )
    report = log_events_csv(demo_store, exp_id, io.StringIO(text))
    assert report.rows == 5 and report.users == 2  # "2" and "bob" are the same user
    assert report.by_type == {"impression": 2, "click": 1, "purchase": 1, "engagement": 1}
    assert report.by_variant == {"A": 3, "B": 2}
    rows = demo_store.query(
        "SELECT variant, user_id, item_id, type, value, ts FROM events WHERE experiment_id = ? "
        "ORDER BY ts, type",
        (exp_id,),
    )
    assert ("A", 2, 1, "impression", None, clock.parse_time("2026-11-19T10:00:00Z")) in [
        tuple(r.values()) for r in rows
    ]
    assert ("A", 2, 1, "engagement", 12.5, NOW) in [tuple(r.values()) for r in rows]
    assert ("B", 1, 3, "purchase", None, 1795600000.5) in [tuple(r.values()) for r in rows]
    assert demo_store.revision("experiments") > rev
    # The trigger dropped for the load is back, and foreign keys are on again.
    assert demo_store.scalar("PRAGMA foreign_keys") == 1
    names = {r[0] for r in demo_store.conn.execute("SELECT name FROM sqlite_master")}
    assert {"events_insert_rev", "events_update_rev", "events_delete_rev"} <= names
    log_event(demo_store, exp_id, 2, 1, "click")
    assert demo_store.revision("experiments") > rev + 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("user,item\n2,1\n", "missing column"),
        ("user,item,type,colour\n", "unknown column 'colour'"),
        ("user,item,type,type\n", "twice"),
        ("user,item,type\n2,1,click\n2,1\n", "line 3: expected 3 fields"),
        ("user,item,type\n2,1,click\n4,1,click\n", "line 3: user '4' was never assigned"),
        ("user,item,type\n2,1,click\nghost,1,click\n", "line 3: no user 'ghost'"),
        ("user,item,type\n2,1,click\n2,999,click\n", "line 3: no item with id 999"),
        ("user,item,type\n2,1,click\n2,x,click\n", "line 3: item must be a numeric id"),
        ("user,item,type\n2,1,click\n2,1,like\n", "line 3: unknown event type"),
        ("user,item,type,value\n2,1,engagement,\n", "line 2: an engagement event needs"),
        ("user,item,type,value\n2,1,engagement,-3\n", "line 2: engagement time must not be neg"),
        ("user,item,type,value\n2,1,engagement,inf\n", "line 2: engagement time must be a fin"),
        ("user,item,type,value\n2,1,engagement,abc\n", "line 2: value 'abc' is not a number"),
        ("user,item,type,value\n2,1,click,4\n", "line 2: a click event takes no value"),
        ("user,item,type,ts\n2,1,click,yesterday\n", "line 2: ts 'yesterday'"),
        ("user,item,type,ts\n2,1,click,nan\n", "line 2: ts 'nan' is out of range"),
        ("user,item,type,ts\n2,1,click,1e22\n", "line 2: ts '1e22' is out of range"),
    ],
)
def test_bulk_csv_reports_the_first_bad_line_and_writes_nothing(
    demo_store: Store, text: str, message: str
) -> None:
    exp_id = _bulk_setup(demo_store)
    before = table_rows(demo_store)
    with pytest.raises(InputError, match=message):
        log_events_csv(demo_store, exp_id, io.StringIO(text))
    assert table_rows(demo_store) == before
    assert demo_store.scalar("PRAGMA foreign_keys") == 1


def test_bulk_csv_rolls_back_rows_already_inserted(demo_store: Store, tmp_path: Path) -> None:
    from smart_suggest.experiments import events

    exp_id = _bulk_setup(demo_store)
    before = table_rows(demo_store)
    path = tmp_path / "events.csv"
    n_good = events.CHUNK + 10  # more than one chunk reaches the table before the bad row
    path.write_text("user,item,type\n" + "2,1,impression\n" * n_good + "2,1,oops\n")
    with pytest.raises(InputError, match=f"line {n_good + 2}: unknown event type"):
        log_events_csv(demo_store, exp_id, path)
    assert table_rows(demo_store) == before
    with pytest.raises(InputError, match="no such file"):
        log_events_csv(demo_store, exp_id, tmp_path / "missing.csv")


def test_engagement_does_not_leak_between_experiments(demo_store: Store) -> None:
    exp_id = _kpi_fixture(demo_store)
    noise = get_experiment(demo_store, "noise")
    assert results(demo_store, exp_id).a.engagement_mean == 15.0
    n = results(demo_store, noise.id)
    assert (n.a.engagement_n, n.b.engagement_n) == (1, 1)
    assert n.a.engagement_mean == n.b.engagement_mean == 1000.0
    # The demo's own experiment is untouched by both.
    demo = results(demo_store, 1)
    assert demo.a.engagement_mean is not None and demo.a.engagement_mean < 200


def test_delete_removes_only_that_experiment(demo_store: Store) -> None:
    exp_id = _kpi_fixture(demo_store)
    other = get_experiment(demo_store, "noise").id
    keep_other = demo_store.scalar("SELECT COUNT(*) FROM events WHERE experiment_id = ?", (other,))
    report = delete_experiment(demo_store, exp_id)
    assert (report.assignments, report.events) == (5, 23)
    for table in ("events", "assignments"):
        assert (
            demo_store.scalar(f"SELECT COUNT(*) FROM {table} WHERE experiment_id = ?", (exp_id,))
            == 0
        )
    assert (
        demo_store.scalar("SELECT COUNT(*) FROM events WHERE experiment_id = ?", (other,))
        == keep_other
    )


# -- simulation -----------------------------------------------------------------------------------
def test_simulation_is_deterministic_and_recovers_the_rates(tmp_path: Path) -> None:
    from smart_suggest.sample import load_demo

    fingerprints = []
    for name in ("one.db", "two.db"):
        with open_store(tmp_path / name) as s:
            load_demo(s)
            exp = create_experiment(s, "sim", traffic_fraction=0.8)
            rep = simulate(s, exp.id, users=3000, days=10, ctr_a=0.2, ctr_b=0.3,
                           purchase_a=0.1, purchase_b=0.2, seed=5)  # fmt: skip
            fingerprints.append(
                s.conn.execute(
                    "SELECT variant, user_id, item_id, type, value, ts FROM events "
                    "WHERE experiment_id = ? ORDER BY ts, user_id, type, item_id",
                    (exp.id,),
                ).fetchall()
            )
            res = results(s, exp.id)
            daily = timeline(s, exp.id).series("A")
    assert fingerprints[0] == fingerprints[1] and len(fingerprints[0]) == rep.total_events
    assert rep.users_created == 3000 and rep.visitors == 3000
    assert rep.enrolled["A"] + rep.enrolled["B"] + rep.outside == 3000
    assert 0.72 < (rep.enrolled["A"] + rep.enrolled["B"]) / 3000 < 0.88
    assert res.a.users_assigned == rep.enrolled["A"] and res.b.users_assigned == rep.enrolled["B"]
    assert res.a.users_exposed == res.a.users_assigned  # every enrolled visitor saw a list
    assert res.a.ctr == pytest.approx(0.2, abs=0.02) and res.b.ctr == pytest.approx(0.3, abs=0.02)
    assert res.a.conversion_rate == pytest.approx(0.1, abs=0.03)
    assert res.b.conversion_rate == pytest.approx(0.2, abs=0.03)
    assert res.a.engagement_mean == pytest.approx(45.0, rel=0.1)
    assert res.first_event_ts is not None and res.first_event_ts >= NOW - 10 * clock.DAY
    assert res.last_event_ts is not None and res.last_event_ts <= NOW
    # Timestamps are spread over the days: every day has traffic.
    assert len(daily) == 11 and all(p.impressions > 0 for p in daily)


def test_simulation_reuses_its_users_and_equal_rates_make_an_aa_test(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "aa", control="v1", treatment="v1")
    first = simulate(demo_store, exp.id, users=200, days=3, ctr_a=0.3, ctr_b=0.3,
                     purchase_a=0.1, purchase_b=0.1, seed=1)  # fmt: skip
    second = simulate(demo_store, exp.id, users=250, days=3, ctr_a=0.3, ctr_b=0.3,
                      purchase_a=0.1, purchase_b=0.1, seed=2)  # fmt: skip
    assert (first.users_created, second.users_created) == (200, 50)
    names = [r[0] for r in demo_store.conn.execute(
        "SELECT username FROM users WHERE username LIKE 'sim-%' ORDER BY id")]  # fmt: skip
    assert names[:2] == [f"sim-{exp.id}-1", f"sim-{exp.id}-2"] and len(names) == 250
    n_assigned = demo_store.scalar(
        "SELECT COUNT(*) FROM assignments WHERE experiment_id = ?", (exp.id,)
    )
    assert n_assigned == 250  # the second run reused the first 200 assignments


def test_simulation_is_all_or_nothing(demo_store: Store) -> None:
    exp = create_experiment(demo_store, "crash")
    before = table_rows(demo_store)
    rev = demo_store.revision("experiments")

    def boom(stage: str, done: int, total: int) -> None:
        if stage == "events" and done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate(demo_store, exp.id, users=100, days=2, seed=3, progress=boom)
    assert table_rows(demo_store) == before
    assert demo_store.revision("experiments") == rev
    names = {r[0] for r in demo_store.conn.execute("SELECT name FROM sqlite_master")}
    assert "events_insert_rev" in names
    for kwargs in (dict(users=0), dict(days=0), dict(ctr_a=1.5), dict(purchase_b=-0.1),
                   dict(engagement_a=0.0), dict(count=0)):  # fmt: skip
        with pytest.raises(InputError):
            simulate(demo_store, exp.id, **kwargs)  # type: ignore[arg-type]
    assert table_rows(demo_store) == before


# -- schema and concurrency -----------------------------------------------------------------
@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_databases_migrate_to_the_event_summaries(tmp_path: Path, version: int) -> None:
    import sqlite3

    from smart_suggest import store as store_mod

    path = tmp_path / f"v{version}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for v in sorted(m for m in store_mod.MIGRATIONS if m <= version):
        store_mod.apply_migration(conn, v)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(f"PRAGMA application_id = {store_mod.APPLICATION_ID}")
    conn.execute("INSERT INTO users VALUES (1, 'u', 0)")
    conn.execute("INSERT INTO items VALUES (1, 'i', 'books', '', 0)")
    conn.execute(
        "INSERT INTO experiments(id, name, control, treatment, traffic_fraction, "
        "treatment_share, created_at) VALUES (1, 'e', 'v1', 'v2', 1, 0.5, 0)"
    )
    conn.execute("INSERT INTO assignments VALUES (1, 1, 'A', 0)")
    conn.executemany(
        "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
        "VALUES (1, 'A', 1, 1, ?, ?, 100)",
        [("impression", None), ("impression", None), ("click", None), ("engagement", 4.0)],
    )
    conn.execute(
        "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
        "VALUES (1, 'A', 1, 1, 'purchase', NULL, 7300)"
    )
    conn.close()
    with open_store(path) as s:
        assert s.scalar("PRAGMA user_version") == store_mod.SCHEMA_VERSION >= 4
        indexes = {
            r[0]: r[1]
            for r in s.conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            )
        }
        assert indexes == {}  # the two summaries replace the event indexes
        # The migration counted the events already there, per UTC hour.
        assert s.conn.execute(
            "SELECT variant, type, hour, n, first_ts, last_ts FROM event_counts ORDER BY type"
        ).fetchall() == [
            ("A", "click", 0, 1, 100.0, 100.0),
            ("A", "engagement", 0, 1, 100.0, 100.0),
            ("A", "impression", 0, 2, 100.0, 100.0),
            ("A", "purchase", 2, 1, 7300.0, 7300.0),
        ]
        assert s.conn.execute("SELECT * FROM event_users").fetchall() == [
            (1, "A", 1, 2, 1, 1, 1, 4.0, 16.0, 7300.0)
        ]
        res = results(s, 1)
        a = res.a
        assert (a.impressions, a.clicks, a.engagement_sum, a.sum_impressions_sq) == (2, 1, 4.0, 4)
        assert (res.first_event_ts, res.last_event_ts) == (100.0, 7300.0)
        plan = " ".join(
            r[3]
            for r in s.conn.execute("EXPLAIN QUERY PLAN " + STORED_STATS_SQL, {"experiment_id": 1})
        )
        assert "SEARCH event_users USING PRIMARY KEY (experiment_id=?)" in plan
        # The definition over the events gives the same numbers.
        reference = sufficient_stats(s, 1, SUFFICIENT_STATS_SQL)
        assert sufficient_stats(s, 1) == reference


def test_concurrent_assignment_from_several_processes_stores_one_row_each(
    demo_store: Store, db_path: Path
) -> None:
    import subprocess
    import sys

    exp = create_experiment(demo_store, "race")
    code = (
        "import sys; from smart_suggest.store import open_store; "
        "from smart_suggest.experiments.serving import assign_user\n"
        f"s = open_store({str(db_path)!r})\n"
        "for u in range(1, 51): assign_user(s, 'race', u)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    rows = demo_store.query(
        "SELECT user_id, variant FROM assignments WHERE experiment_id = ?", (exp.id,)
    )
    assert len(rows) == 50
    assert all(r["variant"] == assign_variant(exp.id, r["user_id"]) for r in rows)
