"""What the statistics need (``Inputs``), and per-variant summaries parsed from files.

A ``--summary`` file (CSV or JSON, one row per variant) carries the sufficient statistics
computed elsewhere; ``load_summary`` reads it and ``parse_rows`` checks every value."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smart_suggest.analysis.checks import check_sums, parse_number, shown
from smart_suggest.analysis.report import ExperimentInfo
from smart_suggest.errors import InputError
from smart_suggest.experiments.kpis import STATS_COLUMNS, VariantKPIs

#: Columns of a ``--summary`` file (one row per variant: A, B, C, ...): the sums the
#: local analysis reads from its own summaries.
SUMMARY_COLUMNS: tuple[str, ...] = STATS_COLUMNS


#: Optional columns: the configured split (two variants: treatment_share, default 0.5;
#: more: weight per variant, default equal) and days run (for the duration).
SUMMARY_OPTIONAL_COLUMNS: tuple[str, ...] = ("treatment_share", "weight", "days")


_FLOAT_COLUMNS = ("engagement_sum", "engagement_sumsq")
#: A summary file has a few short rows; anything larger is refused before parsing.
MAX_SUMMARY_BYTES = 16 << 20


@dataclass
class Inputs:
    """Everything the statistics need; built from the store or from a summary file."""

    info: ExperimentInfo
    a: VariantKPIs
    b: VariantKPIs
    primary_declared: str | None
    days: list[tuple[str, int, int, int, int]] = field(default_factory=list)  # per UTC day
    daily_assigned: list[dict[str, Any]] = field(default_factory=list)
    revision: int = 0
    timeline_note: str = ""
    #: Engagement n, mean and variance per arm ("A", "B") from centred values, where the
    #: sums could not carry the variance and the raw values were at hand.
    engagement_centred: dict[str, Any] = field(default_factory=dict)
    #: Per arm, the distinct (clicks, impressions) pairs of exposed users and their counts
    #: (``tails.user_pairs``); empty for sources with sums only.
    user_pairs: dict[str, Any] = field(default_factory=dict)
    #: Per variant, the CUPED covariate sums (``analysis.cuped.COVARIATE_COLUMNS``), read
    #: with the rest; None when not asked for or not available from the source.
    covariates: dict[str, dict[str, Any]] | None = None


def parse_rows(
    rows: Sequence[Mapping[str, Any]], source: str
) -> tuple[VariantKPIs, VariantKPIs, float, float | None]:
    """The two variants A and B of a summary (``InputError`` for any other count)."""
    arms, _weights, share, days = parse_variants(rows, source)
    if len(arms) != 2:
        raise InputError(f"{source}: expected the variants A and B, got {len(arms)} variants")
    return arms[0], arms[1], share, days


def parse_variants(
    rows: Sequence[Mapping[str, Any]], source: str
) -> tuple[list[VariantKPIs], list[float], float, float | None]:
    """Every variant of a summary, A first: (sums per variant, weights, share of B, days).

    The variants are labelled A, B, C, ... with no gap (A is the control). Two variants
    take their split from ``treatment_share`` (default 0.5); more take theirs from a
    ``weight`` column (default: equal weights), as ``experiment create --weights``.
    """
    by_variant: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            raise InputError(f"{source}: every row must be an object with the columns")
        cols = {str(k).strip().lower() for k in row}
        missing = [c for c in SUMMARY_COLUMNS if c not in cols]
        if missing:
            raise InputError(
                f"{source}: missing column(s) {', '.join(missing)} "
                f"(need: {', '.join(SUMMARY_COLUMNS)})"
            )
        clean = {str(k).strip().lower(): v for k, v in row.items()}
        variant = str(clean["variant"]).strip().upper()
        if len(variant) != 1 or not ("A" <= variant <= "Z"):
            raise InputError(
                f"{source}: variant must be a letter A, B, C, ..., got {shown(clean['variant'])}"
            )
        if variant in by_variant:
            raise InputError(f"{source}: variant {variant} appears twice")
        by_variant[variant] = clean
    labels = [chr(ord("A") + i) for i in range(max(2, len(by_variant)))]
    if set(by_variant) != set(labels):
        missing_v = " and ".join(v for v in labels if v not in by_variant)
        raise InputError(
            f"{source}: no row for variant {missing_v} (need one row per variant: A, B, ... "
            "with no gap)"
        )
    arms: list[VariantKPIs] = []
    shares: list[float] = []
    days: list[float] = []
    weights: list[float] = []
    for v in labels:
        row = by_variant[v]
        nums: dict[str, Any] = {}
        for c in SUMMARY_COLUMNS[1:]:
            nums[c] = parse_number(
                row[c], f"{source}: variant {v}, column {c}", whole=c not in _FLOAT_COLUMNS
            )
        check_sums(nums, f"{source}: variant {v}")
        for opt, dest in (("treatment_share", shares), ("days", days), ("weight", weights)):
            if row.get(opt) not in (None, ""):
                dest.append(
                    float(
                        parse_number(row[opt], f"{source}: variant {v}, column {opt}", whole=False)
                    )
                )
        arms.append(VariantKPIs.from_sums(v, v, nums))
    share = 0.5
    if shares:
        if len(set(shares)) > 1:
            raise InputError(f"{source}: treatment_share differs between the rows")
        share = shares[0]
        if not 0 < share < 1:
            raise InputError(f"{source}: treatment_share must be in (0, 1), got {share}")
    if weights:
        if len(weights) != len(labels):
            raise InputError(f"{source}: give a weight on every row or on none")
        if not all(0 < w < 1e15 for w in weights):
            raise InputError(f"{source}: every weight must be > 0")
        if shares:
            raise InputError(f"{source}: give either treatment_share or weight, not both")
        share = weights[1] / (weights[0] + weights[1])
    else:
        weights = [1.0 - share, share] if len(labels) == 2 else [1.0] * len(labels)
    day_value: float | None = None
    if days:
        if len(set(days)) > 1:
            raise InputError(f"{source}: days differs between the rows")
        day_value = days[0]
        if day_value <= 0:
            raise InputError(f"{source}: days must be > 0, got {day_value}")
    return arms, weights, share, day_value


def load_summary(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a summary file: CSV with a header row, or JSON (``-`` reads stdin).

    JSON may be a list of row objects, an object keyed by variant (``{"A": {...}, "B":
    {...}}``) or an object with such a ``"variants"`` member (the JSON of
    ``experiment results``).  Raises ``InputError`` with one line.
    """
    label = "stdin" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(MAX_SUMMARY_BYTES + 1)
        else:
            with Path(path).open("rb") as fh:  # a FIFO or /dev/stdin works too
                data = fh.read(MAX_SUMMARY_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, not a summary file") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_SUMMARY_BYTES:
        # A summary has one short row per variant; this is the wrong file (or /dev/zero).
        raise InputError(f"{label}: larger than {MAX_SUMMARY_BYTES >> 20} MiB: not a summary file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{label}: not UTF-8 text (line {line})") from None
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"{label}: the file is empty")
    if str(path).lower().endswith(".json") or stripped[0] in "[{":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except RecursionError:
            raise InputError(f"{label}: JSON nested too deeply to be a summary") from None
        return _json_rows(doc, label)
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InputError(f"{label}: no header row")
    rows: list[dict[str, Any]] = []
    try:
        parsed = list(reader)
    except csv.Error as exc:
        raise InputError(f"{label}: line {reader.line_num}: {exc}") from None
    for row in parsed:
        if None in row:
            raise InputError(f"{label}: line {reader.line_num} has more fields than the header")
        if all(v in (None, "") for v in row.values()):
            continue
        if any(v is None for v in row.values()):
            raise InputError(f"{label}: line {reader.line_num} has fewer fields than the header")
        rows.append(dict(row))
    if not rows:
        raise InputError(f"{label}: no data rows (need one row each for A and B)")
    return rows


def _json_rows(doc: Any, label: str) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and "variants" in doc:
        doc = doc["variants"]
    if isinstance(doc, dict):
        rows = []
        for k, v in doc.items():
            if not isinstance(v, dict):
                raise InputError(f"{label}: variant {shown(k, 20)} must map to an object")
            rows.append({**v, "variant": v.get("variant", k)})
        return rows
    if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
        return [dict(r) for r in doc]
    raise InputError(
        f"{label}: expected a list of row objects or an object keyed by variant (A, B)"
    )
