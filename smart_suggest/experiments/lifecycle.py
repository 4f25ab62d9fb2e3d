"""Experiment lifecycle: create, list, get, stop, delete.

An experiment compares two or more recommendation strategies, its *variants*, labelled
A (the control), B, C, ... with a weight each (the share of enrolled users they get). The
two-variant form names them ``control`` (A) and ``treatment`` (B) with a
``treatment_share``. Strategies may repeat: an A/A (or A/A/A/A) test is the standard check
that assignment, logging and the statistics do not find differences where there are none.

The *design* says how a serve builds the list: ``ab`` (each user sees their variant's
list) or ``interleaving`` (two variants only; each user sees both lists merged by
team-draft interleaving, and clicks are credited to the team that contributed the item).

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
    "primary_metric, status, created_at, stopped_at, design"
)

AB = "ab"
INTERLEAVING = "interleaving"
DESIGNS: dict[str, str] = {
    AB: "each enrolled user sees one variant's list",
    INTERLEAVING: "each enrolled user sees both lists merged (team-draft interleaving)",
}
#: At most 26 variants (labels A to Z).
MAX_VARIANTS = 26


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an experiment: its label, the strategy it serves and its weight."""

    label: str
    strategy: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "strategy": self.strategy, "weight": self.weight}


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
    design: str = AB
    variants: tuple[Variant, ...] = ()

    def __post_init__(self) -> None:
        if not self.variants:  # the two-variant form: A = control, B = treatment
            object.__setattr__(
                self,
                "variants",
                (
                    Variant("A", self.control, 1.0 - self.treatment_share),
                    Variant("B", self.treatment, self.treatment_share),
                ),
            )

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def is_aa(self) -> bool:
        """Every variant serves the same strategy (an A/A test)."""
        return len({v.strategy for v in self.variants}) == 1

    @property
    def interleaving(self) -> bool:
        return self.design == INTERLEAVING

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(v.label for v in self.variants)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(v.weight for v in self.variants)

    def strategy(self, variant: str | None) -> str:
        """The strategy a variant serves; users outside the traffic (``None``) get control."""
        for v in self.variants:
            if v.label == variant:
                return v.strategy
        return self.control

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = clock.iso(self.created_at)
        d["stopped_at"] = None if self.stopped_at is None else clock.iso(self.stopped_at)
        d["variants"] = [v.to_dict() for v in self.variants]
        return d


def _from_row(row: tuple[Any, ...], variants: tuple[Variant, ...] = ()) -> Experiment:
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
        design=str(row[11]),
        variants=variants,
    )


def _variants(store: Store, experiment_ids: list[int]) -> dict[int, tuple[Variant, ...]]:
    """The stored variants per experiment (an experiment inserted without them, e.g. by an
    older export, falls back to control / treatment / treatment_share)."""
    found: dict[int, list[Variant]] = {}
    for lo in range(0, len(experiment_ids), 500):
        chunk = experiment_ids[lo : lo + 500]
        marks = ",".join("?" * len(chunk))
        for exp_id, lab, strat, weight in store.conn.execute(
            "SELECT experiment_id, label, strategy, weight FROM experiment_variants "
            f"WHERE experiment_id IN ({marks}) ORDER BY experiment_id, label",
            chunk,
        ):
            found.setdefault(int(exp_id), []).append(Variant(str(lab), str(strat), float(weight)))
    return {e: tuple(v) for e, v in found.items() if len(v) >= 2}


def _load(store: Store, rows: list[tuple[Any, ...]]) -> list[Experiment]:
    variants = _variants(store, [int(r[0]) for r in rows])
    return [_from_row(r, variants.get(int(r[0]), ())) for r in rows]


def strategy_names() -> dict[str, str]:
    """The recommenders' registry: strategy name -> description."""
    from smart_suggest.recommend import STRATEGIES  # lazy: pulls in numpy and scipy

    return dict(STRATEGIES)


def check_strategy(name: str, role: str) -> str:
    names = strategy_names()
    if name not in names:
        raise InputError(f"unknown {role} strategy {name!r}: use one of {', '.join(names)}")
    return name


def check_design(design: str | None) -> str:
    key = (design or AB).strip().lower()
    if key not in DESIGNS:
        raise InputError(f"unknown design {design!r}: use one of {', '.join(DESIGNS)}")
    return key


