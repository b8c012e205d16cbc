"""Scorecards for trainers: the views' aggregations over a filtered selection of calls, as a terminal table, CSV,
JSON, XLSX, Parquet or the self-contained HTML report.

Numbers are written unrounded (CSV/JSON/XLSX/Parquet) so that they match the SQL views exactly; only the
terminal table and the HTML report round for reading.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Iterator, NamedTuple

import pandas as pd
import yaml

from . import views
from .errors import NotFoundError, UsageError
from .store import Store

log = logging.getLogger("callqa")

FORMATS = ("table", "csv", "json", "xlsx", "parquet", "html")
FILE_ONLY_FORMATS = ("xlsx", "parquet")
_SUFFIX_FORMATS = {".txt": "table", ".csv": "csv", ".json": "json", ".xlsx": "xlsx", ".parquet": "parquet",
                   ".html": "html", ".htm": "html"}
EXAMPLES_PER_CRITERION = 3


class ScorecardQuery(NamedTuple):
    agents: tuple[str, ...] = ()
    since: date | None = None  # first day included
    until: date | None = None  # last day included
    by: str | None = None  # day | week | month; None: one row per agent and rubric over the whole range
    rubric: str | None = None  # "ID" (its latest version) or "ID@VERSION"


class Selection(NamedTuple):
    """SQL yielding the ``call_scores`` rows a query selects, with its parameters."""

    sql: str
    params: list


class RubricInfo(NamedTuple):
    rubric_id: str
    version: int
    name: str
    pass_mark: float
    sections: dict[str, str]  # id -> display name, in rubric order
    criteria: dict[str, str]  # id -> display name


class ReportData(NamedTuple):
    query: ScorecardQuery
    generated_at: datetime
    trend_by: str
    rubrics: dict[str, RubricInfo]  # by rubric_id
    overall: pd.DataFrame  # scorecard_frame over the whole range
    trend: pd.DataFrame  # scorecard_frame by trend_by
    criteria: pd.DataFrame  # criteria_frame
    examples: pd.DataFrame  # failure_examples


def _parse_rubric(rubric: str) -> tuple[str, int | None]:
    rubric_id, _, version = rubric.partition("@")
    if version and not version.isdigit():
        raise UsageError(f"--rubric {rubric!r}: write ID or ID@VERSION, e.g. clinic-helpdesk@2")
    return rubric_id, int(version) if version else None


def select_calls(store: Store, query: ScorecardQuery) -> Selection:
    """Validate the query against the database and build the filtered selection of ``call_scores``."""
    con = store.con
    if query.by is not None and query.by not in views.PERIODS:
        raise UsageError(f"--by {query.by!r}: choose one of {', '.join(views.PERIODS)}")
    if query.since and query.until and query.since > query.until:
        raise UsageError(f"--since {query.since} is after --until {query.until}")
    source, where, params = "call_scores", [], []
    if query.agents:
        known = {row[0] for row in con.execute("SELECT DISTINCT agent_id FROM calls").fetchall()}
        unknown = [agent for agent in query.agents if agent not in known]
        if unknown:
            raise NotFoundError(f"no calls of agent {', '.join(map(repr, unknown))} in {store.path}")
        where.append(f"agent_id IN ({', '.join('?' for _ in query.agents)})")
        params += list(query.agents)
    if query.since:
        where.append("started_at >= ?")
        params.append(datetime.combine(query.since, time()))
    if query.until:
        where.append("started_at < ?")
        params.append(datetime.combine(query.until + timedelta(days=1), time()))
    if query.rubric:
        rubric_id, version = _parse_rubric(query.rubric)
        found = con.execute("SELECT count(*) FROM rubrics WHERE rubric_id = ? AND (? IS NULL OR version = ?)",
                            [rubric_id, version, version]).fetchone()[0]
        if not found:
            stored = sorted({f"{r}@{v}" for r, v in con.execute("SELECT rubric_id, version FROM rubrics").fetchall()})
            raise NotFoundError(f"no rubric {query.rubric!r} in {store.path} (stored: {', '.join(stored) or 'none'})")
        where.append("rubric_id = ?")
        params.append(rubric_id)
        if version is not None:
            source = "call_scores_all_versions"
            where.append("rubric_version = ?")
            params.append(version)
    sql = f"SELECT * FROM {source}" + (f" WHERE {' AND '.join(where)}" if where else "")
    return Selection(sql, params)


def scorecard_frame(store: Store, query: ScorecardQuery) -> pd.DataFrame:
    """The ``agent_scorecards`` view's columns, over the selected calls, grouped by ``query.by``."""
    selection = select_calls(store, query)
    sections = views.section_ids(store.con, f"SELECT rubric_sha256 FROM ({selection.sql})", selection.params)
    return store.con.execute(views.scorecard_select(sections, query.by, selection.sql), selection.params).df()


