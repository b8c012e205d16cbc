"""Views over the tables, recreated whenever a writer opens the file (they hold no data of their own).

The aggregations are built by ``scorecard_select`` and ``criteria_select`` so that ``callqa scorecard`` runs
exactly the SQL of the views, only over a filtered selection of ``call_scores``. ``agent_scorecards`` has one
``avg_<section_id>`` column per section of the latest rubric versions stored when the views were created.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal, get_args

from .calibration_sql import CALIBRATION_COLUMNS, calibration_select
from .schema import COMMON_COLUMNS, _quote

if TYPE_CHECKING:  # the rubric models import the column rules below; they must not load DuckDB
    import duckdb

LATEST_RUBRICS = """
    SELECT arg_max(rubric_sha256, (version, first_used_at)) AS rubric_sha256 FROM rubrics GROUP BY rubric_id
"""
Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = get_args(Period)
VIEW_PERIOD = "week"  # agent_scorecards' period; `callqa scorecard --by` picks another
FIXED_SCORECARD_COLUMNS = ("agent_id", "rubric_id", "rubric_version", "period", "calls", "avg_score", "pass_rate",
                           "auto_fail_count", "first_call", "last_call", "reviewed_calls", "avg_reviewed_score",
                           "reviewed_pass_rate")
# The key columns of section_scores that the section pivot sits beside; refused as section ids by rubric check.
RESERVED_SECTION_IDS = frozenset({"call_id", "rubric_sha256"})


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def section_column(section_id: str) -> str:
    """Column holding a section's average; ``avg_section_<id>`` where ``avg_<id>`` is a fixed column's name."""
    name = f"avg_{section_id}"
    return f"avg_section_{section_id}" if name in FIXED_SCORECARD_COLUMNS else name


def section_columns(sections: list[str]) -> dict[str, str]:
    """Each section's ``section_column``, made unique whatever the letter case (DuckDB ignores it) with a ``_2``
    suffix: rubric check refuses ids that collide within a rubric, but two rubrics, or rubrics stored by an older
    callqa, may still collide, and a view with two equal column names would fail every writer's start."""
    taken = {column.lower() for column in FIXED_SCORECARD_COLUMNS}
    columns = {}
    for sid in sections:
        column = name = section_column(sid)
        n = 1
        while column.lower() in taken:
            n += 1
            column = f"{name}_{n}"
        taken.add(column.lower())
        columns[sid] = column
    return columns


def section_ids(con: duckdb.DuckDBPyConnection, rubric_shas_sql: str, params: list | None = None) -> list[str]:
    """Section ids, in rubric order, of the rubric versions whose hashes ``rubric_shas_sql`` selects."""
    rows = con.execute(
        f"SELECT sections FROM rubrics WHERE rubric_sha256 IN ({rubric_shas_sql}) ORDER BY rubric_id, version",
        params or [],
    ).fetchall()
    ids: dict[str, None] = {}
    for (sections,) in rows:
        ids.update((section["id"], None) for section in json.loads(sections))
    return list(ids)


def scorecard_select(sections: list[str], period: str | None, source: str) -> str:
    """Per agent, rubric and period (all of ``source`` when period is None): calls, averages and pass rate.

    ``source`` is SQL yielding rows shaped like ``call_scores``.
    """
    # The pivot's columns are numbered: a section id may be anything, `call_id` included.
    pivot = "".join(f", max(score) FILTER (WHERE section_id = {_quote(s)}) AS s{i}" for i, s in enumerate(sections))
    columns = section_columns(sections).values()
    averages = "".join(f", avg(s.s{i}) AS {_ident(column)}" for i, column in enumerate(columns))
    period_column = f", date_trunc('{period}', cs.started_at)::DATE AS period" if period else ""
    return f"""
        WITH sections AS (
            SELECT call_id, rubric_sha256{pivot} FROM section_scores GROUP BY call_id, rubric_sha256
        )
        SELECT cs.agent_id, cs.rubric_id, cs.rubric_version{period_column},
               count(*) AS calls,
               avg(cs.score) AS avg_score,
               avg(cs.passed::INTEGER)::DOUBLE AS pass_rate,
               count(*) FILTER (WHERE cs.auto_failed) AS auto_fail_count,
               min(cs.started_at) AS first_call,
               max(cs.started_at) AS last_call,
               count(*) FILTER (WHERE cs.reviewed_score IS NOT NULL) AS reviewed_calls,
               avg(cs.reviewed_score) AS avg_reviewed_score,
               avg(cs.reviewed_passed::INTEGER)::DOUBLE AS reviewed_pass_rate{averages}
        FROM ({source}) cs
        LEFT JOIN sections s USING (call_id, rubric_sha256)
        GROUP BY ALL
        ORDER BY ALL
    """


def criteria_select(source: str) -> str:
    """Per agent, rubric and criterion: how often it applied, passed and failed over ``source``'s calls."""
    return f"""
        SELECT cs.agent_id, cs.rubric_id, cs.rubric_version, cr.section_id, cr.criterion_id,
               any_value(cr.weight) AS weight,
               count(*) AS calls,
               count(*) FILTER (WHERE cr.outcome <> 'na') AS applicable,
               count(*) FILTER (WHERE cr.outcome = 'pass') AS passed,
               count(*) FILTER (WHERE cr.outcome = 'fail') AS failed,
               (count(*) FILTER (WHERE cr.outcome = 'pass'))::DOUBLE
                   / NULLIF(count(*) FILTER (WHERE cr.outcome <> 'na'), 0) AS pass_rate
        FROM ({source}) cs
        JOIN criterion_results cr USING (call_id, rubric_sha256)
        GROUP BY ALL
        ORDER BY ALL
    """


