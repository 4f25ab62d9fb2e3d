"""The one value validator at the store's edge: what a time, a value, an id may be.

Every path where a value enters the database (``tracking``, ``importer``, the single and
bulk event loggers and the bulk reader process, ``simulate``, ``seed``, ``import-all``)
checks it here, and schema v5 (``store.MIGRATIONS[5]``) holds the same rules in SQLite
where it can, so a value that would break a later command never gets in:

- **Times** are Unix seconds (UTC) with ``MIN_TS <= ts < MAX_TS``: from
  1970-01-01T00:00:00Z up to, not including, 2200-01-01T00:00:00Z. Finite, and every
  day/hour bucket, ISO-8601 rendering and ``datetime`` of them works.
- **Engagement values** are seconds with ``0 <= value <= MAX_VALUE`` (1e9 s, ~31 years):
  a value squared is at most 1e18, so the sums of squares the analysis keeps stay finite
  for up to 1e290 events.
- **Ids** are integers ``1 <= id <= MAX_ID`` (SQLite's 64-bit rowids); counts are
  integers ``>= 0``.

Readers must stay robust to what older databases may already hold (``clock.iso`` shows an
out-of-range time as its raw number with a mark; the timeline skips such events).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from smart_suggest.errors import InputError

#: 1970-01-01T00:00:00Z, the first accepted time (Unix seconds).
MIN_TS = 0.0
#: 2200-01-01T00:00:00Z, the first time *not* accepted.
MAX_TS = 7_258_118_400.0
#: The accepted range as text, for messages and the README.
TS_RANGE = "1970-01-01T00:00:00Z <= time < 2200-01-01T00:00:00Z"
#: Largest engagement value, in seconds.
MAX_VALUE = 1e9
MAX_ID = (1 << 63) - 1


def ts_ok(ts: Any) -> bool:
    """A number (not a bool) within the accepted time range; NaN and infinities are not."""
    return (
        isinstance(ts, int | float)
        and not isinstance(ts, bool)
        and MIN_TS <= ts < MAX_TS  # NaN fails both comparisons
    )


def value_ok(value: Any) -> bool:
    """An engagement value: a number within [0, MAX_VALUE] (NaN fails the comparisons)."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_VALUE
    )


def check_ts(ts: Any, what: str = "timestamp") -> float:
    """``ts`` as a float, or ``InputError`` naming the accepted range."""
    if not ts_ok(ts):
        raise InputError(f"{what} {_show(ts)} is out of range (accepted: {TS_RANGE})")
    return float(ts)


def check_span(start: float, end: float, what: str = "the data") -> None:
    """Generated data (seed, simulate) from ``start`` to ``end``: both ends in range."""
    for ts in (start, end):
        if not ts_ok(ts):
            raise InputError(
                f"{what} would span times out of range ({_show(start)} to {_show(end)}; "
                f"accepted: {TS_RANGE}): check the number of days and SMART_SUGGEST_NOW"
            )


