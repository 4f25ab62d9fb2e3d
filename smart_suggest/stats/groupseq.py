"""Group-sequential tests with alpha spending, and the mSPRT mixture tuned to a plan.

**Group-sequential (Lan & DeMets 1983).** The experiment is looked at a planned number of
times; at look k the z statistic of the difference is compared with a boundary b_k, and
the test rejects at the first look with |z_k| >= b_k.  The boundaries spend the type I
error gradually: with information fraction t_k (users so far / users planned) a spending
function alpha(t) gives the error allowed by look k, and b_k solves

    P(|Z_1| < b_1, ..., |Z_{k-1}| < b_{k-1}, |Z_k| >= b_k) = alpha(t_k) - alpha(t_{k-1})

under H0, where Z_k sqrt(t_k) is a Brownian motion at time t_k.  Spending functions
(two-sided, total alpha):

* O'Brien-Fleming type: alpha(t) = 2 (2 - 2 Phi(z_{1-alpha/4} / sqrt(t))), alpha/2 per
  side (as ldbounds, gsDesign and rpact) - almost nothing early, nearly the whole alpha
  at the end (the final boundary stays close to 1.96);
* Pocock type: alpha(t) = alpha ln(1 + (e - 1) t) - spends evenly, so early stops are
  easier and the last boundary is higher.

Because the spending depends only on the information at each look, looks need not be
equally spaced nor their number fixed in advance; the final look (t >= 1) spends what is
left.  The probabilities are computed by the standard recursive numerical integration
(Armitage, McPherson & Rowe 1969; Jennison & Turnbull 2000, ch. 19): the density of the
Brownian motion inside the continuation region is carried from look to look on a
Simpson grid and the exit probabilities are exact normal tails.  ``constant_boundaries``
and ``obrien_fleming_boundaries`` use the same engine for the classical designs, whose
published constants (Pocock K = 5: 2.413; O'Brien-Fleming K = 5: final 2.040) check it.

**mSPRT tuned to a plan.** The mSPRT (``sequential.msprt``) rejects at a look with
variance V when z^2 >= (1 + V / tau^2) (2 ln(1/alpha) + ln(1 + tau^2 / V)).  With
r = tau^2 / V_plan (V_plan = the variance of the difference at the planned sample size)
that critical z at the planned size is minimised - so the power there is maximised for
every effect, the minimum effect included - where d/dr = 0:

    r = 2 ln(1/alpha) + ln(1 + r)            (r = 8.21 at alpha = 0.05)

the exact form of the rule GrowthBook and Eppo use (their r = 2 ln(1/alpha) +
ln(1 + 2 ln(1/alpha)) is its first iterate).  ``tuned_tau2`` returns r * V_plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _dist as _st
from ._common import Result, check_alpha

__all__ = [
    "SPENDING",
    "GroupLook",
    "constant_boundaries",
    "group_boundaries",
    "group_look",
    "obrien_fleming_boundaries",
    "spent",
    "tuned_ratio",
    "tuned_tau2",
]

#: Spending functions by name (``--spending``).
SPENDING = ("obf", "pocock")
_GRID = 401  # Simpson points across the continuation region (odd; 201 agrees to 1e-5)
_SD = 8.0  # the region is clipped at +-8 SD of the motion (mass beyond: < 1e-15)


def spent(t: float, alpha: float, spending: str) -> float:
    """alpha(t): the two-sided type I error spent by information fraction ``t``."""
    check_alpha(alpha)
    if spending not in SPENDING:
        raise ValueError(f"spending must be one of {', '.join(SPENDING)}, got {spending!r}")
    if t <= 0:
        return 0.0
    if t >= 1:
        return alpha
    if spending == "obf":
        # Each side spends alpha/2 by 2 - 2 Phi(z_{1 - alpha/4} / sqrt(t)) (the convention
        # of ldbounds, gsDesign and rpact for symmetric two-sided bounds).
        return float(4.0 * _st.norm.sf(_st.norm.isf(alpha / 4.0) / math.sqrt(t)))
    return alpha * math.log(1.0 + (math.e - 1.0) * t)


class _Motion:
    """Density of the Brownian motion S(t) = Z sqrt(t) restricted to not having crossed."""

    def __init__(self) -> None:
        self.t = 0.0
        self.x: np.ndarray | None = None  # grid on the S scale
        self.w: np.ndarray | None = None  # density x Simpson weights at the grid

    def exit_prob(self, t: float, b: float) -> float:
        """P(not crossed so far, and |S(t)| >= b sqrt(t))."""
        c = b * math.sqrt(t)
        if self.x is None:
            return float(2.0 * _st.norm.sf(c / math.sqrt(t)))
        sd = math.sqrt(t - self.t)
        assert self.w is not None
        tail = _st.norm.sf((c - self.x) / sd) + _st.norm.cdf((-c - self.x) / sd)
        return float(np.dot(self.w, tail))

    def advance(self, t: float, b: float) -> None:
        """Move to look time ``t`` and keep the mass inside |S| < b sqrt(t)."""
        c = b * math.sqrt(t)
        lim = min(c, _SD * math.sqrt(t))
        x = np.linspace(-lim, lim, _GRID)
        h = x[1] - x[0]
        simpson = np.ones(_GRID)
        simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
        simpson *= h / 3.0
        if self.x is None:
            u = x / math.sqrt(t)
            dens = np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi * t)
        else:
            sd = math.sqrt(t - self.t)
            assert self.w is not None
            u = (x[:, None] - self.x[None, :]) / sd
            dens = np.exp(-0.5 * u * u) @ self.w / (sd * math.sqrt(2.0 * math.pi))
        self.t, self.x, self.w = t, x, dens * simpson


def _solve(m: _Motion, t: float, target: float) -> float:
    """The boundary b at time t whose exit probability is ``target``."""
    if target <= 0:
        return math.inf
    f = lambda b: m.exit_prob(t, b) - target  # noqa: E731
    hi = 1.0
    while f(hi) > 0:
        hi *= 2.0
        if hi > 64:
            return math.inf
    lo = 0.0
    if f(lo) < 0:  # even b = 0 spends less than allowed: everything is rejected
        return 0.0
    from scipy.optimize import brentq  # only here: its import costs ~0.2 s of start-up

    return float(brentq(f, lo, hi, xtol=1e-10))


def group_boundaries(times: list[float], alpha: float = 0.05, spending: str = "obf") -> list[float]:
    """Two-sided z boundaries at information fractions ``times`` (increasing, in (0, 1]
    with the last one the final look when it is 1)."""
    check_alpha(alpha)
    m, out, prev = _Motion(), [], 0.0
    last_t = 0.0
    for t in times:
        if not (last_t < t <= 1.0):
            raise ValueError("information fractions must increase within (0, 1]")
        a = spent(t, alpha, spending)
        b = _solve(m, t, a - prev)
        out.append(b)
        if math.isfinite(b):
            prev = a
            m.advance(t, b)
        last_t = t
    return out


def _crossing(bounds: list[float], times: list[float]) -> float:
    m, total = _Motion(), 0.0
    for t, b in zip(times, bounds, strict=True):
        total += m.exit_prob(t, b)
        m.advance(t, b)
    return total


def constant_boundaries(k: int, alpha: float = 0.05) -> list[float]:
    """Pocock's classical design: one constant boundary over ``k`` equally spaced looks."""
    from scipy.optimize import brentq

    times = [(i + 1) / k for i in range(k)]
    c = brentq(lambda c: _crossing([c] * k, times) - alpha, 1.0, 6.0, xtol=1e-10)
    return [float(c)] * k


