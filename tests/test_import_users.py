"""Users files (MovieLens ``users.dat`` and ``u.user``, or any users file with a header):
users are created with their ids and every attribute lands where it belongs, or nothing
is written at all."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from smart_suggest import tracking
from smart_suggest.errors import InputError
from smart_suggest.importer import import_interactions
from smart_suggest.store import Store, open_store


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def attributes(store: Store) -> list[tuple[int, str, str, int]]:
    return store.conn.execute(
        "SELECT user_id, name, value, position FROM user_attributes ORDER BY user_id, position"
    ).fetchall()


def users(store: Store) -> list[tuple[int, str]]:
    return store.conn.execute("SELECT id, username FROM users ORDER BY id").fetchall()


def ml1m(folder: Path, users_dat: str) -> Path:
    folder.mkdir(exist_ok=True)
    write(folder / "movies.dat", "1::Toy Story (1995)::Animation|Comedy\n2::Heat (1995)::Action\n")
    write(folder / "users.dat", users_dat, "latin-1")
    return write(folder / "ratings.dat", "1::1::5::978300760\n2::2::3::978302109\n")


def ml100k(folder: Path, u_user: str) -> Path:
    folder.mkdir(exist_ok=True)
    write(folder / "u.user", u_user, "latin-1")
    return write(folder / "u.data", "1\t1\t3\t881250949\n2\t1\t4\t891717742\n")


def test_movielens_1m_users_dat_beside_the_ratings(store: Store, tmp_path: Path) -> None:
    data = ml1m(
        tmp_path / "ml",
        "1::F::1::10::48067\n2::M::56::16::70072\n\n3::M::25::0::98107-2117\n",
    )
    report = import_interactions(store, data)
    assert "+ users.dat (3 users: gender, age group, occupation, zip code)" in report.message
    # User 3 rated nothing and is created all the same, with the id the file gives.
    assert users(store) == [(1, "1"), (2, "2"), (3, "3")]
    assert report.users_created == 3 and report.users_described == 3
    assert report.user_attributes == ("gender", "age", "occupation", "zip_code")
    # Codes become what the MovieLens README says they stand for.
    assert attributes(store) == [
        (1, "gender", "F", 0),
        (1, "age", "under 18", 1),
        (1, "occupation", "K-12 student", 2),
        (1, "zip_code", "48067", 3),
        (2, "gender", "M", 0),
        (2, "age", "56+", 1),
        (2, "occupation", "self-employed", 2),
        (2, "zip_code", "70072", 3),
        (3, "gender", "M", 0),
        (3, "age", "25-34", 1),
        (3, "occupation", "other", 2),
        (3, "zip_code", "98107-2117", 3),
    ]
    assert tracking.profile(store, 2).attributes == {
        "gender": "M",
        "age": "56+",
        "occupation": "self-employed",
        "zip_code": "70072",
    }


def test_movielens_100k_u_user_beside_u_data(store: Store, tmp_path: Path) -> None:
    data = ml100k(
        tmp_path / "ml",
        "1|24|M|technician|85711\n2|53|F|other|94043\n7|57|M|administrator|T8H1N\n",
    )
    report = import_interactions(store, data)
    assert "+ u.user (3 users: age, gender, occupation, zip code)" in report.message
    assert users(store) == [(1, "1"), (2, "2"), (7, "7")]
    assert tracking.profile(store, 7).attributes == {
        "age": "57",
        "gender": "M",
        "occupation": "administrator",
        "zip_code": "T8H1N",
    }
    assert [r[3] for r in attributes(store) if r[0] == 1] == [0, 1, 2, 3]


def test_a_users_file_given_explicitly_stores_every_column(store: Store, tmp_path: Path) -> None:
    ratings = write(tmp_path / "ratings.csv", "user,item\nalice,1\n5,2\n")
    people = write(
        tmp_path / "people.csv",
        "username,Country,Plan Type\nbob,NL,free\nalice,,pro\n5,FR,free\n",
    )
    report = import_interactions(store, ratings, users_path=people)
    assert "+ people.csv (3 users: country, plan_type)" in report.message
    ids = dict((name, uid) for uid, name in users(store))
    # Named users get fresh ids after every numeric one; 5 keeps its id.
    assert ids == {"5": 5, "bob": 6, "alice": 7}
    assert attributes(store) == [
        (5, "country", "FR", 0),
        (5, "plan_type", "free", 1),
        (6, "country", "NL", 0),
        (6, "plan_type", "free", 1),
        (7, "plan_type", "pro", 0),  # alice's empty country says nothing: no row
    ]
    alice = store.conn.execute("SELECT user_id FROM interactions WHERE item_id = 1").fetchone()
    assert alice == (7,)


def test_importing_users_again_replaces_their_attributes(store: Store, tmp_path: Path) -> None:
    data = ml1m(tmp_path / "a", "1::F::1::10::48067\n2::M::56::16::70072\n")
    import_interactions(store, data)
    data = ml1m(tmp_path / "b", "1::F::18::4::10001\n")
    report = import_interactions(store, data)
    assert report.users_created == 0 and report.users_described == 1
    assert tracking.profile(store, 1).attributes["age"] == "18-24"
    assert tracking.profile(store, 1).attributes["occupation"] == "college/grad student"
    assert tracking.profile(store, 2).attributes["age"] == "56+"  # not in the file: kept


@pytest.mark.parametrize(
    ("users_dat", "message"),
    [
        ("1::F::1::10::48067\n2::M::30::16::70072\n", "users.dat:2: age '30' is not a MovieLens"),
        ("1::F::1::10::48067\n2::M::56::21::70072\n", "users.dat:2: occupation '21' is not"),
        ("1::F::1::10::48067\n2::X::56::1::70072\n", "users.dat:2: gender 'X' is not M or F"),
        ("1::F::1::10::48067\n2::M::56::1\n", "users.dat:2: expected UserID::Gender::Age"),
        ("1::F::1::10::48067\n01::M::56::1::1\n", "users.dat:2: user '01' is listed twice"),
        ("1::F::1::10::48067\n2::M::56::1::\n", "users.dat:2: zip code '' is empty"),
    ],
)
def test_a_bad_users_dat_line_is_named_and_nothing_is_written(
    run_cli, tmp_path: Path, users_dat: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    data = ml1m(tmp_path / "ml", users_dat)
    db = tmp_path / "new.db"
    code, _, err = run_cli("import", data, "--db", db)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not db.exists()


def test_a_failed_import_leaves_existing_attributes_unchanged(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "shop.db"
    assert run_cli("import", ml1m(tmp_path / "a", "1::F::1::10::48067\n"), "--db", db)[0] == 0
    before = sqlite3.connect(db).execute("SELECT * FROM user_attributes ORDER BY 1, 2").fetchall()
    bad = ml1m(tmp_path / "b", "1::M::25::1::1\n")
    write(bad, "1::1::5::978300760\n2::x::3::1\n")  # a bad item on line 2 of the ratings
    code, _, err = run_cli("import", bad, "--db", db)
    assert code == 2 and "ratings.dat:2:" in err
    after = sqlite3.connect(db).execute("SELECT * FROM user_attributes ORDER BY 1, 2").fetchall()
    assert after == before and ("1", "gender", "F") in [(str(a), b, c) for a, b, c, _ in after]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,NL\n2,FR\n", "needs a header naming its columns"),
        ("country,plan\nNL,free\n", "the header has no user column"),
        ("user,plan,Plan\n1,a,b\n", "two columns named 'Plan'"),
        ("user,plan\n1,a\n1,b\n", "people.csv:3: user '1' is listed twice (first on line 2)"),
    ],
)
def test_a_users_file_that_cannot_be_read_is_refused(
    store: Store, tmp_path: Path, text: str, message: str
) -> None:
    ratings = write(tmp_path / "ratings.csv", "user,item\n1,1\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_interactions(store, ratings, users_path=write(tmp_path / "people.csv", text))
    assert users(store) == [] and attributes(store) == []


def test_users_show_and_json_carry_the_attributes(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "ml.db"
    data = ml100k(tmp_path / "ml", "1|24|M|technician|85711\n2|53|F|[red]x[/red]|94043\n")
    code, out, _ = run_cli("import", data, "--db", db)
    assert (
        code == 0 and "Stored the attributes of 2 users (age, gender, occupation, zip code)" in out
    )
    code, out, _ = run_cli("users", "show", "1", "--db", db)
    assert code == 0 and "age 24, gender M, occupation technician, zip code 85711" in out
    code, out, _ = run_cli("users", "show", "2", "--db", db)
    assert "occupation [red]x[/red]" in out  # user data is never read as markup
    code, out, _ = run_cli("users", "show", "1", "--db", db, "--json")
    assert json.loads(out)["profile"]["attributes"]["zip_code"] == "85711"


def test_no_check_constraint_stays_off_after_an_import(store: Store, tmp_path: Path) -> None:
    # The importer switches SQLite's CHECK constraints off for its own inserts only.
    import_interactions(store, write(tmp_path / "r.csv", "user,item\n1,1\n"))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"), store.write() as conn:
        conn.execute("INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 1, 'x', 1)")
    with pytest.raises(InputError):
        import_interactions(store, write(tmp_path / "bad.csv", "user,item\n1,x\n"))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"), store.write() as conn:
        conn.execute("INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 1, 'x', 1)")


def test_user_attributes_survive_export_and_import_all(tmp_path: Path) -> None:
    from smart_suggest.portability import export_all, import_all

    with open_store(tmp_path / "a.db") as store:
        import_interactions(store, ml1m(tmp_path / "ml", "1::F::1::10::48067\n"))
        before = attributes(store)
        export_all(store, tmp_path / "export")
    with open_store(tmp_path / "b.db") as store:
        import_all(store, tmp_path / "export")
        assert attributes(store) == before and len(before) == 4


def test_user_attributes_are_recovered_from_a_database_file(tmp_path: Path) -> None:
    from smart_suggest.integrity import recover

    with open_store(tmp_path / "a.db") as store:
        import_interactions(store, ml1m(tmp_path / "ml", "1::F::1::10::48067\n9::M::50::3::1\n"))
        before = attributes(store)
    report = recover(tmp_path / "a.db", tmp_path / "b.db")
    assert report.tables["user_attributes"] == 8 and not report.lost
    with open_store(tmp_path / "b.db") as store:
        assert attributes(store) == before
