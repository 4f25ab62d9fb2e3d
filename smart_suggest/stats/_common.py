"""Shared plumbing for the stats package: result base class, intervals, validation.

Nothing here does statistics; it keeps every result JSON-serialisable and every
input check worded the same way.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Any

from . import _dist as _st

__all__ = [
    "Interval",
    "Result",
    "UnresolvedVariance",
    "lift_interval_from_log",
    "relative_change",
    "sum_of_squares_about_mean",
    "z_crit",
]

_EPS = 2.220446049250313e-16
#: Relative rounding error assumed for a floating-point sum of squares (or the square of a
#: floating-point sum) that arrives already accumulated: generous for naive summation of
#: millions of terms with SQLite's compensated SUM, which is what produces them here.
SUM_ROUNDING = 64 * _EPS


class UnresolvedVariance(ValueError):
    """The sums cannot carry the variance: it is below their rounding error.

    When the mean is ~1e7 times the SD, sum(x^2) - sum(x)^2 / n cancels to within the
    rounding of the sums themselves, so any value (0 included) would be invented.
    """


def _integral(x: float) -> bool:
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


def sum_of_squares_about_mean(n: int, total: float, total_sq: float) -> tuple[float, float]:
    """(sum (x - mean)^2 from n, sum(x), sum(x^2); an upper bound of its rounding error).

    The difference is taken exactly (rationals), so the only error left is the one the
    sums brought with them: none for Python ints, or integer floats below 2^53 (counts,
    whole seconds: every partial sum was exact), else ``SUM_ROUNDING * total_sq``.  A result
    within that bound cannot be told apart from zero, or from anything else that small.
    """
    from fractions import Fraction

    ss = Fraction(total_sq) - Fraction(total) * Fraction(total) / n
    # Python ints are exact at any size; integer-valued floats while below 2^53.
    exact = all(isinstance(v, int) for v in (total, total_sq)) or (
        _integral(total) and _integral(total_sq) and abs(total_sq) <= 2.0**53
    )
    bound = 0.0 if exact else SUM_ROUNDING * abs(float(total_sq))
    return max(0.0, float(ss)), bound


class Result:
    """Mixin for the frozen result dataclasses: adds ``to_dict``.

    ``__slots__ = ()`` keeps the subclasses truly slotted (no stray ``__dict__``).
    """

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view: floats, ints, bools, str, None, lists and nested dicts only."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    # bool is an int subclass, so test it first; numpy scalars become Python ones.
    if isinstance(value, Result):
        return value.to_dict()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar that slipped through
        return _plain(value.item())
    raise TypeError(f"cannot serialise {type(value).__name__}")


@dataclasses.dataclass(frozen=True, slots=True)
class Interval(Result):
    """A two-sided confidence interval ``[low, high]`` at confidence ``level``."""

    low: float
    high: float
    level: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@lru_cache(maxsize=64)
def z_crit(alpha: float) -> float:
    """Two-sided critical value z_{1-alpha/2}; cached because scipy.stats calls cost ~40us."""
    return float(_st.norm.isf(alpha / 2.0))


def check_alpha(alpha: float) -> None:
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def check_count(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_successes(successes: int, n: int, arm: str) -> None:
    check_count(f"n_{arm}", n)
    check_count(f"successes_{arm}", successes)
    if successes > n:
        raise ValueError(f"successes_{arm} ({successes}) exceeds n_{arm} ({n})")


def check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def relative_change(new: float, old: float) -> float | None:
    """new / old - 1, or None when undefined (old == 0) or not representable."""
    if old == 0:
        return None
    value = (new - old) / old
    return value if math.isfinite(value) else None


def lift_interval_from_log(log_ratio: float, half_width: float, level: float) -> Interval | None:
    """exp(log_ratio +- half_width) - 1, or None when the bounds would overflow.

    Such widths only occur when a mean is ~0 relative to its SE, where a log-scale
    delta-method interval is meaningless anyway.
    """
    if not (math.isfinite(log_ratio) and math.isfinite(half_width)):
        return None
    if abs(log_ratio) + half_width > 700.0:
        return None
    return Interval(math.expm1(log_ratio - half_width), math.expm1(log_ratio + half_width), level)