_CALL_SCORE_COLUMNS = {
    "agent_id": "Agent who took the call (calls.agent_id).",
    "started_at": "When the call started (calls.started_at).",
    "duration_s": "Duration of the call in seconds (calls.duration_s).",
    "score": "Overall score 0-100; NULL when no criterion applies to the call.",
    "passed": "score >= pass_mark; NULL when the score is NULL.",
    "auto_failed": "An auto_fail criterion failed, which set the score to 0.",
    "pass_mark": "The rubric version's pass mark, 0-100.",
    "reviewed_score": "The score with human reviews in place of automatic outcomes; NULL without a review.",
    "reviewed_passed": "reviewed_score >= pass_mark; NULL without a review.",
}
_SCORECARD_COLUMNS = {
    "agent_id": "Agent who took the calls (calls.agent_id).",
    "period": f"First day of the period ({VIEW_PERIOD}; ISO weeks start on Monday) of the calls' started_at.",
    "calls": "Calls scored against the rubric in the period.",
    "avg_score": "Mean overall score of the calls that have one.",
    "pass_rate": "Share of calls that passed, 0-1, among calls with a score.",
    "auto_fail_count": "Calls with an auto-fail.",
    "first_call": "started_at of the first call in the group.",
    "last_call": "started_at of the last call in the group.",
    "reviewed_calls": "Calls with at least one human review (human_reviews).",
    "avg_reviewed_score": "Mean reviewed_score (human outcomes in place of automatic ones) of the reviewed calls.",
    "reviewed_pass_rate": "Share of the reviewed calls that passed on their reviewed_score, 0-1.",
}
_CRITERIA_COLUMNS = {
    "agent_id": "Agent who took the calls (calls.agent_id).",
    "weight": "Weight of the criterion within its section (0 for helper criteria that are never scored).",
    "calls": "Calls scored against the rubric.",
    "applicable": "Calls where the criterion applied (outcome pass or fail).",
    "passed": "Calls where it passed.",
    "failed": "Calls where it failed.",
    "pass_rate": "passed / applicable, 0-1; NULL when it never applied.",
}

ALL_VERSIONS_SQL = """
    SELECT e.call_id, e.rubric_id, e.rubric_version, e.rubric_sha256, c.agent_id, c.started_at, c.duration_s,
           e.score, e.passed, e.auto_failed, e.evaluated_at, r.pass_mark, e.reviewed_score, e.reviewed_passed
    FROM evaluations e
    JOIN calls c USING (call_id)
    JOIN rubrics r ON r.rubric_sha256 = e.rubric_sha256
"""


def _views(sections: list[str]) -> dict[str, tuple[str, str, dict[str, str]]]:
    """name: (SQL, comment, {column: comment}); in creation order, as later views read earlier ones."""
    section_comments = {column: f"Mean score of section {s!r}, 0-100, over calls where it applies."
                        for s, column in section_columns(sections).items()}
    return {
        "call_scores_all_versions": (
            ALL_VERSIONS_SQL,
            "One row per call and rubric version scored: every evaluation, older rubric versions included.",
            _CALL_SCORE_COLUMNS,
        ),
        "call_scores": (
            f"SELECT * FROM call_scores_all_versions WHERE rubric_sha256 IN ({LATEST_RUBRICS})",
            "One row per call and rubric: the evaluation against the latest version of that rubric.",
            _CALL_SCORE_COLUMNS,
        ),
        "agent_scorecards": (
            scorecard_select(sections, VIEW_PERIOD, "SELECT * FROM call_scores"),
            f"Per agent, rubric (latest version) and {VIEW_PERIOD}: calls, mean score, pass rate, auto-fails "
            "and one mean per section (avg_<section_id>).",
            {**_SCORECARD_COLUMNS, **section_comments},
        ),
        "agent_criteria": (
            criteria_select("SELECT * FROM call_scores"),
            "Per agent and criterion of each rubric (latest version), over all calls: applicable, passed, "
            "failed and pass_rate.",
            _CRITERIA_COLUMNS,
        ),
        "calibration": (
            calibration_select("SELECT * FROM call_scores"),
            "Per criterion of each rubric (latest version): automatic outcomes against human reviews, and "
            "reviewers against each other: reviewed calls, agreement, Cohen's kappa, disagreements.",
            CALIBRATION_COLUMNS,
        ),
    }


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every view; the section columns follow the rubrics stored so far, so rerun after saving one."""
    for name, (sql, comment, column_comments) in _views(section_ids(con, LATEST_RUBRICS)).items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        con.execute(f"COMMENT ON VIEW {name} IS {_quote(comment)}")
        # (duckdb_columns() binds every view of the file: 0.3 s on a new database, 60 times this query)
        columns = [d[0] for d in con.execute(f"SELECT * FROM {name} LIMIT 0").description]
        for column in columns:
            text = column_comments.get(column) or COMMON_COLUMNS.get(column)
            if text:
                con.execute(f"COMMENT ON COLUMN {name}.{_ident(column)} IS {_quote(text)}")
