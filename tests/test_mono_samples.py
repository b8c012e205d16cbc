"""Acceptance on mono: mixdowns of every stereo sample call, scored with estimated speakers, agree with the
outcomes the calls were written to have (>= 98 % of criterion outcomes)."""

import csv
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml
from audio_helpers import write_audio
from typer.testing import CliRunner

from callqa.audio import load_audio
from callqa.cli import app

SAMPLES = Path(__file__).resolve().parent.parent / "sample_calls"
EXPECTED = yaml.safe_load((SAMPLES / "expected.yaml").read_text())

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    pytest.importorskip("resemblyzer", reason="speaker estimation needs the mono extra")
    folder = tmp_path_factory.mktemp("mono")
    rows = list(csv.DictReader((SAMPLES / "manifest.csv").open()))
    for row in rows:
        audio = load_audio(SAMPLES / row["file"])
        row["file"] = Path(row["file"]).stem + ".wav"
        write_audio(folder / row["file"], [np.mean(audio.channels, axis=0)], 16000)
    with (folder / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    db = folder / "callqa.duckdb"
    result = CliRunner().invoke(app, ["score", str(folder), "--manifest", str(folder / "manifest.csv"),
                                      "--db", str(db)])
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(db), read_only=True) as con:
        outcomes = con.execute("SELECT call_id, criterion_id, outcome FROM criterion_results cr "
                               "JOIN call_scores USING (call_id, rubric_sha256)").fetchall()
        calls = con.execute("SELECT call_id, speaker_mode, estimated_speakers, diarization_confidence, "
                            "review_reasons FROM calls").fetchall()
        estimated = con.execute("SELECT DISTINCT metric FROM call_metrics WHERE estimated").fetchall()
        speakers = con.execute("SELECT DISTINCT speaker FROM utterances").fetchall()
    return {(c, k): o for c, k, o in outcomes}, calls, {m for (m,) in estimated}, {s for (s,) in speakers}


def test_criterion_outcomes_on_mono_mixdowns_agree_with_expected(scored):
    outcomes, _, _, _ = scored
    expected = {(call, crit): outcome for call, spec in EXPECTED.items() for crit, outcome in spec["criteria"].items()}
    disagreements = [(call, crit, want, outcomes.get((call, crit))) for (call, crit), want in sorted(expected.items())
                     if outcomes.get((call, crit)) != want]
    agreement = 1 - len(disagreements) / len(expected)
    print(f"\nmono mixdowns: {len(EXPECTED)} calls, {len(expected)} criterion outcomes, agreement {agreement:.1%}")
    for call, crit, want, got in disagreements:
        print(f"  {call} {crit}: expected {want}, got {got}")
    assert agreement >= 0.98


def test_every_mixdown_is_estimated_and_says_how_sure(scored):
    _, calls, estimated, speakers = scored
    assert {mode for _, mode, _, _, _ in calls} == {"mono_estimated"}
    for call_id, _, count, confidence, reasons in calls:
        assert count >= 1 and 0.0 <= confidence <= 1.0, call_id
        if count != 2:
            assert reasons, call_id  # one voice or three is flagged for a person
    assert speakers == {"agent", "customer"}
    assert {"agent_talk_ratio", "agent_interruptions", "customer_sentiment_change"} <= estimated
    assert "longest_silence_s" not in estimated
