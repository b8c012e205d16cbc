"""The views analysts query: latest rubric version, per-agent scorecards with per-section columns, criteria."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from callqa.store import Store
from db_helpers import CallSpec, build_db, evaluate, rubric_row

CALLS = [
    # courtesy 2/3 = 66.7, resolution 0/1 = 0 -> 33.3
    CallSpec("c1", "a1", datetime(2024, 5, 6, 9), {"greeting": "pass", "no_rude_language": "pass",
                                                    "dead_air": "fail", "reason_for_call": "fail"}),
    # auto-fail -> 0; courtesy 0/2, resolution 1/1
    CallSpec("c2", "a1", datetime(2024, 5, 14, 9), {"greeting": "fail", "no_rude_language": "fail",
                                                     "closing_thanks": "pass"}),
    # courtesy 1/1 = 100, resolution na -> 100, passed
    CallSpec("c3", "a2", datetime(2024, 5, 7, 9), {"greeting": "pass"}),
    # no criterion applies: score NULL, passed NULL
    CallSpec("c4", "a2", datetime(2024, 5, 8, 9), {}),
    CallSpec("c5", "a2", None, {}, status="failed"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_db(tmp_path_factory.mktemp("views") / "views.duckdb", CALLS)


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_agent_scorecards_per_week_with_section_columns(db):
    rows = _rows(db, "SELECT agent_id, period, calls, avg_score, pass_rate, auto_fail_count, avg_courtesy, "
                     "avg_resolution FROM agent_scorecards ORDER BY agent_id, period")
    assert [r[:3] for r in rows] == [
        ("a1", datetime(2024, 5, 6).date(), 1), ("a1", datetime(2024, 5, 13).date(), 1),
        ("a2", datetime(2024, 5, 6).date(), 2),
    ]
    a1_first, a1_second, a2 = rows
    assert a1_first[3:] == pytest.approx((100 / 3, 0.0, 0, 200 / 3, 0.0))
    assert a1_second[3:] == pytest.approx((0.0, 0.0, 1, 0.0, 100.0))
    # c4 has no score: it counts as a call but not in the mean score or pass rate
    assert a2[3:7] == pytest.approx((100.0, 1.0, 0, 100.0))
    assert a2[7] is None


def test_agent_criteria_counts_applicable_passed_failed(db):
    rows = {r[0]: r[1:] for r in _rows(
        db, "SELECT criterion_id, calls, applicable, passed, failed, pass_rate FROM agent_criteria "
            "WHERE agent_id = 'a1'")}
    assert rows["greeting"] == (2, 2, 1, 1, 0.5)
    assert rows["dead_air"] == (2, 1, 0, 1, 0.0)
    assert rows["verify_identity"] == (2, 0, 0, 0, None)


def test_call_scores_keeps_only_the_latest_rubric_version(tmp_path):
    v1 = rubric_row(version=1)
    sections_v2 = {"courtesy": (50.0, ("greeting",)), "compliance": (50.0, ("recording_notice",))}
    v2 = rubric_row(version=2, sections=sections_v2)
    path = build_db(tmp_path / "versions.duckdb", CALLS[:2], rubrics=(v1,))
    with Store(path) as store:  # a later run: new rubric version, c1 rescored against it
        store.save_rubric(v2)
        store.write_evaluations([evaluate(CallSpec("c1", "a1", None, {"recording_notice": "fail"}), v2)], "run-2")
    Store(path).close()  # the next writer to open the file recreates the views with v2's sections
    assert _rows(path, "SELECT call_id, rubric_version FROM call_scores") == [("c1", 2)]
    assert sorted(_rows(path, "SELECT call_id, rubric_version FROM call_scores_all_versions")) == [
        ("c1", 1), ("c1", 2), ("c2", 1)]
    columns = [r[0] for r in _rows(path, "SELECT column_name FROM duckdb_columns() "
                                         "WHERE table_name = 'agent_scorecards'")]
    assert "avg_compliance" in columns and "avg_resolution" not in columns
    assert _rows(path, "SELECT calls, avg_score, avg_compliance FROM agent_scorecards") == [(1, 0.0, 0.0)]


def test_section_named_like_a_fixed_column_gets_its_own_column(tmp_path):
    rubric = rubric_row(sections={"score": (1.0, ("greeting",))})
    path = build_db(tmp_path / "score.duckdb", [CallSpec("c1", "a1", datetime(2024, 5, 6), {"greeting": "fail"})],
                    rubrics=(rubric,))
    assert _rows(path, "SELECT avg_score, avg_section_score FROM agent_scorecards") == [(0.0, 0.0)]


def test_every_view_and_view_column_has_a_comment(db):
    views = dict(_rows(db, "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"))
    assert set(views) >= {"call_scores", "call_scores_all_versions", "agent_scorecards", "agent_criteria"}
    assert all(views.values())
    uncommented = _rows(db, "SELECT table_name, column_name FROM duckdb_columns() WHERE comment IS NULL AND "
                            "table_name IN (SELECT view_name FROM duckdb_views() WHERE NOT internal)")
    assert uncommented == []


def test_plain_duckdb_cli_reads_the_views(db):
    cli = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    if not Path(cli).is_file():
        pytest.skip("the duckdb CLI (pip package duckdb-cli) is not installed")
    out = subprocess.run([cli, "-readonly", "-csv", str(db), "-c",
                          "SELECT agent_id, calls FROM agent_scorecards ORDER BY ALL"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == ["agent_id,calls", "a1,1", "a1,1", "a2,2"]


def test_pandas_reads_the_views(db):
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute("SELECT * FROM call_scores ORDER BY call_id").df()
    assert frame["call_id"].tolist() == ["c1", "c2", "c3", "c4"]
    assert frame["auto_failed"].tolist() == [False, True, False, False]
    assert frame["pass_mark"].unique().tolist() == [80.0]


def test_section_ids_that_collide_with_view_columns_never_break_the_database(tmp_path):
    """Rubrics an older callqa accepted (a section `call_id`; two rubrics with `courtesy` and `Courtesy`) are in
    the file: every writer rebuilds the views at start, so one bad rubric used to fail every later run."""
    odd = rubric_row("odd", sections={"call_id": (1.0, ("greeting",)), "Courtesy": (1.0, ("dead_air",))})
    path = build_db(tmp_path / "odd.duckdb", [CallSpec("c1", "a1", datetime(2024, 5, 6), {"greeting": "pass",
                                                                                          "dead_air": "fail"})],
                    rubrics=(rubric_row(), odd))
    with Store(path):  # a writer's start rebuilds the views
        pass
    columns = [d[0] for d in duckdb.connect(str(path), read_only=True).execute(
        "SELECT * FROM agent_scorecards LIMIT 0").description]
    assert {"avg_call_id", "avg_courtesy", "avg_Courtesy_2", "avg_resolution"} <= set(columns)
    assert _rows(path, "SELECT rubric_id, avg_call_id, avg_Courtesy_2 FROM agent_scorecards ORDER BY 1") == [
        ("clinic-helpdesk", None, None), ("odd", 100.0, 0.0)]
    from typer.testing import CliRunner

    from callqa.cli import app

    result = CliRunner().invoke(app, ["scorecard", "--db", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "avg_call_id" in result.stdout.splitlines()[0]


def test_rubric_check_refuses_reserved_section_ids(tmp_path):
    from typer.testing import CliRunner

    from callqa.cli import app

    path = tmp_path / "r.yaml"
    path.write_text("id: t\nsections:\n  - id: call_id\n    criteria:\n      - id: c\n        match: {any: [x]}\n")
    result = CliRunner().invoke(app, ["rubric", "check", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"{path}:3: sections[0].id: section id 'call_id' is reserved (a column of "
                                     "the database views); choose another")


def test_a_rubric_whose_views_cannot_be_built_is_not_stored(tmp_path, monkeypatch):
    from callqa.errors import DatabaseError
    from callqa.rubric import default_rubric_path, load_rubric

    path = tmp_path / "q.duckdb"
    with Store(path):
        pass

    def broken(con):
        con.execute("CREATE OR REPLACE VIEW call_scores AS SELECT 1 AS call_id")
        con.execute("SELECT no_such_column FROM call_scores")  # any failure while the views are rebuilt

    with Store(path) as store, pytest.raises(DatabaseError, match="not stored: the database views cannot be rebuilt"):
        monkeypatch.setattr("callqa.views.create_views", broken)
        store.save_rubrics([load_rubric(default_rubric_path())])
    monkeypatch.undo()
    assert _rows(path, "SELECT count(*) FROM rubrics") == [(0,)]
    assert "rubric_sha256" in [d[0] for d in duckdb.connect(str(path), read_only=True).execute(
        "SELECT * FROM call_scores LIMIT 0").description]  # the view replaced in the failed transaction is back
    with Store(path) as store:  # still usable: the next run stores the rubric
        store.save_rubrics([load_rubric(default_rubric_path())])
    assert _rows(path, "SELECT rubric_id FROM rubrics") == [("clinic-helpdesk",)]
    assert _rows(path, "SELECT count(*) FROM agent_scorecards") == [(0,)]
