"""What sufficient statistics must satisfy before any test sees them.

Sums computed elsewhere (a ``--summary`` file, an external engine) are checked against
every identity and inequality their definition implies (``experiments.kpis``): counts are
whole and within their parents, per-user sums obey the bounds of non-negative integers
(Cauchy-Schwarz and friends), and the engagement moments are possible for real values.
Impossible input is refused with one line naming the variant, the column and the rule:
a test run on it would give a confident answer to a question the data cannot pose.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from smart_suggest.errors import InputError

#: Counts above this lose integer precision in floating point (2^53 ~ 9e15): refused.
MAX_COUNT = 10**15
#: Relative slack for sums of floats (added in another order by another engine).
_FLOAT_SLACK = 1e-9
#: A plain decimal number: no underscores, hex, "inf" or "nan" (Python's float() takes those).
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def shown(value: Any, limit: int = 40) -> str:
    """A value for an error message: repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_number(value: Any, where: str, *, whole: bool) -> int | float:
    """A number from a summary cell (text or JSON number); ``InputError`` naming ``where``."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{where}: expected a number, got {shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InputError(f"{where}: empty value")
        if len(text) > 400 or not _NUMBER.fullmatch(text):
            raise InputError(
                f"{where}: {shown(value)} is not a number (plain decimals, e.g. 1500 or 0.25)"
            )
        if whole and re.fullmatch(r"[+-]?\d+", text):
            num: int | float = int(text)
        else:
            num = float(text)
            if math.isinf(num):
                raise InputError(f"{where}: {shown(value)} is too large")
    elif isinstance(value, int):
        num = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where}: {shown(value)} is not a finite number")
        num = value
    else:
        raise InputError(f"{where}: expected a number, got {type(value).__name__}")
    if num < 0:
        raise InputError(f"{where}: {shown(value)} must not be negative")
    if whole:
        if isinstance(num, float):
            if not num.is_integer():
                raise InputError(f"{where}: {shown(value)} is not a whole number")
            if num > MAX_COUNT:
                raise InputError(f"{where}: {shown(value)} is too large (counts up to 1e15)")
            num = int(num)
        if num > MAX_COUNT:
            raise InputError(f"{where}: {shown(value)} is too large (counts up to 1e15)")
        return num
    if num > 1e300:
        raise InputError(f"{where}: {shown(value)} is too large")
    return float(num)


def _le(a: float, b: float) -> bool:
    """a <= b for sums of floats, with room for rounding."""
    return a <= b + _FLOAT_SLACK * max(abs(a), abs(b), 1.0)


def check_sums(s: Mapping[str, Any], where: str) -> None:
    """Refuse sufficient statistics that no set of events could produce.

    ``s`` holds the ``SUMMARY_COLUMNS`` of one variant as numbers; ``where`` names the
    source and variant for the message.
    """

    def refuse(column: str, rule: str) -> None:
        raise InputError(f"{where}, column {column}: {rule}")

    assigned, exposed = s["users_assigned"], s["users_exposed"]
    imps, clicks = s["impressions"], s["clicks"]
    conv, buys = s["users_converted"], s["purchases"]
    n, sx, sy = s["n_users"], s["sum_clicks"], s["sum_impressions"]
    sxx, syy, sxy = s["sum_clicks_sq"], s["sum_impressions_sq"], s["sum_clicks_x_impressions"]
    en, es, ess = s["engagement_n"], s["engagement_sum"], s["engagement_sumsq"]

    # Counts within their parents.
    if exposed > assigned:
        refuse("users_exposed", f"{exposed:,} exposed users > {assigned:,} assigned users")
    if exposed > imps:
        refuse("users_exposed", f"{exposed:,} exposed users > {imps:,} impressions")
    if conv > buys:
        refuse("users_converted", f"{conv:,} converted users > {buys:,} purchases")
    if conv > assigned:
        refuse("users_converted", f"{conv:,} converted users > {assigned:,} assigned users")
    # The per-user sums are over the exposed users (kpis.SUFFICIENT_STATS_SQL).
    if n != exposed:
        refuse("n_users", f"{n:,} must equal users_exposed ({exposed:,}): both count exposed users")
    if sy != imps:
        refuse("sum_impressions", f"{sy:,} must equal impressions ({imps:,})")
    if sx > clicks:
        refuse("sum_clicks", f"{sx:,} > clicks ({clicks:,}): exposed users' clicks are a part")
    if sx > sy:
        refuse("sum_clicks", f"{sx:,} clicks > {sy:,} impressions: a CTR above 100%")
    if n == 0:
        for col in (
            "sum_clicks",
            "sum_clicks_sq",
            "sum_impressions_sq",
            "sum_clicks_x_impressions",
        ):
            if s[col]:
                refuse(col, "must be 0 when n_users is 0")
    else:
        if sy < n:
            refuse("sum_impressions", f"{sy:,} < n_users ({n:,}): each exposed user has one")
        # Per-user values are whole numbers >= 0: x <= x^2, sum(x^2) <= (sum x)^2, and
        # sum(x^2) >= (sum x)^2 / n (Cauchy-Schwarz); the same for impressions, and
        # (sum xy)^2 <= sum(x^2) sum(y^2); x <= xy because every exposed user has y >= 1.
        for col, total, sq in (("sum_clicks_sq", sx, sxx), ("sum_impressions_sq", sy, syy)):
            if sq < total:
                refuse(col, f"{sq:,} < the plain sum {total:,} (whole numbers: x <= x^2)")
            if sq > total * total:
                refuse(col, f"{sq:,} > the square of the sum ({total:,}^2)")
            if sq * n < total * total:
                refuse(col, f"{sq:,} x {n:,} users < ({total:,})^2 (Cauchy-Schwarz)")
        if sxy * sxy > sxx * syy:
            refuse(
                "sum_clicks_x_impressions",
                f"{sxy:,}^2 > sum_clicks_sq x sum_impressions_sq (Cauchy-Schwarz)",
            )
        if sxy < sx:
            refuse(
                "sum_clicks_x_impressions",
                f"{sxy:,} < sum_clicks ({sx:,}): every exposed user has an impression",
            )
        if sxy > sx * sy:
            refuse("sum_clicks_x_impressions", f"{sxy:,} > sum_clicks x sum_impressions")
    # Engagement: n values >= 0 with this sum and sum of squares must exist.
    if en == 0:
        if es or ess:
            refuse(
                "engagement_sum" if es else "engagement_sumsq", "must be 0 when engagement_n is 0"
            )
    else:
        if not _le(es * es, ess * en):
            refuse(
                "engagement_sumsq",
                f"{ess:.6g} x {en:,} < ({es:.6g})^2: no {en:,} values have these moments "
                "(Cauchy-Schwarz)",
            )
        if not _le(ess, es * es):
            refuse(
                "engagement_sumsq",
                f"{ess:.6g} > ({es:.6g})^2: impossible for values >= 0",
            )
