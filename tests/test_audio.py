"""Decoding the formats phone systems write, and the stereo / mono decisions."""

import wave

import numpy as np
import pytest

from audio_helpers import FORMATS, STEREO, speech, write_audio, write_pcm_wav
from callqa.audio import load_audio
from callqa.errors import AudioError
from callqa.executor import DecodeOptions


@pytest.mark.parametrize("kind", list(FORMATS))
def test_every_common_format_decodes_to_16k_with_its_metadata(tmp_path, kind):
    s = speech(rate=8000)
    left, right = s, np.roll(s, 8000) * 0.8  # two different signals: a real stereo call
    path = write_audio(tmp_path / f"call{kind}", [left, right], 8000, kind)
    audio = load_audio(path)
    assert audio.source_channels == 2
    assert audio.speaker_mode == "stereo"
    assert audio.speakers == ("left", "right")  # which one is the agent is the role stage's business
    assert abs(audio.duration_s - 11.0) < 0.3
    assert all(ch.dtype == np.float32 and abs(len(ch) / 16000 - audio.duration_s) < 0.01 for ch in audio.channels)
    expected = {"pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw", "flac", "mp3float", "mp3", "opus", "aac"}
    assert audio.codec in expected
    assert audio.sample_rate == (48000 if kind == ".ogg" else 8000)


def test_silent_channel_falls_back_to_mono_and_says_so(tmp_path):
    s = speech(rate=8000)
    audio = load_audio(write_audio(tmp_path / "a.wav", [np.zeros_like(s), s], 8000))
    assert audio.speaker_mode == "mono_fallback_silent"
    assert audio.speakers == ("unknown",)
    assert "left channel is silent" in audio.note
    assert np.abs(audio.channels[0]).max() > 0.1  # the channel kept is the one with speech


def test_dual_mono_falls_back_to_one_channel(tmp_path):
    s = speech(rate=8000)
    audio = load_audio(write_audio(tmp_path / "a.ulaw.wav", [s, s], 8000, ".ulaw.wav"))
    assert audio.speaker_mode == "mono_fallback_dual" and len(audio.channels) == 1
    assert "same audio" in audio.note


def test_named_channels_pick_and_order_the_speakers():
    audio = load_audio(STEREO, DecodeOptions(channels=(1, 0)))
    plain = load_audio(STEREO)
    np.testing.assert_array_equal(audio.channels[0], plain.channels[1])
    np.testing.assert_array_equal(audio.channels[1], plain.channels[0])


def test_bytes_decode_like_the_file():
    np.testing.assert_array_equal(load_audio(STEREO.read_bytes()).channels[1], load_audio(STEREO).channels[1])


def test_three_channels_fail_unless_the_speakers_are_named(tmp_path):
    s = speech(rate=8000)
    path = write_pcm_wav(tmp_path / "three.wav", [s, np.zeros_like(s), np.roll(s, 8000) * 0.5], 8000)
    with pytest.raises(AudioError, match="3 audio channels: name the two") as info:
        load_audio(path)
    assert "\n" not in str(info.value)
    with pytest.raises(AudioError, match="do not name two different channels"):
        load_audio(path, DecodeOptions(channels=(0, 3)))


def test_named_channels_of_a_three_channel_file_keep_each_speaker_whole(tmp_path):
    s = speech(rate=8000)
    customer = np.roll(s, 8000) * 0.5
    path = write_pcm_wav(tmp_path / "three.wav", [s, np.zeros_like(s), customer], 8000)
    audio = load_audio(path, DecodeOptions(channels=(0, 2)))
    assert (audio.speaker_mode, audio.speakers, audio.source_channels) == ("stereo", ("left", "right"), 3)
    reference = load_audio(write_audio(tmp_path / "two.wav", [s, customer], 8000))
    for got, want in zip(audio.channels, reference.channels):  # nothing of another channel mixed in
        assert np.max(np.abs(got - want)) < 1e-3
    silent = load_audio(path, DecodeOptions(channels=(0, 1)))  # the empty channel: today's silent fallback
    assert silent.speaker_mode == "mono_fallback_silent" and "right channel is silent" in silent.note


def test_mono_file_is_one_unknown_speaker(tmp_path):
    audio = load_audio(write_audio(tmp_path / "m.flac", [speech()], 16000, ".flac"))
    assert (audio.speaker_mode, audio.speakers, audio.source_channels) == ("mono", ("unknown",), 1)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "not a decodable audio file"),
        (b"this is a text file, not audio\n" * 20, "not a decodable audio file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a decodable audio file"),
    ],
)
def test_unusable_files_raise_audio_error_with_a_one_line_reason(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_wav_header_without_samples_is_zero_length(tmp_path):
    path = tmp_path / "empty.wav"
    with wave.open(str(path), "wb") as w:  # a valid WAV header with no samples after it
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
    with pytest.raises(AudioError, match="no audio"):
        load_audio(path)
