"""Speaker estimation on mono audio: real voices mixed, hard inputs, word attribution, DER, mono metrics."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_helpers import DATA, JFK, resample, speech
from callqa.der import diarization_error_rate, word_attribution
from callqa.diarize import FLAG_MORE_SPEAKERS, FLAG_ONE_SPEAKER, FLAG_TOO_SHORT, attribute, open_pauses, speaker_at
from callqa.metrics import compute_metrics
from callqa.records import MONO_ESTIMATED, Transcript, Turn, Utterance, Word
from callqa.transcribe import make_utterance
from callqa.vad import speech_regions

VOICES = {
    "allison": sorted((DATA / "telephone-8k" / "wav").glob("*.wav")),
    "june": sorted((DATA / "voices" / "fr-june").glob("*.wav")),
    "carlo": sorted((DATA / "voices" / "it-carlo").glob("*.wav")),
}


def _prompt(path: Path, limit_s: float = 6.0) -> np.ndarray:
    x = resample(speech(path, 8000), 8000, 16000)
    loud = np.flatnonzero(np.abs(x) > 0.02)
    return x[max(loud[0] - 800, 0): loud[-1] + 800][: int(limit_s * 16000)]


def conversation(voices: list[str], turns: int) -> np.ndarray:
    """(voices, samples): the voices taking turns (prompts of real speakers), 0.5 s apart."""
    pieces = [(i % len(voices), _prompt(VOICES[voices[i % len(voices)]][i // len(voices) % 8])) for i in range(turns)]
    out = np.zeros((len(voices), sum(len(p) + 8000 for _, p in pieces) + 8000), np.float32)
    at = 8000
    for v, p in pieces:
        out[v, at: at + len(p)] = p
        at += len(p) + 8000
    return out


@pytest.fixture(scope="module")
def estimate():
    pytest.importorskip("resemblyzer", reason="speaker estimation needs the mono extra")
    from callqa.diarize import estimate_speakers

    return estimate_speakers


def _reference(channels: np.ndarray):
    return [(s, e, c) for c, ch in enumerate(channels) for s, e in speech_regions(ch)]


def test_two_real_voices_are_told_apart(estimate):
    channels = conversation(["allison", "carlo"], 10)
    result = estimate(channels.sum(axis=0))
    reference = _reference(channels)
    der = diarization_error_rate(reference, [(t.start, t.end, t.speaker) for t in result.turns])
    assert result.speakers == 2 and result.flags == ()
    assert der.der <= 0.10, der
    mids = [((s + e) / 2, c) for s, e, c in reference]
    assert word_attribution(mids, [speaker_at(result.turns, m) for m, _ in mids], der.mapping) >= 0.9
    assert 0.7 <= result.confidence <= 1.0


def test_two_women_of_different_languages_are_told_apart(estimate):
    channels = conversation(["allison", "june"], 10)
    result = estimate(channels.sum(axis=0))
    der = diarization_error_rate(_reference(channels), [(t.start, t.end, t.speaker) for t in result.turns])
    assert result.speakers == 2 and der.der <= 0.15, der


def test_a_voicemail_is_one_speaker_and_flagged(estimate):
    result = estimate(conversation(["allison"], 8)[0])
    assert result.speakers == 1 and FLAG_ONE_SPEAKER in result.flags
    assert 0.5 <= result.confidence <= 1.0
    assert {t.speaker for t in result.turns} == {0}


def test_three_speakers_are_flagged(estimate):
    result = estimate(conversation(["allison", "carlo", "june"], 15).sum(axis=0))
    assert FLAG_MORE_SPEAKERS in result.flags and result.speakers == 3
    assert 0.0 <= result.confidence <= 1.0


def test_a_three_second_call_does_not_crash_and_says_it_is_unsure(estimate):
    result = estimate(speech(JFK)[: 3 * 16000])
    assert result.speakers == 1 and FLAG_TOO_SHORT in result.flags
    assert result.confidence <= 0.3
    assert result.turns and result.turns[0].start < 1.0


def test_silence_and_half_a_second(estimate):
    silent = estimate(np.zeros(16000 * 5, np.float32))
    assert (silent.speakers, silent.turns, silent.flags) == (0, (), (FLAG_TOO_SHORT,))
    short = estimate(speech(JFK)[:8000])
    assert short.confidence <= 0.3 and FLAG_TOO_SHORT in short.flags


def _words(spec: list[tuple[str, float, float]]) -> tuple[Word, ...]:
    return tuple(Word(f" {w}", s, e, 0.9) for w, s, e in spec)


def test_one_whisper_segment_holding_both_speakers_is_split():
    words = _words([("hello", 0.0, 0.4), ("there", 0.4, 0.8), ("yes", 1.0, 1.3), ("hi", 1.3, 1.6)])
    utterance = make_utterance(list(words), "unknown")
    groups = attribute((utterance,), (Turn(0.0, 0.9, 0), Turn(0.9, 2.0, 1)))
    assert {k: [u.text for u in v] for k, v in groups.items()} == {"speaker_1": ["hello there"],
                                                                   "speaker_2": ["yes hi"]}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 0.8), st.floats(0.0, 0.5)), min_size=1, max_size=20),
       st.lists(st.floats(0.2, 3.0), min_size=1, max_size=6))
def test_attribution_keeps_every_word_once_and_texts_whole(shapes, turn_lengths):
    t, spec = 0.0, []
    for i, (length, gap) in enumerate(shapes):
        spec.append((f"w{i}", t, t + length))
        t += length + gap
    words = _words(spec)
    t, turns = 0.0, []
    for i, length in enumerate(turn_lengths):
        turns.append(Turn(t, t + length, i % 2))
        t += length
    groups = attribute((make_utterance(list(words), "unknown"),), tuple(turns))
    out = sorted((w for us in groups.values() for u in us for w in u.words), key=lambda w: w.start)
    assert out == list(words)
    for label, us in groups.items():
        for u in us:
            assert u.text == "".join(w.word for w in u.words).strip()
            assert all(f"speaker_{speaker_at(tuple(turns), (w.start + w.end) / 2) + 1}" == label for w in u.words)


def test_der_of_a_perfect_and_a_relabelled_estimate_is_zero():
    ref = [(0.0, 2.0, "a"), (2.5, 4.0, "b"), (4.5, 6.0, "a")]
    assert diarization_error_rate(ref, ref).der == 0.0
    assert diarization_error_rate(ref, [(s, e, {"a": 1, "b": 0}[k]) for s, e, k in ref]).der == 0.0


def test_der_counts_confusion_miss_and_false_alarm():
    ref = [(0.0, 10.0, "a"), (10.0, 20.0, "b")]
    all_one = diarization_error_rate(ref, [(0.0, 20.0, 0)], collar=0.0)
    assert all_one.der == pytest.approx(0.5, abs=0.01) and all_one.confusion == pytest.approx(10.0, abs=0.05)
    half = diarization_error_rate(ref, [(0.0, 10.0, 0)], collar=0.0)
    assert half.missed == pytest.approx(10.0, abs=0.05) and half.der == pytest.approx(0.5, abs=0.01)
    extra = diarization_error_rate(ref, [(0.0, 10.0, 0), (10.0, 20.0, 1), (20.0, 25.0, 1)], collar=0.0)
    assert extra.false_alarm == pytest.approx(5.0, abs=0.05)
    # the collar forgives boundaries: a change estimated 0.2 s late costs nothing
    late = diarization_error_rate(ref, [(0.0, 10.2, 0), (10.2, 20.0, 1)])
    assert late.der == 0.0


def _mono(*spec: tuple[str, float, float]) -> Transcript:
    utterances = tuple(Utterance(i, spk, s, e, "words here", 0.9, ()) for i, (spk, s, e) in enumerate(spec))
    return Transcript("c", 60.0, MONO_ESTIMATED, utterances)


def test_mono_interruptions_are_agent_turns_without_a_pause():
    barge = _mono(("agent", 0.0, 3.0), ("customer", 3.5, 8.0), ("agent", 8.05, 10.0), ("customer", 10.6, 14.0))
    metrics = compute_metrics(barge)
    assert metrics["agent_interruptions"].value == 1.0 and metrics["agent_interruptions"].start_s == 8.05
    polite = _mono(("agent", 0.0, 3.0), ("customer", 3.5, 8.0), ("agent", 8.4, 10.0))
    assert compute_metrics(polite)["agent_interruptions"].value == 0.0
    backchannel = _mono(("customer", 3.5, 3.9), ("agent", 3.92, 6.0))  # a one-word "yes" is not interrupted
    assert compute_metrics(backchannel)["agent_interruptions"].value == 0.0


def test_a_quick_change_of_speaker_keeps_its_short_silence_as_a_gap():
    rng = np.random.default_rng(0)
    voice = rng.normal(0, 0.1, 16000 * 2).astype(np.float32)
    line = rng.normal(0, 0.0005, 3200).astype(np.float32)  # 0.2 s of line noise: 46 dB under the voices
    quick = np.concatenate([voice, line, voice])
    turns = (Turn(0.0, 2.1, 0), Turn(2.1, 4.2, 1))  # the VAD bridged the pause: one stretch of speech
    opened = open_pauses(turns, quick)
    assert opened[0].end == pytest.approx(2.0, abs=0.02) and opened[1].start == pytest.approx(2.2, abs=0.02)
    barge = np.concatenate([voice, voice[:3200], voice])  # no silence where the speaker changes: left alone
    assert open_pauses(turns, barge) == turns
    assert open_pauses((Turn(0.0, 2.1, 0), Turn(2.1, 4.2, 0)), quick)[0].end == 2.1  # one speaker's own pause


def test_mono_interruption_of_a_caller_between_phrases_counts_their_whole_sentence():
    # the VAD splits the caller's sentence at a breath; the agent barges into its last 0.6 s
    mid_sentence = _mono(("customer", 0.0, 2.0), ("customer", 2.3, 2.9), ("agent", 2.9, 5.0))
    assert compute_metrics(mid_sentence)["agent_interruptions"].value == 1.0
    # a real pause ended the caller's sentence: the "yes" after it is a backchannel the agent may talk over
    new_start = _mono(("customer", 0.0, 2.0), ("customer", 3.0, 3.6), ("agent", 3.6, 5.0))
    assert compute_metrics(new_start)["agent_interruptions"].value == 0.0


def test_mono_speaker_metrics_are_computed_on_estimated_speakers():
    metrics = compute_metrics(_mono(("agent", 0.0, 3.0), ("customer", 3.5, 4.5)))
    assert metrics["agent_talk_ratio"].value == pytest.approx(0.75)
    unestimated = Transcript("c", 60.0, "mono", (Utterance(0, "unknown", 0.0, 3.0, "hi there", 0.9, ()),))
    assert compute_metrics(unestimated)["agent_talk_ratio"].value is None


def test_a_dual_mono_call_is_estimated_and_an_old_one_reattributed_on_request(estimate, tmp_path):
    import duckdb
    from typer.testing import CliRunner

    from audio_helpers import write_audio
    from callqa.cli import app

    calls = tmp_path / "calls"
    calls.mkdir()
    mix = conversation(["allison", "carlo"], 6).sum(axis=0)
    write_audio(calls / "a.smith_20261102T091500_rc-9001.wav", [mix, mix], 16000)  # both channels the same
    db = tmp_path / "callqa.duckdb"
    run = lambda *extra: CliRunner().invoke(app, ["score", str(calls), "--db", str(db), *extra])  # noqa: E731
    assert run().exit_code == 0
    query = "SELECT speaker_mode, estimated_speakers FROM calls"
    with duckdb.connect(str(db)) as con:
        assert con.execute(query).fetchone() == ("mono_estimated", 2)
        # as an earlier callqa stored it: the fallback, every utterance unknown
        con.execute("UPDATE calls SET speaker_mode = 'mono_fallback_dual', estimated_speakers = NULL")
        con.execute("UPDATE utterances SET speaker = 'unknown'")
    assert run().exit_code == 0  # without --reattribute a stored call is skipped
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(query).fetchone() == ("mono_fallback_dual", None)
    result = run("--reattribute")
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(query).fetchone() == ("mono_estimated", 2)
        speakers = {s for (s,) in con.execute("SELECT DISTINCT speaker FROM utterances").fetchall()}
    assert speakers == {"agent", "customer"}
