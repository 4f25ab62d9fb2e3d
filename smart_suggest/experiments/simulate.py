"""Simulated traffic for an experiment: for demos and for checking the statistics.

The simulation goes through the real write path: users are assigned by the documented rule
and stored with ``INSERT OR IGNORE`` (``serving.store_assignments``), and events are written
by ``events.insert_events``, tagged with each user's stored variant. What it makes up is
only the behaviour, from the true rates you give:

* ``users`` visitors named ``sim-<experiment id>-<n>`` (n = 1..users), created when missing
  and reused when they exist (so a second run adds traffic for the same people); real users
  and their history are never touched;
* each visitor arrives on a random day of the ``days`` ending now and comes back on each
  later day with probability ``return_rate``; every visit is one session showing ``count``
  distinct items from the catalogue (one impression each);
* each impression is clicked with probability ``ctr_a`` / ``ctr_b`` (so that is the true CTR),
  every click is followed by an engagement event (log-normal seconds with mean
  ``engagement_a`` / ``engagement_b``);
* each exposed visitor converts (one purchase of an item they were shown) with probability
  ``purchase_a`` / ``purchase_b``: the true conversion rate (converted / exposed users);
* visitors outside the traffic fraction are served control and logged nowhere.

Equal rates for A and B make an A/A test. The same seed gives the same traffic. Everything
is written in one transaction: an interrupted simulation leaves no trace.

Experiments with more than two variants take one rate per variant (``ctr``, ``purchase``,
``engagement`` lists in label order). ``click_model="position"`` replaces the fixed CTR by
the position-biased model of ``population``: each visitor has a relevance for
``CANDIDATES`` catalogue items, each variant's ranker orders them through its
``ranker_noise`` (less noise: a better ranker), and the visitor looks at position p with
probability 1 / (p + 1) and clicks with the item's relevance. The same visitors (same
seed) can so be run as an A/B test or as an interleaving experiment (which needs this
model: each session merges both rankers' lists by team draft, fresh coins every
session, and every event carries its team); a converting visitor buys one of the items
they clicked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smart_suggest import clock, validate
from smart_suggest.errors import InputError
from smart_suggest.experiments.events import (
    CHUNK,
    EVENT_TYPES,
    bulk_write,
    insert_bulk,
    insert_bulk_teams,
    rebuild_team_summaries,
)
from smart_suggest.experiments.lifecycle import Experiment, get_experiment, require_active
from smart_suggest.experiments.serving import store_assignments
from smart_suggest.store import Store

Progress = Callable[[str, int, int], None]

MAX_USERS = 1_000_000
CLICK_MODELS = ("flat", "position")
#: Candidate items per visitor in the position model (fewer when the catalogue is smaller).
CANDIDATES = 30
TEAM_NAMES = ("A", "B", "both")
MAX_DAYS = 366
ENGAGEMENT_SIGMA = 0.6  # log-normal shape of engagement seconds


@dataclass(frozen=True, slots=True)
class SimulationReport:
    experiment: Experiment
    visitors: int
    users_created: int
    enrolled: dict[str, int]
    outside: int  # visitors outside the traffic fraction: served control, not logged
    events: dict[str, int]
    start_ts: float
    end_ts: float
    seed: int
    seconds: float = 0.0
    settings: dict[str, float] = field(default_factory=dict)

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.name,
            "experiment_id": self.experiment.id,
            "visitors": self.visitors,
            "users_created": self.users_created,
            "enrolled": self.enrolled,
            "outside_traffic": self.outside,
            "events": self.events,
            "total_events": self.total_events,
            "start": clock.iso(self.start_ts),
            "end": clock.iso(self.end_ts),
            "seed": self.seed,
            "settings": self.settings,
            "seconds": self.seconds,
        }


def _check_rate(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InputError(f"{name} must be a probability between 0 and 1 (got {value})")
    return float(value)


def _noop(stage: str, done: int, total: int) -> None:
    pass


def _sim_users(
    store: Store, exp: Experiment, n: int, created: float, progress: Progress
) -> tuple[list[int], int]:
    """Ids of ``sim-<exp>-1..n``, creating the missing ones (inside the transaction)."""
    prefix = f"sim-{exp.id}-"
    existing = {
        str(name): int(uid)
        for uid, name in store.conn.execute(
            "SELECT id, username FROM users WHERE username >= ? AND username < ?",
            (prefix, prefix[:-1] + chr(ord("-") + 1)),
        )
    }
    missing = [f"{prefix}{k}" for k in range(1, n + 1) if f"{prefix}{k}" not in existing]
    progress("users", 0, len(missing))
    for lo in range(0, len(missing), CHUNK):
        chunk = missing[lo : lo + CHUNK]
        store.conn.executemany(
            "INSERT INTO users(username, created_at) VALUES (?, ?)",
            [(name, created) for name in chunk],
        )
        progress("users", lo + len(chunk), len(missing))
    if missing:
        for lo in range(0, len(missing), 500):
            chunk = missing[lo : lo + 500]
            marks = ",".join("?" * len(chunk))
            for uid, name in store.conn.execute(
                f"SELECT id, username FROM users WHERE username IN ({marks})", chunk
            ):
                existing[str(name)] = int(uid)
    return [existing[f"{prefix}{k}"] for k in range(1, n + 1)], len(missing)


def _distinct_items(rng: np.random.Generator, sessions: int, n_items: int, k: int) -> np.ndarray:
    """``k`` distinct item positions per session (Floyd's algorithm, vectorised): (s, k)."""
    out = np.empty((sessions, k), dtype=np.int64)
    for col, j in enumerate(range(n_items - k, n_items)):
        t = rng.integers(0, j + 1, size=sessions)
        dup = (out[:, :col] == t[:, None]).any(axis=1) if col else np.zeros(sessions, bool)
        out[:, col] = np.where(dup, j, t)
    return out


def simulate(
    store: Store,
    exp_ref: int | str | Experiment,
    users: int = 1_000,
    days: int = 7,
    ctr_a: float = 0.30,
    ctr_b: float = 0.42,
    purchase_a: float = 0.12,
    purchase_b: float = 0.18,
    seed: int = 42,
    progress: Progress | None = None,
    *,
    count: int = 5,
    engagement_a: float = 45.0,
    engagement_b: float = 45.0,
    return_rate: float = 0.3,
    ctr: list[float] | None = None,
    purchase: list[float] | None = None,
    engagement: list[float] | None = None,
    click_model: str = "flat",
    ranker_noise: list[float] | None = None,
) -> SimulationReport:
    """Generate ``days`` of traffic for ``users`` visitors, ending now; all or nothing."""
    started = time.perf_counter()
    progress = progress or _noop
    if not 1 <= users <= MAX_USERS:
        raise InputError(f"users must be between 1 and {MAX_USERS:,} (got {users})")
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"days must be between 1 and {MAX_DAYS} (got {days})")
    if not 1 <= count <= 100:
        raise InputError(f"count must be between 1 and 100 (got {count})")
    rates = {
        "ctr_a": _check_rate("ctr_a", ctr_a),
        "ctr_b": _check_rate("ctr_b", ctr_b),
        "purchase_a": _check_rate("purchase_a", purchase_a),
        "purchase_b": _check_rate("purchase_b", purchase_b),
        "return_rate": _check_rate("return_rate", return_rate),
    }
    for name, value in (("engagement_a", engagement_a), ("engagement_b", engagement_b)):
        # A mean of at most 1e6 s keeps the log-normal draws far below validate.MAX_VALUE.
        if not (isinstance(value, int | float) and 0 < value <= validate.MAX_VALUE / 1000):
            raise InputError(
                f"{name} must be a positive number of seconds, at most "
                f"{validate.MAX_VALUE / 1000:g} (got {value})"
            )
    if click_model not in CLICK_MODELS:
        raise InputError(f"unknown click model {click_model!r}: use {' or '.join(CLICK_MODELS)}")
    exp = require_active(get_experiment(store, exp_ref))
    k_var = len(exp.variants)
    if k_var > 2 and ((ctr is None and click_model == "flat") or purchase is None):
        raise InputError(
            f"the experiment has {k_var} variants: give --ctr and --purchase with one rate each"
            if click_model == "flat"
            else f"the experiment has {k_var} variants: give --purchase with one rate each"
        )
    per = _per_variant(
        k_var,
        ctr or ([ctr_a, ctr_b] if k_var == 2 else [ctr_a] * k_var),
        purchase or [purchase_a, purchase_b],
        engagement or ([engagement_a, engagement_b] if k_var == 2 else [engagement_a] * k_var),
        ranker_noise or [1.0] * k_var,
    )
    if exp.interleaving and click_model != "position":
        raise InputError(
            "an interleaving experiment needs --click-model position (a fixed CTR per "
            "variant says nothing about which team's items a user clicks)"
        )
    item_ids = np.array(
        [r[0] for r in store.conn.execute("SELECT id FROM items ORDER BY id")], dtype=np.int64
    )
    if len(item_ids) == 0:
        raise InputError("the catalogue is empty: add items (or run `smart-suggest seed`) first")
    k = min(count, len(item_ids))
    rng = np.random.default_rng(seed)
    end = clock.now()
    start = end - days * clock.DAY
    validate.check_span(start, end, "the simulated traffic")

    # Behaviour of every visitor, drawn before the lock is taken and independent of who
    # is enrolled, so the same seed gives the same traffic.
    first_day = rng.integers(0, days, size=users)
    v_user_parts, s_day_parts = [], []
    for day in range(days):  # one pass per day: memory grows with sessions, not users x days
        back = (first_day < day) & (rng.random(users) < return_rate)
        who = np.flatnonzero((first_day == day) | back)
        v_user_parts.append(who)
        s_day_parts.append(np.full(len(who), day, dtype=np.int64))
    v_user = np.concatenate(v_user_parts)
    s_day = np.concatenate(s_day_parts)
    by_user = np.lexsort((s_day, v_user))  # sessions grouped by user, then by day
    v_user, s_day = v_user[by_user], s_day[by_user]
    s_ts = start + s_day * clock.DAY + rng.uniform(0, clock.DAY - 3_600, size=len(v_user))
    converts_u = rng.random(users)

    with bulk_write(store):
        exp = require_active(get_experiment(store, exp.id))
        ids, created = _sim_users(store, exp, users, start, progress)
        first_visit = np.full(users, np.inf)
        np.minimum.at(first_visit, v_user, s_ts)
        progress("assign", 0, users)
        variants = store_assignments(store, exp, ids, np.round(first_visit, 3).tolist())
        progress("assign", users, users)
        # Variant codes: 0 = outside the traffic, 1 = A, 2 = B, ... (interleaving: 1 = AB).
        code_of = {"AB": 1} | {v.label: i for i, v in enumerate(exp.variants, start=1)}
        names: tuple[str | None, ...] = (
            (None, "AB") if exp.interleaving else (None, *[v.label for v in exp.variants])
        )
        code = np.array([0 if v is None else code_of[v] for v in variants], np.int8)
        if click_model == "position":
            events = _events_position(
                rng,
                code,
                ids,
                exp.id,
                v_user,
                s_ts,
                item_ids,
                k,
                converts_u,
                end,
                per,
                exp.interleaving,
            )
        else:
            events = (
                *_events(rng, code, ids, exp.id, v_user, s_ts, item_ids, k, converts_u, end, per),
                None,
            )
        total = len(events[0])
        order = np.argsort(events[6], kind="stable")
        progress("events", 0, total)
        done = 0
        for rows in _rows(events, order, names):
            if exp.interleaving:
                insert_bulk_teams(store, rows)
            else:
                insert_bulk(store, rows)
            done += len(rows)
            progress("events", done, total)
        if exp.interleaving:
            rebuild_team_summaries(store, exp.id)
    counts = dict.fromkeys(EVENT_TYPES, 0)
    kinds, n = np.unique(events[4], return_counts=True)
    for kind, c in zip(kinds.tolist(), n.tolist(), strict=True):
        counts[EVENT_TYPES[kind]] = int(c)
    enrolled = {
        str(name): int((code == i).sum()) for i, name in enumerate(names) if name is not None
    }
    return SimulationReport(
        experiment=exp,
        visitors=users,
        users_created=created,
        enrolled=enrolled,
        outside=int((code == 0).sum()),
        events=counts,
        start_ts=start,
        end_ts=end,
        seed=seed,
        seconds=time.perf_counter() - started,
        settings={
            **rates,
            "days": days,
            "count": k,
            "engagement_a": float(engagement_a),
            "engagement_b": float(engagement_b),
            "click_model": click_model,  # type: ignore[dict-item]
            **{f"ctr_{v.label.lower()}": per["ctr"][i] for i, v in enumerate(exp.variants)},
            **{
                f"purchase_{v.label.lower()}": per["purchase"][i]
                for i, v in enumerate(exp.variants)
            },
            **{f"noise_{v.label.lower()}": per["noise"][i] for i, v in enumerate(exp.variants)},
        },
    )


