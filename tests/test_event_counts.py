"""The two summaries of ``events`` (``event_counts`` per experiment, variant, type and UTC
hour; ``event_users`` per experiment, variant and user) must equal a recount of the events
after every path that writes events, and the CSV bulk path must load the same rows whether
its reader runs in this process or in a reader process."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from smart_suggest.experiments import bulk
from smart_suggest.experiments.bulk import log_events_csv
from smart_suggest.experiments.events import log_event
from smart_suggest.experiments.kpis import (
    SUFFICIENT_STATS_SQL,
    daily_assigned,
    stats_and_daily,
    sufficient_stats,
)
from smart_suggest.experiments.lifecycle import create_experiment, delete_experiment
from smart_suggest.experiments.serving import assign_user, serve
from smart_suggest.experiments.simulate import simulate
from smart_suggest.experiments.timeline import timeline
from smart_suggest.portability import export_all, import_all
from smart_suggest.sample import SyntheticSpec, generate
from smart_suggest.store import (
    REBUILD_EVENT_COUNTS_SQL,
    REBUILD_EVENT_USERS_SQL,
    Store,
    open_store,
)

_RECOUNT = REBUILD_EVENT_COUNTS_SQL.split("\n", 1)[1]  # its SELECT ... GROUP BY
_REUSERS = REBUILD_EVENT_USERS_SQL.split("\n", 1)[1]
_COUNTS = (
    "SELECT experiment_id, variant, type, hour, n, first_ts, last_ts FROM event_counts "
    "ORDER BY 1, 2, 3, 4"
)
_USERS = "SELECT * FROM event_users ORDER BY 1, 2, 3"


def assert_summaries_match(store: Store) -> None:
    """Both summaries equal a recount of the events (sums of seconds to rounding), and the
    KPIs read from them equal the definition over the events."""
    assert store.conn.execute(_COUNTS).fetchall() == sorted(store.conn.execute(_RECOUNT).fetchall())
    stored = store.conn.execute(_USERS).fetchall()
    recount = sorted(store.conn.execute(_REUSERS).fetchall())
    assert [r[:7] + r[9:] for r in stored] == [r[:7] + r[9:] for r in recount]
    assert [r[7:9] for r in stored] == [pytest.approx(r[7:9]) for r in recount]
    for (exp_id,) in store.conn.execute("SELECT id FROM experiments").fetchall():
        fast = sufficient_stats(store, exp_id)
        reference = sufficient_stats(store, exp_id, SUFFICIENT_STATS_SQL)
        assert fast == {v: pytest.approx(row) for v, row in reference.items()}
        # What results() reads: the same rows with one pass over the assignments.
        assert stats_and_daily(store, exp_id) == (fast, daily_assigned(store, exp_id))


def test_every_write_path_keeps_the_counts(demo_store: Store, tmp_path: Path) -> None:
    store = demo_store
    assert_summaries_match(store)  # the demo seed
    assert store.scalar("SELECT COUNT(*) FROM event_counts") > 0
    exp = create_experiment(store, "counts")
    serve(store, exp.id, 1)  # impressions, one by one through the trigger
    log_event(store, exp.id, 1, 1, "click")
    assert_summaries_match(store)
    simulate(store, exp.id, users=300, days=3, seed=5)
    assert_summaries_match(store)
    text = (
        "user,item,type,value,ts\n1,2,engagement,3.5,100\n1,2,impression,,3605\n"
        "1,2,purchase,,7300.25\n"
    )
    log_events_csv(store, exp.id, io.StringIO(text))
    assert_summaries_match(store)
    assert store.conn.execute(
        "SELECT type, hour, n, first_ts, last_ts FROM event_counts "
        "WHERE experiment_id = ? AND hour < 10 ORDER BY hour",
        (exp.id,),
    ).fetchall() == [
        ("engagement", 0, 1, 100.0, 100.0),
        ("impression", 1, 1, 3605.0, 3605.0),
        ("purchase", 2, 1, 7300.25, 7300.25),
    ]
    # Follow-ups set apart as unserved take their share of the summaries back with them.
    text = "user,item,type,value,ts\n1,2,click,,7301\n1,2,click,,7302\n1,19,purchase,,7303\n"
    report = log_events_csv(store, exp.id, io.StringIO(text), unserved=True)
    assert report.rows + sum(report.unserved.values()) == 3
    assert_summaries_match(store)
    export_all(store, tmp_path / "export")
    delete_experiment(store, exp.id)
    assert store.scalar("SELECT COUNT(*) FROM event_counts WHERE experiment_id = ?", (exp.id,)) == 0
    assert_summaries_match(store)
    with open_store(tmp_path / "copy.db") as copy:
        import_all(copy, tmp_path / "export")
        assert_summaries_match(copy)
        assert copy.scalar("SELECT COUNT(*) FROM event_counts WHERE experiment_id = ?", (exp.id,))


def test_synthetic_generation_counts_its_events(store: Store) -> None:
    generate(store, SyntheticSpec(users=200, items=50, interactions=500, events=5_000, days=3))
    assert_summaries_match(store)
    assert store.scalar("SELECT SUM(n) FROM event_counts") == 5_000


# -- the reader process -----------------------------------------------------------------------
def _setup(store: Store) -> int:
    exp = create_experiment(store, "bulk-reader")
    for u in range(1, 21):
        assign_user(store, exp.id, u)
    return exp.id


def _write_csv(store: Store, path: Path, n: int, bad: str | None = None) -> None:
    names = dict(store.conn.execute("SELECT id, username FROM users WHERE id <= 20").fetchall())
    kinds = ("impression", "click", "purchase", "engagement")
    lines = ["user,item,type,value,ts"]
    # Each user is shown each item first: a click or purchase needs an impression.
    lines += [f"{u},{i},impression,,1795000000" for u in range(1, 21) for i in range(1, 6)]
    for i in range(n):
        kind = kinds[i % 4]
        user = names[1 + i % 20] if i % 97 == 0 else str(1 + i % 20)  # ids, a few names
        value = f"{i % 50}.5" if kind == "engagement" else ""
        lines.append(f"{user},{1 + i % 5},{kind},{value},{1_795_000_000 + 7.5 * i}")
    if bad is not None:
        lines.insert(len(lines) - 3, bad)
    path.write_text("\n".join(lines) + "\n")


def _events(store: Store, exp_id: int) -> list[tuple[object, ...]]:
    return sorted(
        store.conn.execute(
            "SELECT variant, user_id, item_id, type, value, ts FROM events WHERE experiment_id = ?",
            (exp_id,),
        ).fetchall(),
        key=repr,
    )


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CSV_CHUNK", 300)  # several chunks, a partial last one


@pytest.mark.usefixtures("small_chunks")
def test_the_reader_process_loads_what_this_process_loads(
    demo_store: Store, tmp_path: Path
) -> None:
    exp_id = _setup(demo_store)
    csv_path = tmp_path / "events.csv"
    _write_csv(demo_store, csv_path, 2_000)
    inline = log_events_csv(demo_store, exp_id, csv_path, parallel=False)
    expected = _events(demo_store, exp_id)
    with open_store(tmp_path / "b.db") as fresh:
        from smart_suggest.sample import load_demo

        load_demo(fresh, seed=42)
        exp_b = _setup(fresh)
        report = log_events_csv(fresh, exp_b, csv_path, parallel=True)
        assert report.parallel and not inline.parallel
        assert _events(fresh, exp_b) == expected
        assert (report.rows, report.users, report.by_type, report.by_variant) == (
            inline.rows,
            inline.users,
            inline.by_type,
            inline.by_variant,
        )
        assert (report.first_ts, report.last_ts) == (inline.first_ts, inline.last_ts)
        assert_summaries_match(fresh)
        assert sufficient_stats(fresh, exp_b) == {
            v: pytest.approx(row) for v, row in sufficient_stats(demo_store, exp_id).items()
        }
        assert (
            timeline(fresh, exp_b, "hour").to_dict()["buckets"]
            == (timeline(demo_store, exp_id, "hour").to_dict()["buckets"])
        )


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("9999,1,click,,", "no user '9999'"),
        ("1,1,engagement,-2,", "engagement time must not be negative"),
        ("1,1,clicked,,", "unknown event type 'clicked'"),
    ],
)
def test_the_reader_process_reports_the_first_bad_line(
    demo_store: Store, tmp_path: Path, bad: str, message: str
) -> None:
    exp_id = _setup(demo_store)
    csv_path = tmp_path / "events.csv"
    _write_csv(demo_store, csv_path, 1_000, bad=bad)
    before = demo_store.conn.execute(_COUNTS).fetchall()
    n_before = demo_store.scalar("SELECT COUNT(*) FROM events")
    # The header is line 1 and the bad row follows 1,097 good ones (100 impressions first).
    with pytest.raises(bulk.InputError, match=f"line 1099: {message}.*nothing was written"):
        log_events_csv(demo_store, exp_id, csv_path, parallel=True)
    assert demo_store.scalar("SELECT COUNT(*) FROM events") == n_before
    assert demo_store.conn.execute(_COUNTS).fetchall() == before


def test_parallel_needs_a_file(demo_store: Store) -> None:
    exp_id = _setup(demo_store)
    with pytest.raises(ValueError, match="file path"):
        log_events_csv(
            demo_store, exp_id, io.StringIO("user,item,type\n1,1,click\n"), parallel=True
        )


def test_a_failed_reader_process_writes_nothing(demo_store: Store, tmp_path: Path) -> None:
    exp_id = _setup(demo_store)
    csv_path = tmp_path / "events.csv"
    _write_csv(demo_store, csv_path, 50)
    n_before = demo_store.scalar("SELECT COUNT(*) FROM events")
    csv_path.write_bytes(csv_path.read_bytes() + b"1,1,click,,\xff\xfe\n")  # not UTF-8
    with pytest.raises(bulk.InputError, match="not UTF-8"):
        log_events_csv(demo_store, exp_id, csv_path, parallel=True)
    assert demo_store.scalar("SELECT COUNT(*) FROM events") == n_before


@pytest.mark.usefixtures("small_chunks")
def test_without_a_reader_process_this_process_reads_it_all(
    demo_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp_id = _setup(demo_store)
    csv_path = tmp_path / "events.csv"
    _write_csv(demo_store, csv_path, 1_000)
    monkeypatch.setattr(bulk.sys, "executable", str(tmp_path / "no-such-python"))
    report = log_events_csv(demo_store, exp_id, csv_path, parallel=True)
    assert report.rows == 1_100 and not report.parallel
    assert_summaries_match(demo_store)


@pytest.mark.usefixtures("small_chunks")
def test_a_reader_running_other_code_is_not_used(
    demo_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader says where it imported smart_suggest from; elsewhere, this process reads."""
    exp_id = _setup(demo_store)
    csv_path = tmp_path / "events.csv"
    _write_csv(demo_store, csv_path, 1_000)
    monkeypatch.setattr(bulk, "_package_root", lambda: str(tmp_path / "elsewhere"))
    report = log_events_csv(demo_store, exp_id, csv_path, parallel=True)
    assert report.rows == 1_100 and not report.parallel
    assert_summaries_match(demo_store)


