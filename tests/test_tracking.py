"""Tracking core: users, items, interactions, history, item stats, profiles."""

from __future__ import annotations

import pytest

from smart_suggest import tracking
from smart_suggest.errors import InputError, NotFoundError
from smart_suggest.store import Store


def test_weights_are_view1_click3_purchase5() -> None:
    assert tracking.ACTION_WEIGHTS == {"view": 1, "click": 3, "purchase": 5}
    assert "WHEN 'purchase' THEN 5" in tracking.WEIGHT_SQL


def test_add_and_resolve_users_by_id_or_name(store: Store) -> None:
    alice = tracking.add_user(store, "alice")
    bob = tracking.add_user(store, "bob")
    assert tracking.get_user(store, "alice") == alice
    assert tracking.get_user(store, str(bob.id)) == bob
    assert tracking.get_user(store, bob.id) == bob
    assert [u.username for u in tracking.list_users(store)] == ["alice", "bob"]
    assert [u.username for u in tracking.search_users(store, "LI")] == ["alice"]


def test_numeric_username_is_refused_and_an_old_one_still_found(store: Store) -> None:
    # Ids are looked up first: a user named "2024" would be shadowed once id 2024 exists.
    with pytest.raises(InputError, match="must not be all digits"):
        tracking.add_user(store, "2024")
    store.conn.execute("INSERT INTO users(username, created_at) VALUES ('2024', 0)")  # older db
    u = tracking.get_user(store, "2024")
    assert u.username == "2024"  # no user with id 2024: found by name


@pytest.mark.parametrize("bad", ["", "   ", "\t"])
def test_empty_names_rejected(store: Store, bad: str) -> None:
    with pytest.raises(InputError, match="must not be empty"):
        tracking.add_user(store, bad)
    with pytest.raises(InputError, match="must not be empty"):
        tracking.add_item(store, bad, "books")
    with pytest.raises(InputError, match="must not be empty"):
        tracking.add_item(store, "x", bad)
    assert store.is_empty()


def test_duplicate_username_rejected(store: Store) -> None:
    tracking.add_user(store, "alice")
    with pytest.raises(InputError, match="already exists"):
        tracking.add_user(store, "alice")
    assert store.scalar("SELECT count(*) FROM users") == 1


def test_unknown_refs(store: Store) -> None:
    with pytest.raises(NotFoundError):
        tracking.get_user(store, "ghost")
    with pytest.raises(NotFoundError):
        tracking.get_item(store, 5)
    with pytest.raises(NotFoundError, match="numeric id"):
        tracking.get_item(store, "abc")


def test_log_history_newest_first_and_limit(store: Store) -> None:
    u = tracking.add_user(store, "u")
    a = tracking.add_item(store, "A", "books", "a book")
    b = tracking.add_item(store, "B", "sports", "a ball")
    tracking.log_interaction(store, "u", a.id, "view", ts=100.0)
    tracking.log_interaction(store, u.id, b.id, "purchase", ts=300.0)
    tracking.log_interaction(store, "u", a.id, "click", ts=200.0)
    hist = tracking.history(store, "u")
    assert [(h.item_id, h.action) for h in hist] == [
        (b.id, "purchase"),
        (a.id, "click"),
        (a.id, "view"),
    ]
    assert len(tracking.history(store, "u", limit=2)) == 2


def test_log_rejects_bad_action_and_writes_nothing(store: Store) -> None:
    tracking.add_user(store, "u")
    it = tracking.add_item(store, "A", "books")
    with pytest.raises(InputError, match="unknown action"):
        tracking.log_interaction(store, "u", it.id, "like")
    with pytest.raises(NotFoundError):
        tracking.log_interaction(store, "u", 999, "view")
    with pytest.raises(NotFoundError):
        tracking.log_interaction(store, "nobody", it.id, "view")
    assert store.scalar("SELECT count(*) FROM interactions") == 0


def test_item_stats_counts_per_action(store: Store) -> None:
    tracking.add_user(store, "u")
    tracking.add_user(store, "v")
    it = tracking.add_item(store, "A", "books")
    for user, action in [("u", "view"), ("u", "view"), ("v", "click"), ("v", "purchase")]:
        tracking.log_interaction(store, user, it.id, action)
    stats = tracking.item_stats(store, it.id)
    assert stats.actions == {"view": 2, "click": 1, "purchase": 1}
    assert stats.total == 4
    assert stats.users == 2
    assert stats.weighted_score == 2 * 1 + 3 + 5


def test_profile_ranks_by_weighted_score(store: Store) -> None:
    tracking.add_user(store, "u")
    book = tracking.add_item(store, "Book", "books")
    shoe = tracking.add_item(store, "Shoe", "sports")
    tv = tracking.add_item(store, "TV", "electronics")
    for _ in range(4):  # 4 views = weight 4
        tracking.log_interaction(store, "u", book.id, "view")
    tracking.log_interaction(store, "u", shoe.id, "purchase")  # weight 5
    tracking.log_interaction(store, "u", tv.id, "click")  # weight 3
    prof = tracking.profile(store, "u")
    assert prof.actions == {"view": 4, "click": 1, "purchase": 1}
    assert prof.total == 6
    assert [c.category for c in prof.categories] == ["sports", "books", "electronics"]
    assert [(i.name, i.weighted_score) for i in prof.top_items] == [
        ("Shoe", 5),
        ("Book", 4),
        ("TV", 3),
    ]
    assert prof.to_dict()["categories"][0] == {
        "category": "sports",
        "interactions": 1,
        "weighted_score": 5,
    }


def test_hostile_strings_stored_byte_for_byte(store: Store) -> None:
    name = "[bold red]x[/] \x1b]0;pwned\x07 \x1b[31m '; DROP TABLE users; -- \u202e ✨ שלום"
    u = tracking.add_user(store, name)
    it = tracking.add_item(store, name, name, name * 3)
    assert tracking.get_user(store, u.id).username == name
    got = tracking.get_item(store, it.id)
    assert (got.name, got.category, got.description) == (name, name, name * 3)
    assert store.scalar("SELECT count(*) FROM users") == 1
