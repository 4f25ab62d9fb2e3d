"""Recommendation strategies behind one interface: v1 (collaborative), v2 (content),
v3 (item-item model), popular.

    from smart_suggest.recommend import Recommender
    engine = Recommender(store)            # keep it: it caches the snapshot
    engine.recommend(user_id, "v1", 10)    # -> [Recommendation(item_id, score, reason, source)]

``Recommender`` rebuilds its snapshot when ``store.revision("catalog")`` changes, so a user,
item or interaction added by this or any other process shows up in the next answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from smart_suggest.errors import NotFoundError
from smart_suggest.recommend import (  # noqa: F401  (register)
    collaborative,
    content,
    itemitem,
    persist,
    popular,
)
from smart_suggest.recommend._ops import top_rows
from smart_suggest.recommend.base import (
    DEFAULT_COUNT,
    DEFAULT_NEIGHBOURS,
    DEFAULT_THRESHOLD,
    SOURCES,
    Options,
    Progress,
    Ranking,
    Recommendation,
    Strategy,
    get_strategy,
    plain,
    registry,
)
from smart_suggest.recommend.incremental import update as update_snapshot
from smart_suggest.recommend.snapshot import (
    Catalogue,
    Snapshot,
    block_size,
    build_snapshot,
)
from smart_suggest.store import Store

#: Strategy name -> one-line description, in display order ("v1", "v2", "v3", "popular").
STRATEGIES: dict[str, str] = {name: strat.description for name, strat in registry().items()}

__all__ = [
    "DEFAULT_COUNT",
    "DEFAULT_NEIGHBOURS",
    "DEFAULT_THRESHOLD",
    "SOURCES",
    "STRATEGIES",
    "Catalogue",
    "Options",
    "Ranking",
    "Recommendation",
    "Recommender",
    "Snapshot",
    "Strategy",
    "build_snapshot",
    "get_strategy",
    "rank_users",
    "recommend",
    "similar_in",
    "similar_items",
]


def rank_users(
    snap: Snapshot,
    strategy: str,
    rows: np.ndarray,
    options: Options,
    *,
    progress: Progress | None = None,
    stage: str | None = None,
) -> Iterator[Ranking]:
    """Rank the users at snapshot indices ``rows`` in blocks (bounded memory)."""
    strat = get_strategy(strategy)
    options = options.validate()
    rows = np.asarray(rows, dtype=np.int64)
    step = block_size(max(snap.catalogue.n_users, snap.catalogue.n_items))
    total = len(rows)
    label = stage or strategy
    if progress and total:
        progress(label, 0, total)
    for lo in range(0, total, step):
        block = rows[lo : lo + step]
        yield strat.rank(snap, block, options)
        if progress:
            progress(label, min(lo + step, total), total)


def similar_in(snap: Snapshot, item_index: int, count: int) -> list[tuple[int, float]]:
    """The ``count`` items most similar to one item (cosine of content vectors, > 0)."""
    x = snap.catalogue.features
    sims = np.asarray((x[item_index] @ x.T).toarray(), dtype=np.float64)
    sims[0, item_index] = 0.0
    cols, vals = top_rows(sims, count)
    keep = cols[0] >= 0
    ids = snap.catalogue.item_ids[cols[0][keep]].tolist()
    return list(zip(ids, vals[0][keep].tolist(), strict=True))


#: A long-lived engine (``background``) saves the snapshot it updated row by row once the
#: writes pause this long (the next start on the same data loads it), at most once per
#: ``SAVE_INTERVAL`` (each save writes tens of MB at 1M interactions). Not when it closes:
#: quitting must stay quick (0.5 s), so changes of a session's last seconds are not saved.
SAVE_AFTER_IDLE = 5.0
SAVE_INTERVAL = 60.0


class Recommender:
    """A long-lived recommendation engine over one store.

    Every call checks ``store.revision("catalog")`` (one tiny query). When the data changed,
    in this process or another one, the rows written since the snapshot was built are
    applied to it (``incremental.update``: a logged click costs milliseconds, not a
    rebuild). A change too large for that (a seed, an import) needs a full rebuild: with
    ``background=True`` it runs in a thread on its own connection while the previous
    snapshot keeps serving, and ``on_rebuilt`` is called when the new one is in place;
    otherwise the call builds it and waits.
    """

    def __init__(
        self,
        store: Store,
        *,
        background: bool = False,
        on_rebuilt: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.background = background
        self.on_rebuilt = on_rebuilt
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._rebuild: threading.Thread | None = None
        self._save_timer: threading.Timer | None = None
        self._saved_at = -SAVE_INTERVAL  # monotonic time of the last save
        self._closed = False

    @property
    def rebuilding(self) -> bool:
        """A full rebuild is running in the background (the old snapshot serves)."""
        thread = self._rebuild
        return thread is not None and thread.is_alive()

    def snapshot(self, *, wait: bool = False) -> Snapshot:
        """The snapshot of the current data revision (built on first use or after a change).

        With ``background`` and a change too large to apply row by row, this returns the
        previous snapshot while the new one is built, unless ``wait`` (or there is none).
        """
        revision, stamp = self.store.revision_stamp("catalog")
        with self._lock:
            snap = self._snapshot
            if snap is not None and snap.revision == revision and snap.stamp in (stamp, None):
                return snap
            if snap is not None:
                newer = update_snapshot(self.store, snap)
                if newer is not None:
                    self._snapshot = newer
                    if self.background and newer is not snap:
                        self._schedule_save()
                    return newer
                if self.background and not wait:
                    self._start_rebuild()
                    return snap
            thread = self._rebuild
        if thread is not None and thread.is_alive():
            thread.join()  # a rebuild already reads the data: wait for it, not a second one
            return self.snapshot(wait=wait)
        with self._lock:
            snap = self._snapshot
            if snap is None or (snap.revision, snap.stamp) != self.store.revision_stamp():
                snap = persist.load(self.store)
                if snap is None:
                    snap = build_snapshot(self.store)
                    if persist.worth_saving(snap):
                        # For the next process on this data, with what its first v1/v2
                        # answer reads (this one's reads it too: 0.4 s at 3,706 items).
                        snap.prepare()
                        persist.save(snap)
                self._snapshot = snap
            return snap

    def options(
        self,
        strategy: str,
        count: int = DEFAULT_COUNT,
        *,
        neighbours: int | None = None,
        threshold: float | None = None,
        cold_items: bool = True,
    ) -> Options:
        """Options of ``strategy``: the parameters ``tune`` stored, explicit values winning."""
        from smart_suggest.tuning import resolve_options

        return resolve_options(
            self.store,
            strategy,
            count=count,
            neighbours=neighbours,
            threshold=threshold,
            cold_items=cold_items,
        )[0]

    def start(self) -> None:
        """Build the snapshot in the background now, ahead of the first question."""
        with self._lock:
            if self._snapshot is None:
                self._start_rebuild()

    def close(self) -> None:
        """Stop caring about a background rebuild (its thread is a daemon and ends alone)
        and about a save still waiting for a pause in the writes."""
        self._closed = True
        self.on_rebuilt = None
        with self._lock:
            timer, self._save_timer = self._save_timer, None
        if timer is not None:
            timer.cancel()

    def _schedule_save(self) -> None:
        # Called with self._lock held: each write restarts the countdown.
        if self._save_timer is not None:
            self._save_timer.cancel()
        delay = max(SAVE_AFTER_IDLE, self._saved_at + SAVE_INTERVAL - time.monotonic())
        timer = threading.Timer(delay, lambda: self._save_pending(timer))
        timer.daemon = True
        timer.name = "snapshot-save"
        self._save_timer = timer
        timer.start()

    def _save_pending(self, timer: threading.Timer) -> None:
        with self._lock:
            if self._save_timer is not timer:
                return  # a later write restarted the countdown, or close() cancelled it
            self._save_timer = None
            snap = self._snapshot
            self._saved_at = time.monotonic()
        if snap is not None and not self._closed:
            persist.save(snap)

    def _start_rebuild(self) -> None:
        # Called with self._lock held.
        if self._rebuild is not None and self._rebuild.is_alive():
            return
        thread = threading.Thread(target=self._rebuild_run, name="snapshot-rebuild", daemon=True)
        self._rebuild = thread
        thread.start()

    def _rebuild_run(self) -> None:
        from smart_suggest.store import open_store

        try:
            with open_store(self.store.path, read_only=self.store.read_only is not None) as store:
                snap = persist.load(store)
                if snap is None:
                    snap = build_snapshot(store)
            snap.prepare()
        except Exception:  # the next foreground call rebuilds and reports the error
            return
        with self._lock:
            current = self._snapshot
            if current is not None and (current.revision or 0) > (snap.revision or 0):
                return
            self._snapshot = snap
        if persist.worth_saving(snap):
            # Built, or a saved ancestor brought up to date (``save`` skips a file already
            # there): saved after it serves, in a thread of its own, as a caller waiting
            # for this rebuild must not wait for the disk too.
            threading.Thread(
                target=persist.save, args=(snap,), name="snapshot-save", daemon=True
            ).start()
        callback = self.on_rebuilt
        if callback is not None and current is not None and not self._closed:
            callback()  # answers given meanwhile came from the previous snapshot

    def _user_row(self, snap: Snapshot, user_id: int) -> int:
        row = snap.catalogue.user_index(int(user_id))
        if row is None:
            raise NotFoundError(f"no user with id {user_id}")
        return row

    def recommend(
        self,
        user_id: int,
        strategy: str = "v1",
        count: int = DEFAULT_COUNT,
        *,
        neighbours: int | None = None,
        threshold: float | None = None,
    ) -> list[Recommendation]:
        """Ranked recommendations for one user, with reasons.

        v1 returns up to ``count`` items plus, appended after them, up to ``count`` cold
        items (nobody has interacted with them yet) that resemble the user's items.
        Parameters not given are the tuned ones (``smart-suggest tune``), else the defaults.
        """
        strat = get_strategy(strategy)
        options = self.options(strategy, count, neighbours=neighbours, threshold=threshold)
        snap = self.snapshot()
        if snap.catalogue.user_index(int(user_id)) is None and self.rebuilding:
            snap = self.snapshot(wait=True)  # a user the previous snapshot never saw
        rows = np.array([self._user_row(snap, user_id)], dtype=np.int64)
        ranking = strat.rank(snap, rows, options)
        return strat.explain(snap, ranking, options)[0]

    def note(self, strategy: str) -> str:
        """One line the strategy has for the user on the current data ("" for none)."""
        strat = get_strategy(strategy)
        say = getattr(strat, "note", None)
        return str(say(self.snapshot())) if say is not None else ""

    def similar(self, item_id: int, count: int = DEFAULT_COUNT) -> list[tuple[int, float]]:
        """(item_id, cosine) of the items whose content is most like ``item_id``'s."""
        snap = self.snapshot()
        if snap.catalogue.item_index(int(item_id)) is None and self.rebuilding:
            snap = self.snapshot(wait=True)
        index = snap.catalogue.item_index(int(item_id))
        if index is None:
            raise NotFoundError(f"no item with id {item_id}")
        return similar_in(snap, index, max(0, count))

    def recommend_all(
        self,
        strategy: str = "v1",
        count: int = DEFAULT_COUNT,
        progress: Progress | None = None,
        *,
        neighbours: int | None = None,
        threshold: float | None = None,
        explain: bool = True,
        cold_items: bool = True,
    ) -> Iterator[tuple[int, list[Recommendation]]]:
        """(user_id, recommendations) for every user, in id order, computed in blocks.

        ``explain=False`` leaves ``reason`` empty, which is much faster for exports.
        """
        strat = get_strategy(strategy)
        options = self.options(
            strategy, count, neighbours=neighbours, threshold=threshold, cold_items=cold_items
        )
        snap = self.snapshot(wait=True)  # every user: the current data, not the previous
        rows = np.arange(snap.catalogue.n_users, dtype=np.int64)
        for ranking in rank_users(snap, strategy, rows, options, progress=progress):
            lists = strat.explain(snap, ranking, options) if explain else plain(ranking, snap)
            user_ids = snap.catalogue.user_ids[ranking.rows].tolist()
            yield from zip(user_ids, lists, strict=True)


def recommend(
    store: Store,
    user_ref: int | str,
    strategy: str = "v1",
    count: int = DEFAULT_COUNT,
    *,
    neighbours: int | None = None,
    threshold: float | None = None,
) -> list[Recommendation]:
    """Recommendations for a user given by id or username (one-off: builds a snapshot)."""
    from smart_suggest import tracking

    get_strategy(strategy)
    Options(
        count,
        DEFAULT_NEIGHBOURS if neighbours is None else neighbours,
        DEFAULT_THRESHOLD if threshold is None else threshold,
    ).validate()
    user = tracking.get_user(store, user_ref)
    return Recommender(store).recommend(
        user.id, strategy, count, neighbours=neighbours, threshold=threshold
    )


def similar_items(
    store: Store, item_ref: int | str, count: int = DEFAULT_COUNT
) -> list[tuple[int, float]]:
    """Items most like the item ``item_ref`` (an id), by content similarity."""
    from smart_suggest import tracking

    item = tracking.get_item(store, item_ref)
    return Recommender(store).similar(item.id, count)
