"""Reviewed scores: each evaluation's score recomputed with the latest human outcome of each reviewed criterion
(``evaluations.reviewed_score``, ``reviewed_passed``), refreshed on import and whenever evaluations are written."""

from __future__ import annotations

from typing import Iterable, Sequence

import duckdb

from .calibration_sql import LATEST_REVIEWS
from .records import CriterionResult, Evidence
from .rubric import Rubric, parse_rubric
from .score import totals
from .tables import arrow_table


def stored_rubric(source: str, sha256: str) -> Rubric:
    rubric = parse_rubric(source, f"rubric {sha256[:12]}")
    rubric._sha256 = sha256
    return rubric


def reviewed_results(rows: Iterable[tuple]) -> dict[tuple[str, str], list[CriterionResult]]:
    """(call_id, rubric_sha256) -> results with human outcomes in place, from rows of
    (call_id, rubric_sha256, section_id, criterion_id, outcome, weight, value, human outcome or None); only
    keys where at least one scored criterion has a review."""
    grouped: dict[tuple[str, str], list[CriterionResult]] = {}
    reviewed: set[tuple[str, str]] = set()
    for call_id, sha, section_id, criterion_id, outcome, weight, value, human in rows:
        if human is not None and weight > 0:  # a helper criterion (weight 0) is never scored
            outcome = human
            reviewed.add((call_id, sha))
        grouped.setdefault((call_id, sha), []).append(
            CriterionResult(section_id, criterion_id, outcome, weight, value, Evidence(None, None, None, None)))
    return {key: results for key, results in grouped.items() if key in reviewed}


def refresh_reviewed_scores(con: duckdb.DuckDBPyConnection, call_ids: Sequence[str]) -> int:
    """Recompute ``evaluations.reviewed_score`` and ``reviewed_passed`` of these calls; returns the rows set."""
    if not call_ids:
        return 0
    ids = [row[0] for row in con.execute(
        "SELECT DISTINCT call_id FROM human_reviews WHERE call_id IN (SELECT unnest(?))", [list(call_ids)]
    ).fetchall()]
    if not ids:
        return 0
    rows = con.execute(
        f"""SELECT cr.call_id, cr.rubric_sha256, cr.section_id, cr.criterion_id, cr.outcome, cr.weight, cr.value,
                   h.outcome
            FROM criterion_results cr
            LEFT JOIN ({LATEST_REVIEWS.format(where='')}) h USING (call_id, rubric_id, criterion_id)
            WHERE cr.call_id IN (SELECT unnest(?)) ORDER BY cr.call_id, cr.rubric_sha256, cr.rowid""", [ids]
    ).fetchall()
    results = reviewed_results(rows)
    rubrics = {sha: stored_rubric(source, sha) for sha, source in con.execute(
        "SELECT rubric_sha256, source FROM rubrics WHERE rubric_sha256 IN (SELECT unnest(?))",
        [sorted({sha for _, sha in results})]).fetchall()}
    scores = [(call_id, sha, t.score, t.passed) for (call_id, sha), found in results.items()
              for t in [totals(rubrics[sha], found)]]
    con.execute("UPDATE evaluations SET reviewed_score = NULL, reviewed_passed = NULL "
                "WHERE call_id IN (SELECT unnest(?))", [ids])
    frame = arrow_table(scores, ["call_id", "rubric_sha256", "reviewed_score", "reviewed_passed"])
    con.register("_callqa_reviewed", frame)
    try:
        con.execute("UPDATE evaluations e SET reviewed_score = r.reviewed_score, reviewed_passed = r.reviewed_passed "
                    "FROM _callqa_reviewed r WHERE e.call_id = r.call_id AND e.rubric_sha256 = r.rubric_sha256")
    finally:
        con.unregister("_callqa_reviewed")
    return len(scores)

