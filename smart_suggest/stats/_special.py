"""The special functions the default analysis needs, in plain Python: no scipy.

Importing ``scipy.special`` costs 0.17-0.2 s of CPU on top of numpy (scipy 1.17 loads its
array-API layer, numpy.testing, numpy.f2py, numpy.random, importlib.metadata ...), more
than an analysis of 100,000 events takes. A library made for the job would be the usual
choice; here the few functions used are written out with methods that are exact to
double precision, and ``tests/test_stats_special.py`` pins them against scipy and mpmath
(relative 1e-12 or better wherever the value is above 1e-300):

* normal: ``ndtr`` through ``math.erfc``; ``ndtri`` by Wichura's AS241 (as in
  ``statistics.NormalDist``), accurate to ~1e-16;
* Student t: the regularised incomplete beta (continued fraction, modified Lentz), with
  the logarithms of its prefactor taken without cancellation (``lbeta`` below);
  quantiles by Hill's approximation (ACM 396) and Newton steps on log t;
* chi-square: the regularised incomplete gamma (series / continued fraction) with the
  prefactor x^a e^-x / Gamma(a) from Stirling's series, so nothing of size a log a cancels;
* Fisher's exact test: hypergeometric terms by their ratios from the mode (no binomial
  coefficient of size 10^9 is formed).

Everything takes and returns Python floats; ``_dist`` maps them over arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = [
    "chdtr_pair",
    "chdtri",
    "fisher_exact_two_sided",
    "lbeta",
    "log1pmx",
    "ndtr",
    "ndtri",
    "stdtr_pair",
    "stdtrit",
]

_SQRT1_2 = math.sqrt(0.5)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_EPS = 2.220446049250313e-16
_TINY = 1e-300
#: Iterations allowed to a continued fraction or series: they need O(sqrt(a)) near the
#: mean, so this covers parameters to ~1e11; beyond it the normal limit takes over.
_MAX_ITER = 1_000_000


# -- normal -------------------------------------------------------------------------------
def ndtr(x: float) -> float:
    """Standard normal CDF. erfc keeps the lower tail relative (to 1e-300 and below)."""
    return 0.5 * math.erfc(-x * _SQRT1_2)


#: Wichura's AS241 (PPND16) rational approximations, highest power first.
_AS241_CENTRAL = (
    (
        2509.0809287301226727,
        33430.575583588128105,
        67265.770927008700853,
        45921.953931549871457,
        13731.693765509461125,
        1971.5909503065514427,
        133.14166789178437745,
        3.387132872796366608,
    ),
    (
        5226.495278852545561,
        28729.085735721942674,
        39307.89580009271061,
        21213.794301586595867,
        5394.1960214247511077,
        687.1870074920579083,
        42.313330701600911252,
        1.0,
    ),
)
_AS241_INTERMEDIATE = (
    (
        7.7454501427834140764e-4,
        0.0227238449892691845833,
        0.24178072517745061177,
        1.27045825245236838258,
        3.64784832476320460504,
        5.7694972214606914055,
        4.6303378461565452959,
        1.42343711074968357734,
    ),
    (
        1.05075007164441684324e-9,
        5.475938084995344946e-4,
        0.0151986665636164571966,
        0.14810397642748007459,
        0.68976733498510000455,
        1.6763848301838038494,
        2.05319162663775882187,
        1.0,
    ),
)
_AS241_TAIL = (
    (
        2.01033439929228813265e-7,
        2.71155556874348757815e-5,
        0.0012426609473880784386,
        0.026532189526576123093,
        0.29656057182850489123,
        1.7848265399172913358,
        5.4637849111641143699,
        6.6579046435011037772,
    ),
    (
        2.04426310338993978564e-15,
        1.4215117583164458887e-7,
        1.8463183175100546818e-5,
        7.868691311456132591e-4,
        0.0148753612908506148525,
        0.13692988092273580531,
        0.59983220655588793769,
        1.0,
    ),
)


def _ratio(coefs: tuple[tuple[float, ...], tuple[float, ...]], r: float) -> float:
    num = den = 0.0
    for c in coefs[0]:
        num = num * r + c
    for c in coefs[1]:
        den = den * r + c
    return num / den


def ndtri(p: float) -> float:
    """Standard normal quantile: Wichura's AS241 (PPND16), relative error ~1e-16."""
    if math.isnan(p) or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    q = p - 0.5
    if abs(q) <= 0.425:
        return q * _ratio(_AS241_CENTRAL, 0.180625 - q * q)
    r = math.sqrt(-math.log(p if q < 0.0 else 1.0 - p))
    x = _ratio(_AS241_INTERMEDIATE, r - 1.6) if r <= 5.0 else _ratio(_AS241_TAIL, r - 5.0)
    return -x if q < 0.0 else x


