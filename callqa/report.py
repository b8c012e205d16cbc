"""The HTML scorecard report: one self-contained file (inline CSS, inline SVG charts drawn here, no script, no
network) that reads on screen and prints on A4, one agent per page.

Everything taken from the database — transcript quotes above all, but also agent, call and rubric ids and
names — goes through ``_e`` (HTML escaping), and a Content-Security-Policy forbids scripts and fetches as a
second line of defence.
"""

from __future__ import annotations

import html
import math
from datetime import datetime

import pandas as pd

from .export import ReportData, RubricInfo
from .views import section_column

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_PERIOD_LABELS = {"day": "%d %b", "week": "%d %b", "month": "%b %Y"}
_PERIOD_TITLES = {"day": "day", "week": "week (from Monday)", "month": "month"}
_GOOD, _WARN, _BAD, _NONE = "#2e7d32", "#ef6c00", "#c62828", "#9e9e9e"
WARN_BELOW_PASS = 15.0  # scores this close under the pass mark are amber, further below red

CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d1d1f;
       max-width: 190mm; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.6em; margin: 0 0 4px; } h2 { font-size: 1.35em; margin: 0 0 6px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; } h4 { font-size: 0.95em; margin: 10px 0 2px; }
.meta { color: #555; margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f2f2f2; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.agent { margin-top: 28px; padding-top: 10px; border-top: 3px solid #1d1d1f; }
.kpis { display: flex; gap: 10px; flex-wrap: wrap; margin: 6px 0 8px; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 4px 10px; min-width: 88px; }
.kpi b { display: block; font-size: 1.3em; } .kpi span { color: #555; font-size: 0.85em; }
figure { margin: 8px 0; } figcaption { font-weight: 600; font-size: 0.95em; margin-bottom: 2px; }
svg.chart { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, "DejaVu Sans", sans-serif; fill: #333; }
.bar { background: #eee; height: 10px; width: 80px; display: inline-block; vertical-align: middle; }
.bar i { display: block; height: 100%; background: #c62828; }
ul.examples { margin: 2px 0 8px; padding-left: 18px; } ul.examples li { margin: 2px 0; overflow-wrap: anywhere; }
q { font-style: italic; } .muted { color: #777; } .call { font-family: ui-monospace, monospace; }
@media print {
  body { font-size: 9.5pt; max-width: none; padding: 0; }
  .agent { break-before: page; border-top: none; margin-top: 0; }
  figure, tr, ul.examples li, .kpis { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def clock(seconds: float | None) -> str:
    """Seconds from the start of a call as m:ss (h:mm:ss past an hour); empty when unknown."""
    if _missing(seconds):
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _score(value: float | None) -> str:
    return "–" if _missing(value) else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return "–" if _missing(value) else f"{100 * value:.0f}%"


def _when(value: datetime | None) -> str:
    return "no start time" if _missing(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def _colour(score: float | None, pass_mark: float) -> str:
    if _missing(score):
        return _NONE
    return _GOOD if score >= pass_mark else _WARN if score >= pass_mark - WARN_BELOW_PASS else _BAD


def _y(score: float, top: float, height: float) -> float:
    return top + height * (1 - score / 100.0)


def trend_svg(trend: pd.DataFrame, pass_mark: float, by: str) -> str:
    """Mean score per period against time, with the pass mark; periods without a dated call are left out."""
    width, height, left, right, top, bottom, pad = 640, 220, 40, 84, 14, 34, 14
    plot_w, plot_h = width - left - right, height - top - bottom
    dated = trend.dropna(subset=["period"]).sort_values("period")
    parts = [f'<svg class="chart trend" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Mean score per {_e(by)}">']
    for tick in range(0, 101, 20):
        y = _y(tick, top, plot_h)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e3e3"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    y_pass = _y(pass_mark, top, plot_h)
    parts.append(f'<line class="pass-mark" x1="{left}" y1="{y_pass:.1f}" x2="{width - right}" y2="{y_pass:.1f}" '
                 f'stroke="{_BAD}" stroke-dasharray="6 4"/><text x="{width - right + 6}" y="{y_pass + 4:.1f}" '
                 f'fill="{_BAD}">pass mark {pass_mark:g}</text>')
    if dated.empty:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle">'
                     "no dated calls to plot</text></svg>")
        return "".join(parts)
    times = [pd.Timestamp(p).timestamp() for p in dated["period"]]
    span = (times[-1] - times[0]) or 1.0
    inner = plot_w - 2 * pad
    xs = [left + plot_w / 2] if len(times) == 1 else [left + pad + inner * (t - times[0]) / span for t in times]
    points = [(x, row) for x, row in zip(xs, dated.itertuples()) if not _missing(row.avg_score)]
    if len(points) > 1:
        coords = " ".join(f"{x:.1f},{_y(row.avg_score, top, plot_h):.1f}" for x, row in points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="#1565c0" stroke-width="2"/>')
    for x, row in points:
        label = f"{pd.Timestamp(row.period):%Y-%m-%d}: {row.avg_score:.1f} ({row.calls} calls)"
        parts.append(f'<circle cx="{x:.1f}" cy="{_y(row.avg_score, top, plot_h):.1f}" r="4" '
                     f'fill="{_colour(row.avg_score, pass_mark)}"><title>{_e(label)}</title></circle>')
    shown = sorted({round(i * (len(xs) - 1) / 5) for i in range(6)}) if len(xs) > 6 else range(len(xs))
    for i in shown:
        text = pd.Timestamp(dated["period"].iloc[i]).strftime(_PERIOD_LABELS[by])
        parts.append(f'<text x="{xs[i]:.1f}" y="{height - bottom + 16}" text-anchor="middle">{_e(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def sections_svg(scores: list[tuple[str, float | None]], pass_mark: float) -> str:
    """One horizontal bar (0-100) per section, the pass mark as a dashed line."""
    width, label_w, right, row_h, top = 640, 170, 50, 28, 6
    bar_w = width - label_w - right
    height = top + row_h * len(scores) + 20
    parts = [f'<svg class="chart sections" viewBox="0 0 {width} {height}" role="img" aria-label="Section scores">']
    for i, (name, score) in enumerate(scores):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{_e(name)}</text>'
                     f'<rect x="{label_w}" y="{y + 5}" width="{bar_w}" height="16" fill="#f0f0f0"/>')
        if _missing(score):
            parts.append(f'<text x="{label_w + 6}" y="{y + 17}" class="muted">not applicable</text>')
            continue
        length = bar_w * score / 100.0
        parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{length:.1f}" height="16" '
                     f'fill="{_colour(score, pass_mark)}"><title>{_e(name)}: {score:.1f}</title></rect>'
                     f'<text x="{label_w + length + 4:.1f}" y="{y + 17}">{score:.1f}</text>')
    x_pass = label_w + bar_w * pass_mark / 100.0
    parts.append(f'<line class="pass-mark" x1="{x_pass:.1f}" y1="{top}" x2="{x_pass:.1f}" '
                 f'y2="{height - 16}" stroke="{_BAD}" stroke-dasharray="4 3"/>'
                 f'<text x="{x_pass:.1f}" y="{height - 4}" text-anchor="middle" fill="{_BAD}">'
                 f"pass mark {pass_mark:g}</text></svg>")
    return "".join(parts)


def ranked_criteria(criteria: pd.DataFrame) -> pd.DataFrame:
    """Criteria that applied at least once, the most often failed first."""
    applied = criteria[criteria["applicable"] > 0].copy()
    applied["failure_rate"] = applied["failed"] / applied["applicable"]
    return applied.sort_values(["failure_rate", "failed", "criterion_id"], ascending=[False, False, True])


def _criteria_table(ranked: pd.DataFrame, rubric: RubricInfo) -> str:
    rows = []
    for rank, row in enumerate(ranked.itertuples(), start=1):
        name = rubric.criteria.get(row.criterion_id, row.criterion_id)
        section = rubric.sections.get(row.section_id, row.section_id)
        rows.append(
            f'<tr><td class="num">{rank}</td><td>{_e(name)} <span class="muted">({_e(row.criterion_id)})</span>'
            f'</td><td>{_e(section)}</td><td class="num">{row.failed} / {row.applicable}</td>'
            f'<td class="num">{_percent(row.failure_rate)} <span class="bar"><i style="width:'
            f'{100 * row.failure_rate:.0f}%"></i></span></td></tr>'
        )
    if not rows:
        return '<p class="muted">No criterion applied to these calls.</p>'
    return ('<table class="criteria"><thead><tr><th class="num">#</th><th>Criterion</th><th>Section</th>'
            '<th class="num">Failed / applicable</th><th class="num">Failure rate</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _example(row) -> str:
    where = f" at {clock(row.evidence_start_s)}" if not _missing(row.evidence_start_s) else ""
    if not _missing(row.evidence_text):
        speaker = f"{_e(row.evidence_speaker)}: " if not _missing(row.evidence_speaker) else ""
        detail = f"{speaker}<q>{_e(row.evidence_text)}</q>"
    else:  # a failed `present` criterion has nothing to quote
        detail = '<span class="muted">the expected words were not found in the call</span>'
    return (f'<li><span class="call">{_e(row.call_id)}</span> · <time>{_e(_when(row.started_at))}</time>'
            f"{where} · {detail}</li>")


def _examples(ranked: pd.DataFrame, examples: pd.DataFrame, rubric: RubricInfo) -> str:
    blocks = []
    for row in ranked[ranked["failed"] > 0].itertuples():
        found = examples[examples["criterion_id"] == row.criterion_id]
        name = rubric.criteria.get(row.criterion_id, row.criterion_id)
        blocks.append(f'<h4>{_e(name)} <span class="muted">— failed {row.failed} of {row.applicable}</span></h4>'
                      f'<ul class="examples">{"".join(_example(e) for e in found.itertuples())}</ul>')
    return "".join(blocks) or '<p class="muted">No criterion failed.</p>'


def _period_table(trend: pd.DataFrame, by: str) -> str:
    rows = "".join(
        f"<tr><td>{_e('no start time' if _missing(r.period) else f'{pd.Timestamp(r.period):%Y-%m-%d}')}</td>"
        f'<td class="num">{r.calls}</td><td class="num">{_score(r.avg_score)}</td>'
        f'<td class="num">{_percent(r.pass_rate)}</td><td class="num">{r.auto_fail_count}</td></tr>'
        for r in trend.itertuples()
    )
    return (f'<table class="periods"><thead><tr><th>{_e(by.capitalize())} from</th><th class="num">Calls</th>'
            '<th class="num">Mean score</th><th class="num">Pass rate</th><th class="num">Auto-fails</th></tr>'
            f"</thead><tbody>{rows}</tbody></table>")


def _kpis(row: dict, rubric: RubricInfo) -> str:
    span = (f"{_when(row['first_call'])[:10]} – {_when(row['last_call'])[:10]}" if not _missing(row["first_call"])
            else "no start times")
    items = [(row["calls"], "calls"), (_score(row["avg_score"]), f"mean score (pass {rubric.pass_mark:g})"),
             (_percent(row["pass_rate"]), "passed"), (row["auto_fail_count"], "auto-fails"), (span, "period")]
    if row.get("reviewed_calls"):
        items[2:2] = [(_score(row["avg_reviewed_score"]), f"reviewed score ({row['reviewed_calls']} calls)"),
                      (_percent(row["reviewed_pass_rate"]), "passed after review")]
    return '<div class="kpis">' + "".join(f'<div class="kpi"><b>{_e(v)}</b><span>{_e(k)}</span></div>'
                                          for v, k in items) + "</div>"


def _rubric_block(data: ReportData, agent: str, overall_row: dict, rubric: RubricInfo) -> str:
    def rows_of(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["agent_id"] == agent) & (frame["rubric_id"] == rubric.rubric_id)]

    trend = rows_of(data.trend)
    ranked = ranked_criteria(rows_of(data.criteria))
    sections = [(name, overall_row.get(section_column(sid))) for sid, name in rubric.sections.items()]
    return (
        f'<div class="rubric" data-rubric="{_e(rubric.rubric_id)}">'
        f"<h3>{_e(rubric.name)} <span class=\"muted\">({_e(rubric.rubric_id)} v{rubric.version})</span></h3>"
        f"{_kpis(overall_row, rubric)}"
        f"<figure><figcaption>Score trend per {_e(_PERIOD_TITLES[data.trend_by])}</figcaption>"
        f"{trend_svg(trend, rubric.pass_mark, data.trend_by)}</figure>"
        f"{_period_table(trend, data.trend_by)}"
        f"<figure><figcaption>Section scores</figcaption>{sections_svg(sections, rubric.pass_mark)}</figure>"
        f"<h3>Criteria ranked by failure rate</h3>{_criteria_table(ranked, rubric)}"
        f"<h3>Failing criteria: example calls</h3>{_examples(ranked, rows_of(data.examples), rubric)}"
        "</div>"
    )


def _filters(data: ReportData) -> str:
    q = data.query
    parts = [f"agents {', '.join(q.agents)}" if q.agents else "all agents",
             f"from {q.since}" if q.since else "", f"to {q.until}" if q.until else "",
             f"rubric {q.rubric}" if q.rubric else ""]
    return " · ".join(p for p in parts if p) + f" · generated {data.generated_at:%Y-%m-%d %H:%M}"


def _summary(data: ReportData, agents: list[str]) -> str:
    rows = "".join(
        f'<tr><td><a href="#agent-{agents.index(r.agent_id)}">{_e(r.agent_id)}</a></td><td>{_e(r.rubric_id)}</td>'
        f'<td class="num">{r.calls}</td><td class="num">{_score(r.avg_score)}</td>'
        f'<td class="num">{_percent(r.pass_rate)}</td><td class="num">{r.auto_fail_count}</td>'
        f'<td class="num">{r.reviewed_calls}</td><td class="num">{_score(r.avg_reviewed_score)}</td>'
        f'<td class="num">{_percent(r.reviewed_pass_rate)}</td></tr>'
        for r in data.overall.itertuples()
    )
    return ('<table class="summary"><thead><tr><th>Agent</th><th>Rubric</th><th class="num">Calls</th>'
            '<th class="num">Mean score</th><th class="num">Pass rate</th><th class="num">Auto-fails</th>'
            '<th class="num">Reviewed calls</th><th class="num">Reviewed score</th>'
            '<th class="num">Reviewed pass rate</th></tr>'
            f"</thead><tbody>{rows}</tbody></table>")


def render_report(data: ReportData) -> str:
    agents = sorted(data.overall["agent_id"].unique().tolist())
    body = []
    for i, agent in enumerate(agents):
        blocks = "".join(
            _rubric_block(data, agent, row, data.rubrics[row["rubric_id"]])
            for row in data.overall[data.overall["agent_id"] == agent].to_dict("records")
        )
        body.append(f'<section class="agent" id="agent-{i}" data-agent="{_e(agent)}">'
                    f"<h2>Agent {_e(agent)}</h2>{blocks}</section>")
    content = (_summary(data, agents) + "".join(body)) if agents else "<p>No scored calls match the filters.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>callqa agent scorecards</title><style>{CSS}</style></head><body>"
        f'<header><h1>Agent scorecards</h1><p class="meta">{_e(_filters(data))}</p></header>'
        f"{content}</body></html>\n"
    )