@pytest.mark.usefixtures("small_chunks")
def test_the_current_folder_does_not_shadow_the_readers_modules(
    demo_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp_id = _setup(demo_store)
    csv_path = tmp_path / "events.csv"
    _write_csv(demo_store, csv_path, 1_000)
    work = tmp_path / "work"
    work.mkdir()
    (work / "csv.py").write_text("raise SystemExit('a csv.py of the user was imported')\n")
    monkeypatch.chdir(work)
    report = log_events_csv(demo_store, exp_id, csv_path, parallel=True)
    assert report.rows == 1_100 and report.parallel


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1,1,click,,1e22", "ts '1e22' is out of range"),
        ("99999999999999999999,1,click,,", "no user '99999999999999999999'"),
        ("1,99999999999999999999,click,,", "no item with id 99999999999999999999"),
    ],
)
def test_out_of_range_times_and_ids_name_their_line(
    demo_store: Store, tmp_path: Path, parallel: bool, bad: str, message: str
) -> None:
    exp_id = _setup(demo_store)
    csv_path = tmp_path / "events.csv"
    _write_csv(demo_store, csv_path, 1_000, bad=bad)
    n_before = demo_store.scalar("SELECT COUNT(*) FROM events")
    with pytest.raises(bulk.InputError, match=f"line 1099: {message}"):
        log_events_csv(demo_store, exp_id, csv_path, parallel=parallel)
    assert demo_store.scalar("SELECT COUNT(*) FROM events") == n_before
