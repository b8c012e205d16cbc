"""The scorecards' data: the views' aggregations over a filtered selection of calls (agents, date range with
`--until D` including day D, rubric version), as DataFrames for the exports and the HTML report."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, NamedTuple

import pandas as pd
import yaml

from . import views
from .daterange import DateRange
from .errors import NotFoundError, UsageError
from .store import Store

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
    """``ID`` or ``ID@VERSION``: the version is the digits after the last ``@``, so an id may hold ``@`` itself
    (``billing@east``, ``billing@east@2``); no rubric id ends in ``@<digits>``, rubric check refuses that."""
    rubric_id, at, version = rubric.rpartition("@")
    if at and version.isascii() and version.isdigit():
        return rubric_id, int(version)
    return rubric, None


def select_calls(store: Store, query: ScorecardQuery) -> Selection:
    """Validate the query against the database and build the filtered selection of ``call_scores``."""
    con = store.con
    if query.by is not None and query.by not in views.PERIODS:
        raise UsageError(f"--by {query.by!r}: choose one of {', '.join(views.PERIODS)}")
    dates = DateRange(query.since, query.until).check()
    source, where, params = "call_scores", list[str](), list[Any]()
    if query.agents:
        known = {row[0] for row in con.execute("SELECT DISTINCT agent_id FROM calls").fetchall()}
        unknown = [agent for agent in query.agents if agent not in known]
        if unknown:
            raise NotFoundError(f"no calls of agent {', '.join(map(repr, unknown))} in {store.path}")
        where.append(f"agent_id IN ({', '.join('?' for _ in query.agents)})")
        params += list(query.agents)
    date_where, date_params = dates.where()
    where += date_where
    params += date_params
    if query.rubric:
        rubric_id, version = _parse_rubric(query.rubric)
        found = con.execute("SELECT count(*) FROM rubrics WHERE rubric_id = ? AND (? IS NULL OR version = ?)",
                            [rubric_id, version, version]).fetchall()[0][0]
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
                                      criterion_names(source))
    return infos


def criterion_names(source: str | None) -> dict[str, str]:
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
