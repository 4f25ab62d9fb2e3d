"""Import of the layouts people have: every value lands where it belongs, or nothing does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart_suggest import tracking
from smart_suggest.errors import InputError
from smart_suggest.importer import ColumnOptions, import_interactions
from smart_suggest.store import Store

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rows(store: Store) -> list[tuple[int, int, str, float]]:
    return store.conn.execute(
        "SELECT user_id, item_id, action, ts FROM interactions ORDER BY id"
    ).fetchall()


def item(store: Store, item_id: int) -> tuple[str, tuple[str, ...], str]:
    it = tracking.get_item(store, item_id)
    return it.name, it.categories, it.description


def flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


def ml100k(folder: Path) -> Path:
    folder.mkdir()
    write(folder / "u.genre", "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)) + "\n")
    write(
        folder / "u.item",
        f"1|Toy Story (1995)|01-Jan-1995||http://imdb/Toy|{flags('Animation', 'Comedy')}\n"
        f"2|Amélie (2001)|25-Apr-2001||http://imdb/Am%E9lie|{flags('Comedy', 'Romance')}\n"
        f"3|Nothing Known (1990)|||http://imdb/x|{flags('unknown')}\n",
        "latin-1",
    )
    return write(folder / "u.data", "196\t1\t3\t881250949\n186\t2\t4\t891717742\n22\t3\t1\t1\n")


def test_movielens_100k_trio(store: Store, tmp_path: Path) -> None:
    report = import_interactions(store, ml100k(tmp_path / "ml"))
    assert report.layout == "MovieLens 100K"
    assert report.message.startswith("Detected MovieLens 100K: u.data")
    assert "u.genre" in report.message and "not stored" in report.message
    assert rows(store) == [
        (196, 1, "click", 881250949.0),
        (186, 2, "purchase", 891717742.0),
        (22, 3, "view", 1.0),
    ]
    assert item(store, 1) == ("Toy Story (1995)", ("Animation", "Comedy"), "")
    assert item(store, 2) == ("Amélie (2001)", ("Comedy", "Romance"), "")  # Latin-1 read
    assert item(store, 3) == ("Nothing Known (1990)", (), "")  # the "unknown" flag: none
    assert tracking.get_item(store, 1).category == "Animation"


def test_movielens_100k_genres_from_another_folder(store: Store, tmp_path: Path) -> None:
    data = ml100k(tmp_path / "ml")
    moved = tmp_path / "genres.txt"
    (tmp_path / "ml" / "u.genre").rename(moved)
    with pytest.raises(InputError, match=r"u\.item: .*--genres FILE"):
        import_interactions(store, data)
    assert store.counts()["interactions"] == 0
    import_interactions(store, tmp_path / "ml", options=ColumnOptions(genres=moved))  # a folder
    assert item(store, 1)[1] == ("Animation", "Comedy")


def test_movielens_1m_double_colon_latin1(store: Store, tmp_path: Path) -> None:
    write(
        tmp_path / "movies.dat",
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Léon (1994)::Action|Crime|Drama\n",
        "latin-1",
    )
    write(tmp_path / "users.dat", "1::F::1::10::48067\n")
    data = write(tmp_path / "ratings.dat", "1::1::5::978300760\n1::2::3::978302109\n")
    report = import_interactions(store, data)
    assert report.layout == "MovieLens 1M" and "users.dat (1 users" in report.message
    assert rows(store) == [(1, 1, "purchase", 978300760.0), (1, 2, "click", 978302109.0)]
    assert item(store, 2) == ("Léon (1994)", ("Action", "Crime", "Drama"), "")


def test_current_release_pair_with_half_stars(store: Store, tmp_path: Path) -> None:
    write(
        tmp_path / "movies.csv",
        'movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama|Romance\n'
        "2,Empty (2020),(no genres listed)\n",
    )
    data = write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.5,964982703\n1,2,3.5,964981247\n2,1,2.5,1\n",
    )
    report = import_interactions(store, data)
    assert report.layout == "MovieLens (current release)" and "movies.csv" in report.message
    assert rows(store) == [
        (1, 1, "purchase", 964982703.0),
        (1, 2, "click", 964981247.0),
        (2, 1, "view", 1.0),
    ]
    assert item(store, 1) == ("American President, The (1995)", ("Comedy", "Drama", "Romance"), "")
    assert item(store, 2) == ("Empty (2020)", (), "")


def test_weight_column_is_read_as_weights(store: Store, tmp_path: Path) -> None:
    data = write(tmp_path / "w.csv", "user,item,weight\n1,1,1\n1,2,3\n1,3,5\n1,4,2\n1,5,7.5\n")
    report = import_interactions(store, data)
    assert report.value_as == "weight" and report.columns["value"] == "weight"
    assert [a for _, _, a, _ in rows(store)] == ["view", "click", "purchase", "view", "purchase"]


def test_value_as_overrides_the_column_name(store: Store, tmp_path: Path) -> None:
    data = write(tmp_path / "c.csv", "user,item,count\n1,1,4\n")
    import_interactions(store, data, options=ColumnOptions(value_as="rating"))
    assert rows(store)[0][2] == "purchase"  # as a rating 4 is loved; as a weight a click


def test_zero_weight_is_refused(store: Store, tmp_path: Path) -> None:
    data = write(tmp_path / "w.csv", "user,item,value\n1,1,2\n1,2,0\n")
    with pytest.raises(InputError, match=r"w\.csv:3: weight '0' is not positive"):
        import_interactions(store, data)
    assert store.counts()["interactions"] == 0


def test_unknown_column_is_named_then_ignored_or_used(store: Store, tmp_path: Path) -> None:
    data = write(tmp_path / "f.csv", "user,item,rating,foo\n1,1,5,x\n2,1,1,y\n")
    with pytest.raises(InputError) as err:
        import_interactions(store, data)
    assert "f.csv:1: unknown column 'foo'" in str(err.value)
    assert "--ignore-col 'foo'" in str(err.value) and "--value-col" in str(err.value)
    import_interactions(store, data, options=ColumnOptions(ignore=("foo",)))
    assert [a for _, _, a, _ in rows(store)] == ["purchase", "view"]


def test_two_value_columns_must_be_chosen(store: Store, tmp_path: Path) -> None:
    data = write(tmp_path / "two.csv", "user,item,action,rating\n1,1,view,5\n")
    with pytest.raises(InputError, match="two value columns, 'action' and 'rating'"):
        import_interactions(store, data)
    import_interactions(store, data, options=ColumnOptions(value_col="rating", ignore=("action",)))
    assert rows(store)[0][2] == "purchase"


def test_columns_chosen_by_name_and_number(store: Store, tmp_path: Path) -> None:
    named = write(tmp_path / "n.csv", "who,what,stars_given,when\nann,7,4,2024-01-01T00:00:00Z\n")
    import_interactions(
        store,
        named,
        options=ColumnOptions(
            user_col="who",
            item_col="what",
            value_col="stars_given",
            time_col="when",
            value_as="rating",
        ),
    )
    ann = tracking.get_user(store, "ann")
    assert rows(store) == [(ann.id, 7, "purchase", 1704067200.0)]
    plain = write(tmp_path / "p.tsv", "12\t9\tx\t3\n")  # no header: item, user, -, weight
    import_interactions(
        store,
        plain,
        options=ColumnOptions(
            user_col="2", item_col="1", value_col="4", value_as="weight", ignore=("3",)
        ),
    )
    assert tracking.get_user(store, "9").id == 9
    assert rows(store)[-1][:3] == (9, 12, "click")


def test_bad_byte_on_line_3_names_the_line_and_writes_nothing(
    demo_store: Store, tmp_path: Path, db_rows
) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "bad.csv"
    data.write_bytes(b"user,item,rating\n1,1,5\nJos\xe9,2,4\n")
    before = db_rows(demo_store.path)
    with pytest.raises(InputError) as err:
        import_interactions(demo_store, data)
    assert "bad.csv:3: not valid utf-8 text (byte 0xE9 in column 4)" in str(err.value)
    assert "--encoding" in str(err.value)
    assert db_rows(demo_store.path) == before
    import_interactions(demo_store, data, options=ColumnOptions(encoding="latin-1"))
    assert tracking.get_user(demo_store, "José")


def test_a_failure_late_in_a_large_file_rolls_everything_back(
    demo_store: Store, tmp_path: Path, db_rows
) -> None:  # type: ignore[no-untyped-def]
    lines = "".join(f"u{k % 300},{k % 50 + 1},{k % 5 + 1}\n" for k in range(120_000))
    data = write(tmp_path / "big.csv", "user,item,rating\n" + lines + "z,1,oops\n")
    before = db_rows(demo_store.path)
    with pytest.raises(InputError, match=r"big\.csv:120002: rating 'oops'"):
        import_interactions(demo_store, data)
    assert db_rows(demo_store.path) == before


def test_named_users_streamed_get_ids_no_later_number_takes(store: Store, tmp_path: Path) -> None:
    data = write(tmp_path / "m.csv", "user,item\nann,1\n1,1\nbob,2\n3,2\nann,3\n")
    import_interactions(store, data)
    ann, bob = tracking.get_user(store, "ann"), tracking.get_user(store, "bob")
    assert (ann.id, bob.id) == (4, 5)  # after 1 and 3, the largest numeric id in the file
    assert [u for u, _, _, _ in rows(store)] == [4, 1, 5, 3, 4]
    assert (
        store.conn.execute("SELECT count(*) FROM interactions WHERE user_id < 0").fetchone()[0] == 0
    )


# -- the command line ------------------------------------------------------------------------
def test_failed_import_leaves_no_new_database(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "bad.csv"
    data.write_bytes(b"user,item\n1,1\n2,\xff\n")
    db = tmp_path / "new.db"
    code, out, err = run_cli("import", data, "--db", db)
    assert code == 2 and out == "" and err.count("\n") == 1 and "bad.csv:3:" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]
    code, out, err = run_cli(
        "import", write(tmp_path / "x.csv", "user,item,foo\n1,1,2\n"), "--db", db
    )
    assert code == 2 and "unknown column 'foo'" in err and not db.exists()


def test_cli_flags_and_detection_line(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "t.db"
    data = write(tmp_path / "t.csv", "customer,sku,qty,extra\nann,5,3,zz\n")
    code, out, err = run_cli(
        "import",
        data,
        "--item-col",
        "sku",
        "--value-col",
        "qty",
        "--value-as",
        "weight",
        "--ignore-col",
        "extra",
        "--db",
        db,
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["columns"] == {"user": "customer", "item": "sku", "value": "qty"}
    assert report["value_as"] == "weight" and report["interactions"] == 1
    code, out, err = run_cli("import", data, "--ignore-col", "extra", "--db", db)
    assert code == 2 and "unknown column 'sku'" in err
    code, out, err = run_cli("import", data, "--value-as", "stars", "--db", db)
    assert code == 2 and "unknown --value-as 'stars'" in err


def test_sample_files_import_as_the_readme_says(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "ml100k.db"
    code, out, err = run_cli("import", SAMPLE / "ml-100k" / "u.data", "--db", db)
    assert code == 0, err
    assert "Detected MovieLens 100K" in err and "Imported 80 interactions" in out
    assert "u.user (12 users: age, gender, occupation, zip code)" in " ".join(err.split())
    code, out, _ = run_cli("items", "show", "6", "--db", db)
    assert "Amélie (2001)" in out and "Comedy|Romance" in out
    code, out, _ = run_cli("users", "show", "5", "--db", db)
    assert "age 27, gender F, occupation programmer, zip code 50005" in out
    db2 = tmp_path / "latest.db"
    ratings = SAMPLE / "ml-latest" / "ratings.csv"
    code, out, err = run_cli(
        "import", ratings, "--items", SAMPLE / "ml-latest" / "movies.csv", "--db", db2
    )
    assert code == 0, err
    assert "Detected MovieLens (current release)" in err
    code, out, _ = run_cli("items", "list", "--db", db2, "--json")
    items = {i["id"]: i for i in json.loads(out)}
    assert len(items) == 16 and items[14]["categories"] == [
        "Action",
        "Adventure",
        "Romance",
        "Sci-Fi",
        "War",
    ]
    assert items[16]["categories"] == [] and items[16]["category"] == "unknown"
