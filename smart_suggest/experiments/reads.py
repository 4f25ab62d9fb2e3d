"""What the analysis of a stored experiment reads, in one read snapshot, as plain values.

Only SQL and the standard library here (no numpy, scipy or statistics), so a command can
run these queries while the statistics load in another thread: SQLite runs a statement
without holding the GIL, so the two overlap on a second core and the command takes about
as long as the slower of the two instead of their sum. ``analysis.sources`` turns what is
read here into the statistics' inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smart_suggest.errors import InputError
from smart_suggest.experiments.covariates import covariate_sums
from smart_suggest.experiments.kpis import ExperimentResults, results
from smart_suggest.experiments.lifecycle import Experiment, get_experiment
from smart_suggest.experiments.timeline import Timeline, timeline
from smart_suggest.store import Store

#: Distinct (clicks, impressions) per exposed user and arm, with how many users have each.
USER_PAIRS_SQL = """\
SELECT variant, clicks, impressions, COUNT(*) AS users
FROM event_users
WHERE experiment_id = :experiment_id AND impressions > 0
GROUP BY variant, clicks, impressions
"""


@dataclass(frozen=True, slots=True)
class StoredReads:
    """The stored numbers of one experiment's analysis, all from one read snapshot."""

    experiment: Experiment
    results: ExperimentResults
    #: Per arm, the (clicks, impressions, users) rows of ``USER_PAIRS_SQL`` (A and B always).
    user_pairs: dict[str, list[tuple[int, int, int]]]
    #: The CUPED covariate sums by variant, when asked for.
    covariates: dict[str, dict[str, Any]] | None
    #: The daily timeline, or None with the reason in ``timeline_note``.
    timeline: Timeline | None
    timeline_note: str


def user_pair_rows(store: Store, experiment_id: int) -> dict[str, list[tuple[int, int, int]]]:
    """Per arm: the distinct (clicks, impressions) of its exposed users, with their count."""
    rows: dict[str, list[tuple[int, int, int]]] = {"A": [], "B": []}
    for variant, x, y, c in store.conn.execute(USER_PAIRS_SQL, {"experiment_id": experiment_id}):
        rows.setdefault(str(variant), []).append((int(x), int(y), int(c)))
    return rows


def read_experiment(
    store: Store,
    exp_ref: int | str | Experiment,
    *,
    covariates: bool = False,
    step: Callable[[str, int, int], None] | None = None,
) -> StoredReads:
    """Everything ``analysis.analyze`` reads of a stored experiment, in one read snapshot
    (``step`` is the progress callback). ``NotFoundError`` for an unknown experiment."""
    report = step or (lambda stage, done, total: None)
    with store.read():
        exp = get_experiment(store, exp_ref)
        report("results", 0, 3)
        res = results(store, exp.id)
        pairs = user_pair_rows(store, exp.id)
        cov = covariate_sums(store, exp.id) if covariates else None
        report("timeline", 1, 3)
        note = ""
        tl: Timeline | None
        try:
            tl = timeline(store, exp.id, bucket="day", cumulative=False)
        except InputError as exc:  # e.g. an absurdly long span
            tl, note = None, f"no daily timeline: {exc}"
    return StoredReads(exp, res, pairs, cov, tl, note)
