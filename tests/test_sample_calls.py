"""Acceptance: `callqa score sample_calls` gives every criterion the outcome the call was written to have."""

from pathlib import Path

import duckdb
import pytest
import yaml

SAMPLES = Path(__file__).resolve().parent.parent / "sample_calls"
EXPECTED = yaml.safe_load((SAMPLES / "expected.yaml").read_text())


@pytest.fixture(scope="module")
def scored(sample_run):
    with duckdb.connect(str(sample_run.db), read_only=True) as con:
        outcomes = con.execute("SELECT call_id, criterion_id, outcome FROM criterion_results cr "
                               "JOIN call_scores USING (call_id, rubric_sha256)").fetchall()
        verdicts = con.execute("SELECT call_id, passed, auto_failed, score FROM call_scores").fetchall()
    return {(c, k): o for c, k, o in outcomes}, {c: (p, a, s) for c, p, a, s in verdicts}


def _verdict(passed, auto_failed, score) -> str:
    if score is None:
        return "unscored"
    return "auto_failed" if auto_failed else ("passed" if passed else "failed")


@pytest.mark.slow
def test_every_criterion_outcome_agrees_with_expected(scored):
    outcomes, _ = scored
    expected = {(call, crit): outcome for call, spec in EXPECTED.items() for crit, outcome in spec["criteria"].items()}
    disagreements = [(call, crit, want, outcomes.get((call, crit))) for (call, crit), want in sorted(expected.items())
                     if outcomes.get((call, crit)) != want]
    agreement = 1 - len(disagreements) / len(expected)
    print(f"\nsample calls: {len(EXPECTED)} calls, {len(expected)} criterion outcomes, agreement {agreement:.1%}")
    for call, crit, want, got in disagreements:
        print(f"  {call} {crit}: expected {want}, got {got}")
    assert disagreements == []


@pytest.mark.slow
def test_every_call_gets_its_intended_verdict(scored):
    _, verdicts = scored
    got = {call: _verdict(*verdicts[call]) for call in EXPECTED}
    want = {call: spec["verdict"] for call, spec in EXPECTED.items()}
    assert got == want


def test_the_corpus_shows_what_it_was_built_for():
    demonstrated = " ".join(spec["demonstrates"].lower() for spec in EXPECTED.values())
    for behaviour in ("model call", "no greeting", "rude", "before", "dead air", "hold", "interrupt", "angry",
                      "dropped"):
        assert behaviour in demonstrated, behaviour
    formats = {spec["format"] for spec in EXPECTED.values()}
    assert {"wav-ulaw-stereo", "wav-pcm-mono", "mp3-stereo", "flac-stereo-16k"} <= formats
    assert len({spec["agent_id"] for spec in EXPECTED.values()}) >= 3
    assert sum(p.stat().st_size for p in SAMPLES.rglob("*")) < 15 * 2**20