def _per_variant(
    k: int, ctr: list[float], purchase: list[float], engagement: list[float], noise: list[float]
) -> dict[str, list[float]]:
    """Per-variant settings, checked: one value per variant (label order)."""
    out: dict[str, list[float]] = {}
    for name, values in (
        ("ctr", ctr),
        ("purchase", purchase),
        ("engagement", engagement),
        ("noise", noise),
    ):
        if len(values) != k:
            raise InputError(
                f"give one {name} value per variant ({k} variants, {len(values)} given)"
            )
        checked = []
        for v in values:
            if name in ("ctr", "purchase"):
                checked.append(_check_rate(name, v))
            elif not (
                isinstance(v, int | float)
                and math.isfinite(v)
                and (v > 0 or (name == "noise" and v >= 0))
                and (name != "engagement" or v <= validate.MAX_VALUE / 1000)
            ):
                raise InputError(
                    f"{name} values must be positive numbers"
                    + (f", at most {validate.MAX_VALUE / 1000:g} s" if name == "engagement" else "")
                    + f" (got {v})"
                )
            else:
                checked.append(float(v))
        out[name] = checked
    return out


def _events(
    rng: np.random.Generator,
    code: np.ndarray,
    ids: list[int],
    exp_id: int,
    v_user: np.ndarray,
    s_ts: np.ndarray,
    item_ids: np.ndarray,
    k: int,
    converts_u: np.ndarray,
    end: float,
    per: dict[str, list[float]],
) -> tuple[np.ndarray, ...]:
    """Column arrays (exp, variant code, user id, item id, type code, value, ts)."""
    ctr_of = np.array([0.0, *per["ctr"]])
    buy_of = np.array([0.0, *per["purchase"]])
    eng_of = np.array([1.0, *per["engagement"]])
    keep = code[v_user] > 0  # sessions of enrolled visitors only
    v_user, s_ts = v_user[keep], s_ts[keep]
    sessions = len(v_user)
    shown = item_ids[_distinct_items(rng, sessions, len(item_ids), k)]  # (s, k)
    imp_user = np.repeat(v_user, k)
    imp_item = shown.reshape(-1)
    imp_ts = np.repeat(s_ts, k)
    clicked = rng.random(len(imp_user)) < ctr_of[code[imp_user]]
    c_user, c_item = imp_user[clicked], imp_item[clicked]
    c_ts = imp_ts[clicked] + rng.uniform(2, 30, size=int(clicked.sum()))
    mean = eng_of[code[c_user]]
    mu = np.log(mean) - ENGAGEMENT_SIGMA**2 / 2  # so the log-normal's mean is ``mean``
    dwell = np.round(rng.lognormal(mu, ENGAGEMENT_SIGMA), 2)
    e_ts = c_ts + dwell
    if len(e_ts) and not (
        validate.value_ok(float(dwell.max())) and validate.ts_ok(float(e_ts.max()))
    ):
        raise InputError(
            f"the simulated engagement would end after the accepted times ({validate.TS_RANGE})"
        )
    # Conversions: one purchase per converting exposed visitor, of an item they were shown.
    exposed = np.unique(imp_user)
    p_buy = buy_of[code[exposed]]
    buyers = exposed[converts_u[exposed] < p_buy]
    first_imp = np.searchsorted(imp_user, buyers)  # impressions are grouped by user
    n_imp = np.searchsorted(imp_user, buyers, side="right") - first_imp
    pick = first_imp + (rng.random(len(buyers)) * n_imp).astype(np.int64)
    p_item = imp_item[pick]
    p_ts = imp_ts[pick] + rng.uniform(30, 600, size=len(buyers))

    users_arr = np.asarray(ids, dtype=np.int64)
    parts = [
        (imp_user, imp_item, 0, np.full(len(imp_user), np.nan), imp_ts),
        (c_user, c_item, 1, np.full(len(c_user), np.nan), c_ts),
        (buyers, p_item, 2, np.full(len(buyers), np.nan), p_ts),
        (c_user, c_item, 3, dwell, e_ts),
    ]
    user_pos = np.concatenate([p[0] for p in parts])
    ts = np.minimum(np.round(np.concatenate([p[4] for p in parts]), 3), end)
    return (
        np.full(len(user_pos), exp_id, dtype=np.int64),
        code[user_pos],
        users_arr[user_pos],
        np.concatenate([p[1] for p in parts]),
        np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts]),
        np.concatenate([p[3] for p in parts]),
        ts,
    )