# -- logarithms of gamma and beta ---------------------------------------------------------
def log1pmx(r: float) -> float:
    """log(1 + r) - r without cancellation.

    For -0.5 < r < 1 through u = r / (2 + r) (|u| <= 1/3): log(1 + r) = 2 atanh(u), and
    2u - r = -r^2 / (2 + r) exactly, so log(1 + r) - r = -r^2 / (2 + r) + 2 (u^3/3 +
    u^5/5 + ...), whose terms fall by u^2 <= 1/9 and barely cancel.
    """
    if not -0.5 < r < 1.0:
        return math.log1p(r) - r
    u = r / (2.0 + r)
    u2 = u * u
    power = u * u2
    acc = 0.0
    k = 3
    while True:
        term = power / k
        acc += term
        if abs(term) <= 1e-17 * abs(acc) or power == 0.0:
            return -r * r / (2.0 + r) + 2.0 * acc
        power *= u2
        k += 2


#: Stirling's series of lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2): B_2k / (2k (2k-1)).
_STIRLING = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
    -3617.0 / 122400.0,
)
#: From here the eight terms above give lgamma's remainder to ~1e-17 absolute.
_STIRLING_FROM = 10.0


def _omega(x: float) -> float:
    """Stirling's remainder lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2), x >= 10."""
    inv2 = 1.0 / (x * x)
    acc = 0.0
    for c in reversed(_STIRLING):
        acc = acc * inv2 + c
    return acc / x


def lbeta(a: float, b: float) -> float:
    """log B(a, b) for a, b > 0, accurate relative to its terms also when one is huge.

    With b = max(a, b) >= 10: lgamma(a) + [lgamma(b) - lgamma(a + b)], the bracket from
    Stirling's series with r = a / b,
        -a log b - a r + r / 2 - (a + b - 1/2) log1pmx(r) + omega(b) - omega(a + b),
    in which nothing large cancels (lgamma(b) and lgamma(a + b) would, to 1e-9 at 1e7).
    """
    lo, hi = (a, b) if a <= b else (b, a)
    if hi < _STIRLING_FROM:
        return math.lgamma(lo) + math.lgamma(hi) - math.lgamma(lo + hi)
    r = lo / hi
    diff = (
        -lo * math.log(hi)
        - lo * r
        + 0.5 * r
        - (lo + hi - 0.5) * log1pmx(r)
        + _omega(hi)
        - _omega(lo + hi)
    )
    return math.lgamma(lo) + diff


def _log_gamma_front(a: float, x: float) -> float:
    """log(x^a e^-x / Gamma(a)), through Stirling when a is large:
    a (log(x/a) - x/a + 1) + log(a) / 2 - log(2 pi) / 2 - omega(a)."""
    if a < _STIRLING_FROM:
        return a * math.log(x) - x - math.lgamma(a)
    r = (x - a) / a
    # a (log(x/a) - x/a + 1): without cancellation near x = a, from logs far from it.
    core = a * log1pmx(r) if abs(r) < 0.5 else a * (math.log(x) - math.log(a)) - (x - a)
    return core + 0.5 * math.log(a) - _HALF_LOG_2PI - _omega(a)


