"""The one clock of smart-suggest: Unix seconds (UTC), overridable for demos and tests.

``SMART_SUGGEST_NOW`` (Unix seconds or an ISO-8601 date-time) freezes the clock, so a seeded
database and the screens drawn from it are identical from run to run.
"""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime
from typing import Any

from smart_suggest import validate

ENV_VAR = "SMART_SUGGEST_NOW"
DAY = 86_400.0
HOUR = 3_600.0
#: The one accepted time range of the product (see ``smart_suggest.validate``).
MIN_TS = validate.MIN_TS
MAX_TS = validate.MAX_TS


def in_range(ts: float) -> bool:
    """A time smart-suggest accepts: 1970-01-01 <= ts < 2200-01-01 UTC (finite)."""
    return validate.ts_ok(ts)


def now() -> float:
    fixed = os.environ.get(ENV_VAR)
    if fixed:
        return parse_time(fixed)
    return time.time()


def parse_time(text: str) -> float:
    """Unix seconds from a number or an ISO-8601 string (naive means UTC)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a timestamp: {text!r} (use Unix seconds or ISO-8601)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def iso(ts: float) -> str:
    """ISO-8601 UTC, to the second, for display and JSON.

    A time outside the accepted range (only an older database can hold one) is shown as
    its raw value with a mark, never an exception: ``"-1e+15 (out of range)"``.
    """
    if not validate.ts_ok(ts):
        return out_of_range(ts)
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def out_of_range(value: Any) -> str:
    return f"{value!r} (out of range)"


def stored(value: Any) -> float:
    """A time column as read from the database: its number, or NaN when an older database
    holds something else there (text such as "never"); ``iso`` marks both kinds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
