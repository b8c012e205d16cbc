"""`callqa rubric diff OLD NEW`: a backtest that agrees call by call with a real `rescore` into a copy of the
database, and leaves the database byte-identical."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from callqa import scoring
from callqa.cli import app
from loop_helpers import BANK_RUBRIC, built, db  # noqa: F401 (fixtures)

runner = CliRunner()


@pytest.fixture
def changed(tmp_path) -> Path:
    """Version 2: a stricter pass mark, a greeting in the first 5 s, and the bank's name no longer fuzzy."""
    text = BANK_RUBRIC.read_text()
    for old, new in (("version: 1", "version: 2"), ("pass_mark: 80", "pass_mark: 85"),
                     ("window: {first: 20s}", "window: {first: 5s}"), ("fuzzy: 0.7", "fuzzy: 0.95")):
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "bank_v2.yaml"
    path.write_text(text)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _scores(db: Path, version: int) -> dict[str, tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        evaluations = con.execute("SELECT call_id, score, passed, rubric_sha256 FROM evaluations e JOIN rubrics r "
                                  "USING (rubric_sha256) WHERE r.version = ?", [version]).fetchall()
        outcomes = {}
        for call_id, criterion_id, outcome in con.execute(
                "SELECT call_id, criterion_id, outcome FROM criterion_results JOIN rubrics r USING (rubric_sha256) "
                "WHERE r.version = ?", [version]).fetchall():
            outcomes.setdefault(call_id, {})[criterion_id] = outcome
    finally:
        con.close()
    return {c: (score, passed, outcomes[c]) for c, score, passed, _ in evaluations}


def diff(db: Path, *args: str, fmt: str = "json"):
    result = runner.invoke(app, ["rubric", "diff", *args, "--db", str(db), "--format", fmt])
    return result


@pytest.mark.parametrize("old_spec", ["stored", "file"])
def test_diff_agrees_with_a_real_rescore_and_leaves_the_database_byte_identical(db, changed, tmp_path,
                                                                                monkeypatch, old_spec):
    monkeypatch.setattr(scoring, "RESCORE_CHUNK", 4)  # 12 calls: three chunks, evaluated in worker processes
    before = _digest(db)
    old = "bank-calls@1" if old_spec == "stored" else str(BANK_RUBRIC)
    result = diff(db, old, str(changed))
    assert result.exit_code == 0, result.output
    assert _digest(db) == before
    assert not db.with_suffix(".duckdb.wal").exists()
    reported = {r["call_id"]: r for r in json.loads(result.output)}

    copy = tmp_path / "rescored.duckdb"
    shutil.copy(db, copy)
    assert runner.invoke(app, ["rescore", "--db", str(copy), "--rubric", str(changed)]).exit_code == 0
    old_scores, new_scores = _scores(copy, 1), _scores(copy, 2)
    assert len(new_scores) == len(old_scores) == 12
    expected_changes = 0
    for call_id, (old_score, old_passed, old_outcomes) in old_scores.items():
        new_score, new_passed, new_outcomes = new_scores[call_id]
        changes = old_score != pytest.approx(new_score) or old_passed != new_passed
        expected_changes += changes
        if not changes:
            assert call_id not in reported
            continue
        row = reported[call_id]
        assert (row["old_score"], row["old_passed"]) == (pytest.approx(old_score), old_passed)
        assert (row["new_score"], row["new_passed"]) == (pytest.approx(new_score), new_passed)
        flips = {c: (old_outcomes[c], new_outcomes[c]) for c in old_outcomes if old_outcomes[c] != new_outcomes[c]}
        assert {c["criterion_id"]: (c["old"], c["new"]) for c in row["changed_criteria"]} == flips
    assert expected_changes > 0 and len(reported) == expected_changes


def test_per_agent_pass_rates_old_and_new(db, changed):
    result = diff(db, "bank-calls@1", str(changed), fmt="table")
    assert result.exit_code == 0, result.output
    assert "bank-calls v1 -> bank-calls v2" in result.output
    con = duckdb.connect(str(db), read_only=True)
    agents = con.execute("SELECT agent_id, count(*), avg(passed::INT) FROM call_scores GROUP BY 1 ORDER BY 1").fetchall()
    con.close()
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["agent_id", "calls"])
    for (agent, calls, rate), line in zip(agents, lines[header + 1:]):
        fields = line.split()
        assert fields[:3] == [agent, str(calls), f"{100 * rate:.1f}%"]


def test_filters_and_csv(db, changed):
    result = diff(db, "bank-calls@1", str(changed), "--agent", "b.chen", "--since", "2026-11-03", fmt="csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    con = duckdb.connect(str(db), read_only=True)
    allowed = {c for (c,) in con.execute("SELECT call_id FROM calls WHERE agent_id = 'b.chen' "
                                         "AND started_at >= '2026-11-03'").fetchall()}
    con.close()
    assert {r["call_id"] for r in rows} <= allowed
    assert next(csv.reader(io.StringIO(result.output))) == ("call_id,agent_id,started_at,old_score,new_score,"
                                                            "old_passed,new_passed,changed_criteria").split(",")
    same = diff(db, "bank-calls@1", str(BANK_RUBRIC))
    assert same.exit_code == 0 and json.loads(same.output) == []


@pytest.mark.parametrize("old,message,more", [("bank-calls@9", "no rubric 'bank-calls@9'", ()),
                                              ("nothing-here.yaml", "neither a rubric file nor", ()),
                                              ("bank-calls@1", "no calls of agent 'nobody'", ("--agent", "nobody"))])
def test_unknown_rubrics_or_agents_exit_2(db, changed, old, message, more):
    result = diff(db, old, str(changed), *more)
    assert result.exit_code == 2 and message in result.output


def test_a_broken_new_rubric_lists_its_problems(db, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nsections: []\n")
    result = diff(db, "bank-calls@1", str(bad))
    assert result.exit_code == 2 and "bad.yaml:" in result.output
