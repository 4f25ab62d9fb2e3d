"""Statistics engine: pure functions on sufficient statistics.

Every function takes plain numbers (counts, sums, sums of squares per variant) and
returns a frozen, slotted dataclass with a ``to_dict()`` that is plain JSON (no NaN or
infinity).  Nothing is rounded here; round only for display.

Conventions:

* "B versus A": differences are B - A, relative lifts B / A - 1.
* ``significant`` always means ``p_value < alpha``.
* Degenerate but valid data (an empty arm, zero variance, all successes, a single user)
  never raises: the result carries p_value = 1 (or another defined value), ``None`` for
  quantities that do not exist (e.g. a relative lift over a zero baseline) and a
  ``note`` saying why.  Impossible *inputs* (negative counts, successes > n, alpha
  outside (0, 1), a baseline rate outside (0, 1) for a power calculation) raise
  ``ValueError``.
"""

from ._common import Interval, Result, UnresolvedVariance
from .bayes import (
    BetaBinomialResult,
    NormalPosteriorResult,
    beta_binomial,
    normal_posterior,
    prob_greater,
)
from .bootstrap import BootstrapResult, cluster_bootstrap_ratio, top_share
from .continuous import (
    MeanVar,
    WelchTest,
    mean_var_from_sums,
    sums_resolve_variance,
    welch_t_test,
    welch_t_test_from_sums,
)
from .groupseq import (
    GroupLook,
    constant_boundaries,
    group_boundaries,
    group_look,
    obrien_fleming_boundaries,
    spent,
    tuned_ratio,
    tuned_tau2,
)
from .guards import SRM_THRESHOLD, HolmResult, SrmResult, holm, srm_check
from .power import (
    DurationEstimate,
    MdeResult,
    PowerResult,
    SampleSize,
    achieved_power,
    expected_duration,
    mde_proportions,
    power_from_se,
    sample_size_means,
    sample_size_proportions,
)
from .proportions import (
    ProportionTest,
    cohens_h,
    newcombe_diff_interval,
    relative_lift_interval,
    two_proportion_test,
    wilson_interval,
)
from .ratio import RatioArm, RatioSums, RatioTest, ratio_arm, ratio_test
from .sequential import (
    DEFAULT_RELATIVE_TAU,
    SequentialResult,
    default_tau2,
    msprt,
    sequential_means,
    sequential_proportions,
    sequential_ratio,
)
from .trend import MIN_DAYS, TrendResult, novelty_check
from .verdict import (
    DEFAULT_MIN_LIFT,
    POWER_TARGET,
    VERDICT_RULES,
    VERDICTS,
    Verdict,
    classify,
    verdict,
)

__all__ = [
    "DEFAULT_MIN_LIFT",
    "DEFAULT_RELATIVE_TAU",
    "MIN_DAYS",
    "POWER_TARGET",
    "SRM_THRESHOLD",
    "VERDICTS",
    "VERDICT_RULES",
    "BetaBinomialResult",
    "BootstrapResult",
    "DurationEstimate",
    "GroupLook",
    "HolmResult",
    "Interval",
    "MdeResult",
    "MeanVar",
    "NormalPosteriorResult",
    "PowerResult",
    "ProportionTest",
    "RatioArm",
    "RatioSums",
    "RatioTest",
    "Result",
    "SampleSize",
    "SequentialResult",
    "SrmResult",
    "TrendResult",
    "UnresolvedVariance",
    "Verdict",
    "WelchTest",
    "achieved_power",
    "beta_binomial",
    "classify",
    "cluster_bootstrap_ratio",
    "cohens_h",
    "constant_boundaries",
    "default_tau2",
    "expected_duration",
    "group_boundaries",
    "group_look",
    "holm",
    "mde_proportions",
    "mean_var_from_sums",
    "msprt",
    "newcombe_diff_interval",
    "normal_posterior",
    "novelty_check",
    "obrien_fleming_boundaries",
    "power_from_se",
    "prob_greater",
    "ratio_arm",
    "ratio_test",
    "relative_lift_interval",
    "sample_size_means",
    "sample_size_proportions",
    "sequential_means",
    "sequential_proportions",
    "sequential_ratio",
    "spent",
    "srm_check",
    "sums_resolve_variance",
    "top_share",
    "tuned_ratio",
    "tuned_tau2",
    "two_proportion_test",
    "verdict",
    "welch_t_test",
    "welch_t_test_from_sums",
    "wilson_interval",
]