def criteria_frame(store: Store, query: ScorecardQuery) -> pd.DataFrame:
    """The ``agent_criteria`` view's columns over the selected calls."""
    selection = select_calls(store, query)
    return store.con.execute(views.criteria_select(selection.sql), selection.params).df()


def failure_examples(store: Store, query: ScorecardQuery, per_criterion: int = EXAMPLES_PER_CRITERION) -> pd.DataFrame:
    """Up to ``per_criterion`` failed results per agent and criterion: quoted ones first, then the latest calls."""
    selection = select_calls(store, query)
    return store.con.execute(
        f"""
        SELECT * EXCLUDE (n) FROM (
            SELECT cs.agent_id, cs.rubric_id, cr.criterion_id, cs.call_id, cs.started_at,
                   cr.evidence_speaker, cr.evidence_start_s, cr.evidence_end_s, cr.evidence_text,
                   row_number() OVER (
                       PARTITION BY cs.agent_id, cs.rubric_id, cr.criterion_id
                       ORDER BY cr.evidence_text IS NULL, cs.started_at DESC NULLS LAST, cs.call_id
                   ) AS n
            FROM ({selection.sql}) cs
            JOIN criterion_results cr USING (call_id, rubric_sha256)
            WHERE cr.outcome = 'fail'
        ) WHERE n <= ?
        ORDER BY agent_id, rubric_id, criterion_id, n
        """,
        [*selection.params, per_criterion],
    ).df()


def rubric_infos(store: Store, query: ScorecardQuery) -> dict[str, RubricInfo]:
    """Display names of the selected rubrics' sections and criteria (ids where the stored YAML has none)."""
    selection = select_calls(store, query)
    rows = store.con.execute(
        f"""SELECT rubric_id, version, name, pass_mark, sections, source FROM rubrics
            WHERE rubric_sha256 IN (SELECT rubric_sha256 FROM ({selection.sql})) ORDER BY rubric_id""",
        selection.params,
    ).fetchall()
    infos = {}
    for rubric_id, version, name, pass_mark, sections_json, source in rows:
        sections = {s["id"]: s.get("name") or s["id"] for s in json.loads(sections_json)}
        infos[rubric_id] = RubricInfo(rubric_id, version, name or rubric_id, pass_mark, sections,
                                      _criterion_names(source))
    return infos


def _criterion_names(source: str | None) -> dict[str, str]:
    try:
        document = yaml.safe_load(source or "")
    except yaml.YAMLError:
        return {}
    if not isinstance(document, dict):
        return {}
    return {c["id"]: c.get("name") or c["id"]
            for s in document.get("sections") or [] if isinstance(s, dict)
            for c in s.get("criteria") or [] if isinstance(c, dict) and "id" in c}


def report_data(store: Store, query: ScorecardQuery) -> ReportData:
    trend_by = query.by or views.VIEW_PERIOD
    return ReportData(
        query=query, generated_at=datetime.now().replace(microsecond=0), trend_by=trend_by,
        rubrics=rubric_infos(store, query),
        overall=scorecard_frame(store, query._replace(by=None)),
        trend=scorecard_frame(store, query._replace(by=trend_by)),
        criteria=criteria_frame(store, query),
        examples=failure_examples(store, query),
    )


# ---------------------------------------------------------------- rendering


