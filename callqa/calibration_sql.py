"""The SQL of calibration, shared by the ``calibration`` view and `callqa calibrate` (no pandas here: the view
is built whenever a database opens)."""

from __future__ import annotations

KAPPA_THRESHOLD = 0.6
LATEST_REVIEWS = """
    SELECT call_id, rubric_id, criterion_id, arg_max(outcome, (reviewed_at, imported_at, reviewer)) AS outcome
    FROM human_reviews {where} GROUP BY ALL
"""

CALIBRATION_COLUMNS = {
    "rubric_id": "Rubric id of the criterion.",
    "criterion_id": "Rubric criterion id.",
    "comparison": "auto_vs_human (the automatic outcome against the latest review) or reviewer_vs_reviewer.",
    "rater_a": "auto, or the first reviewer of the pair (alphabetically).",
    "rater_b": "human (the latest review of each call), or the second reviewer of the pair.",
    "reviewed": "Calls with a pass or fail outcome on both sides.",
    "agreement": "Share of those calls where both sides gave the same outcome, 0-1.",
    "kappa": "Cohen's kappa of the two sides; NULL when both gave one and the same outcome to every call.",
    "auto_pass_human_fail": "Calls where rater_a passed and rater_b failed the criterion.",
    "auto_fail_human_pass": "Calls where rater_a failed and rater_b passed the criterion.",
    "flagged": f"kappa below {KAPPA_THRESHOLD}: the criterion and the reviewers disagree more than chance allows.",
}


def calibration_select(source: str, reviewer_param: bool = False) -> str:
    """Calibration figures over ``source`` (rows shaped like ``call_scores``); with ``reviewer_param``, one ``?``
    parameter (after the source's own) names the only reviewer counted."""
    where = "WHERE reviewer = ?" if reviewer_param else ""
    reviews = "SELECT * FROM human_reviews" + (" WHERE reviewer = ?" if reviewer_param else "")
    return f"""
        WITH sel AS ({source}),
        results AS (
            SELECT cr.call_id, cr.rubric_id, cr.criterion_id, cr.outcome
            FROM sel JOIN criterion_results cr USING (call_id, rubric_sha256)
            WHERE cr.weight > 0
        ),
        latest AS ({LATEST_REVIEWS.format(where=where)}),
        reviews AS ({reviews}),
        pairs AS (
            SELECT a.rubric_id, a.criterion_id, 'auto_vs_human' AS comparison, 'auto' AS rater_a,
                   'human' AS rater_b, a.outcome AS a, h.outcome AS b
            FROM results a JOIN latest h USING (call_id, rubric_id, criterion_id)
            WHERE a.outcome IN ('pass', 'fail') AND h.outcome IN ('pass', 'fail')
            UNION ALL
            SELECT a.rubric_id, a.criterion_id, 'reviewer_vs_reviewer', r1.reviewer, r2.reviewer, r1.outcome,
                   r2.outcome
            FROM results a
            JOIN reviews r1 USING (call_id, rubric_id, criterion_id)
            JOIN reviews r2 USING (call_id, rubric_id, criterion_id)
            WHERE r1.reviewer < r2.reviewer AND r1.outcome IN ('pass', 'fail') AND r2.outcome IN ('pass', 'fail')
        ),
        counts AS (
            SELECT rubric_id, criterion_id, comparison, rater_a, rater_b, count(*) AS reviewed,
                   avg((a = b)::INTEGER)::DOUBLE AS po,
                   avg((a = 'pass')::INTEGER)::DOUBLE AS a_pass, avg((b = 'pass')::INTEGER)::DOUBLE AS b_pass,
                   count(*) FILTER (WHERE a = 'pass' AND b = 'fail') AS auto_pass_human_fail,
                   count(*) FILTER (WHERE a = 'fail' AND b = 'pass') AS auto_fail_human_pass
            FROM pairs GROUP BY ALL
        ),
        figures AS (
            SELECT *, a_pass * b_pass + (1 - a_pass) * (1 - b_pass) AS pe FROM counts
        )
        SELECT rubric_id, criterion_id, comparison, rater_a, rater_b, reviewed, po AS agreement,
               CASE WHEN pe >= 1 THEN NULL ELSE (po - pe) / (1 - pe) END AS kappa,
               auto_pass_human_fail, auto_fail_human_pass,
               coalesce(pe < 1 AND (po - pe) / (1 - pe) < {KAPPA_THRESHOLD}, false) AS flagged
        FROM figures
        ORDER BY comparison, rubric_id, criterion_id, rater_a, rater_b
    """
