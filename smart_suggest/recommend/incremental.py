"""Bring a snapshot up to date by applying the rows written since it was built.

Reading a million interactions back from SQLite and summing them into a matrix costs a
second or more; a click in the TUI adds one row. So a snapshot remembers where its data
ended (``Marks``: the largest user, item and interaction ids and the table sizes) and
``update`` reads only the rows after those marks, then patches the snapshot:

* new users append rows to the matrix (and to the catalogue); the item side of the
  catalogue, with its content model, is shared with the old snapshot;
* new items add columns, and the content model (tf-idf, similarity) is rebuilt lazily,
  because the idf of every term depends on the whole catalogue;
* new interactions are summed into their cells; item popularity and counts follow.

What depends on the whole matrix (row-normalised copy, its transpose, popularity order) is
recomputed lazily from the patched matrix by the same code as a fresh build, so an updated
snapshot holds exactly the numbers a full build would.

Only appends can be applied. Every insert, update and delete of a catalog table bumps the
catalog revision by one in the same transaction (``store.py``), so when the revision moved
by exactly the number of rows past the marks, and the table sizes agree, nothing else
changed. Anything else (an edited item, a deletion, a bulk load, which bumps the revision
once for all its rows) or more than ``ROW_LIMIT`` new rows is left to a full rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from smart_suggest.tracking import WEIGHT_SQL

if TYPE_CHECKING:
    from smart_suggest.recommend.snapshot import Snapshot
    from smart_suggest.store import Store

#: More new rows than this (users + items + interactions) and a full rebuild is cheaper.
ROW_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class Marks:
    """Where a snapshot's data ends: largest ids and table sizes at its revision."""

    user_id: int
    n_users: int
    item_id: int
    n_items: int
    interaction_id: int
    first_interaction_id: int


def read_marks(store: Store) -> Marks:
    """The current marks (call inside the same ``store.read()`` as the data they describe)."""
    row = store.conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM users), (SELECT count(*) FROM users), "
        "(SELECT coalesce(max(id), 0) FROM items), (SELECT count(*) FROM items), "
        "(SELECT coalesce(max(id), 0) FROM interactions), "
        "(SELECT coalesce(min(id), 0) FROM interactions)"
    ).fetchone()
    return Marks(*(int(v) for v in row))


def update(store: Store, snap: Snapshot, *, row_limit: int = ROW_LIMIT) -> Snapshot | None:
    """``snap`` brought up to the store's current catalog revision, or None.

    None means the change cannot be applied row by row (not only appends, or more than
    ``row_limit`` rows): build a new snapshot instead.
    """
    from smart_suggest.recommend.snapshot import Catalogue, Snapshot, _map_ids, last_touch_matrix

    old = snap.marks
    if old is None or snap.revision is None:
        return None
    conn = store.conn
    with store.read():
        revision, stamp = store.revision_stamp("catalog")
        if revision == snap.revision and snap.stamp in (stamp, None):
            return snap
        if revision <= snap.revision:
            return None  # other data at the same count (a restored file): rebuild
        marks = read_marks(store)
        n_new = (
            (marks.user_id - old.user_id)
            + (marks.item_id - old.item_id)
            + (marks.interaction_id - old.interaction_id)
        )
        if n_new > row_limit or n_new < 0:
            return None
        users = conn.execute(
            "SELECT id, username FROM users WHERE id > ? ORDER BY id", (old.user_id,)
        ).fetchall()
        items = conn.execute(
            "SELECT id, name, category, description FROM items WHERE id > ? ORDER BY id",
            (old.item_id,),
        ).fetchall()
        rows = conn.execute(
            f"SELECT user_id, item_id, {WEIGHT_SQL}, CAST(ts AS INTEGER) FROM interactions "
            "WHERE id > ? ORDER BY id",
            (old.interaction_id,),
        ).fetchall()
        new_cats: dict[int, list[str]] = {}
        for item_id, category in conn.execute(
            "SELECT item_id, category FROM item_categories WHERE item_id > ? "
            "ORDER BY item_id, position",
            (old.item_id,),
        ):
            new_cats.setdefault(int(item_id), []).append(str(category))
    # A new item's categories are rows of their own (schema v6), each bumping the revision.
    appended = len(users) + len(items) + len(rows) + sum(len(c) for c in new_cats.values())
    if (
        revision - snap.revision != appended
        or marks.n_users != old.n_users + len(users)
        or marks.n_items != old.n_items + len(items)
        or (old.first_interaction_id and marks.first_interaction_id != old.first_interaction_id)
    ):
        return None

    cat = snap.catalogue
    if items:
        cat = Catalogue(
            np.concatenate([cat.user_ids, np.array([u[0] for u in users], dtype=np.int64)]),
            [*cat.usernames, *(u[1] for u in users)],
            np.concatenate([cat.item_ids, np.array([i[0] for i in items], dtype=np.int64)]),
            [*cat.item_names, *(i[1] for i in items)],
            # every item's categories (several per item since schema v6), in order
            [
                *(tuple(cat.categories[k] for k in ks) for ks in cat.item_category_sets),
                *(tuple(new_cats.get(int(i[0]), ())) for i in items),
            ],
            [*cat.descriptions, *((i[3] or "") for i in items)],
        )
    elif users:
        cat = cat.with_users(np.array([u[0] for u in users], dtype=np.int64), [u[1] for u in users])
    n_users, n_items = cat.n_users, cat.n_items

    m = snap.matrix
    indptr = np.concatenate(
        [m.indptr, np.full(n_users - m.shape[0], m.indptr[-1], dtype=m.indptr.dtype)]
    )
    matrix = sp.csr_matrix((m.data, m.indices, indptr), shape=(n_users, n_items))
    last_touch = None
    if snap.last_touch is not None:
        lt = snap.last_touch
        last_touch = sp.csr_matrix((lt.data, lt.indices, indptr), shape=(n_users, n_items))
    item_interactions = np.zeros(n_items, dtype=np.int64)
    item_interactions[: len(snap.item_interactions)] = snap.item_interactions
    item_weight = np.zeros(n_items, dtype=np.float64)
    item_weight[: len(snap.item_weight)] = snap.item_weight
    count = snap.interaction_count
    if rows:
        arr = np.array(rows, dtype=np.int64)
        u, u_ok = _map_ids(cat.user_ids, arr[:, 0])
        i, i_ok = _map_ids(cat.item_ids, arr[:, 1])
        ok = u_ok & i_ok  # rows of deleted users/items only exist with foreign keys off
        u, i, w = u[ok], i[ok], arr[ok, 2].astype(np.float64)
        delta = sp.csr_matrix((w, (u, i)), shape=(n_users, n_items), dtype=np.float64)
        delta.sum_duplicates()
        matrix = sp.csr_matrix(matrix + delta)
        matrix.sort_indices()
        if last_touch is not None:
            # Latest time per pair: the newer of the stored one and the new rows' latest.
            t = arr[ok, 3].astype(np.float64)
            last_touch = sp.csr_matrix(
                last_touch.maximum(last_touch_matrix(u, i, t, (n_users, n_items)))
            )
            last_touch.sort_indices()
        item_interactions += np.bincount(i, minlength=n_items)
        # Integer weights in float64: the sums are exact in any order.
        item_weight += np.bincount(i, weights=w, minlength=n_items)
        count += len(u)
    return Snapshot.from_parts(
        cat,
        matrix,
        interaction_count=count,
        item_interactions=item_interactions,
        item_weight=item_weight,
        revision=revision,
        marks=marks,
        last_touch=last_touch,
        stamp=stamp,
    )
