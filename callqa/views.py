"""Views over the tables, recreated whenever a writer opens the file (they hold no data of their own)."""

from __future__ import annotations

import duckdb

VIEWS: dict[str, tuple[str, str]] = {
    "call_scores": (
        """
        SELECT e.call_id, e.rubric_id, e.rubric_version, e.rubric_sha256, c.agent_id, c.started_at, c.duration_s,
               e.score, e.passed, e.auto_failed, e.evaluated_at
        FROM evaluations e
        JOIN calls c USING (call_id)
        JOIN (
            SELECT rubric_id, arg_max(rubric_sha256, (version, first_used_at)) AS rubric_sha256
            FROM rubrics GROUP BY rubric_id
        ) latest USING (rubric_id, rubric_sha256)
        """,
        "One row per call and rubric: the evaluation against the latest version of that rubric.",
    ),
}


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    for name, (sql, comment) in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        con.execute(f"COMMENT ON VIEW {name} IS '{comment.replace(chr(39), chr(39) * 2)}'")
