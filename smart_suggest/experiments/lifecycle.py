"""Experiment lifecycle: create, list, get, stop, delete.

An experiment compares two recommendation strategies: ``control`` (variant A) and
``treatment`` (variant B), both names from the recommenders' registry. ``control`` may equal
``treatment``: that is an A/A test, the standard check that assignment, logging and the
statistics do not find differences where there are none.

Rules:

* names are unique, not empty and not all digits (a reference that is all digits is an id);
* ``traffic_fraction`` is in (0, 1] and ``treatment_share`` in (0, 1);
* the configuration never changes after creation (assignments depend on it);
* a stopped experiment takes no new assignments or events, and can still be analysed;
* deleting an experiment deletes its assignments and events (one transaction).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from smart_suggest import clock, validate
from smart_suggest.errors import InputError, NotFoundError
from smart_suggest.store import EVENT_SUMMARIES, Store
from smart_suggest.text import is_decimal
from smart_suggest.tracking import clean_name, refuse_space_twin

ACTIVE = "active"
STOPPED = "stopped"

#: Metrics an experiment can declare as primary (``--primary-metric``), with aliases.
METRICS: dict[str, str] = {
    "ctr": "click-through rate: clicks / impressions",
    "conversion_rate": "users with a purchase / users exposed",
    "engagement": "mean engagement time per engagement event, in seconds",
}
_METRIC_ALIASES = {
    "conversion": "conversion_rate",
    "conversions": "conversion_rate",
    "engagement_mean": "engagement",
    "engagement_time": "engagement",
}

_COLUMNS = (
    "id, name, description, control, treatment, traffic_fraction, treatment_share, "
    "primary_metric, status, created_at, stopped_at"
)


@dataclass(frozen=True, slots=True)
class Experiment:
    """One experiment as stored. ``control`` / ``treatment`` are strategy names."""

    id: int
    name: str
    description: str
    control: str
    treatment: str
    traffic_fraction: float
    treatment_share: float
    primary_metric: str | None
    status: str
    created_at: float
    stopped_at: float | None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def is_aa(self) -> bool:
        """Both variants serve the same strategy (an A/A test)."""
        return self.control == self.treatment

    def strategy(self, variant: str | None) -> str:
        """The strategy a variant serves; users outside the traffic (``None``) get control."""
        return self.treatment if variant == "B" else self.control

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = clock.iso(self.created_at)
        d["stopped_at"] = None if self.stopped_at is None else clock.iso(self.stopped_at)
        return d


def _from_row(row: tuple[Any, ...]) -> Experiment:
    return Experiment(
        id=int(row[0]),
        name=str(row[1]),
        description=str(row[2]),
        control=str(row[3]),
        treatment=str(row[4]),
        traffic_fraction=float(row[5]),
        treatment_share=float(row[6]),
        # An older database may hold a metric this version does not know: the default.
        primary_metric=row[7] if row[7] in METRICS else None,
        status=str(row[8]),
        created_at=clock.stored(row[9]),
        stopped_at=None if row[10] is None else clock.stored(row[10]),
    )


def strategy_names() -> dict[str, str]:
    """The recommenders' registry: strategy name -> description."""
    from smart_suggest.recommend import STRATEGIES  # lazy: pulls in numpy and scipy

    return dict(STRATEGIES)


def check_strategy(name: str, role: str) -> str:
    names = strategy_names()
    if name not in names:
        raise InputError(f"unknown {role} strategy {name!r}: use one of {', '.join(names)}")
    return name


def check_metric(metric: str | None) -> str | None:
    if metric is None or not str(metric).strip():
        return None
    key = str(metric).strip().lower().replace("-", "_")
    key = _METRIC_ALIASES.get(key, key)
    if key not in METRICS:
        raise InputError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    return key


def _check_fraction(value: float, what: str, *, upper_inclusive: bool) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number (got {value!r})") from None
    upper_ok = value <= 1.0 if upper_inclusive else value < 1.0
    if not math.isfinite(value) or value <= 0.0 or not upper_ok:
        interval = "(0, 1]" if upper_inclusive else "(0, 1)"
        raise InputError(f"{what} must be in {interval} (got {value})")
    return value


def create_experiment(
    store: Store,
    name: str,
    control: str = "v1",
    treatment: str = "v2",
    traffic_fraction: float = 1.0,
    treatment_share: float = 0.5,
    description: str = "",
    primary_metric: str | None = None,
) -> Experiment:
    """Create an active experiment; every argument is validated before anything is written."""
    name = clean_name(name, "experiment name")
    if is_decimal(name.strip()):
        raise InputError(f"experiment name {name!r} must not be all digits (ids are numbers)")
    description = description or ""
    if "\x00" in description:
        raise InputError("description must not contain NUL characters")
    check_strategy(control, "control")
    check_strategy(treatment, "treatment")
    traffic = _check_fraction(traffic_fraction, "traffic fraction", upper_inclusive=True)
    share = _check_fraction(treatment_share, "treatment share", upper_inclusive=False)
    metric = check_metric(primary_metric)
    created = validate.check_ts(clock.now(), "the current time")
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone():
            raise InputError(f"experiment {name!r} already exists")
        refuse_space_twin(conn, "experiments", "name", name, "experiment")
        cur = conn.execute(
            "INSERT INTO experiments(name, description, control, treatment, traffic_fraction, "
            "treatment_share, primary_metric, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, description, control, treatment, traffic, share, metric, ACTIVE, created),
        )
        new_id = int(cur.lastrowid or 0)
    return Experiment(
        new_id, name, description, control, treatment, traffic, share, metric, ACTIVE, created, None
    )


