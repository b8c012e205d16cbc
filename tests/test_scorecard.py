"""`callqa scorecard` in every format: the files parse back with the numbers of a direct SQL recomputation."""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from callqa.cli import app
from db_helpers import CRITERIA, CallSpec, build_db

KEYS = ["agent_id", "rubric_id", "period"]
NUMBERS = ["calls", "avg_score", "pass_rate", "auto_fail_count", "avg_courtesy", "avg_resolution"]
FILE_FORMATS = ("csv", "json", "xlsx", "parquet")


def scorecard(db: Path, *args: str, ok: bool = True):
    result = CliRunner().invoke(app, ["scorecard", "--db", str(db), *args])
    if ok:
        assert result.exit_code == 0, result.output + result.stderr
    return result


def recompute(db: Path, by: str | None, since: date | None, until: date | None) -> pd.DataFrame:
    """The scorecard straight from the tables, written independently of callqa's views."""
    period = f"date_trunc('{by}', c.started_at)::TIMESTAMP" if by else "NULL::TIMESTAMP"
    section = ("(SELECT s.score FROM section_scores s WHERE s.call_id = e.call_id "
               "AND s.rubric_sha256 = e.rubric_sha256 AND s.section_id = '{}')")
    where = ["e.rubric_sha256 = (SELECT rubric_sha256 FROM rubrics ORDER BY version DESC LIMIT 1)"]
    if since:
        where.append(f"c.started_at >= DATE '{since}'")
    if until:
        where.append(f"c.started_at < DATE '{until + timedelta(days=1)}'")
    sql = f"""
        SELECT c.agent_id, e.rubric_id, {period} AS period, count(*) AS calls, avg(e.score) AS avg_score,
               avg(CASE WHEN e.passed THEN 1.0 WHEN NOT e.passed THEN 0.0 END) AS pass_rate,
               sum(CASE WHEN e.auto_failed THEN 1 ELSE 0 END) AS auto_fail_count,
               avg({section.format('courtesy')}) AS avg_courtesy, avg({section.format('resolution')}) AS avg_resolution
        FROM evaluations e JOIN calls c ON c.call_id = e.call_id
        WHERE {' AND '.join(where)}
        GROUP BY 1, 2, 3
    """
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).df()


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        frame = pd.read_csv(path)
    elif fmt == "json":
        frame = pd.DataFrame(json.loads(path.read_text()))
    elif fmt == "xlsx":
        rows = list(openpyxl.load_workbook(path, read_only=True)["scorecard"].iter_rows(values_only=True))
        frame = pd.DataFrame(rows[1:], columns=rows[0])
    else:
        with duckdb.connect() as con:
            frame = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).df()
    return frame


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    if "period" not in frame:
        frame["period"] = None
    frame["period"] = pd.to_datetime(frame["period"])
    for column in NUMBERS:
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    return frame[KEYS + NUMBERS].sort_values(KEYS, na_position="first").reset_index(drop=True)


def assert_same(exported: pd.DataFrame, expected: pd.DataFrame) -> None:
    exported, expected = normalised(exported), normalised(expected)
    assert exported[["agent_id", "rubric_id"]].equals(expected[["agent_id", "rubric_id"]])
    assert (exported["period"].isna() == expected["period"].isna()).all()
    assert (exported["period"].dropna() == expected["period"].dropna()).all()
    np.testing.assert_allclose(exported[NUMBERS].to_numpy(), expected[NUMBERS].to_numpy(), rtol=1e-12)


# ---------------------------------------------------------------- fixed data, every format

