"""Export / import-all round trips every row exactly; backup is consistent under writes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from smart_suggest import tracking
from smart_suggest.errors import InputError
from smart_suggest.portability import backup, export_all, import_all
from smart_suggest.store import Store, open_store

HOSTILE = '[bold red]x[/] \x1b]0;t\x07 \'; DROP TABLE users; -- \u202e ✨ שלום "q",\n\r\t'


def _add_hostile(store: Store) -> None:
    u = tracking.add_user(store, HOSTILE)
    it = tracking.add_item(store, HOSTILE + "!", HOSTILE, HOSTILE * 50)
    tracking.log_interaction(store, u.id, it.id, "purchase", ts=1.0000000000000002)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_round_trip_is_exact(demo_store: Store, tmp_path: Path, fmt: str, db_rows) -> None:  # type: ignore[no-untyped-def]
    _add_hostile(demo_store)
    out = tmp_path / "export"
    report = export_all(demo_store, out, fmt=fmt)
    assert report.tables["events"] == demo_store.counts()["events"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == fmt and manifest["tables"]["users"]["rows"] == 51
    target = tmp_path / "copy.db"
    with open_store(target) as copy:
        import_all(copy, out)
    assert db_rows(target) == db_rows(demo_store.path)


def test_import_refuses_tampered_file_and_writes_nothing(demo_store: Store, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_all(demo_store, out)
    with open(out / "users.jsonl", "a") as fh:
        fh.write('{"id": 999}\n')
    with open_store(tmp_path / "copy.db") as copy:
        with pytest.raises(InputError, match="checksum"):
            import_all(copy, out)
        assert copy.is_empty()


def test_import_bad_row_rolls_back(demo_store: Store, tmp_path: Path) -> None:
    """A row that breaks the schema midway leaves the target database untouched."""
    import hashlib

    out = tmp_path / "export"
    export_all(demo_store, out)
    events = out / "events.jsonl"
    lines = events.read_text().splitlines()
    bad = json.loads(lines[-1])
    bad["type"] = "teleport"
    lines[-1] = json.dumps(bad)
    events.write_text("\n".join(lines) + "\n")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["tables"]["events"]["sha256"] = hashlib.sha256(events.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    with open_store(tmp_path / "copy.db") as copy:
        with pytest.raises(InputError, match=r"events\.type must be one of"):
            import_all(copy, out)
        assert copy.is_empty()
        assert copy.scalar("SELECT count(*) FROM sqlite_master WHERE type='trigger'") > 0


def test_import_into_non_empty_needs_replace(demo_store: Store, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_all(demo_store, out)
    with pytest.raises(InputError, match="not empty"):
        import_all(demo_store, out)
    tracking.add_user(demo_store, "extra")
    import_all(demo_store, out, replace=True)
    assert demo_store.counts()["users"] == 50


def test_export_refuses_non_empty_folder(demo_store: Store, tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        export_all(demo_store, tmp_path / "x")
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["keep.txt"]


def test_backup_is_consistent_while_another_process_writes(
    demo_store: Store, tmp_path: Path
) -> None:
    base = demo_store.counts()["events"]
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from smart_suggest.store import open_store\n"
            "s = open_store(sys.argv[1])\n"
            "for i in range(300):\n"
            "    with s.write() as c:\n"
            "        c.executemany('INSERT INTO events(experiment_id, variant, user_id, '\n"
            "                      'type, ts) VALUES (1, \\'A\\', 1, \\'impression\\', 0)',\n"
            "                      [()] * 100)\n",
            str(demo_store.path),
        ]
    )
    try:
        copies = []
        for i in range(5):
            target = tmp_path / f"b{i}.db"
            backup(demo_store, target)
            copies.append(target)
    finally:
        writer.wait(timeout=60)
    for target in copies:
        conn = sqlite3.connect(target)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        assert (n - base) % 100 == 0  # whole transactions only, never half of one
        conn.close()
    with open_store(copies[-1]) as s:  # a backup opens as a smart-suggest database
        assert s.counts()["users"] == 50


def test_backup_refuses_existing_target(demo_store: Store, tmp_path: Path) -> None:
    target = tmp_path / "b.db"
    target.write_text("precious")
    with pytest.raises(InputError, match="already exists"):
        backup(demo_store, target)
    assert target.read_text() == "precious"


def test_cli_round_trip(tmp_path: Path, run_cli, db_rows) -> None:  # type: ignore[no-untyped-def]
    src, dst = tmp_path / "a.db", tmp_path / "b.db"
    assert run_cli("seed", "--db", src)[0] == 0
    assert run_cli("export", tmp_path / "e", "--db", src)[0] == 0
    code, out, err = run_cli("import-all", tmp_path / "e", "--db", dst, "--json")
    assert code == 0, err
    assert json.loads(out)["tables"]["users"] == 50
    assert db_rows(src) == db_rows(dst)
    code, _, err = run_cli("import-all", tmp_path / "nowhere", "--db", dst)
    assert code == 2 and "no such folder" in err
    code, _, err = run_cli("backup", tmp_path / "bk.db", "--db", src)
    assert code == 0, err
    code, _, err = run_cli("backup", tmp_path / "bk.db", "--db", src)
    assert code == 2 and "already exists" in err


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_variants_designs_and_teams_round_trip(demo_store: Store, tmp_path: Path, fmt: str) -> None:
    import random

    from smart_suggest.experiments.events import log_event
    from smart_suggest.experiments.lifecycle import create_experiment, get_experiment
    from smart_suggest.experiments.serving import serve
    from smart_suggest.experiments.teams import team_stats

    three = create_experiment(
        demo_store, "abc", variants=["v1", "v2", "popular"], weights=[2, 1, 1]
    )
    serve(demo_store, three, "bob", 3)
    il = create_experiment(demo_store, "il", "v1", "v2", design="interleaving")
    served = serve(demo_store, il, "alice", 5, rng=random.Random(3))
    log_event(demo_store, il, "alice", served.recommendations[1].item_id, "click")
    out = tmp_path / "export"
    export_all(demo_store, out, fmt=fmt)
    target = tmp_path / "copy.db"
    with open_store(target) as copy:
        import_all(copy, out)
        assert get_experiment(copy, "abc") == get_experiment(demo_store, "abc")
        assert get_experiment(copy, "il").interleaving
        assert team_stats(copy, "il") == team_stats(demo_store, "il")
        tables = ("experiment_variants", "events", "event_teams", "team_items")
        for table in tables:
            q = f"SELECT * FROM {table} ORDER BY 1, 2, 3"
            assert copy.query(q) == demo_store.query(q), table


def test_an_export_from_before_variants_still_imports(demo_store: Store, tmp_path: Path) -> None:
    """Schema 4 exports have no experiment_variants, design or team: they import, with the
    variants derived from control / treatment / treatment_share."""
    from smart_suggest.experiments.lifecycle import get_experiment

    out = tmp_path / "export"
    export_all(demo_store, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = 4
    (out / manifest["tables"]["experiment_variants"]["file"]).unlink()
    del manifest["tables"]["experiment_variants"]
    for table, column in (("experiments", "design"), ("events", "team")):
        entry = manifest["tables"][table]
        path = out / entry["file"]
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for obj in lines:
            del obj[column]
        path.write_text("".join(json.dumps(o) + "\n" for o in lines))
        entry["columns"].remove(column)
        import hashlib

        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    target = tmp_path / "old.db"
    with open_store(target) as copy:
        import_all(copy, out)
        exp = get_experiment(copy, 1)
        assert exp.design == "ab" and [v.strategy for v in exp.variants] == ["v1", "v2"]
        assert copy.scalar("SELECT COUNT(*) FROM events") == demo_store.scalar(
            "SELECT COUNT(*) FROM events"
        )