def get_experiment(store: Store, ref: int | str | Experiment) -> Experiment:
    """An experiment by id or by name (an all-digit string is an id); ``NotFoundError``."""
    if isinstance(ref, Experiment):
        ref = ref.id
    sql = f"SELECT {_COLUMNS} FROM experiments WHERE "
    row = None
    if isinstance(ref, int) or (isinstance(ref, str) and is_decimal(ref.strip())):
        row = store.conn.execute(sql + "id = ?", (int(ref),)).fetchone()
    if row is None and isinstance(ref, str):
        row = store.conn.execute(sql + "name = ?", (ref,)).fetchone()
    if row is None:
        raise NotFoundError(f"no experiment {str(ref)!r} (give an experiment id or name)")
    return _from_row(row)


def list_experiments(store: Store, *, include_stopped: bool = False) -> list[Experiment]:
    """Active experiments (all with ``include_stopped``), oldest first."""
    where = "" if include_stopped else f"WHERE status = '{ACTIVE}'"
    rows = store.conn.execute(f"SELECT {_COLUMNS} FROM experiments {where} ORDER BY id")
    return [_from_row(r) for r in rows.fetchall()]


def assignment_counts(store: Store, experiment_ids: list[int] | None = None) -> dict[int, int]:
    """Users assigned per experiment id (one query; for listings)."""
    rows = store.conn.execute(
        "SELECT experiment_id, COUNT(*) FROM assignments GROUP BY experiment_id"
    ).fetchall()
    counts = {int(e): int(n) for e, n in rows}
    if experiment_ids is not None:
        return {e: counts.get(e, 0) for e in experiment_ids}
    return counts


def require_active(experiment: Experiment) -> Experiment:
    """Refuse to add assignments or events to a stopped experiment."""
    if not experiment.active:
        when = "" if experiment.stopped_at is None else f" since {clock.iso(experiment.stopped_at)}"
        raise InputError(
            f"experiment {experiment.name!r} is stopped{when}: it takes no new assignments "
            "or events (its results can still be analysed)"
        )
    return experiment


def stop_experiment(store: Store, ref: int | str) -> Experiment:
    """Stop an active experiment (no new assignments or events afterwards)."""
    with store.write() as conn:
        exp = require_active(get_experiment(store, ref))
        stopped = validate.check_ts(clock.now(), "the current time")
        conn.execute(
            "UPDATE experiments SET status = ?, stopped_at = ? WHERE id = ?",
            (STOPPED, stopped, exp.id),
        )
    return get_experiment(store, exp.id)


@dataclass(frozen=True, slots=True)
class DeleteReport:
    experiment: Experiment
    assignments: int
    events: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.to_dict(),
            "assignments": self.assignments,
            "events": self.events,
        }


def delete_experiment(store: Store, ref: int | str) -> DeleteReport:
    """Delete an experiment with its assignments and events, in one transaction.

    The per-row revision triggers of events and assignments are set aside for the delete
    (one revision bump instead of one per row: millions of events delete in seconds).
    """
    exp = get_experiment(store, ref)
    with store.bulk_load(("events", "assignments"), drop_indexes=False) as conn:
        exp = get_experiment(store, exp.id)  # deleted meanwhile by another process?
        n_assign = int(
            conn.execute(
                "SELECT COUNT(*) FROM assignments WHERE experiment_id = ?", (exp.id,)
            ).fetchone()[0]
        )
        n_events = int(
            conn.execute(
                "SELECT COALESCE(SUM(n), 0) FROM event_counts WHERE experiment_id = ?", (exp.id,)
            ).fetchone()[0]
        )
        # Explicit deletes (not only ON DELETE CASCADE): correct even if a connection
        # runs with foreign keys off.
        conn.execute("DELETE FROM events WHERE experiment_id = ?", (exp.id,))
        for table in EVENT_SUMMARIES:
            conn.execute(f"DELETE FROM {table} WHERE experiment_id = ?", (exp.id,))
        conn.execute("DELETE FROM assignments WHERE experiment_id = ?", (exp.id,))
        conn.execute("DELETE FROM experiments WHERE id = ?", (exp.id,))
    return DeleteReport(exp, n_assign, n_events)