def check_weights(weights: list[float] | None, n: int) -> list[float]:
    """``n`` positive finite weights (equal weights when none are given)."""
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise InputError(f"give one weight per variant ({n} variants, {len(weights)} weights)")
    out = []
    for w in weights:
        try:
            value = float(w)
        except (TypeError, ValueError):
            raise InputError(f"a weight must be a number (got {w!r})") from None
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"weights must be positive numbers (got {w})")
        out.append(value)
    if max(out) / min(out) > 1e6:
        raise InputError("weights differ by more than a factor of a million")
    return out


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
    *,
    variants: list[str] | None = None,
    weights: list[float] | None = None,
    design: str | None = None,
) -> Experiment:
    """Create an active experiment; every argument is validated before anything is written.

    ``variants`` (strategy names, the first is the control) with optional ``weights`` makes
    an A/B/n experiment; without them ``control`` / ``treatment`` / ``treatment_share`` give
    the two-variant form. ``design='interleaving'`` takes exactly two variants.
    """
    name = clean_name(name, "experiment name")
    if is_decimal(name.strip()):
        raise InputError(f"experiment name {name!r} must not be all digits (ids are numbers)")
    description = description or ""
    if "\x00" in description:
        raise InputError("description must not contain NUL characters")
    design = check_design(design)
    traffic = _check_fraction(traffic_fraction, "traffic fraction", upper_inclusive=True)
    if variants:
        if len(variants) < 2:
            raise InputError("an experiment needs at least two variants (--variant twice)")
        if len(variants) > MAX_VARIANTS:
            raise InputError(f"at most {MAX_VARIANTS} variants (labels A to Z)")
        for i, strat in enumerate(variants):
            check_strategy(strat, "control" if i == 0 else "variant")
        ws = check_weights(weights, len(variants))
        total = math.fsum(ws)
        control, treatment = variants[0], variants[1]
        share = ws[1] / total  # the columns of the two-variant form, for older readers
        if not 0.0 < share < 1.0:
            raise InputError("weights leave variant B no share of the traffic")
        arms = tuple(
            Variant(chr(ord("A") + i), s, w)
            for i, (s, w) in enumerate(zip(variants, ws, strict=True))
        )
    else:
        if weights is not None:
            raise InputError("--weights needs the variants (--variant for each)")
        check_strategy(control, "control")
        check_strategy(treatment, "treatment")
        share = _check_fraction(treatment_share, "treatment share", upper_inclusive=False)
        arms = (Variant("A", control, 1.0 - share), Variant("B", treatment, share))
    if design == INTERLEAVING and len(arms) != 2:
        raise InputError("an interleaving experiment compares exactly two variants")
    metric = check_metric(primary_metric)
    created = validate.check_ts(clock.now(), "the current time")
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone():
            raise InputError(f"experiment {name!r} already exists")
        refuse_space_twin(conn, "experiments", "name", name, "experiment")
        cur = conn.execute(
            "INSERT INTO experiments(name, description, control, treatment, traffic_fraction, "
            "treatment_share, primary_metric, status, created_at, design) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                description,
                control,
                treatment,
                traffic,
                share,
                metric,
                ACTIVE,
                created,
                design,
            ),
        )
        new_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO experiment_variants(experiment_id, label, strategy, weight) "
            "VALUES (?, ?, ?, ?)",
            [(new_id, v.label, v.strategy, v.weight) for v in arms],
        )
    return Experiment(
        new_id,
        name,
        description,
        control,
        treatment,
        traffic,
        share,
        metric,
        ACTIVE,
        created,
        None,
        design,
        arms,
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
    return _load(store, [row])[0]


def list_experiments(store: Store, *, include_stopped: bool = False) -> list[Experiment]:
    """Active experiments (all with ``include_stopped``), oldest first."""
    where = "" if include_stopped else f"WHERE status = '{ACTIVE}'"
    rows = store.conn.execute(f"SELECT {_COLUMNS} FROM experiments {where} ORDER BY id")
    return _load(store, rows.fetchall())


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
        for table in (*EVENT_SUMMARIES, "unserved_events"):
            conn.execute(f"DELETE FROM {table} WHERE experiment_id = ?", (exp.id,))
        conn.execute("DELETE FROM assignments WHERE experiment_id = ?", (exp.id,))
        conn.execute("DELETE FROM experiment_variants WHERE experiment_id = ?", (exp.id,))
        conn.execute("DELETE FROM experiments WHERE id = ?", (exp.id,))
    return DeleteReport(exp, n_assign, n_events)
