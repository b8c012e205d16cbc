"""`callqa sql`: reads run, anything that would write — the database or any other file — is refused and the
database stays byte-identical."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from callqa.cli import app
from callqa.errors import ReadOnlyError, UsageError
from callqa.sql_guard import check_read_only, run_sql
from db_helpers import CallSpec, build_db


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    calls = [CallSpec("c1", "a1", datetime(2024, 5, 6, 9), {"greeting": "pass"}),
             CallSpec("c2", "a2", datetime(2024, 5, 7, 9), {"greeting": "fail", "no_rude_language": "fail"})]
    return build_db(tmp_path_factory.mktemp("sql") / "calls.duckdb", calls)


def sql(db: Path, *args: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["sql", *args, "--db", str(db)], input=stdin)


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under the database's folder with its content hash: a write anywhere shows up."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


WRITES = [
    "DELETE FROM calls",
    "DROP TABLE calls",
    "DROP VIEW call_scores",
    "COPY calls TO '{dir}/stolen.csv'",
    "COPY (SELECT text FROM utterances) TO '{dir}/stolen.parquet' (FORMAT parquet)",
    "ATTACH '{dir}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "UPDATE calls SET agent_id = 'x'",
    "INSERT INTO runs (run_id) VALUES ('x')",
    "CREATE TABLE t AS SELECT 1",
    "CREATE TEMP TABLE t (a INTEGER)",
    "EXPORT DATABASE '{dir}/dump'",
    "SET threads = 1",
    "PRAGMA enable_profiling",
    "CHECKPOINT",
    "VACUUM",
    "SELECT 1; DELETE FROM calls",
    "EXPLAIN ANALYZE COPY calls TO '{dir}/explained.csv'",
    "/* looks harmless */ EXPLAIN DELETE FROM calls",
]


@pytest.mark.parametrize("statement", WRITES)
def test_writes_are_refused_and_the_database_is_byte_identical(db, statement):
    before = fingerprint(db.parent)
    result = sql(db, statement.format(dir=db.parent))
    assert result.exit_code == 2
    assert "refused" in result.stderr and "callqa sql only reads" in result.stderr
    assert result.stdout == ""
    assert fingerprint(db.parent) == before


def test_refusal_comes_before_the_database_is_opened(tmp_path):
    with pytest.raises(ReadOnlyError, match="DROP"):
        run_sql(tmp_path / "absent.duckdb", "DROP TABLE calls")
    assert list(tmp_path.iterdir()) == []


def test_reading_other_files_is_off(db, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    result = sql(db, f"SELECT * FROM read_csv('{outside}')")
    assert result.exit_code == 2 and "files and network are off" in result.stderr


@pytest.mark.parametrize("statement, expected", [
    ("SELECT agent_id, score FROM call_scores ORDER BY agent_id", "a1"),
    ("WITH s AS (SELECT * FROM call_scores) SELECT count(*) AS n FROM s", "2"),
    ("DESCRIBE calls", "audio_sha256"),
    ("SHOW TABLES", "criterion_results"),
    ("SUMMARIZE call_scores", "auto_failed"),
    ("EXPLAIN SELECT * FROM calls", "physical_plan"),
    ("SELECT 1 AS a; SELECT 2 AS b", "b"),
])
def test_reads_run_and_leave_the_database_unchanged(db, statement, expected):
    before = fingerprint(db.parent)
    result = sql(db, statement)
    assert result.exit_code == 0, result.stderr
    assert expected in result.stdout
    assert fingerprint(db.parent) == before


@pytest.mark.parametrize("args", [[], ["-"]])
def test_sql_from_stdin(db, args):
    result = sql(db, *args, "--format", "csv", stdin="SELECT call_id, auto_failed FROM call_scores ORDER BY 1\n")
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(StringIO(result.stdout))
    assert frame.to_dict("list") == {"call_id": ["c1", "c2"], "auto_failed": [False, True]}


def test_json_output_and_errors(db):
    result = sql(db, "SELECT call_id, score, passed FROM call_scores ORDER BY call_id", "--format", "json")
    assert json.loads(result.stdout) == [{"call_id": "c1", "score": 100.0, "passed": True},
                                         {"call_id": "c2", "score": 0.0, "passed": False}]
    for statement, message in [("SELEC 1", "SQL syntax"), ("SELECT nope FROM calls", "nope"), ("  ", "no SQL")]:
        result = sql(db, statement)
        assert result.exit_code == 2 and message in result.stderr


def test_table_output_counts_rows(db):
    result = sql(db, "SELECT call_id FROM calls WHERE false")
    assert result.stdout.splitlines() == ["call_id", "(0 rows)"]


# ---------------------------------------------------------------- spellings: DuckDB's parser decides, not a regex

READ_SPELLINGS = [
    "EXPLAIN/**/SELECT 1", "EXPLAIN/**/ANALYZE/**/SELECT 1", "explain (format json) select 1",
    "EXPLAIN (ANALYZE, FORMAT json) SELECT 1", "EXPLAIN\n-- why\nANALYSE SELECT 1", "/*x*/EXPLAIN(ANALYZE)SELECT 1",
    "FROM calls", "VALUES (1)", "TABLE calls", "PIVOT calls ON status IN ('ok') USING count(*)",
    "UNPIVOT (SELECT 1 a, 2 b) ON a, b INTO NAME k VALUE v", "SELECT 1;;; SELECT 2", "(SELECT 1) UNION (SELECT 2)",
    "SELECT " + "(" * 200 + "1" + ")" * 200, "SELECT 1 " + " UNION ALL SELECT 1" * 2000,
]
REFUSED_SPELLINGS = [
    "EXPLAIN/**/DELETE FROM calls", "EXPLAIN (ANALYZE) COPY calls TO '{dir}/x.csv'",
    "EXPLAIN ANALYZE/**/INSERT INTO runs (run_id) VALUES ('x')", "explain\n--\nanalyze update calls set status = 'x'",
    "PIVOT calls ON agent_id USING count(*)", "SELECT 1; PIVOT calls ON status", "CALL pragma_version()",
    "PREPARE p AS SELECT 1", "SET VARIABLE x = 1", "BEGIN TRANSACTION", "DETACH DATABASE calls",
    "CREATE MACRO m() AS 1", "EXPLAIN (FORMAT json) CHECKPOINT",
]


@pytest.mark.parametrize("statement", READ_SPELLINGS)
def test_every_spelling_of_a_read_runs(db, statement):
    before = fingerprint(db.parent)
    result = sql(db, statement)
    assert result.exit_code == 0, result.stderr
    assert fingerprint(db.parent) == before


@pytest.mark.parametrize("statement", REFUSED_SPELLINGS)
def test_every_spelling_of_a_write_is_refused(db, statement):
    before = fingerprint(db.parent)
    result = sql(db, statement.format(dir=db.parent))
    assert result.exit_code == 2 and "refused" in result.stderr, result.stderr
    assert fingerprint(db.parent) == before


def test_pivot_refusal_says_how_to_write_it(db):
    assert "PIVOT t ON c IN (...)" in sql(db, "PIVOT calls ON agent_id").stderr


PIECES = ["SELECT", "EXPLAIN", "ANALYZE", "(", ")", "FORMAT", "json", ",", ";", "/**/", "--x\n", "/*", "*/", "'", '"',
          "FROM", "calls", "WITH", "x", "AS", "DESCRIBE", "SUMMARIZE", "SHOW", "TABLES", "PIVOT", "UNPIVOT", "ON",
          "agent_id", "*", "?", "$1", "VALUES", "TABLE", "CALL", "PRAGMA", "IN", "'a'", "UNION", "RECURSIVE", "USING",
          "count(*)", "SET", "VARIABLE", "COPY", "TO", "ATTACH", "INSTALL", "LOAD", "DELETE", "INSERT", "INTO",
          "CREATE", "DROP", "CHECKPOINT", "EXPORT", "DATABASE", "1", "query('DELETE FROM calls')", "getvariable('x')"]
SQL_TEXT = st.one_of(st.lists(st.sampled_from(PIECES), max_size=14).map(" ".join), st.text(max_size=40))


@given(SQL_TEXT)
@settings(max_examples=400, deadline=None)
def test_guard_fuzzed_refuses_or_parses_and_never_crashes(statement):
    try:
        statements = check_read_only(statement)
    except (ReadOnlyError, UsageError) as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert statements and all(s.type.name in ("SELECT", "EXPLAIN") for s in statements)


@given(SQL_TEXT)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_guard_fuzzed_runs_what_passes_without_changing_a_file(db, statement):
    before = fingerprint(db.parent)
    try:
        run_sql(db, statement, timeout_s=5)
    except (ReadOnlyError, UsageError):
        pass
    assert fingerprint(db.parent) == before
