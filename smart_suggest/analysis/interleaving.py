"""Analysis of an interleaving experiment: do users prefer B's ranking to A's?

Reads the per-user team credits (``experiments.teams``; a summary file can give the same
sums) and runs ``stats.interleaving``: the share of users preferring B among those with a
preference, its exact interval and two-sided binomial test (or, with ``sequential``, the
always-valid mSPRT version for live watching), and the mean per-user credit difference
with a t interval. There is no sample-ratio check: every enrolled user sees both teams;
instead the share of impressions each team contributed is shown (team draft gives each
team the first pick in half of the rounds, so a large imbalance means the lists differ
in length, not a fault).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smart_suggest import __version__, clock
from smart_suggest.analysis.common import check_params
from smart_suggest.analysis.report import ExperimentInfo
from smart_suggest.analysis.sources import days_run
from smart_suggest.experiments.lifecycle import Experiment
from smart_suggest.store import Store

#: The columns of an interleaving summary (``--summary`` with one row) and ``--print-sql``.
SUMMARY_COLUMNS = ("users", "prefer_a", "prefer_b", "sum_diff", "sum_diff_sq")


@dataclass(frozen=True, slots=True)
class InterleavingAnalysis:
    experiment: ExperimentInfo
    generated_at: str
    version: str
    strategies: tuple[str, str]
    teams: dict[str, Any]  # impressions / clicks / purchases per team
    result: Any  # stats.interleaving.InterleavingResult
    mode: str

    @property
    def verdict(self) -> str:
        return str(self.result.verdict)

    @property
    def headline(self) -> str:
        return str(self.result.text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.to_dict(),
            "generated_at": self.generated_at,
            "version": self.version,
            "design": "interleaving",
            "mode": self.mode,
            "strategies": {"A": self.strategies[0], "B": self.strategies[1]},
            "teams": self.teams,
            "preference": self.result.to_dict(),
            "verdict": self.verdict,
            "headline": self.headline,
            "methods": {
                "interleaving": "team draft (fair coin per round; each team adds its best "
                "item not yet shown; an item both lists rank next is shown once as 'both')",
                "credit": "clicks on a team's items; preference = sign(credit B - credit A)",
                "test": "exact two-sided binomial test of the preference share against 1/2, "
                "Clopper-Pearson interval"
                + (
                    "; always-valid mSPRT p-value and confidence sequence"
                    if self.mode == "sequential"
                    else ""
                ),
                "mean_difference": "mean per-user credit difference B - A, t interval",
            },
        }


def analyze_interleaving(
    store: Store,
    exp: Experiment,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
) -> InterleavingAnalysis:
    from smart_suggest.experiments.kpis import results
    from smart_suggest.experiments.teams import team_stats
    from smart_suggest.stats.interleaving import interleaving_test

    check_params(alpha, 0.05)
    with store.read():
        teams = team_stats(store, exp)
        res = results(store, exp.id)
    result = interleaving_test(
        teams.users,
        teams.prefer_a,
        teams.prefer_b,
        float(teams.sum_diff),
        float(teams.sum_diff_sq),
        alpha=alpha,
        sequential=sequential,
    )
    return InterleavingAnalysis(
        experiment=ExperimentInfo.of(exp, days_run(exp, res)),
        generated_at=clock.iso(clock.now()),
        version=__version__,
        strategies=(exp.variants[0].strategy, exp.variants[1].strategy),
        teams=teams.to_dict(),
        result=result,
        mode="sequential" if sequential else "fixed_horizon",
    )