CALLS = [
    CallSpec("c1", "alice", datetime(2024, 3, 4, 9), {c: "pass" for c in CRITERIA}),
    CallSpec("c2", "alice", datetime(2024, 3, 12, 15), {"greeting": "fail", "reason_for_call": "pass"}),
    CallSpec("c3", "bob", datetime(2024, 3, 5, 11), {"no_rude_language": "fail", "greeting": "pass"}),
    CallSpec("c4", "bob", None, {"greeting": "pass", "closing_thanks": "fail"}),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_db(tmp_path_factory.mktemp("scorecard") / "scorecard.duckdb", CALLS)


def test_table_on_the_terminal_by_default(db):
    out = scorecard(db).stdout
    header, alice, bob = out.splitlines()
    assert header.split() == ["agent_id", "rubric_id", "calls", "avg_score", "pass_rate", "auto_fail_count",
                              "avg_courtesy", "avg_resolution"]
    # alice: 100 and (0 + 100) / 2 = 50 -> mean 75.0, 1 of 2 passed; courtesy (100 + 0) / 2
    # bob: auto-fail 0 and (100 + 0) / 2 = 50 -> mean 25.0, none passed
    assert alice.split() == ["alice", "clinic-helpdesk", "2", "75.0", "50.0%", "0", "50.0", "100.0"]
    assert bob.split() == ["bob", "clinic-helpdesk", "2", "25.0", "0.0%", "1", "75.0", "0.0"]


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_file_formats_parse_back_with_the_recomputed_numbers(db, tmp_path, fmt):
    out = tmp_path / f"scorecard.{fmt}"
    scorecard(db, "--by", "week", "--format", fmt, "-o", str(out))
    assert_same(read_back(out, fmt), recompute(db, "week", None, None))
    assert out.stat().st_mode & 0o077 == 0  # exports quote transcripts: owner-only like the database


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_text_formats_go_to_stdout_without_o(db, tmp_path, fmt):
    out = tmp_path / f"stdout.{fmt}"
    out.write_text(scorecard(db, "--format", fmt).stdout)
    assert_same(read_back(out, fmt), recompute(db, None, None, None))


def test_format_follows_the_output_suffix_and_html_is_written(db, tmp_path):
    out = tmp_path / "report.html"
    scorecard(db, "-o", str(out))
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'data-agent="alice"' in text and 'data-agent="bob"' in text


def test_xlsx_has_a_criteria_sheet_and_formats_rates_as_percent(db, tmp_path):
    out = tmp_path / "scorecard.xlsx"
    scorecard(db, "-o", str(out))
    book = openpyxl.load_workbook(out)
    sheet = book["scorecard"]
    header = [cell.value for cell in sheet[1]]
    assert sheet.cell(row=2, column=header.index("pass_rate") + 1).number_format == "0.0%"
    criteria = list(book["criteria"].iter_rows(values_only=True))
    columns = criteria[0]
    greeting_bob = next(r for r in criteria[1:] if r[columns.index("agent_id")] == "bob"
                        and r[columns.index("criterion_id")] == "greeting")
    assert greeting_bob[columns.index("applicable")] == 2 and greeting_bob[columns.index("pass_rate")] == 1.0


def test_filters_agent_dates_and_rubric(db):
    out = scorecard(db, "--agent", "alice", "--since", "2024-03-10", "--until", "2024-03-12", "--format", "json",
                    "--rubric", "clinic-helpdesk").stdout
    rows = json.loads(out)
    assert [(r["agent_id"], r["calls"], r["avg_score"]) for r in rows] == [("alice", 1, 50.0)]


@pytest.mark.parametrize("args, message", [
    (["--agent", "nobody"], "no calls of agent 'nobody'"),
    (["--rubric", "it-helpdesk"], "no rubric 'it-helpdesk'"),
    (["--since", "2024-04-01", "--until", "2024-03-01"], "is after --until"),
    (["--format", "parquet"], "give -o FILE"),
    (["-o", "scores.docx"], "cannot tell the format"),
])
def test_bad_requests_exit_2_with_a_clear_message(db, args, message):
    result = scorecard(db, *args, ok=False)
    assert result.exit_code == 2 and message in result.stderr


def test_missing_database_is_a_usage_error(tmp_path):
    result = scorecard(tmp_path / "none.duckdb", ok=False)
    assert result.exit_code == 2 and "no callqa database" in result.stderr
    assert not (tmp_path / "none.duckdb").exists()


# ---------------------------------------------------------------- generated results

call_specs = st.lists(
    st.builds(
        CallSpec,
        call_id=st.just(""),
        agent_id=st.sampled_from(["a1", "a2", "a3"]),
        started_at=st.one_of(st.none(), st.datetimes(datetime(2024, 1, 1), datetime(2024, 3, 31))),
        outcomes=st.fixed_dictionaries({c: st.sampled_from(["pass", "fail", "na"]) for c in CRITERIA}),
    ),
    min_size=1, max_size=12,
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=call_specs, by=st.sampled_from([None, "day", "week", "month"]),
       since=st.one_of(st.none(), st.dates(date(2024, 1, 1), date(2024, 3, 31))),
       fmt=st.sampled_from(FILE_FORMATS))
def test_exports_match_sql_recomputation_for_generated_results(specs, by, since, fmt):
    specs = [spec._replace(call_id=f"call-{i}") for i, spec in enumerate(specs)]
    with tempfile.TemporaryDirectory() as folder:
        db = build_db(Path(folder) / "generated.duckdb", specs)
        out = Path(folder) / f"scorecard.{fmt}"
        args = ["--format", fmt, "-o", str(out)] + (["--by", by] if by else []) + (
            ["--since", str(since)] if since else [])
        scorecard(db, *args)
        exported = read_back(out, fmt)
        expected = recompute(db, by, since, None)
        if expected.empty:  # nothing selected: an empty table with the header
            assert exported.empty
        else:
            assert_same(exported, expected)
