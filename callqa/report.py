"""The HTML scorecard report: one self-contained file (inline CSS, inline SVG charts, no script, no network) that
reads on screen and prints on A4, one agent per page.

The markup lives in Jinja2 templates (templates/report.html.j2) with autoescaping on: everything taken from the
database — transcript quotes above all, but also agent, call and rubric ids and names — is escaped by the
template engine, never by hand, and a Content-Security-Policy forbids scripts and fetches as a second line of
defence. This module only computes what the templates show: rounded numbers, colours and chart geometry.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import jinja2
import pandas as pd

from .scorecards import ReportData, RubricInfo
from .text import clock, missing
from .views import section_column

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_PERIOD_LABELS = {"day": "%d %b", "week": "%d %b", "month": "%b %Y"}
PERIOD_TITLES = {"day": "day", "week": "week (from Monday)", "month": "month"}
GOOD, WARN, BAD, NONE = "#2e7d32", "#ef6c00", "#c62828", "#9e9e9e"
WARN_BELOW_PASS = 15.0  # scores this close under the pass mark are amber, further below red


class TrendChart(NamedTuple):
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    by: str
    pass_mark: float
    pass_y: float
    ticks: list[tuple[int, float]]  # (score, y)
    points: list[tuple[float, float, str, str]]  # (x, y, colour, tooltip)
    line: str  # polyline coordinates, empty below two points
    labels: list[tuple[float, str]]  # (x, date label)


class SectionBar(NamedTuple):
    y: int
    name: str
    score: float | None
    length: float
    colour: str


class SectionsChart(NamedTuple):
    width: int
    height: int
    label_w: int
    bar_w: int
    top: int
    pass_mark: float
    pass_x: float
    bars: list[SectionBar]


def score_text(value: float | None) -> str:
    return "–" if value is None or missing(value) else f"{value:.1f}"


def percent(value: float | None) -> str:
    return "–" if value is None or missing(value) else f"{100 * value:.0f}%"


def when(value: datetime | None) -> str:
    return "no start time" if missing(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def colour(score: float | None, pass_mark: float) -> str:
    if score is None or missing(score):
        return NONE
    return GOOD if score >= pass_mark else WARN if score >= pass_mark - WARN_BELOW_PASS else BAD


def _y(score: float, top: float, height: float) -> float:
    return top + height * (1 - score / 100.0)


def trend_chart(trend: pd.DataFrame, pass_mark: float, by: str) -> TrendChart:
    """Mean score per period against time, with the pass mark; periods without a dated call are left out."""
    width, height, left, right, top, bottom, pad = 640, 220, 40, 84, 14, 34, 14
    plot_w, plot_h = width - left - right, height - top - bottom
    dated = trend.dropna(subset=["period"]).sort_values("period")
    points, labels, line = [], [], ""
    if not dated.empty:
        times = [pd.Timestamp(p).timestamp() for p in dated["period"]]
        span = (times[-1] - times[0]) or 1.0
        inner = plot_w - 2 * pad
        xs = [left + plot_w / 2] if len(times) == 1 else [left + pad + inner * (t - times[0]) / span for t in times]
        for x, row in zip(xs, dated.itertuples()):
            if not missing(row.avg_score):
                tooltip = f"{pd.Timestamp(row.period):%Y-%m-%d}: {row.avg_score:.1f} ({row.calls} calls)"
                points.append((x, _y(row.avg_score, top, plot_h), colour(row.avg_score, pass_mark), tooltip))
        if len(points) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        shown = sorted({round(i * (len(xs) - 1) / 5) for i in range(6)}) if len(xs) > 6 else range(len(xs))
        labels = [(xs[i], pd.Timestamp(dated["period"].iloc[i]).strftime(_PERIOD_LABELS[by])) for i in shown]
    return TrendChart(width, height, left, right, top, bottom, by, pass_mark, _y(pass_mark, top, plot_h),
                      [(tick, _y(tick, top, plot_h)) for tick in range(0, 101, 20)], points, line, labels)


def sections_chart(scores: list[tuple[str, float | None]], pass_mark: float) -> SectionsChart:
    """One horizontal bar (0-100) per section, the pass mark as a dashed line."""
    width, label_w, right, row_h, top = 640, 170, 50, 28, 6
    bar_w = width - label_w - right
    known = [(name, None if score is None or missing(score) else score) for name, score in scores]
    bars = [SectionBar(top + i * row_h, name, score, 0.0 if score is None else bar_w * score / 100.0,
                       colour(score, pass_mark))
            for i, (name, score) in enumerate(known)]
    return SectionsChart(width, top + row_h * len(scores) + 20, label_w, bar_w, top, pass_mark,
                         label_w + bar_w * pass_mark / 100.0, bars)


def ranked_criteria(criteria: pd.DataFrame) -> pd.DataFrame:
    """Criteria that applied at least once, the most often failed first."""
    applied = criteria[criteria["applicable"] > 0].copy()
    applied["failure_rate"] = applied["failed"] / applied["applicable"]
    return applied.sort_values(["failure_rate", "failed", "criterion_id"], ascending=[False, False, True])


def _rubric_block(data: ReportData, agent: str, overall_row: dict, rubric: RubricInfo) -> dict:
    def rows_of(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["agent_id"] == agent) & (frame["rubric_id"] == rubric.rubric_id)]

    trend = rows_of(data.trend)
    ranked = ranked_criteria(rows_of(data.criteria))
    examples = rows_of(data.examples)
    sections = [(name, overall_row.get(section_column(sid))) for sid, name in rubric.sections.items()]
    return {
        "rubric": rubric, "row": overall_row,
        "trend": trend_chart(trend, rubric.pass_mark, data.trend_by), "periods": list(trend.itertuples()),
        "sections": sections_chart(sections, rubric.pass_mark), "ranked": list(ranked.itertuples()),
        "examples": {row.criterion_id: list(examples[examples["criterion_id"] == row.criterion_id].itertuples())
                     for row in ranked[ranked["failed"] > 0].itertuples()},
    }


def _filters(data: ReportData) -> str:
    q = data.query
    parts = [f"agents {', '.join(q.agents)}" if q.agents else "all agents",
             f"from {q.since}" if q.since else "", f"to {q.until}" if q.until else "",
             f"rubric {q.rubric}" if q.rubric else ""]
    return " · ".join(p for p in parts if p) + f" · generated {data.generated_at:%Y-%m-%d %H:%M}"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("callqa", "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(score=score_text, percent=percent, when=when, clock=clock)
    environment.tests["missing"] = missing
    return environment


def render_report(data: ReportData) -> str:
    agents = sorted(data.overall["agent_id"].unique().tolist())
    blocks = {agent: [_rubric_block(data, agent, row, data.rubrics[row["rubric_id"]])
                      for row in data.overall[data.overall["agent_id"] == agent].to_dict("records")]
              for agent in agents}
    return _environment().get_template("report.html.j2").render(
        csp=CSP, filters=_filters(data), agents=agents, blocks=blocks, summary=list(data.overall.itertuples()),
        trend_title=PERIOD_TITLES[data.trend_by], trend_by=data.trend_by, bad=BAD,
    )
