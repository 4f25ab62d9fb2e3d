"""Snapshots saved between runs, so a process that starts on a large database does not
read every interaction back from SQLite (0.7 s of a second's build at 1M interactions).

A saved snapshot is one uncompressed ``.npz`` in the user's cache folder
(``~/.cache/smart-suggest/snapshots`` on Linux; ``$XDG_CACHE_HOME`` moves it), named by
what it was built from: the catalog revision and its random stamp (``Store.revision_stamp``,
schema v12). Every insert, update and delete of users, items, item categories and
interactions, by any writer (CLI, import, seed, TUI, serve, a bulk load, the sqlite3 shell),
moves the revision and draws a new stamp in the same transaction; so a file is found only by
a database that holds exactly the data it was built from (a copy of the file included),
and a stale snapshot is never served. After a few appends through smart-suggest (a logged
click, a new user), the file of the data before them still serves: the lineage each write
transaction records (schema v13) proves it an ancestor, and its rows are applied. The
name also carries ``FORMAT`` and the package version, for a change in what a snapshot holds.

Loading trusts nothing in the file: no pickles, the key is checked again inside it, every
array's type, length and range is checked before use (the zip's CRCs catch damaged
bytes), and anything wrong means "no saved snapshot": the file is deleted and the caller
builds from the database. Only snapshots of at least ``MIN_INTERACTIONS`` are saved
(smaller ones build as fast as they load), and only the ``KEEP`` most recently used files
stay.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from smart_suggest import __version__
from smart_suggest.recommend.incremental import Marks
from smart_suggest.recommend.snapshot import Catalogue, Snapshot
from smart_suggest.tracking import SNAPSHOT_ROWS, WEIGHT_SQL

if TYPE_CHECKING:
    from smart_suggest.store import Store

#: Bump when what a saved snapshot holds, or how a snapshot is computed, changes.
FORMAT = 1
#: Smaller snapshots are not saved: building them costs about what loading would.
MIN_INTERACTIONS = SNAPSHOT_ROWS
#: The item similarities (v1's cold items, v2) are saved with the snapshot up to this many
#: cells (48 MB): 1M at 2,000 items (0.06 s to compute), 3.4M at MovieLens 1M's 3,706
#: (0.4 s); a 5,000-item catalogue's can reach 6M (75 MB) and is computed again instead.
MAX_SIMILARITY_CELLS = 4_000_000
#: Saved snapshots kept (most recently used first); older ones are deleted.
KEEP = 4
_SUFFIX = ".npz"


def cache_dir() -> Path:
    import platformdirs

    return platformdirs.user_cache_path("smart-suggest") / "snapshots"


def _code_tag() -> str:
    # The weights are summed in SQL: a change of them must not meet an old file either.
    import zlib

    text = f"{FORMAT}:{__version__}:{WEIGHT_SQL}"
    return f"f{FORMAT}-{zlib.crc32(text.encode()):08x}"


def path_for(revision: int, stamp: int) -> Path:
    return cache_dir() / f"{_code_tag()}-r{revision}-s{stamp & 0xFFFFFFFFFFFFFFFF:016x}{_SUFFIX}"


# -- strings as one utf-8 blob plus lengths (no object arrays: those would need pickle) --
def _pack(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    blob = "".join(strings).encode("utf-8", "surrogatepass")
    lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=len(strings))
    return np.frombuffer(blob, dtype=np.uint8), lengths


def _unpack(blob: np.ndarray, lengths: np.ndarray) -> list[str]:
    text = blob.tobytes().decode("utf-8", "surrogatepass")
    if lengths.ndim != 1 or (len(lengths) and int(lengths.min()) < 0):
        raise ValueError("bad string lengths")
    if int(lengths.sum()) != len(text):
        raise ValueError("string lengths do not match the text")
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]]
    return [text[a:b] for a, b in zip(starts, ends, strict=True)]


#: ``prepare_next_start`` builds snapshots up to this many interactions (a larger build
#: would break a seed's or an import's flat memory; the first start builds it instead).
PREPARE_MAX_INTERACTIONS = 2_000_000


def prepare_next_start(store: Store, progress: Any = None) -> Path | None:
    """Build and save the snapshot of the store's data, for the next process to load.

    For the writers that change too much to be applied row by row (a seed, an import):
    without it, the first start after them reads every interaction back (1.3 s at 1M).
    Nothing happens for a database too small to save or too large to build here; a
    failure only means the next start builds it.
    """
    from smart_suggest.recommend.snapshot import build_snapshot
    from smart_suggest.tracking import interaction_id_max

    with store.read():
        if interaction_id_max(store) < MIN_INTERACTIONS:
            return None  # fewer rows than the largest id: never saved
        count = int(store.scalar("SELECT count(*) FROM interactions"))
    if count > PREPARE_MAX_INTERACTIONS:
        return None
    if progress is not None:
        progress("snapshot", 0, 1)
    try:
        snap = build_snapshot(store)
        if not worth_saving(snap):
            return None
        snap.prepare()  # with what the first v1/v2 answer reads
        return save(snap)
    except Exception:  # e.g. no memory left after a large load: the data is written
        return None
    finally:
        if progress is not None:
            progress("snapshot", 1, 1)


def worth_saving(snap: Snapshot) -> bool:
    return snap.stamp is not None and snap.interaction_count >= MIN_INTERACTIONS


def save(snap: Snapshot, *, force: bool = False) -> Path | None:
    """Write ``snap`` under its key (atomically: a reader never sees half a file).

    Nothing is written for a snapshot without a key (built from arrays), a small one
    (unless ``force``), or one already saved. Errors (a full disk, no cache folder) are
    swallowed: the cache only ever saves time.
    """
    if snap.revision is None or snap.stamp is None or snap.marks is None:
        return None
    if not force and not worth_saving(snap):
        return None
    target = path_for(snap.revision, snap.stamp)
    if target.exists():
        return target
    # One temporary name per writer: two threads may save the same snapshot at once.
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(tmp, "xb") as fh:
            if hasattr(os, "fchmod"):  # POSIX: usernames and item names are the user's data
                os.fchmod(fh.fileno(), 0o600)
            arrays: dict[str, Any] = _arrays(snap)
            np.savez(fh, **arrays)
        os.replace(tmp, target)
    except Exception:  # a full disk, no memory: saves often run in a thread of the TUI,
        with contextlib.suppress(OSError):  # where a traceback would land on the screen
            tmp.unlink()
        return None
    _prune(target.parent)
    return target


def _arrays(snap: Snapshot) -> dict[str, np.ndarray]:
    cat = snap.catalogue
    m = snap.matrix
    marks = snap.marks
    assert marks is not None and snap.revision is not None and snap.stamp is not None
    meta = [FORMAT, snap.revision, snap.stamp, snap.interaction_count, cat.n_users, cat.n_items]
    meta += [marks.user_id, marks.n_users, marks.item_id, marks.n_items]
    meta += [marks.interaction_id, marks.first_interaction_id]
    cat_names = [c for cats in cat.item_category_sets for c in (cat.categories[k] for k in cats)]
    out = {
        "meta": np.array(meta, dtype=np.int64),
        "user_ids": cat.user_ids,
        "item_ids": cat.item_ids,
        "cat_counts": np.fromiter(
            (len(c) for c in cat.item_category_sets), dtype=np.int64, count=cat.n_items
        ),
        "data": m.data,
        "indices": m.indices,
        "indptr": m.indptr,
        "item_interactions": snap.item_interactions,
        "item_weight": snap.item_weight,
    }
    for name, strings in (
        ("usernames", cat.usernames),
        ("item_names", cat.item_names),
        ("descriptions", cat.descriptions),
        ("cat_names", cat_names),
    ):
        out[f"{name}_text"], out[f"{name}_len"] = _pack(strings)
    if snap.last_touch is not None:
        out["last_touch"] = snap.last_touch.data
    sim = cat.__dict__.get("similarity")  # computed already (``Snapshot.prepare``): keep it
    if sim is not None and cat.exact and sim.nnz <= MAX_SIMILARITY_CELLS:
        out["sim_data"], out["sim_indices"], out["sim_indptr"] = sim.data, sim.indices, sim.indptr
    return out


def load(store: Store) -> Snapshot | None:
    """The saved snapshot of the store's current data, or None (then build it).

    Without a file for the current key, a file saved under an ancestor of it serves when
    the writes since are appends: the recorded lineage (schema v13, ``Store.write``) proves
    the ancestry, and ``incremental.update`` applies the rows (it refuses anything else).
    """
    from smart_suggest.recommend.incremental import update
    from smart_suggest.tracking import interaction_id_max

    with store.read():  # one read snapshot: the chain and the rows it applies agree
        revision, stamp = store.revision_stamp("catalog")
        if interaction_id_max(store) < MIN_INTERACTIONS:
            return None  # never saved (ids are unique: fewer rows than the largest id)
        snap = load_key(revision, stamp)
        if snap is not None:
            return snap
        base = _saved_ancestor(store, (revision, stamp))
        if base is None:
            return None
        snap = load_key(*base)
        return None if snap is None else update(store, snap)


def _saved_ancestor(store: Store, key: tuple[int, int]) -> tuple[int, int] | None:
    """The nearest key on the recorded lineage of ``key`` with a saved file, or None."""
    from smart_suggest.recommend.incremental import ROW_LIMIT

    try:
        saved = {e.name for e in os.scandir(cache_dir()) if e.name.endswith(_SUFFIX)}
    except OSError:
        return None
    revision = key[0]
    parent: tuple[int, int] | None = key
    # Each recorded step moved the revision by at least one row: past ROW_LIMIT revisions
    # the rows in between are too many to apply anyway.
    while parent is not None and revision - parent[0] <= ROW_LIMIT:
        parent = store.catalog_parent(parent)
        if parent is not None and path_for(*parent).name in saved:
            return parent
    return None


def load_key(revision: int, stamp: int) -> Snapshot | None:
    path = path_for(revision, stamp)
    try:
        with np.load(path, allow_pickle=False) as npz:
            snap = _from_arrays({k: npz[k] for k in npz.files}, revision, stamp)
    except FileNotFoundError:
        return None
    except Exception:  # damaged, foreign or from another version: rebuild, and forget it
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # most recently used: kept by _prune
    return snap


def _array(a: dict[str, np.ndarray], name: str, kind: str, length: int | None) -> np.ndarray:
    x = a[name]
    if x.ndim != 1 or x.dtype.kind != kind or (length is not None and len(x) != length):
        raise ValueError(f"bad array {name}")
    return x


def _from_arrays(a: dict[str, np.ndarray], revision: int, stamp: int) -> Snapshot:
    meta = _array(a, "meta", "i", 12).tolist()
    if meta[0] != FORMAT or meta[1] != revision or meta[2] != stamp:
        raise ValueError("another snapshot")
    count, n_users, n_items = meta[3], meta[4], meta[5]
    marks = Marks(*meta[6:12])
    user_ids = _array(a, "user_ids", "i", n_users)
    item_ids = _array(a, "item_ids", "i", n_items)
    matrix = _csr(a, "", n_users, n_items)
    nnz = matrix.nnz
    item_interactions = _array(a, "item_interactions", "i", n_items)
    item_weight = _array(a, "item_weight", "f", n_items)
    if int(item_interactions.sum()) != count:
        raise ValueError("bad counts")
    strings = {
        name: _unpack(_array(a, f"{name}_text", "u", None), _array(a, f"{name}_len", "i", None))
        for name in ("usernames", "item_names", "descriptions", "cat_names")
    }
    cat_counts = _array(a, "cat_counts", "i", n_items)
    if (
        len(strings["usernames"]) != n_users
        or len(strings["item_names"]) != n_items
        or len(strings["descriptions"]) != n_items
        or int(cat_counts.sum()) != len(strings["cat_names"])
        or (n_items and int(cat_counts.min()) < 0)
    ):
        raise ValueError("bad catalogue")
    names = strings["cat_names"]
    ends = np.cumsum(cat_counts).tolist()
    item_categories = [
        tuple(names[b - k : b]) for b, k in zip(ends, cat_counts.tolist(), strict=True)
    ]
    catalogue = Catalogue(
        user_ids,
        strings["usernames"],
        item_ids,
        strings["item_names"],
        item_categories,
        strings["descriptions"],
    )
    if "sim_data" in a and catalogue.exact:
        catalogue.__dict__["similarity"] = _csr(a, "sim_", n_items, n_items)
    last_touch = None
    if "last_touch" in a:
        last_touch = sp.csr_matrix(
            (_array(a, "last_touch", "f", nnz), matrix.indices, matrix.indptr),
            shape=matrix.shape,
        )
    return Snapshot.from_parts(
        catalogue,
        matrix,
        interaction_count=count,
        item_interactions=item_interactions,
        item_weight=item_weight,
        revision=revision,
        marks=marks,
        last_touch=last_touch,
        stamp=stamp,
    )


def _csr(a: dict[str, np.ndarray], prefix: str, n_rows: int, n_cols: int) -> sp.csr_matrix:
    indptr = _array(a, f"{prefix}indptr", "i", n_rows + 1)
    nnz = int(indptr[-1])
    indices = _array(a, f"{prefix}indices", "i", nnz)
    data = _array(a, f"{prefix}data", "f", nnz)
    if int(indptr[0]) != 0 or bool(np.any(np.diff(indptr) < 0)):
        raise ValueError(f"bad {prefix}indptr")
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= n_cols):
        raise ValueError(f"bad {prefix}indices")
    m = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))
    if not m.has_canonical_format:  # as built: rows sorted, no duplicates
        raise ValueError(f"{prefix}matrix not canonical")
    return m


def _prune(folder: Path) -> None:
    """Keep the ``KEEP`` most recently used snapshots; drop leftovers of killed writers."""
    try:
        entries: list[tuple[float, Path]] = []
        for entry in os.scandir(folder):
            path = Path(entry.path)
            age = time.time() - entry.stat().st_mtime
            if entry.name.endswith(".tmp") and age > 3600:
                path.unlink(missing_ok=True)
            elif entry.name.endswith(_SUFFIX):
                entries.append((entry.stat().st_mtime, path))
        entries.sort(reverse=True)
        for _, path in entries[KEEP:]:
            path.unlink(missing_ok=True)
    except OSError:
        pass