# -- regularised incomplete beta ------------------------------------------------------------
def _beta_frac(a: float, b: float, x: float, y: float, lam: float) -> float:
    """The continued fraction of I_x(a, b) / (x^a y^b / B(a, b)) for x below the mean.

    DiDonato and Morris's form (TOMS 708, ``bfrac``), written through lam = (a + b) y - b
    >= 0 and y = 1 - x: unlike the textbook form (whose first terms are 1 - (a + b) x /
    (a + 1), all cancellation when a is 10^6 and x near 1) nothing in it cancels.
    """
    c = lam + 1.0
    c0 = b / a
    c1 = 1.0 / a + 1.0
    yp1 = y + 1.0
    n, p, s = 0.0, 1.0, a + 1.0
    an, bn, anp1, bnp1 = 0.0, 1.0, 1.0, c / c1
    r = c1 / c
    for _ in range(_MAX_ITER):
        n += 1.0
        t = n / a
        w = n * (b - n) * x
        e = a / s
        alpha = p * (p + c0) * e * e * (w * x)
        e = (t + 1.0) / (c1 + t + t)
        beta = n + w / s + e * (c + n * yp1)
        p = t + 1.0
        s += 2.0
        an, anp1 = anp1, alpha * an + beta * anp1
        bn, bnp1 = bnp1, alpha * bn + beta * bnp1
        r0, r = r, anp1 / bnp1
        if abs(r - r0) <= _EPS * r:
            return r
        an /= bnp1
        bn /= bnp1
        anp1, bnp1 = r, 1.0
    raise ArithmeticError(f"incomplete beta did not converge (a={a!r}, b={b!r}, x={x!r})")


def betainc_pair(
    a: float, b: float, x: float, y: float, log_x: float, log_y: float
) -> tuple[float, float]:
    """(I_x(a, b), 1 - I_x(a, b)), each to full relative precision.

    The caller passes y = 1 - x and both logarithms computed without rounding loss (for
    the t distribution, log x = -log1p(t^2 / df)); with a of 10^6, a log x alone would
    otherwise cost 1e-10. The continued fraction runs on whichever side of the mean x
    lies and gives that tail directly; the other is its complement.
    """
    if log_x == -math.inf:
        return 0.0, 1.0
    if log_y == -math.inf:
        return 1.0, 0.0
    lam = (a + b) * y - b
    front = math.exp(a * log_x + b * log_y - lbeta(a, b))
    if lam >= 0.0:
        small = front * _beta_frac(a, b, x, y, lam)
        return small, 1.0 - small
    small = front * _beta_frac(b, a, y, x, -lam)
    return 1.0 - small, small


# -- Student t ------------------------------------------------------------------------------
#: Above this many degrees of freedom the t distribution is the normal to double precision
#: (the first correction is (t^3 + t) phi(t) / (4 df)).
_T_NORMAL_FROM = 1e20


def stdtr_pair(df: float, t: float) -> tuple[float, float]:
    """(P(T <= t), P(T > t)) for Student's t with ``df`` degrees of freedom, both relative."""
    if math.isnan(df) or math.isnan(t) or df <= 0.0:
        return math.nan, math.nan
    if t == math.inf:
        return 1.0, 0.0
    if t == -math.inf:
        return 0.0, 1.0
    if df >= _T_NORMAL_FROM:
        return ndtr(t), ndtr(-t)
    if t == 0.0:
        return 0.5, 0.5
    t2 = t * t
    if t2 == math.inf:
        t2 = 1.7976931348623157e308
    # Two-sided tail P(|T| > |t|) = I_x(df/2, 1/2), x = df / (df + t^2).
    if t2 < df:
        ratio = t2 / df
        x, y = 1.0 / (1.0 + ratio), ratio / (1.0 + ratio)
        log_x = -math.log1p(ratio)
        # 2 log|t| - log(df): t^2 underflows to 0 for |t| < ~1e-154 (log(0) is no number).
        log_y = 2.0 * math.log(abs(t)) - math.log(df) + log_x
    else:
        ratio = df / t2
        x, y = ratio / (1.0 + ratio), 1.0 / (1.0 + ratio)
        log_y = -math.log1p(ratio)
        # log(df) - 2 log|t|: t^2 may overflow where the tail (~|t|^-df) is still a double.
        log_x = math.log(df) - 2.0 * math.log(abs(t)) + log_y
    two_tail, central = betainc_pair(0.5 * df, 0.5, x, y, log_x, log_y)
    tail, body = 0.5 * two_tail, 0.5 + 0.5 * central
    return (body, tail) if t > 0 else (tail, body)


