"""Acceptance on mono: mixdowns of every stereo sample call, scored with estimated speakers, agree with the
outcomes the calls were written to have: the issue's target, 98 %. On all 12 mixdowns (180 outcomes) this version
has 3 misses (98.3 %), all Whisper mishearing the mixed channel: "State of 1" for "date of birth?" (rc-1002), and
rc-1007, whose agent talks over the caller four times for 2.8 s: "I apologize" and the name question are lost in
the overlap (empathy and verify_identity fail)."""

import csv
from pathlib import Path

import duckdb
import numpy as np
import pytest

from audio_helpers import write_audio
from callqa.audio import load_audio
from test_sample_calls import EXPECTED, SAMPLES, _disagreements, _outcomes, score_rendering

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mixdowns(tmp_path_factory):
    pytest.importorskip("resemblyzer", reason="speaker estimation needs the mono extra")
    folder = tmp_path_factory.mktemp("mono")
    rows = list(csv.DictReader((SAMPLES / "manifest.csv").open()))
    for row in rows:
        audio = load_audio(SAMPLES / row["file"])
        row["file"] = Path(row["file"]).stem + ".wav"  # agent ids hold dots: a.garcia_..._rc-1001
        write_audio(folder / row["file"], [np.mean(audio.channels, axis=0)], 16000)
    return score_rendering(folder, rows)


def test_criterion_outcomes_on_mono_mixdowns_agree_with_expected(mixdowns):
    outcomes, _ = _outcomes(mixdowns)
    disagreements = _disagreements(outcomes, EXPECTED)
    total = sum(len(spec["criteria"]) for spec in EXPECTED.values())
    agreement = 1 - len(disagreements) / total
    print(f"\nmono mixdowns: {len(EXPECTED)} calls, {total} criterion outcomes, agreement {agreement:.1%}")
    for call, crit, want, got in disagreements:
        print(f"  {call} {crit}: expected {want}, got {got}")
    assert agreement >= 0.98


def test_every_mixdown_is_estimated_and_says_how_sure(mixdowns):
    with duckdb.connect(str(mixdowns), read_only=True) as con:
        calls = con.execute("SELECT call_id, speaker_mode, estimated_speakers, diarization_confidence, "
                            "review_reasons FROM calls").fetchall()
        estimated = {m for (m,) in con.execute("SELECT DISTINCT metric FROM call_metrics WHERE estimated").fetchall()}
        speakers = {s for (s,) in con.execute("SELECT DISTINCT speaker FROM utterances").fetchall()}
    assert {mode for _, mode, _, _, _ in calls} == {"mono_estimated"}
    for call_id, _, count, confidence, reasons in calls:
        assert count >= 1 and 0.0 <= confidence <= 1.0, call_id
        if count != 2:
            assert reasons, call_id  # one voice or three is flagged for a person
    assert speakers == {"agent", "customer"}
    assert {"agent_talk_ratio", "agent_interruptions", "customer_sentiment_change"} <= estimated
    assert "longest_silence_s" not in estimated