def obrien_fleming_boundaries(k: int, alpha: float = 0.05) -> list[float]:
    """O'Brien & Fleming's classical design: b_j = C sqrt(k / j) over ``k`` equal looks."""
    times = [(i + 1) / k for i in range(k)]
    shape = [math.sqrt(k / (i + 1)) for i in range(k)]

    def err(c: float) -> float:
        return _crossing([c * s for s in shape], times) - alpha

    from scipy.optimize import brentq

    c = brentq(err, 1.0, 6.0, xtol=1e-10)
    return [float(c * s) for s in shape]


@dataclass(frozen=True, slots=True)
class GroupLook(Result):
    """One look of a group-sequential test: its boundary and whether it is crossed."""

    look: int
    information: float  # fraction of the planned information (capped at 1)
    z: float
    boundary: float
    alpha_spent: float  # cumulative, after this look
    crossed: bool  # |z| >= boundary at this look
    rejected: bool  # crossed at this look or an earlier one
    final: bool  # information reached the plan (or the last planned look)
    nominal_p: float  # the fixed-horizon p-value that matches this boundary


def group_look(
    z: float,
    information: float,
    previous: list[tuple[float, float | None, float]],
    alpha: float = 0.05,
    spending: str = "obf",
    final: bool = False,
) -> GroupLook:
    """Look number len(previous) + 1 at information fraction ``information``.

    ``previous``: (information, boundary, z) of the looks already taken, with the
    boundaries as they were computed then (None = infinite), so a look is never
    re-decided.  ``final`` spends all that is left (the last planned look); so does
    reaching the planned information."""
    check_alpha(alpha)
    if not math.isfinite(z):
        raise ValueError(f"z must be finite, got {z!r}")
    t = 1.0 if final else min(1.0, information)
    m, prev_t, prev_a = _Motion(), 0.0, 0.0
    for pt, pb, _pz in previous:
        if pb is not None and math.isfinite(pb):
            m.advance(pt, pb)
            prev_a = spent(pt, alpha, spending)
        prev_t = pt
    if prev_t >= 1.0:
        raise ValueError("the final look was taken already: the test is over")
    if min(1.0, information) <= prev_t:
        raise ValueError(
            f"no new information since the last look ({prev_t:.4f} of the plan): nothing to look at"
        )
    a = spent(t, alpha, spending)
    b = _solve(m, t, a - prev_a)
    crossed = abs(z) >= b
    earlier = any(pb is not None and abs(pz) >= pb for _pt, pb, pz in previous)
    return GroupLook(
        look=len(previous) + 1,
        information=t,
        z=z,
        boundary=b,
        alpha_spent=a,
        crossed=crossed,
        rejected=crossed or earlier,
        final=t >= 1.0,
        nominal_p=float(2.0 * _st.norm.sf(b)) if math.isfinite(b) else 0.0,
    )


def tuned_ratio(alpha: float = 0.05) -> float:
    """r = tau^2 / V_plan solving r = 2 ln(1/alpha) + ln(1 + r) (see the module text)."""
    check_alpha(alpha)
    a = 2.0 * math.log(1.0 / alpha)
    r = a
    for _ in range(100):
        r_new = a + math.log1p(r)
        if abs(r_new - r) < 1e-14 * r_new:
            break
        r = r_new
    return r_new


def tuned_tau2(variance_now: float, n_now: float, n_planned: float, alpha: float = 0.05) -> float:
    """tau^2 maximising the mSPRT's power at the planned sample size.

    The variance of the difference shrinks like 1/n, so at the plan it is
    V_plan = variance_now * n_now / n_planned; tau^2 = r(alpha) * V_plan."""
    if not (variance_now > 0 and n_now > 0 and n_planned > 0):
        raise ValueError("need a positive variance and sample sizes to tune tau^2")
    return tuned_ratio(alpha) * variance_now * n_now / n_planned