def _t_log_pdf(df: float, t: float) -> float:
    ratio = t * t / df
    # log(1 + t^2/df), also where t^2 overflows (the density is still a double there).
    log_term = math.log1p(ratio) if ratio < 1e300 else 2.0 * math.log(abs(t)) - math.log(df)
    return -0.5 * (df + 1.0) * log_term - 0.5 * math.log(df) - lbeta(0.5 * df, 0.5)


def _hill_isf(q: float, df: float) -> float:
    """Hill's (1970, ACM 396) approximation to the t quantile with upper tail q < 0.5."""
    p2 = 2.0 * q  # two-sided
    if df < 1.0:
        return math.nan  # outside the approximation: the solver starts from 1
    if df == 1.0:
        return 1.0 / math.tan(0.5 * math.pi * p2)
    if df == 2.0:
        return math.sqrt(2.0 / (p2 * (2.0 - p2)) - 2.0)
    a = 1.0 / (df - 0.5)
    b = 48.0 / (a * a)
    c = ((20700.0 * a / b - 98.0) * a - 16.0) * a + 96.36
    d = ((94.5 / (b + c) - 3.0) / b + 1.0) * math.sqrt(a * math.pi / 2.0) * df
    y = (d * p2) ** (2.0 / df) if d * p2 > 0 else 0.0
    if y > 0.05 + a:
        x = ndtri(0.5 * p2)
        y = x * x
        if df < 5.0:
            c += 0.3 * (df - 4.5) * (x + 0.6)
        c = (((0.05 * d * x - 5.0) * x - 7.0) * x - 2.0) * x + b + c
        y = (((((0.4 * y + 6.3) * y + 36.0) * y + 94.5) / c - y - 3.0) / b + 1.0) * x
        y = math.expm1(a * y * y)
    elif y > 0.0:
        y = (
            (
                1.0 / (((df + 6.0) / (df * y) - 0.089 * d - 0.822) * (df + 2.0) * 3.0)
                + 0.5 / (df + 4.0)
            )
            * y
            - 1.0
        ) * (df + 1.0) / (df + 2.0) + 1.0 / y
    else:
        return math.inf
    return math.sqrt(df * y)


def stdtrit(df: float, p: float) -> float:
    """The t quantile: P(T <= result) = p, to ~1e-15 relative (Newton steps on log t)."""
    if math.isnan(df) or math.isnan(p) or df <= 0.0 or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if df >= _T_NORMAL_FROM:
        return ndtri(p)
    if p == 0.5:
        return 0.0
    # The upper tail q < 0.5 of |t|, solved in log space (see _solve_upper_tail).
    q = 1.0 - p if p > 0.5 else p
    sign = 1.0 if p > 0.5 else -1.0
    start = _hill_isf(q, df)

    def tail(x: float) -> float:
        return stdtr_pair(df, x)[1]

    def log_slope(x: float, sf: float) -> float:
        return -math.exp(math.log(x) + _t_log_pdf(df, x) - math.log(sf))

    return sign * _solve_upper_tail(tail, log_slope, q, start)


