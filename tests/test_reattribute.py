"""A stored call's speakers named again from its stored words, without audio or ASR (issue 13)."""

from __future__ import annotations

import duckdb

from callqa.reattribute import redecide
from callqa.records import CallRecord, CallSource, RoleDecision
from callqa.rescore import rescore_db
from callqa.scoring import Scorer
from callqa.store import Store
from rubric_helpers import RUBRICS, harper_valley

SID = "3a20358e1bfc4a17"  # a real Harper Valley call: "hello this is harper valley national bank ..."
BANK = RUBRICS / "bank_calls.yaml"


def _swapped(transcript):
    other = {"agent": "customer", "customer": "agent"}
    return transcript._replace(utterances=tuple(u._replace(speaker=other[u.speaker]) for u in transcript.utterances))


def _store(db, transcript, roles: RoleDecision | None, scorer: Scorer) -> None:
    analysed, evaluations = scorer.score(transcript)
    source = CallSource(f"{SID}.wav", SID, "james", None, "sha", 1, {}, "manifest")
    record = CallRecord(source, "ok", None, "bundled:tiny.en", False, transcript.duration_s, 2, 8000, "pcm_mulaw",
                        transcript.speaker_mode, analysed, evaluations, roles)
    with Store(db) as store:
        scorer.save_rubrics(store)
        store.save_call(record, "run0")


def _stored(db):
    with duckdb.connect(str(db), read_only=True) as con:
        outcomes = dict(con.execute("SELECT criterion_id, outcome FROM criterion_results").fetchall())
        speakers = con.execute("SELECT speaker FROM utterances ORDER BY seq").fetchall()
        tokens = con.execute("SELECT DISTINCT speaker, utterance_seq FROM tokens ORDER BY 2").fetchall()
        metrics = dict(con.execute("SELECT metric, value FROM call_metrics").fetchall())
        call = con.execute("SELECT agent_channel, role_source, role_version, speaker_mode, review_reasons "
                           "FROM calls").fetchone()
    return outcomes, [s for (s,) in speakers], [s for s, _ in tokens], metrics, call


def test_a_call_stored_before_the_role_stage_with_the_agent_wrong_is_fixed_by_rescore(tmp_path):
    scorer = Scorer.from_paths([BANK], redact=False)
    right = harper_valley(SID)
    _store(tmp_path / "right.duckdb", right, None, scorer)
    # As the old callqa stored a call whose agent was on the right: no role columns, speakers the wrong way.
    _store(tmp_path / "legacy.duckdb", _swapped(right), None, scorer)
    before = _stored(tmp_path / "legacy.duckdb")
    assert before[4][:3] == (None, None, None) and before[1][0] == "customer"
    rescore_db(tmp_path / "legacy.duckdb", [BANK])
    fixed, want = _stored(tmp_path / "legacy.duckdb"), _stored(tmp_path / "right.duckdb")
    assert fixed[1] == want[1] and fixed[2] == want[2]  # utterances and tokens name the speakers as they are
    assert fixed[3] == want[3]  # metrics recomputed from the stored words
    assert fixed[0] == want[0] and fixed[0] != before[0]  # every criterion as if stored right the first time
    assert fixed[4][:4] == ("right", "detected", 1, "stereo_swapped") and fixed[4][4] == []


def test_an_up_to_date_detection_is_left_alone_and_a_forced_one_is_kept(tmp_path):
    scorer = Scorer.from_paths([BANK], redact=False)
    db = tmp_path / "q.duckdb"
    _store(db, _swapped(harper_valley(SID)), RoleDecision("left", "forced", 0.01, (), ("forced against",)), scorer)
    with Store(db) as store:
        assert redecide(store, [SID], lambda _: "auto") == []  # auto never undoes a forced channel
        assert redecide(store, [SID], lambda _: "left") == []  # the same force: nothing to do
        assert redecide(store, [SID], lambda _: "right") == [SID]
        assert redecide(store, [SID], lambda _: "right") == []
    outcomes, speakers, _, _, call = _stored(db)
    assert speakers[0] == "agent" and call[:2] == ("right", "forced") and outcomes == {}  # evaluations dropped
