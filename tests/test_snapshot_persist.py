"""Saved recommender snapshots (``recommend/persist.py``): found only by a database that
holds exactly the data they were built from, whatever wrote it, and never trusted blindly.

Every test works on real SQLite files in tmp_path; the cache folder is tmp_path's too
(``XDG_CACHE_HOME``, set for every test in conftest). ``MIN_INTERACTIONS`` is lowered so
the demo's snapshot is saved the way a large one is.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import smart_suggest.recommend as rec
from smart_suggest import tracking
from smart_suggest.recommend import Recommender, build_snapshot, persist
from smart_suggest.recommend.snapshot import Snapshot
from smart_suggest.store import Store, open_store
from tests.conftest import CliRunner

Writer = Callable[[CliRunner, Path], None]


@pytest.fixture(autouse=True)
def _save_small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persist, "MIN_INTERACTIONS", 0)


@pytest.fixture
def demo_copy(demo_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    return path


def saved_files() -> list[Path]:
    folder = persist.cache_dir()
    return sorted(folder.glob("*.npz")) if folder.exists() else []


def assert_same(a: Snapshot, b: Snapshot) -> None:
    """Two snapshots hold the same data (everything a strategy reads)."""
    assert (a.revision, a.stamp, a.marks) == (b.revision, b.stamp, b.marks)
    assert a.matrix.shape == b.matrix.shape
    assert np.array_equal(a.matrix.indptr, b.matrix.indptr)
    assert np.array_equal(a.matrix.indices, b.matrix.indices)
    assert np.array_equal(a.matrix.data, b.matrix.data)
    assert a.last_touch is not None and b.last_touch is not None
    assert np.array_equal(a.last_touch.data, b.last_touch.data)
    assert a.interaction_count == b.interaction_count
    assert np.array_equal(a.item_interactions, b.item_interactions)
    assert np.array_equal(a.item_weight, b.item_weight)
    assert np.array_equal(a.item_users, b.item_users)
    ca, cb = a.catalogue, b.catalogue
    assert np.array_equal(ca.user_ids, cb.user_ids) and ca.usernames == cb.usernames
    assert np.array_equal(ca.item_ids, cb.item_ids) and ca.item_names == cb.item_names
    assert ca.descriptions == cb.descriptions
    assert ca.categories == cb.categories
    assert ca.item_category_sets == cb.item_category_sets
    assert np.array_equal(ca.item_category, cb.item_category)


def fresh(path: Path) -> Snapshot:
    with open_store(path) as store:
        return build_snapshot(store)


def next_start(path: Path) -> Snapshot:
    """What a new process's recommender serves first (loaded or built)."""
    with open_store(path) as store:
        return Recommender(store).snapshot()


# -- the key: revision and stamp ----------------------------------------------------------
def test_every_catalog_change_draws_a_new_stamp(demo_store: Store) -> None:
    conn = demo_store.conn
    writes = [
        "INSERT INTO users(username, created_at) VALUES ('zed', 0)",
        "UPDATE users SET username = 'zed2' WHERE username = 'zed'",
        "UPDATE items SET name = 'Renamed' WHERE id = 1",
        "UPDATE items SET description = 'new words' WHERE id = 2",
        "INSERT INTO item_categories(item_id, category, position) VALUES (1, 'extra', 9)",
        "DELETE FROM item_categories WHERE category = 'extra'",
        "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 1, 'view', 5)",
        "UPDATE interactions SET action = 'purchase' WHERE id = (SELECT max(id) FROM interactions)",
        "DELETE FROM interactions WHERE id = (SELECT max(id) FROM interactions)",
        "DELETE FROM users WHERE username = 'zed2'",
    ]
    seen = {demo_store.revision_stamp()}
    for sql in writes:
        with demo_store.write():
            conn.execute(sql)
        key = demo_store.revision_stamp()
        assert key not in seen, sql
        seen.add(key)
    # Experiments are not the recommenders' data: the catalog key stays.
    before = demo_store.revision_stamp()
    with demo_store.write():
        conn.execute("UPDATE experiments SET description = 'x'")
    assert demo_store.revision_stamp() == before


