"""``event_counts`` (events per experiment, variant, type and UTC hour) must equal a recount
of ``events`` after every path that writes events."""

from __future__ import annotations

import io
from pathlib import Path

from smart_suggest.experiments.events import log_event, log_events_csv
from smart_suggest.experiments.lifecycle import create_experiment, delete_experiment
from smart_suggest.experiments.serving import serve
from smart_suggest.experiments.simulate import simulate
from smart_suggest.portability import export_all, import_all
from smart_suggest.sample import SyntheticSpec, generate
from smart_suggest.store import REBUILD_EVENT_COUNTS_SQL, Store, open_store

_RECOUNT = REBUILD_EVENT_COUNTS_SQL.split("\n", 1)[1]  # its SELECT ... GROUP BY
_COUNTS = (
    "SELECT experiment_id, variant, type, hour, n, first_ts, last_ts FROM event_counts "
    "ORDER BY 1, 2, 3, 4"
)


def assert_counts_match(store: Store) -> None:
    assert store.conn.execute(_COUNTS).fetchall() == sorted(store.conn.execute(_RECOUNT).fetchall())


def test_every_write_path_keeps_the_counts(demo_store: Store, tmp_path: Path) -> None:
    store = demo_store
    assert_counts_match(store)  # the demo seed
    assert store.scalar("SELECT COUNT(*) FROM event_counts") > 0
    exp = create_experiment(store, "counts")
    serve(store, exp.id, 1)  # impressions, one by one through the trigger
    log_event(store, exp.id, 1, 1, "click")
    assert_counts_match(store)
    simulate(store, exp.id, users=300, days=3, seed=5)
    assert_counts_match(store)
    text = "user,item,type,value,ts\n1,2,engagement,3.5,100\n1,2,purchase,,7300.25\n"
    log_events_csv(store, exp.id, io.StringIO(text))
    assert_counts_match(store)
    assert store.conn.execute(
        "SELECT type, hour, n, first_ts, last_ts FROM event_counts "
        "WHERE experiment_id = ? AND hour < 10 ORDER BY hour",
        (exp.id,),
    ).fetchall() == [("engagement", 0, 1, 100.0, 100.0), ("purchase", 2, 1, 7300.25, 7300.25)]
    export_all(store, tmp_path / "export")
    delete_experiment(store, exp.id)
    assert store.scalar("SELECT COUNT(*) FROM event_counts WHERE experiment_id = ?", (exp.id,)) == 0
    assert_counts_match(store)
    with open_store(tmp_path / "copy.db") as copy:
        import_all(copy, tmp_path / "export")
        assert_counts_match(copy)
        assert copy.scalar("SELECT COUNT(*) FROM event_counts WHERE experiment_id = ?", (exp.id,))


def test_synthetic_generation_counts_its_events(store: Store) -> None:
    generate(store, SyntheticSpec(users=200, items=50, interactions=500, events=5_000, days=3))
    assert_counts_match(store)
    assert store.scalar("SELECT SUM(n) FROM event_counts") == 5_000