def _solve_upper_tail(
    tail: Callable[[float], float],
    log_slope: Callable[[float, float], float],
    q: float,
    start: float,
    *,
    increasing: bool = False,
) -> float:
    """The x > 0 with tail(x) = q, for a decreasing tail (or an increasing lower tail,
    ``increasing``), by Newton steps on log x.

    log tail is near linear in log x (slope -1 for a Cauchy tail, about -x^2 for a
    normal one), so from a good start a few steps reach full precision; x is updated
    multiplicatively (x e^step) rather than through log x, which would cost |log x| ulps
    at x = 1e300. A bracket catches any step that overshoots.
    """
    log_q = math.log(q)
    lo, hi = 0.0, math.inf
    x = start if math.isfinite(start) and start > 0.0 else 1.0
    for _ in range(400):
        if x == 0.0 or x == math.inf:
            return x  # the quantile is beyond the doubles (chi-square at df 0.001, q 1/2)
        sf = tail(x)
        if sf <= 0.0:
            if increasing:
                lo = x
                x = math.sqrt(lo * hi) if hi < math.inf else 16.0 * x
            else:
                hi = x
                x = math.sqrt(lo * hi) if lo > 0.0 else 0.5 * x
            continue
        f = math.log(sf) - log_q
        if f == 0.0:
            return x
        if (f > 0.0) != increasing:
            lo = x
        else:
            hi = x
        slope = log_slope(x, sf)
        step = -f / slope if (slope > 0.0) == increasing and slope != 0.0 else math.nan
        new = x * math.exp(step) if abs(step) < 700.0 else math.nan
        if not lo < new < hi:
            if hi == math.inf:
                new = 16.0 * x
            elif lo == 0.0:
                new = x / 16.0
            else:
                new = math.sqrt(lo * hi)
        if abs(new - x) <= 2.0 * _EPS * x:
            return new
        x = new
    return x


# -- chi-square (regularised incomplete gamma) ----------------------------------------------
def _gamma_pair(a: float, x: float) -> tuple[float, float]:
    """(P(a, x), Q(a, x)): the lower one by its series below a + 1, the upper one by its
    continued fraction above (each converges fast there), the other as the complement."""
    if x <= 0.0:
        return 0.0, 1.0
    if x == math.inf:
        return 1.0, 0.0
    log_front = _log_gamma_front(a, x)
    if x < a + 1.0:
        ap, total, term = a, 1.0 / a, 1.0 / a
        for _ in range(_MAX_ITER):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) <= abs(total) * _EPS:
                break
        else:
            raise ArithmeticError(f"incomplete gamma did not converge (a={a!r}, x={x!r})")
        lower = total * math.exp(log_front)
        return lower, 1.0 - lower
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) <= _EPS:
            break
    else:
        raise ArithmeticError(f"incomplete gamma did not converge (a={a!r}, x={x!r})")
    upper = math.exp(log_front) * h
    return 1.0 - upper, upper


def chdtr_pair(df: float, x: float) -> tuple[float, float]:
    """(P(X <= x), P(X > x)) for chi-square with ``df`` degrees of freedom, both relative."""
    if math.isnan(df) or math.isnan(x) or df <= 0.0:
        return math.nan, math.nan
    if x <= 0.0:
        return 0.0, 1.0
    if df == math.inf:  # the mass has gone to infinity
        return (0.0, 1.0) if x < math.inf else (1.0, 0.0)
    if df == 1.0:
        # P(X > x) = P(|Z| > sqrt(x)): erfc is exact in both tails.
        z = math.sqrt(0.5 * x)
        return math.erf(z), math.erfc(z)
    if df == 2.0:
        return -math.expm1(-0.5 * x), math.exp(-0.5 * x)
    return _gamma_pair(0.5 * df, 0.5 * x)


def chdtri(df: float, q: float) -> float:
    """The chi-square value with upper tail q (Newton steps on log x)."""
    if math.isnan(df) or math.isnan(q) or df <= 0.0 or q < 0.0 or q > 1.0:
        return math.nan
    if q == 0.0:
        return math.inf
    if q == 1.0:
        return 0.0
    if df == math.inf:
        return math.nan  # as scipy: no finite quantile
    if df == 1.0:
        z = ndtri(0.5 * q)
        return z * z
    if df == 2.0:
        return -2.0 * math.log(q)
    a = 0.5 * df
    # Wilson-Hilferty start, then Newton on s = log x with d log Q / d s = -x f(x) / Q.
    z = -ndtri(q)
    h = 2.0 / (9.0 * df)
    x = df * max(1.0 - h + z * math.sqrt(h), 1e-3) ** 3

    # Above q = 1/2 solve on the lower tail p = 1 - q (exact there): near q = 1 the upper
    # tail, 1 - tiny, would leave the tiny part with few digits.
    lower = q > 0.5
    target = 1.0 - q if lower else q

    def tail(v: float) -> float:
        return _gamma_pair(a, 0.5 * v)[0 if lower else 1]

    def log_slope(v: float, prob: float) -> float:
        # d log Q / d log x = -x f(x) / Q, and x f(x) = (x/2)^a e^(-x/2) / Gamma(a).
        slope = math.exp(_log_gamma_front(a, 0.5 * v) - math.log(prob))
        return slope if lower else -slope

    return _solve_upper_tail(tail, log_slope, target, x, increasing=lower)