def test_a_bulk_load_draws_a_new_stamp(demo_store: Store) -> None:
    before = demo_store.revision_stamp()
    with demo_store.bulk_load(("interactions",), drop_indexes=False) as conn:
        conn.execute(
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 2, 'view', 1)"
        )
    after = demo_store.revision_stamp()
    assert after[0] == before[0] + 1 and after[1] != before[1]


def test_migration_12_replays_cleanly(db_path: Path) -> None:
    with open_store(db_path) as store:
        tracking.add_user(store, "ann")
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 11")
    conn.commit()
    conn.close()
    with open_store(db_path) as store:
        key = store.revision_stamp()
        tracking.add_user(store, "bob")
        assert store.revision_stamp()[0] == key[0] + 1
        triggers = store.conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%stamp%'"
        ).fetchone()[0]
        assert triggers == 12  # insert, update, delete on the 4 catalog tables


# -- save and load -------------------------------------------------------------------------
def test_saved_snapshot_loads_back_identical(demo_store: Store) -> None:
    built = build_snapshot(demo_store)
    built.prepare()  # the item similarities are saved too when computed
    path = persist.save(built)
    assert path is not None and path.exists() and path.stat().st_mode & 0o777 == 0o600
    loaded = persist.load(demo_store)
    assert loaded is not None
    assert_same(loaded, built)
    sim = loaded.catalogue.__dict__["similarity"]  # loaded, not computed again
    assert (sim != built.catalogue.similarity).nnz == 0
    for user in built.catalogue.user_ids[:8].tolist():
        for strategy in ("v1", "v2", "v3", "popular"):
            a = Recommender(demo_store)
            a._snapshot = built
            b = Recommender(demo_store)
            b._snapshot = loaded
            assert a.recommend(user, strategy, 5) == b.recommend(user, strategy, 5)


def test_small_snapshots_are_not_saved(demo_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persist, "MIN_INTERACTIONS", 10**9)
    Recommender(demo_store).snapshot()
    assert saved_files() == []