def check_value(value: Any, what: str = "engagement time") -> float:
    """An engagement value in seconds, or ``InputError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{what} must be a number of seconds (got {_show(value)})")
    if not math.isfinite(value):
        raise InputError(f"{what} must be a finite number of seconds (got {_show(value)})")
    if value < 0:
        raise InputError(f"{what} must not be negative (got {_show(value)})")
    if value > MAX_VALUE:
        raise InputError(f"{what} must be at most {MAX_VALUE:g} seconds (got {_show(value)})")
    return float(value)


def check_id(value: Any, what: str = "id") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InputError(f"{what} must be an integer from 1 to {MAX_ID} (got {_show(value)})")
    return value


def check_fraction(value: Any, what: str, *, low_open: bool, high_open: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise InputError(f"{what} must be a number in {lo}0, 1{hi} (got {_show(value)})")
    return float(value)


def check_enum(value: Any, allowed: Collection[str | None], what: str) -> Any:
    if value not in allowed or (value is not None and not isinstance(value, str)):
        names = ", ".join(a for a in allowed if a is not None)
        raise InputError(f"{what} must be one of {names} (got {_show(value)})")
    return value


def check_text(value: Any, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        kind = "a text" if empty else "a non-empty text"
        raise InputError(f"{what} must be {kind} (got {_show(value)})")
    if "\x00" in value:
        raise InputError(f"{what} must not contain NUL characters")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- the same rules for SQLite (schema v5) --------------------------------------------------
def sql_ts(column: str) -> str:
    """SQL that is true when ``column`` holds an accepted time."""
    return (
        f"(typeof({column}) IN ('integer', 'real') "
        f"AND {column} >= {MIN_TS!r} AND {column} < {MAX_TS!r})"
    )


def sql_value(column: str) -> str:
    """SQL that is true when ``column`` holds an accepted engagement value."""
    return (
        f"(typeof({column}) IN ('integer', 'real') AND {column} >= 0 AND {column} <= {MAX_VALUE!r})"
    )


# -- whole rows (import-all) ----------------------------------------------------------------
def _opt(check: Any) -> Any:
    return lambda v, what: None if v is None else check(v, what)


def _text(v: Any, what: str) -> str:
    return check_text(v, what)


def _any_text(v: Any, what: str) -> str:
    return check_text(v, what, empty=True)


def _enum(*allowed: str | None) -> Any:
    return lambda v, what: check_enum(v, allowed, what)


def _metric(v: Any, what: str) -> Any:
    from smart_suggest.experiments.lifecycle import METRICS  # lifecycle imports this module

    return check_enum(v, (*METRICS, None), what)


#: Variant labels: A (control), B, C, ... Z, and AB for the users of an interleaving
#: experiment (the schema's CHECK since v8).
VARIANT_LABELS: tuple[str, ...] = (*(chr(c) for c in range(ord("A"), ord("Z") + 1)), "AB")


def _variant(v: Any, what: str) -> Any:
    if v in VARIANT_LABELS:
        return v
    raise InputError(f"{what} must be a label A to Z, or AB (interleaving) (got {_show(v)})")


#: Per table and column, the check of a stored value; columns not listed are the schema's.
ROW_RULES: dict[str, dict[str, Any]] = {
    "users": {"id": check_id, "username": _text, "created_at": check_ts},
    "items": {
        "id": check_id,
        "name": _text,
        "category": _text,
        "description": _any_text,
        "created_at": check_ts,
    },
    "item_categories": {"item_id": check_id, "category": _text},
    "user_attributes": {"user_id": check_id, "name": _text, "value": _any_text},
    "interactions": {
        "id": check_id,
        "user_id": check_id,
        "item_id": check_id,
        "action": _enum("view", "click", "purchase"),
        "ts": check_ts,
    },
    "experiments": {
        "id": check_id,
        "name": _text,
        "description": _any_text,
        "control": _text,
        "treatment": _text,
        "traffic_fraction": lambda v, w: check_fraction(v, w, low_open=True, high_open=False),
        "treatment_share": lambda v, w: check_fraction(v, w, low_open=True, high_open=True),
        "primary_metric": _metric,
        "status": _enum("active", "stopped"),
        "created_at": check_ts,
        "stopped_at": _opt(check_ts),
        "design": _enum("ab", "interleaving"),
    },
    "assignments": {
        "experiment_id": check_id,
        "user_id": check_id,
        "variant": _variant,
        "assigned_at": check_ts,
    },
    "events": {
        "id": check_id,
        "experiment_id": check_id,
        "variant": _variant,
        "user_id": check_id,
        "item_id": _opt(check_id),
        "type": _enum("impression", "click", "purchase", "engagement"),
        "value": _opt(check_value),
        "ts": check_ts,
        "team": _opt(_enum("A", "B", "both")),
    },
    "experiment_variants": {
        "experiment_id": check_id,
        "label": _enum(*VARIANT_LABELS[:-1]),
        "strategy": _text,
        "weight": lambda v, w: check_finite_positive(v, w),
    },
}


def check_finite_positive(v: Any, what: str) -> float:
    """A finite number above 0 (a variant's weight)."""
    import math

    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise InputError(f"{what} must be a positive number (got {_show(v)})")
    return float(v)


def check_row(table: str, row: dict[str, Any]) -> None:
    """Every value of one stored row, and the rules between its columns; ``InputError``
    names the first bad column."""
    for column, check in ROW_RULES.get(table, {}).items():
        if column in row:
            check(row[column], f"{table}.{column}")
    if {"type", "value"} <= row.keys() and table == "events":  # noqa: SIM102
        if (row["type"] == "engagement") != (row["value"] is not None):
            raise InputError(
                f"events.value must be set for engagement events and only for them "
                f"(type {row['type']!r}, value {_show(row['value'])})"
            )
    if {"status", "stopped_at"} <= row.keys() and table == "experiments":  # noqa: SIM102
        if (row["status"] == "stopped") != (row["stopped_at"] is not None):
            raise InputError(
                "experiments.stopped_at must be set exactly when the status is 'stopped' "
                f"(status {row['status']!r}, stopped_at {_show(row['stopped_at'])})"
            )
