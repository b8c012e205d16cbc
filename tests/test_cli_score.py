"""`callqa score` end to end on real short recordings, through typer's CliRunner and a subprocess."""

import shutil
import subprocess
import sys

import duckdb
import pytest
from typer.testing import CliRunner

from audio_helpers import JFK, STEREO
from callqa import __version__
from callqa.cli import app

runner = CliRunner()
TABLES = ("calls", "utterances", "words", "tokens", "call_metrics", "evaluations", "criterion_results",
          "section_scores", "call_paths")


@pytest.fixture()
def calls(tmp_path):
    folder = tmp_path / "calls"
    (folder / "day1").mkdir(parents=True)
    shutil.copy(STEREO, folder / "day1" / "a.garcia_20261102T091500_c-stereo.wav")
    shutil.copy(JFK, folder / "b.chen_20261102T101500_c-jfk.flac")
    return folder


def _counts(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        con.close()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"callqa {__version__}"


def test_python_dash_m_help():
    result = subprocess.run([sys.executable, "-m", "callqa", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "score" in result.stdout and "Exit codes" in result.stdout


@pytest.mark.slow
def test_score_twice_transcribes_nothing_the_second_time(calls, tmp_path):
    db = tmp_path / "q.duckdb"
    first = runner.invoke(app, ["score", str(calls), "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert "2 files seen, 2 transcribed" in first.stdout
    counts = _counts(db)
    assert counts["calls"] == 2 and counts["utterances"] > 0 and counts["evaluations"] == 2
    second = runner.invoke(app, ["score", str(calls), "--db", str(db)])
    assert second.exit_code == 0, second.output
    assert "0 transcribed" in second.stdout and "2 skipped" in second.stdout
    assert _counts(db) == counts


@pytest.mark.slow
def test_stereo_call_has_agent_and_customer_rows_in_the_duckdb_cli(calls, tmp_path):
    db = tmp_path / "q.duckdb"
    # Two read sentences, not a call: nothing says who the agent is, so the channel is forced as before roles.
    assert runner.invoke(app, ["score", str(calls / "day1"), "--db", str(db), "--agent-channel", "left"]).exit_code == 0
    out = subprocess.run(["duckdb", str(db), "-csv", "select speaker, count(*) from utterances group by 1 order by 1"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[1].startswith("agent,") and out.splitlines()[2].startswith("customer,")
    con = duckdb.connect(str(db), read_only=True)
    row = con.execute("SELECT agent_id, started_at, channels, sample_rate, codec, speaker_mode, status, model, "
                      "redacted FROM calls").fetchone()
    assert row[0] == "a.garcia" and str(row[1]) == "2026-11-02 09:15:00"
    assert row[2:] == (2, 16000, "pcm_s16le", "stereo", "ok", "bundled:tiny.en", True)


@pytest.mark.slow
def test_db_from_environment(calls, tmp_path, monkeypatch):
    monkeypatch.setenv("CALLQA_DB", str(tmp_path / "env.duckdb"))
    assert runner.invoke(app, ["score", str(calls / "day1")]).exit_code == 0
    assert (tmp_path / "env.duckdb").is_file()


def test_bad_rubric_exits_2_listing_problems_and_writes_nothing(calls, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nsections:\n  - id: s\n    weight: -1\n    criteria:\n      - id: c\n"
                   "        window: {first: soon}\n        match: {any: [hello]}\n")
    result = runner.invoke(app, ["score", str(calls), "--db", str(tmp_path / "q.duckdb"), "--rubric", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:4: sections[0].weight" in result.stderr
    assert f"{bad}:7: sections[0].criteria[0].window" in result.stderr
    assert not (tmp_path / "q.duckdb").exists()


@pytest.mark.parametrize("args, message", [
    (["--db", "/no/such/folder/q.duckdb"], "does not exist"),
    (["--model", "/no/such/model"], "no such model folder"),
    (["--model", "large-v3"], "bundled"),
    (["--manifest", "/no/such/manifest.csv"], "cannot read manifest"),
    (["--name-pattern", "plain"], "names no field"),
])
def test_usage_errors_exit_2_with_one_line(calls, tmp_path, args, message):
    args = ["score", str(calls)] + (args if "--db" in args else args + ["--db", str(tmp_path / "q.duckdb")])
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command, option, bad", [
    (["score", "x.wav"], "--agent-channel", "middle"),
    (["score", "x.wav"], "--executor", "spark"),
    (["scorecard"], "--by", "year"),
    (["scorecard"], "--format", "docx"),
    (["show", "c1"], "--format", "xml"),
    (["sql", "SELECT 1"], "--format", "html"),
])
def test_a_value_outside_an_options_choices_fails_at_the_edge(tmp_path, command, option, bad):
    result = runner.invoke(app, command + [option, bad, "--db", str(tmp_path / "q.duckdb")])
    assert result.exit_code == 2
    assert f"'{bad}' is not one of" in result.stderr
    assert not (tmp_path / "q.duckdb").exists()


def test_help_lists_the_choices():
    result = runner.invoke(app, ["scorecard", "--help"])
    assert "day|week|month" in result.stdout and "table|csv|json|xlsx|parquet" in result.stdout


def test_rubric_check(tmp_path):
    ok = runner.invoke(app, ["rubric", "check", "rubrics/clinic_helpdesk.yaml", "rubrics/it_helpdesk.yaml"])
    assert ok.exit_code == 0 and ok.stdout.count(": ok (") == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nsections: []\nunknown_key: 1\n")
    result = runner.invoke(app, ["rubric", "check", str(bad)])
    assert result.exit_code == 2 and f"{bad}:3:" in result.stderr
