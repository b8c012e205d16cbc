"""`callqa show CALL_ID`: why a call got its score — transcript, metrics, every criterion with its evidence."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.store import Store
from db_helpers import DIALOGUE, CallSpec, build_db, evaluate, rubric_row

RUDE = ("agent", 20.0, 22.5, "Calm down, that is not my problem.")
CALL = CallSpec(
    "c-rude", "sam", datetime(2024, 5, 6, 9, 30),
    {"greeting": "pass", "no_rude_language": "fail", "dead_air": "fail", "reason_for_call": "pass"},
    utterances=(*DIALOGUE[:2], RUDE, ("customer", 23.0, 25.0, "Excuse me?\x1b[2J"), DIALOGUE[4]),
    evidence={"greeting": DIALOGUE[0][:3] + ("Thank you for calling Riverside Clinic",), "no_rude_language": RUDE,
              "dead_air": (None, 25.0, 40.0, "longest_silence_s = 15")},
    values={"dead_air": 15.0},
    metrics={"longest_silence_s": (15.0, 25.0, 40.0), "agent_interruptions": (None, None, None)},
)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = build_db(tmp_path_factory.mktemp("show") / "show.duckdb",
                    [CALL, CallSpec("c-broken", "sam", None, {}, status="failed")])
    newer = rubric_row(version=2, sections={"courtesy": (1.0, ("greeting",))})
    with Store(path) as store:
        store.save_rubric(newer)
        store.write_evaluations([evaluate(CALL, newer)], "run-2")
    return path


def show(db: Path, *args: str):
    return CliRunner().invoke(app, ["show", *args, "--db", str(db)])


def test_text_shows_transcript_metrics_and_every_criterion_with_evidence(db):
    result = show(db, "c-rude")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Call", "c-rude", "agent", "sam", "started", "2024-05-06", "09:30:00", "duration",
                                "0:45", "stereo"]
    assert "  [   0:20] agent    Calm down, that is not my problem." in lines
    assert "  longest_silence_s            15 at 0:25" in lines
    assert "  agent_interruptions          n/a" in lines
    assert "Rubric clinic-helpdesk v2: score 100 PASS (pass mark 80)" in lines
    v1 = lines.index("Rubric clinic-helpdesk v1: score 0 AUTO-FAIL (pass mark 80)  (older rubric version)")
    assert lines[v1 + 1:v1 + 5] == [
        "  courtesy: 33.33",
        '    PASS greeting at 0:00 agent: "Thank you for calling Riverside Clinic"',
        '    FAIL no_rude_language at 0:20 agent: "Calm down, that is not my problem."',
        '    FAIL dead_air value 15 at 0:25 "longest_silence_s = 15"',
    ]


def test_text_neutralises_terminal_control_characters(db):
    out = show(db, "c-rude").stdout
    assert "\x1b" not in out and "Excuse me??[2J" in out


def test_json_has_the_same_content(db):
    result = show(db, "c-rude", "--format", "json")
    shown = json.loads(result.stdout)
    assert shown["call"]["agent_id"] == "sam" and shown["call"]["started_at"] == "2024-05-06T09:30:00"
    assert shown["call"]["extra"] == {"queue": "appointments"}
    assert [(u["speaker"], u["start_s"]) for u in shown["utterances"]][:3] == [
        ("agent", 0.5), ("customer", 4.5), ("agent", 20.0)]
    assert shown["metrics"]["longest_silence_s"] == {"value": 15.0, "start_s": 25.0, "end_s": 40.0}
    latest, older = shown["evaluations"]
    assert (latest["rubric_version"], latest["latest"], older["latest"]) == (2, True, False)
    assert older["auto_failed"] is True and older["score"] == 0.0
    rude = next(r for r in older["criteria"] if r["criterion_id"] == "no_rude_language")
    assert rude["outcome"] == "fail" and rude["evidence"] == {
        "speaker": "agent", "start_s": 20.0, "end_s": 22.5, "text": "Calm down, that is not my problem."}
    assert older["sections"] == {"courtesy": pytest.approx(100 / 3), "resolution": 100.0}


def test_failed_call_shows_its_error(db):
    result = show(db, "c-broken")
    assert result.exit_code == 0
    assert "status failed: cannot decode audio: invalid data" in result.stdout
    assert "(none stored)" in result.stdout


def test_unknown_call_exits_2_and_suggests_close_ids(db):
    result = show(db, "c-rud")
    assert result.exit_code == 2
    assert "no call 'c-rud'" in result.stderr and "closest: c-rude" in result.stderr


def test_show_imports_no_pandas_and_export_and_report_do_not_import_each_other():
    """callqa's own modules on the `show` path import no pandas (DuckDB's Python parameter binding still imports it
    when it is installed: that is DuckDB's, measured, not callqa's)."""
    import subprocess
    import sys

    script = """
import ast, pathlib, sys
import callqa, callqa.cli, callqa.query
assert "pandas" not in sys.modules, "the show path imported pandas"
root = pathlib.Path(callqa.__file__).parent
def imports(name):
    tree = ast.parse((root / f"{name}.py").read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}
assert "export" not in imports("report") and "report" not in imports("scorecards")
assert not {"export", "report", "scorecards"} & imports("query")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
