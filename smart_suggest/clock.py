"""The one clock of smart-suggest: Unix seconds (UTC), overridable for demos and tests.

``SMART_SUGGEST_NOW`` (Unix seconds or an ISO-8601 date-time) freezes the clock, so a seeded
database and the screens drawn from it are identical from run to run.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

ENV_VAR = "SMART_SUGGEST_NOW"
DAY = 86_400.0
HOUR = 3_600.0
#: The Unix times an event may carry: years 1 to 9999 (what ISO-8601 can show; beyond it
#: the hour of a time no longer fits SQLite's 64-bit integers).
MIN_TS = -62_135_596_800.0
MAX_TS = 253_402_300_799.0


def in_range(ts: float) -> bool:
    """A finite time between years 1 and 9999 (NaN and infinities are not)."""
    return MIN_TS <= ts <= MAX_TS


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
    """ISO-8601 UTC, to the second, for display and JSON."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