def test_next_start_loads_instead_of_building(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = next_start(demo_copy)  # built and saved
    assert len(saved_files()) == 1
    monkeypatch.setattr(rec, "build_snapshot", lambda store: pytest.fail("built again"))
    assert_same(next_start(demo_copy), first)
    # A copy of the file holds the same data: it is served the same snapshot.
    copy = demo_copy.with_name("copy.db")
    shutil.copy(demo_copy, copy)
    assert_same(next_start(copy), first)


def test_background_rebuild_loads_and_saves(demo_copy: Path) -> None:
    with open_store(demo_copy) as store:
        engine = Recommender(store, background=True)
        engine.start()
        assert engine._rebuild is not None
        engine._rebuild.join(30)
        built = engine.snapshot()
    for thread in threading.enumerate():
        if thread.name == "snapshot-save":
            thread.join(30)
    assert len(saved_files()) == 1
    with open_store(demo_copy) as store:
        loaded = persist.load(store)
    assert loaded is not None
    assert_same(loaded, built)


# -- every writer is seen by the next start -----------------------------------------------
def _cli_log(run_cli: CliRunner, path: Path) -> None:
    assert run_cli("log", "alice", "3", "click", "--db", path)[0] == 0


def _cli_import(run_cli: CliRunner, path: Path) -> None:
    ratings = path.with_name("ratings.csv")
    ratings.write_text("userId,movieId,rating,timestamp\n1,1,5.0,1700000000\n2,3,4.0,1700000100\n")
    code, _out, err = run_cli("import", ratings, "--db", path)
    assert code == 0, err


def _cli_seed(run_cli: CliRunner, path: Path) -> None:
    code, _out, err = run_cli(
        "seed", "--users", "30", "--items", "15", "--interactions", "300", "--events", "0",
        "--yes", "--db", path,
    )  # fmt: skip
    assert code == 0, err


def _cli_clear(run_cli: CliRunner, path: Path) -> None:
    assert run_cli("clear", "--yes", "--db", path)[0] == 0


def _tui_log(run_cli: CliRunner, path: Path) -> None:
    from tui import data

    with open_store(path) as store:
        backend = data.Backend(store)
        data.log_action(store, 1, 2, "purchase")
        backend.close()


def _tui_add_item(run_cli: CliRunner, path: Path) -> None:
    from tui import data

    with open_store(path) as store:
        data.add_item(store, "Desk Lamp", "home", "warm led lamp")


def _sqlite_edit(run_cli: CliRunner, path: Path) -> None:
    # An update through any tool, not only smart-suggest: the triggers are in the file.
    conn = sqlite3.connect(path)
    conn.execute("UPDATE items SET description = 'entirely new words' WHERE id = 3")
    conn.commit()
    conn.close()


def _sqlite_delete(run_cli: CliRunner, path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("DELETE FROM users WHERE username = 'bob'")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "write",
    [
        _cli_log,
        _cli_import,
        _cli_seed,
        _cli_clear,
        _tui_log,
        _tui_add_item,
        _sqlite_edit,
        _sqlite_delete,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_a_write_by_any_writer_is_seen_by_the_next_start(
    demo_copy: Path, run_cli: CliRunner, write: Writer
) -> None:
    before = next_start(demo_copy)
    assert len(saved_files()) == 1
    write(run_cli, demo_copy)
    after = next_start(demo_copy)
    assert (after.revision, after.stamp) != (before.revision, before.stamp)
    assert_same(after, fresh(demo_copy))


def test_a_restored_backup_written_to_again_is_not_served_the_old_snapshot(
    demo_copy: Path,
) -> None:
    backup = demo_copy.with_name("backup.db")
    shutil.copy(demo_copy, backup)
    with open_store(demo_copy) as store:
        tracking.log_interaction(store, 1, 1, "view")
    served = next_start(demo_copy)  # saved at revision r + 1
    # The backup takes one *other* write: the same revision number, other data.
    with open_store(backup) as store:
        tracking.log_interaction(store, 2, 4, "purchase")
    shutil.copy(backup, demo_copy)
    after = next_start(demo_copy)
    assert after.revision == served.revision
    assert after.stamp != served.stamp
    assert_same(after, fresh(demo_copy))


# -- after appends through smart-suggest, the saved file of the data before them serves ---
def _sqlite_insert(run_cli: CliRunner, path: Path) -> None:
    # An append as smart-suggest makes them, but by another tool: no lineage is recorded.
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO interactions (user_id, item_id, action, ts) VALUES (1, 2, 'view', 1)")
    conn.commit()
    conn.close()


def _delete_through_store(run_cli: CliRunner, path: Path) -> None:
    # Recorded in the lineage, but not an append: applying it row by row is refused.
    with open_store(path) as store, store.write() as conn:
        conn.execute("DELETE FROM interactions WHERE id = (SELECT min(id) FROM interactions)")


@pytest.mark.parametrize("write", [_cli_log, _tui_log, _tui_add_item], ids=lambda f: f.__name__)
def test_appends_through_smart_suggest_reuse_the_saved_snapshot(
    demo_copy: Path, run_cli: CliRunner, write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = next_start(demo_copy)
    write(run_cli, demo_copy)
    write(run_cli, demo_copy)  # two steps of lineage back to the saved file
    monkeypatch.setattr(rec, "build_snapshot", lambda store: pytest.fail("built again"))
    after = next_start(demo_copy)
    assert after.revision is not None and before.revision is not None
    assert after.revision > before.revision
    assert_same(after, fresh(demo_copy))


@pytest.mark.parametrize(
    "write", [_sqlite_insert, _sqlite_edit, _sqlite_delete, _delete_through_store],
    ids=lambda f: f.__name__,
)  # fmt: skip
def test_other_changes_are_never_applied_to_a_saved_file(
    demo_copy: Path, run_cli: CliRunner, write: Writer
) -> None:
    next_start(demo_copy)
    write(run_cli, demo_copy)
    with open_store(demo_copy) as store:
        row = store.conn.execute("SELECT min(id), (SELECT min(id) FROM items) FROM users")
        user, item = row.fetchone()
        tracking.log_interaction(store, user, item, "view")  # recorded: does not mend the chain
        assert persist.load(store) is None
    assert_same(next_start(demo_copy), fresh(demo_copy))


def test_a_restored_backup_never_reaches_a_snapshot_of_its_lost_future(demo_copy: Path) -> None:
    backup = demo_copy.with_name("backup.db")
    shutil.copy(demo_copy, backup)
    with open_store(demo_copy) as store:
        tracking.log_interaction(store, 1, 1, "view")
    next_start(demo_copy)  # saved at revision r + 1: the future the backup will lose
    shutil.copy(backup, demo_copy)
    with open_store(demo_copy) as store:
        # r + 2, with one row past the saved marks: by counts alone an append to it
        tracking.log_interaction(store, 2, 4, "purchase")
        tracking.log_interaction(store, 1, 1, "view")
        assert persist.load(store) is None
    assert_same(next_start(demo_copy), fresh(demo_copy))


@pytest.mark.parametrize("write", [_cli_seed, _cli_import], ids=lambda f: f.__name__)
def test_a_seed_or_an_import_saves_the_snapshot_for_the_next_start(
    demo_copy: Path, run_cli: CliRunner, write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "SNAPSHOT_ROWS", 0)  # the seed's and import's own check
    write(run_cli, demo_copy)
    assert len(saved_files()) == 1
    built = fresh(demo_copy)
    monkeypatch.setattr(rec, "build_snapshot", lambda store: pytest.fail("built again"))
    assert_same(next_start(demo_copy), built)


def test_a_seed_too_large_to_build_leaves_it_to_the_first_start(
    demo_copy: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persist, "PREPARE_MAX_INTERACTIONS", 299)
    monkeypatch.setattr(tracking, "SNAPSHOT_ROWS", 0)
    _cli_seed(run_cli, demo_copy)  # 300 interactions
    assert saved_files() == []


# -- nothing in a cache file is trusted ---------------------------------------------------
def _saved(path: Path) -> tuple[Path, Snapshot]:
    snap = next_start(path)
    files = saved_files()
    assert len(files) == 1
    return files[0], snap


def _rewrite(target: Path, change: Callable[[dict[str, np.ndarray]], object]) -> None:
    with np.load(target, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    with open(target, "wb") as fh:
        np.savez(fh, **arrays)


def _plain_npy(target: Path) -> None:
    with open(target, "wb") as fh:
        np.save(fh, np.arange(10))


def _bad_index(a: dict[str, np.ndarray]) -> None:
    a["indices"] = a["indices"].copy()
    a["indices"][0] = 10**6


def _short_names(a: dict[str, np.ndarray]) -> None:
    a["usernames_len"] = a["usernames_len"][:-1]


def _other_key(a: dict[str, np.ndarray]) -> None:
    a["meta"] = a["meta"].copy()
    a["meta"][1] += 1


def _pickled(a: dict[str, np.ndarray]) -> None:
    a["user_ids"] = np.array([object()] * len(a["user_ids"]), dtype=object)


def _unsorted(a: dict[str, np.ndarray]) -> None:
    start, end = int(a["indptr"][0]), int(a["indptr"][-1])
    row = int(np.argmax(np.diff(a["indptr"])))
    lo, hi = int(a["indptr"][row]), int(a["indptr"][row + 1])
    assert hi - lo >= 2 and end > start
    a["indices"] = a["indices"].copy()
    a["indices"][lo : lo + 2] = a["indices"][lo : lo + 2][::-1]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"not a snapshot at all"),
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
        lambda p: p.write_bytes(b""),
        lambda p: _rewrite(p, _bad_index),
        lambda p: _rewrite(p, _short_names),
        lambda p: _rewrite(p, _other_key),
        lambda p: _rewrite(p, _pickled),
        lambda p: _rewrite(p, _unsorted),
        lambda p: _rewrite(p, lambda a: a.pop("indptr")),
        lambda p: _plain_npy(p),
    ],
    ids=[
        "garbage",
        "truncated",
        "empty",
        "index-out-of-range",
        "names-missing",
        "other-key",
        "pickled-objects",
        "unsorted-row",
        "array-missing",
        "plain-npy",
    ],
)
def test_a_damaged_or_foreign_file_is_ignored_and_removed(
    demo_copy: Path, damage: Callable[[Path], object]
) -> None:
    target, snap = _saved(demo_copy)
    damage(target)
    with open_store(demo_copy) as store:
        assert persist.load(store) is None
    assert not target.exists()
    assert_same(next_start(demo_copy), snap)  # built again from the database (and saved)
    assert saved_files() == [target]


def test_a_flipped_byte_is_caught(demo_copy: Path) -> None:
    target, _snap = _saved(demo_copy)
    with zipfile.ZipFile(target) as zf:
        info = zf.getinfo("data.npy")
    raw = bytearray(target.read_bytes())
    at = info.header_offset + 30 + len(info.filename) + info.compress_size - 1
    raw[at] ^= 0xFF  # the last byte of the matrix values: only the CRC can tell
    target.write_bytes(bytes(raw))
    with open_store(demo_copy) as store:
        assert persist.load(store) is None


def test_an_unusable_cache_folder_only_costs_time(
    demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert_same(next_start(demo_copy), fresh(demo_copy))
    assert persist.save(fresh(demo_copy)) is None


def test_only_the_most_recently_used_files_are_kept(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persist, "KEEP", 2)
    with open_store(demo_copy) as store:
        for k in range(4):
            tracking.log_interaction(store, 1, 1 + k, "view")
            persist.save(build_snapshot(store))
        assert len(saved_files()) == 2
        assert persist.load(store) is not None  # the newest is one of them


def test_tui_starts_loading_early_on_a_large_database(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui import data

    with open_store(demo_copy) as store:
        backend = data.Backend(store)
        backend.start_early()  # the demo is small: nothing started
        assert backend._recommender is None
        monkeypatch.setattr(data, "EARLY_START_ROWS", 1)
        backend.start_early()
        for thread in threading.enumerate():
            if thread.name == "early-start":
                thread.join(30)
        engine = backend._recommender
        assert engine is not None and engine._rebuild is not None
        engine._rebuild.join(30)
        monkeypatch.setattr(rec, "build_snapshot", lambda store: pytest.fail("built again"))
        assert engine.snapshot().revision == store.revision("catalog")
        backend.close()


def test_an_updated_snapshot_is_saved_after_a_pause_not_on_close(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rec, "SAVE_AFTER_IDLE", 0.2)
    with open_store(demo_copy) as store:
        engine = Recommender(store, background=True)
        engine.snapshot(wait=True)
        tracking.log_interaction(store, 1, 3, "click")  # applied row by row
        updated = engine.snapshot()
        assert updated.revision == store.revision("catalog")
        timer = engine._save_timer
        assert timer is not None
        timer.join(30)
        saved = persist.load(store)
        assert saved is not None
        assert_same(saved, updated)
        assert_same(saved, fresh(demo_copy))
        # Within a minute of that save the next one waits (tens of MB per save at 1M).
        tracking.log_interaction(store, 2, 5, "view")
        engine.snapshot()
        timer = engine._save_timer
        assert timer is not None and timer.interval > 30
        files = saved_files()
        engine.close()  # quitting does not wait for a save
        assert engine._save_timer is None and timer.finished.is_set()
    assert saved_files() == files
    with open_store(demo_copy) as store:  # the last write was not saved: applied next time
        loaded = persist.load(store)
    assert loaded is not None
    assert_same(loaded, fresh(demo_copy))
    assert saved_files() == files


# -- the times read on a second connection ---------------------------------------------------
def test_times_read_beside_give_the_same_snapshot(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smart_suggest.recommend import snapshot as snapshot_module

    with open_store(demo_copy) as store:
        tracking.log_interaction(store, 1, 2, "view")  # times are whole seconds either way
        monkeypatch.setattr(snapshot_module, "PARALLEL_TIMES_ROWS", 10**9)
        alone = build_snapshot(store)
        monkeypatch.setattr(snapshot_module, "PARALLEL_TIMES_ROWS", 0)
        started: list[object] = []
        real = snapshot_module._TimesBeside

        def spy(path: Path, key: tuple[int, int]) -> object:
            started.append(key)
            return real(path, key)

        monkeypatch.setattr(snapshot_module, "_TimesBeside", spy)
        beside = build_snapshot(store)
        assert started == [store.revision_stamp()]
        assert_same(beside, alone)

        # The other connection sees other data (here: a key that is not the file's): its
        # times are not used, and the build reads them itself.
        monkeypatch.setattr(
            snapshot_module, "_TimesBeside", lambda path, key: real(path, (key[0], key[1] + 1))
        )
        assert_same(build_snapshot(store), alone)