# -- Fisher's exact test --------------------------------------------------------------------
#: Probabilities within this relative distance of the observed one count as "as extreme",
#: as in scipy (R uses 1e-7). Near the threshold the comparison is made exactly in
#: rational arithmetic, so ties of equal probabilities never depend on rounding.
FISHER_RTOL = 1e-14
_EXACT_WITHIN_LOG = 1e-9
_EXACT_MAX_STEPS = 10_000
#: log P(k) - log P(mode) below this is 0 in double precision even summed over 10^9 terms.
_NEGLIGIBLE_LOG = -800.0


def fisher_exact_two_sided(table: tuple[tuple[int, int], tuple[int, int]]) -> float:
    """Two-sided p-value of Fisher's exact test for a 2x2 table of counts.

    The sum of the hypergeometric probabilities of the first cell that are at most the
    observed one (relative tolerance ``FISHER_RTOL``), over the total. Each probability is
    taken relative to the mode through the ratio P(k+1) / P(k) (log-concave, so both sides
    fall monotonically), so no binomial coefficient of 10^9 is formed and summing stops
    where the terms no longer reach a double.
    """
    (c00, c01), (c10, c11) = table
    n1, n2, n = c00 + c01, c10 + c11, c00 + c10
    total_n = n1 + n2
    if min(n1, n2, n, total_n - n) == 0:
        return 1.0
    lo_k, hi_k = max(0, n - n2), min(n, n1)
    mode = int((n + 1) * (n1 + 1) / (total_n + 2))
    mode = min(max(mode, lo_k), hi_k)

    def step_up(k: int) -> float:  # log P(k + 1) - log P(k)
        return math.log((n1 - k) * (n - k)) - math.log((k + 1) * (n2 - n + k + 1))

    # Log probabilities relative to the mode on each side, as far as they reach a double.
    # If the observed cell lies beyond that, every term as extreme is below e^-800 and
    # even 10^9 of them sum to less than the smallest double: the p-value is 0.
    logs: dict[int, float] = {mode: 0.0}
    for direction in (1, -1):
        level = 0.0
        k = mode
        while (k < hi_k if direction > 0 else k > lo_k) and level > _NEGLIGIBLE_LOG:
            if direction > 0:
                level += step_up(k)
                k += 1
            else:
                level -= step_up(k - 1)
                k -= 1
            logs[k] = level
    if c00 not in logs:
        return 0.0
    observed = logs[c00]
    threshold = observed + math.log1p(FISHER_RTOL)

    def as_extreme(k: int, v: float) -> bool:
        if abs(v - observed) > _EXACT_WITHIN_LOG or abs(k - c00) > _EXACT_MAX_STEPS:
            return v <= threshold
        from fractions import Fraction  # only for near ties (it imports decimal)

        limit = Fraction(1) + Fraction(FISHER_RTOL)
        # P(k) / P(observed) as an exact fraction: the product of the step ratios.
        lo, hi = min(k, c00), max(k, c00)
        num = den = 1
        for i in range(lo, hi):
            num *= (n1 - i) * (n - i)
            den *= (i + 1) * (n2 - n + i + 1)
        ratio = Fraction(num, den) if k > c00 else Fraction(den, num)
        return ratio <= limit

    kept = [v for k, v in logs.items() if as_extreme(k, v)]
    if len(kept) == len(logs):
        return 1.0
    # Relative to the largest term of each sum, so a p-value of 1e-300 keeps its digits.
    top = max(kept)
    num = math.fsum(math.exp(v - top) for v in kept)
    den = math.fsum(math.exp(v) for v in logs.values())
    return min(1.0, math.exp(top + math.log(num) - math.log(den)))