def _rows(
    events: tuple[Any, ...], order: np.ndarray, variant_name: tuple[str | None, ...]
) -> Iterator[list[tuple[Any, ...]]]:
    """Event rows in ``order``: 7 columns, or 8 with the team (interleaving)."""
    exp_col, var_col, user_col, item_col, type_col, value_col, ts_col, team_col = events
    for lo in range(0, len(order), CHUNK):
        idx = order[lo : lo + CHUNK]
        values = value_col[idx]
        columns = [
            exp_col[idx].tolist(),
            [variant_name[c] for c in var_col[idx].tolist()],
            user_col[idx].tolist(),
            item_col[idx].tolist(),
            [EVENT_TYPES[t] for t in type_col[idx].tolist()],
            [None if math.isnan(v) else v for v in values.tolist()],
            ts_col[idx].tolist(),
        ]
        if team_col is not None:
            columns.append([None if t < 0 else TEAM_NAMES[t] for t in team_col[idx].tolist()])
        yield list(zip(*columns, strict=True))


def _events_position(
    rng: np.random.Generator,
    code: np.ndarray,
    ids: list[int],
    exp_id: int,
    v_user: np.ndarray,
    s_ts: np.ndarray,
    item_ids: np.ndarray,
    k: int,
    converts_u: np.ndarray,
    end: float,
    per: dict[str, list[float]],
    interleaving: bool,
) -> tuple[Any, ...]:
    """The position-biased model (see the module docstring): columns as ``_events`` plus
    a team code per event (-1 none, 0 A, 1 B, 2 both)."""
    from smart_suggest.experiments.population import (
        Population,
        examination,
        make_population,
        rank,
        team_draft_batch,
    )

    n_users = len(code)
    n_cand = min(CANDIDATES, len(item_ids))
    k = min(k, n_cand)
    pop = make_population(rng, n_users, n_cand)
    cand_items = item_ids[_distinct_items(rng, n_users, len(item_ids), n_cand)]  # (users, c)
    noise = per["noise"]
    if interleaving:
        lists = [rank(rng, pop, noise[0], k), rank(rng, pop, noise[1], k)]
    else:
        lists = [rank(rng, pop, nz, k) for nz in noise]
    keep = code[v_user] > 0
    v_user, s_ts = v_user[keep], s_ts[keep]
    sessions = len(v_user)
    if interleaving:
        shown, team = team_draft_batch(rng, lists[0][v_user], lists[1][v_user], k)
    else:
        shown = np.empty((sessions, k), dtype=np.int64)
        for i, lst in enumerate(lists, start=1):
            mine = code[v_user] == i
            shown[mine] = lst[v_user[mine]]
        team = np.full((sessions, k), -1, dtype=np.int8)
    session_pop = Population(pop.relevance[v_user])
    p_click = np.take_along_axis(session_pop.relevance, shown, axis=1) * examination(k)
    clicked = rng.random(shown.shape) < p_click  # (sessions, k)
    imp_user = np.repeat(v_user, k)
    imp_item = np.take_along_axis(cand_items[v_user], shown, axis=1).reshape(-1)
    imp_ts = np.repeat(s_ts, k) + np.tile(np.arange(k) * 0.001, sessions)
    imp_team = team.reshape(-1)
    flat_click = clicked.reshape(-1)
    c_user, c_item, c_team = imp_user[flat_click], imp_item[flat_click], imp_team[flat_click]
    c_ts = imp_ts[flat_click] + rng.uniform(2, 30, size=int(flat_click.sum()))
    eng_of = np.array([1.0, *per["engagement"]])
    mean = eng_of[np.minimum(code[c_user], len(eng_of) - 1)]
    mu = np.log(mean) - ENGAGEMENT_SIGMA**2 / 2
    dwell = np.round(rng.lognormal(mu, ENGAGEMENT_SIGMA), 2)
    # A converting visitor buys one of the items they clicked (first click: its team).
    buy_of = np.array([0.0, *per["purchase"]])
    clickers, first = np.unique(c_user, return_index=True)
    buy = converts_u[clickers] < buy_of[code[clickers]]
    pick = first[buy]
    b_user, b_item, b_team = c_user[pick], c_item[pick], c_team[pick]
    b_ts = c_ts[pick] + rng.uniform(30, 600, size=len(pick))
    users_arr = np.asarray(ids, dtype=np.int64)
    parts = [
        (imp_user, imp_item, 0, np.full(len(imp_user), np.nan), imp_ts, imp_team),
        (c_user, c_item, 1, np.full(len(c_user), np.nan), c_ts, c_team),
        (b_user, b_item, 2, np.full(len(b_user), np.nan), b_ts, b_team),
        (c_user, c_item, 3, dwell, c_ts + dwell, c_team),
    ]
    user_pos = np.concatenate([p[0] for p in parts])
    ts = np.minimum(np.round(np.concatenate([p[4] for p in parts]), 3), end)
    teams = np.concatenate([p[5] for p in parts]) if interleaving else None
    return (
        np.full(len(user_pos), exp_id, dtype=np.int64),
        code[user_pos],
        users_arr[user_pos],
        np.concatenate([p[1] for p in parts]),
        np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts]),
        np.concatenate([p[3] for p in parts]),
        ts,
        teams,
    )
