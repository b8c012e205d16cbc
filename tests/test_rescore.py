"""Rescoring in forked worker processes gives exactly the evaluations of rescoring in this process."""

from __future__ import annotations

from datetime import datetime

import pytest

from callqa import scoring
from callqa.records import CallRecord, CallSource
from callqa.scoring import Scorer
from callqa.store import Store
from rubric_helpers import harper_valley

CONVERSATIONS = ("3a20358e1bfc4a17", "a7ccc3379af44b9f")


def _stored_calls(path, scorer: Scorer) -> list[str]:
    ids = []
    with Store(path) as store:
        scorer.save_rubrics(store)
        for i in range(3):
            for sid in CONVERSATIONS:
                call = harper_valley(sid)._replace(call_id=f"{sid}-{i}")
                analysed, evaluations = scorer.score(call)
                source = CallSource(f"/calls/{call.call_id}.wav", call.call_id, "a.garcia", datetime(2026, 11, 2, 9),
                                    f"{i}{sid}", 1, {}, "manifest")
                store.save_call(CallRecord(source, "ok", None, "bundled:tiny.en", True, call.duration_s,
                                           analysed=analysed, evaluations=evaluations), "run-1")
                ids.append(call.call_id)
    return ids


def _evaluations(path) -> list[tuple]:
    with Store(path, read_only=True) as store:
        return store.con.execute(
            "SELECT e.call_id, e.score, e.passed, r.criterion_id, r.outcome, r.value, r.evidence_text, "
            "r.evidence_start_s FROM evaluations e JOIN criterion_results r USING (call_id, rubric_sha256) "
            "WHERE e.run_id = 'rescore' ORDER BY ALL").fetchall()


@pytest.mark.slow
@pytest.mark.skipif(scoring._FORK is None, reason="worker processes need fork")
def test_worker_processes_rescore_like_this_process(tmp_path, monkeypatch):
    scorer = Scorer.from_paths([])
    results = {}
    for chunk, db in ((1000, "serial.duckdb"), (2, "workers.duckdb")):  # 6 calls: one chunk, or three in workers
        path = tmp_path / db
        ids = _stored_calls(path, scorer)
        monkeypatch.setattr(scoring, "RESCORE_CHUNK", chunk)
        with Store(path) as store:
            store.con.execute("DELETE FROM criterion_results; DELETE FROM section_scores; DELETE FROM evaluations")
            assert scorer.rescore(store, ids, "rescore") == 6
        results[db] = _evaluations(path)
    assert results["serial.duckdb"] == results["workers.duckdb"]
    assert len({row[0] for row in results["workers.duckdb"]}) == 6


def test_rescore_and_scorecard_share_one_date_range_rule(tmp_path):
    from typer.testing import CliRunner

    from callqa.cli import app
    from callqa.daterange import DateRange
    from callqa.rescore import select_calls
    from db_helpers import CallSpec, build_db

    days = {"c1": datetime(2026, 11, 1, 0, 0), "c2": datetime(2026, 11, 2, 23, 59, 59), "c3": datetime(2026, 11, 3)}
    db = build_db(tmp_path / "q.duckdb", [CallSpec(cid, "a.garcia", at, {"greeting": "pass"})
                                          for cid, at in days.items()])
    with Store(db, read_only=True) as store:
        selected = select_calls(store, DateRange(datetime(2026, 11, 1).date(), datetime(2026, 11, 2).date()))
    assert selected == ["c1", "c2"]  # --until 2026-11-02 includes the last second of that day
    result = CliRunner().invoke(app, ["rescore", "--db", str(db), "--since", "2026-11-02", "--until", "2026-11-02"])
    assert result.exit_code == 0, result.output
    assert "rescored 1 calls" in result.stdout
    reversed_range = CliRunner().invoke(app, ["rescore", "--db", str(db), "--since", "2026-11-03",
                                              "--until", "2026-11-02"])
    assert reversed_range.exit_code == 2 and "is after --until" in reversed_range.stderr
