"""What the experiments screen exports and copies: the KPI table, the analysis, a chart.

Only formatting here: the numbers come from the view models in ``tui.data`` (KPIs) and
from ``smart_suggest.analysis`` (the analysis, as ``analyze --json`` prints it).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from tui import data

KPI_FIELDS = (
    "variant",
    "strategy",
    "users_assigned",
    "users_exposed",
    "impressions",
    "clicks",
    "ctr",
    "ctr_ci_low",
    "ctr_ci_high",
    "users_converted",
    "conversion_rate",
    "conversion_ci_low",
    "conversion_ci_high",
    "purchases",
    "engagement_mean",
    "engagement_sd",
    "engagement_n",
)


def kpi_records(view: data.ExperimentView) -> list[dict[str, Any]]:
    """One record per variant: the KPIs and, when tested, their 95% intervals."""
    ivs: dict[str, dict[str, data.Interval]] = {}
    if view.stats is not None and not view.waiting:
        for m in view.stats.metrics:
            ivs[m.metric] = m.intervals
    ctr_iv, conv_iv = ivs.get("ctr", {}), ivs.get("conversion_rate", {})
    out = []
    for r in view.variants:
        ctr, conv = ctr_iv.get(r.variant), conv_iv.get(r.variant)
        out.append(
            {
                "variant": r.variant,
                "strategy": r.strategy,
                "users_assigned": r.assigned,
                "users_exposed": r.exposed,
                "impressions": r.impressions,
                "clicks": r.clicks,
                "ctr": r.ctr,
                "ctr_ci_low": ctr.low if ctr else None,
                "ctr_ci_high": ctr.high if ctr else None,
                "users_converted": r.converted,
                "conversion_rate": r.conversion,
                "conversion_ci_low": conv.low if conv else None,
                "conversion_ci_high": conv.high if conv else None,
                "purchases": r.purchases,
                "engagement_mean": r.engagement_mean,
                "engagement_sd": r.engagement_sd,
                "engagement_n": r.engagement_n,
            }
        )
    return out


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def kpi_csv(view: data.ExperimentView) -> str:
    """The KPI table as CSV (full precision; empty cells where there is no value)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(KPI_FIELDS)
    for rec in kpi_records(view):
        writer.writerow([_cell(rec[f]) for f in KPI_FIELDS])
    return buf.getvalue()


def kpi_tsv(view: data.ExperimentView) -> str:
    """The KPI table as tab-separated text, for pasting into a spreadsheet."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(KPI_FIELDS)
    for rec in kpi_records(view):
        writer.writerow([_cell(rec[f]) for f in KPI_FIELDS])
    return buf.getvalue()


def analysis_json(analysis: dict[str, Any]) -> str:
    """The analysis document (``analyze --json``), ASCII-only, no NaN."""
    return json.dumps(analysis, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def chart_text(ansi: str) -> str:
    """A chart drawn by plotext, as plain text (colour codes removed)."""
    from rich.text import Text

    return Text.from_ansi(ansi).plain.rstrip() + "\n"


def chart_svg(ansi: str, title: str) -> str:
    """A chart drawn by plotext, as an SVG image (colours kept)."""
    from rich.console import Console
    from rich.text import Text

    text = Text.from_ansi(ansi)
    width = max((len(line) for line in text.plain.splitlines()), default=40)
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor")
    console.print(text)
    return console.export_svg(title=title)
