"""CSV import: formats, identifiers, rating mapping, errors that write nothing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from smart_suggest import tracking
from smart_suggest.errors import InputError
from smart_suggest.importer import import_interactions, rating_action
from smart_suggest.store import Store


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def interactions(store: Store) -> list[tuple[int, int, str, float]]:
    return store.conn.execute(
        "SELECT user_id, item_id, action, ts FROM interactions ORDER BY id"
    ).fetchall()


def test_rating_mapping() -> None:
    assert [rating_action(r) for r in (5, 4, 4.5, 3.5, 3, 2.5, 1, 0)] == [
        "purchase",
        "purchase",
        "purchase",
        "click",
        "click",
        "view",
        "view",
        "view",
    ]


def test_movielens_style_ratings_with_header(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,10,5,978300760\n1,20,3,978300761\n2,10,2.5,978300762\n",
    )
    report = import_interactions(store, path)
    assert (report.rows, report.users_created, report.items_created) == (3, 2, 2)
    assert report.header and report.user_ids == "id"
    assert report.columns == {"user": 0, "item": 1, "action": None, "rating": 2, "timestamp": 3}
    assert interactions(store) == [
        (1, 10, "purchase", 978300760.0),
        (1, 20, "click", 978300761.0),
        (2, 10, "view", 978300762.0),
    ]
    assert tracking.get_user(store, 2).username == "2"
    item = tracking.get_item(store, 20)
    assert (item.name, item.category) == ("item 20", "unknown")


def test_items_file_gives_names_categories_and_descriptions(store: Store, tmp_path: Path) -> None:
    tracking.add_item(store, "Old name", "old", "old text", item_id=1)
    items = write(
        tmp_path / "movies.csv",
        'movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,"Heat, The",Action\n'
        "3,Never Rated,Drama\n",
    )
    ratings = write(tmp_path / "r.csv", "user,item\n5,1\n5,2\n")
    report = import_interactions(store, ratings, items_path=items)
    assert (report.items_created, report.items_updated) == (2, 1)
    toy = tracking.get_item(store, 1)
    assert (toy.name, toy.category, toy.description) == (
        "Toy Story (1995)",
        "Animation|Comedy",
        "Animation Comedy",
    )
    assert tracking.get_item(store, 2).name == "Heat, The"
    assert tracking.get_item(store, 3).category == "Drama"  # listed, never rated: cold item
    assert [a for _, _, a, _ in interactions(store)] == ["view", "view"]  # no action column


def test_headerless_tab_and_double_colon_files(store: Store, tmp_path: Path) -> None:
    tab = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t4\t891717742\n")
    import_interactions(store, tab)
    dat = write(tmp_path / "ratings.dat", "1::1193::5::978300760\r\n1::661::1::978302109\r\n")
    report = import_interactions(store, dat)
    assert not report.header and report.columns["rating"] == 2
    assert interactions(store) == [
        (196, 242, "click", 881250949.0),
        (186, 302, "purchase", 891717742.0),
        (1, 1193, "purchase", 978300760.0),
        (1, 661, "view", 978302109.0),
    ]


def test_named_users_actions_and_iso_times(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "events.csv",
        "\ufeffUser_ID;Item;Action;ts\r\nalice;1;View;2024-01-02T03:04:05Z\r\n"
        "7;2;purchase;1700000000\r\n\r\nbob;1;click;2024-01-02 00:00:00\r\n",
    )
    report = import_interactions(store, path)
    assert report.user_ids == "mixed"
    # The numeric user keeps its id; named users get fresh ids that cannot take it.
    alice, seven, bob = (tracking.get_user(store, n) for n in ("alice", "7", "bob"))
    assert seven.id == 7 and alice.id == 8 and bob.id == 9
    rows = interactions(store)
    assert rows[0] == (8, 1, "view", 1704164645.0)
    assert rows[1] == (7, 2, "purchase", 1700000000.0)
    assert rows[2][:3] == (9, 1, "click")


def test_existing_users_and_items_are_reused(demo_store: Store, tmp_path: Path) -> None:
    before = demo_store.counts()
    path = write(tmp_path / "more.csv", "user,item,action\n1,5,view\nbob,6,click\n")
    report = import_interactions(demo_store, path)
    assert (report.users_created, report.items_created) == (0, 0)
    after = demo_store.counts()
    assert after["interactions"] == before["interactions"] + 2
    assert after["users"] == before["users"]
    last = interactions(demo_store)[-2:]
    assert [(u, i, a) for u, i, a, _ in last] == [(1, 5, "view"), (2, 6, "click")]


def test_file_order_is_kept_without_timestamps(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "user,item\n1,3\n1,1\n1,2\n")
    import_interactions(store, path)
    assert [i for _, i, _, _ in interactions(store)] == [3, 1, 2]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("user,item,rating\n1,1,5\n2,2,4\n3,abc,5\n", 4, "item 'abc' is not a positive numeric id"),
        ("user,item,rating\n1,1,5\n2,0,4\n", 3, "item '0' is not a positive"),
        ("user,item,rating\n1,1,5\n2,2,good\n", 3, "rating 'good' is not a number"),
        ("user,item,rating\n1,1,nan\n", 2, "rating 'nan' is not a number"),
        ("user,item,action\n1,1,view\n1,2,like\n", 3, "unknown action 'like'"),
        ("user,item,ts\n1,1,yesterday\n", 2, "timestamp 'yesterday'"),
        ("user,item,rating\n1,1,5\n2,2\n", 3, "expected at least 3 fields, found 2"),
        ("user,item\n1,1\n,2\n", 3, "empty user"),
        ("user,rating\n1,5\n", 1, "the header has no item column"),
        ("1\n", 1, "need at least a user and an item column"),
    ],
)
def test_bad_rows_report_the_line_and_write_nothing(
    demo_store: Store, tmp_path: Path, db_rows, text: str, line: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path / "bad.csv", text)
    before = db_rows(demo_store.path)
    revision = demo_store.revision()
    with pytest.raises(InputError) as err:
        import_interactions(demo_store, path)
    assert f"bad.csv:{line}:" in str(err.value) and message in str(err.value)
    assert db_rows(demo_store.path) == before
    assert demo_store.revision() == revision


@pytest.mark.parametrize(
    ("items_text", "message"),
    [
        ("id,name,category\n1,A,x\n1,B,y\n", "items.csv:3: item 1 is listed twice"),
        ("id,name\nx1,A\n", "items.csv:2: item id 'x1' is not a positive number"),
        ("name,category\nA,x\n", "items.csv:1: the header has no id column"),
    ],
)
def test_bad_items_file_writes_nothing(
    store: Store, tmp_path: Path, db_rows, items_text: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    items = write(tmp_path / "items.csv", items_text)
    ratings = write(tmp_path / "r.csv", "user,item\n1,1\n")
    before = db_rows(store.path)
    with pytest.raises(InputError, match=message):
        import_interactions(store, ratings, items_path=items)
    assert db_rows(store.path) == before


def test_numeric_user_whose_name_is_taken(store: Store, tmp_path: Path) -> None:
    # A name that is an id can no longer be added, but an older database may hold one.
    store.conn.execute("INSERT INTO users(id, username, created_at) VALUES (3, '7', 0)")
    path = write(tmp_path / "r.csv", "user,item\n3,1\n7,1\n")
    with pytest.raises(InputError, match=r"r.csv:3: new user 7 .* belongs to user 3"):
        import_interactions(store, path)
    assert store.counts()["interactions"] == 0


def test_unreadable_files(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        import_interactions(store, tmp_path / "missing.csv")
    with pytest.raises(InputError, match="empty"):
        import_interactions(store, write(tmp_path / "e.csv", ""))
    with pytest.raises(InputError, match="only a header"):
        import_interactions(store, write(tmp_path / "h.csv", "user,item\n"))
    with pytest.raises(InputError, match="UTF-8"):
        import_interactions(store, write(tmp_path / "l.csv", "user,item\nJosé,1\n", "latin-1"))


def test_large_import_restores_indexes_triggers_and_bumps_the_revision(
    store: Store, tmp_path: Path
) -> None:
    schema = store.conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'interactions' ORDER BY 2"
    ).fetchall()
    revision = store.revision()
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["user", "item", "action", "ts"])
    out.writerows((u % 97 + 1, u % 89 + 1, "view", 1000 + u) for u in range(60_000))
    report = import_interactions(store, write(tmp_path / "big.csv", buf.getvalue()))
    assert report.interactions == 60_000
    assert store.counts()["interactions"] == 60_000
    assert store.revision() > revision
    after = store.conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'interactions' ORDER BY 2"
    ).fetchall()
    assert after == schema
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    revision = store.revision()
    tracking.log_interaction(store, 1, 1, "click")  # the trigger is back
    assert store.revision() == revision + 1


# -- the command line ------------------------------------------------------------------------
def test_import_command_and_export_with_the_same_identifiers(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "imp.db"
    items = write(
        tmp_path / "items.csv",
        "id,name,category,description\n"
        + "".join(f"{i},Item {i},{'ab'[i % 2]},word{i % 3} shared\n" for i in range(101, 111)),
    )
    rows = [
        f"u{u},{101 + (u * 7 + k) % 10},{1 + (u + k) % 5}\n" for u in range(8) for k in range(5)
    ]
    ratings = write(tmp_path / "ratings.csv", "user,item,rating\n" + "".join(rows))
    code, out, err = run_cli("import", ratings, "--items", items, "--db", db, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["interactions"] == 40 and report["users_created"] == 8
    assert report["items_created"] == 10 and report["user_ids"] == "name"
    code, out, err = run_cli("import", ratings, "--db", db)
    assert code == 0 and "Imported 40 interactions" in out
    assert "--user-key username" in err
    code, out, err = run_cli(
        "recommend", "--all-users", "--user-key", "username", "-n", "3", "--db", db
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "user,item_id,rank,score"
    users = {line.split(",")[0] for line in lines[1:]}
    item_ids = {int(line.split(",")[1]) for line in lines[1:]}
    assert users == {f"u{u}" for u in range(8)}
    assert item_ids <= set(range(101, 111))


def test_import_command_bad_row(
    run_cli, demo_store: Store, db_path: Path, tmp_path: Path, db_rows
) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path / "bad.csv", "user,item,action\n1,2,view\n1,2,view\n1,x,view\n")
    before = db_rows(db_path)
    code, out, err = run_cli("import", path, "--db", db_path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "bad.csv:4:" in err
    assert db_rows(db_path) == before
    code, out, err = run_cli("import", tmp_path / "nope.csv", "--db", db_path)
    assert code == 2 and "no such file" in err