def render_frame(frame: pd.DataFrame, fmt: str) -> str:
    """A DataFrame as text: ``table`` (aligned columns), ``csv`` or ``json`` (a list of records)."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso", double_precision=15, indent=2)
    if fmt == "table":
        rows = f"({len(frame)} row{'s' if len(frame) != 1 else ''})"
        if frame.empty:
            return "  ".join(map(str, frame.columns)) + "\n" + rows
        return frame.to_string(index=False, na_rep="NULL") + "\n" + rows
    raise UsageError(f"--format {fmt!r}: choose one of table, csv, json")


def scorecard_table(frame: pd.DataFrame) -> str:
    """The scorecard for a terminal: scores to one decimal, pass rate in percent, the date of each period."""
    if frame.empty:
        return "no scored calls match"
    shown = frame.drop(columns=["rubric_version", "first_call", "last_call"])
    if not shown["reviewed_calls"].any():  # no human reviews yet: nothing to show beside the scores
        shown = shown.drop(columns=["reviewed_calls", "avg_reviewed_score", "reviewed_pass_rate"])
    for column in shown.columns:
        if column in ("pass_rate", "reviewed_pass_rate"):
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%")
        elif column == "avg_score" or column.startswith("avg_"):
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
        elif column == "period":
            shown[column] = shown[column].dt.strftime("%Y-%m-%d").fillna("no date")
    return shown.to_string(index=False)


def _write_xlsx(store: Store, query: ScorecardQuery, frame: pd.DataFrame, path: Path) -> None:
    """Two sheets, scorecard and criteria; rates formatted as percentages, scores to one decimal."""
    criteria = criteria_frame(store, query)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for sheet, data in (("scorecard", frame), ("criteria", criteria)):
            data.to_excel(writer, sheet_name=sheet, index=False)
            worksheet = writer.sheets[sheet]
            for col, name in enumerate(data.columns, start=1):
                number_format = ("0.0%" if name in ("pass_rate", "reviewed_pass_rate") else "0.0" if name.startswith("avg_")
                                 else "yyyy-mm-dd" if name == "period" else None)
                worksheet.column_dimensions[worksheet.cell(row=1, column=col).column_letter].width = len(name) + 4
                for row in range(2, len(data) + 2) if number_format else ():
                    worksheet.cell(row=row, column=col).number_format = number_format


def resolve_format(fmt: str | None, output: Path | None) -> str:
    """--format wins; else the output file's suffix decides; else a table on the terminal."""
    if fmt is None:
        if output is None:
            return "table"
        fmt = _SUFFIX_FORMATS.get(output.suffix.lower())
        if fmt is None:
            raise UsageError(f"cannot tell the format from {output.name!r}: add --format {'|'.join(FORMATS)}")
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt in FILE_ONLY_FORMATS and output is None:
        raise UsageError(f"--format {fmt} writes a binary file: give -o FILE")
    return fmt


@contextmanager
def _owner_only(path: Path) -> Iterator[None]:
    """Exports may quote transcripts: like the database, they are created readable by their owner only."""
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    old_umask = os.umask(0o077)
    try:
        yield
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        os.umask(old_umask)


def write_scorecard(store: Store, query: ScorecardQuery, fmt: str | None = None,
                    output: Path | None = None) -> str | None:
    """Write the scorecard to ``output`` in ``fmt``; without ``output``, return it as text for the terminal."""
    fmt = resolve_format(fmt, output)
    if fmt == "html":
        from .report import render_report

        text = render_report(report_data(store, query))
    else:
        frame = scorecard_frame(store, query)
        if fmt in FILE_ONLY_FORMATS:
            with _owner_only(output):
                if fmt == "xlsx":
                    _write_xlsx(store, query, frame, output)
                else:
                    frame.to_parquet(output, index=False)
            log.info("wrote %s (%d rows)", output, len(frame))
            return None
        text = scorecard_table(frame) if fmt == "table" else render_frame(frame, fmt)
    if output is None:
        return text
    with _owner_only(output):
        output.write_text(text, encoding="utf-8")
    log.info("wrote %s", output)
    return None
