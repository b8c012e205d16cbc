"""Real ASR with the bundled tiny.en on real speech."""

import csv

import numpy as np
import pytest

from audio_helpers import DATA, JFK, JFK_TEXT, STEREO
from benchmarks.wer import wer
from callqa.audio import load_audio


def _text(utterances):
    return " ".join(u.text for u in utterances)


def test_wer_compares_normalised_words():
    assert wer(["I'm 24, okay?"], ["i am twenty-four ok"]) == 0.0
    assert wer(["the cat sat", "on 1,000 mats"], ["the cat", "on one thousand hats"]) == 2 / 7


@pytest.mark.slow
def test_jfk_transcribed_with_low_wer(transcriber):
    audio = load_audio(JFK)
    utterances = transcriber.transcribe(audio)
    error = wer([JFK_TEXT], [_text(utterances)])
    print(f"JFK WER: {error:.1%}")
    assert audio.speaker_mode == "mono_fallback_dual"  # the file's two channels are identical
    assert error <= 0.05
    words = [w for u in utterances for w in u.words]
    assert all(0 <= w.start <= w.end <= audio.duration_s + 0.5 for w in words)
    assert all(0 <= w.probability <= 1 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)


@pytest.mark.slow
def test_stereo_two_talkers_give_two_speakers_each_with_its_sentence(transcriber):
    audio = load_audio(STEREO)
    assert audio.speaker_mode == "stereo" and audio.speakers == ("left", "right")
    utterances = transcriber.transcribe(audio)
    by_speaker = {s: _text([u for u in utterances if u.speaker == s]) for s in ("left", "right")}
    assert wer(["He began a confused complaint against the wizard, who had vanished behind the curtain on the left."],
               [by_speaker["left"]]) <= 0.1
    assert wer(["The horizon seems extremely distant."], [by_speaker["right"]]) <= 0.1
    assert [u.seq for u in utterances] == list(range(len(utterances)))
    assert [u.start for u in utterances] == sorted(u.start for u in utterances)


@pytest.mark.slow
def test_telephone_prompts_wer_at_most_ten_percent(transcriber):
    folder = DATA / "telephone-8k"
    with (folder / "transcripts.tsv").open() as fh:
        refs = {row["file"]: row["reference_text"] for row in csv.DictReader(fh, delimiter="\t")}
    hyps = []
    for name in refs:
        audio = load_audio(folder / "wav" / name)
        assert audio.sample_rate == 8000 and audio.speaker_mode == "mono"
        hyps.append(_text(transcriber.transcribe(audio)))
    error = wer(refs.values(), hyps)
    print(f"telephone-8k WER over {len(refs)} prompts: {error:.1%}")
    assert error <= 0.10


def test_no_text_invented_on_a_channel_with_only_line_noise(transcriber):
    noise = np.random.default_rng(0).normal(0, 0.003, 16000 * 8).astype(np.float32)
    assert transcriber.transcribe_channel(noise, "customer") == []
