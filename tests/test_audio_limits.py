"""Recordings checked from the container before decoding, and truncated recordings (issue 16, items 2 and 3)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import duckdb
import numpy as np
import pytest

from audio_helpers import JFK, speech, wav_bytes, write_audio
from callqa.audio import AudioLimits, decode, load_audio
from callqa.config import load_config
from callqa.errors import AudioError
from callqa.executor import DecodeOptions


def lying_wav(path, rate: int, samples: int = 200_000, stated_bytes: int | None = None, format_tag: int = 1):
    """Noise as 16-bit mono PCM in a WAV whose header claims ``rate`` Hz (see ``wav_bytes``)."""
    data = (np.random.default_rng(0).standard_normal(samples) * 3000).astype("<i2").tobytes()
    path.write_bytes(wav_bytes(data, rate, format_tag, stated_bytes))
    return path


def test_a_header_claiming_1_hz_is_refused_before_decoding(tmp_path):
    path = lying_wav(tmp_path / "onehz.wav", rate=1)  # 200 000 samples at 1 Hz: 55 hours, 6 GB at 16 kHz
    with pytest.raises(AudioError, match=r"sample rate 1 Hz is outside 4000-192000 Hz"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"header says 200000 s; the limit is 10800 s \(max_duration_s\)"):
        load_audio(path, DecodeOptions(limits=AudioLimits(min_sample_rate=1)))


def test_a_codec_ffmpeg_cannot_decode_is_one_clear_error(tmp_path):
    path = lying_wav(tmp_path / "tag7777.wav", rate=8000, samples=2000, format_tag=0x7777)  # a tag no decoder knows
    with pytest.raises(AudioError, match=r"^no decoder for the audio stream's codec$"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"^no decoder for the audio stream's codec$"):
        load_audio(path.read_bytes())


def test_file_size_limit(tmp_path):
    path = lying_wav(tmp_path / "big.wav", rate=8000)
    with pytest.raises(AudioError, match=r"the file is 0 MB; the limit is 0.1 MB \(max_file_mb\)"):
        load_audio(path, DecodeOptions(limits=AudioLimits(max_file_mb=0.1)))


def test_decoding_stops_at_the_limit_when_the_container_states_no_duration():
    with pytest.raises(AudioError, match="longer than the limit of 2 s"):
        decode(JFK, 1, expected_s=0.0, max_s=2.0)
    assert decode(JFK, 1, expected_s=0.0, max_s=12.0).shape[1] == pytest.approx(11 * 16000, rel=0.01)


def test_limits_come_from_the_config_file(tmp_path):
    config = tmp_path / "callqa.yaml"
    config.write_text("max_duration_s: 5\nmin_sample_rate: 8000\nscore_truncated: true\n")
    limits = load_config(config).score_options().audio_limits
    assert limits == AudioLimits(max_duration_s=5, min_sample_rate=8000, score_truncated=True)
    with pytest.raises(AudioError, match="header says 11 s; the limit is 5 s"):
        load_audio(JFK, DecodeOptions(limits=limits))


@pytest.fixture(scope="module")
def long_call(tmp_path_factory):
    s = speech(rate=8000)
    return np.concatenate([s, s, s])  # 33 s


@pytest.mark.parametrize("kind", [".wav", ".ulaw.wav", ".flac", ".mp3"])
def test_a_copy_cut_in_half_is_truncated(tmp_path, long_call, kind):
    full = write_audio(tmp_path / f"full{kind}", [long_call, np.roll(long_call, 800)], 8000, kind)
    assert load_audio(full).note == ""
    half = tmp_path / f"half{kind}"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(AudioError, match=r"^truncated: header says 33\.0 s, file holds 16\.\d s$"):
        load_audio(half)
    scored = load_audio(half, DecodeOptions(limits=AudioLimits(score_truncated=True)))
    assert scored.note.startswith("truncated: header says 33.0 s, file holds 16.")
    assert scored.duration_s == pytest.approx(16.5, abs=0.2)


def test_a_header_that_does_not_know_the_length_is_not_truncation(tmp_path):
    for unknown in (0, 0xFFFFFFFF):  # what recorders write while recording
        audio = load_audio(lying_wav(tmp_path / f"u{unknown}.wav", rate=8000, stated_bytes=unknown))
        assert audio.duration_s == pytest.approx(25.0) and audio.note == ""


@pytest.mark.slow
def test_bad_recordings_fail_alone_and_good_calls_are_stored(tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    shutil.copy(JFK, folder / "a.good_20261102T091500_good.flac")
    lying_wav(folder / "a.liar_20261102T091600_onehz.wav", rate=1)
    cut = write_audio(tmp_path / "cut.wav", [speech(rate=8000)], 8000)
    (folder / "a.cut_20261102T091700_cut.wav").write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    db = tmp_path / "q.duckdb"
    command = [sys.executable, "-m", "callqa", "score", str(folder), "--db", str(db), "--workers", "1"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert "Traceback" not in first.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = dict(con.execute("SELECT call_id, status || ': ' || coalesce(error, '') FROM calls").fetchall())
    con.close()
    assert rows["good"] == "ok: "
    assert rows["onehz"] == "failed: sample rate 1 Hz is outside 4000-192000 Hz (min_sample_rate, max_sample_rate)"
    assert rows["cut"].startswith("failed: truncated: header says 11.0 s, file holds 5.")
    again = subprocess.run([*command, "--score-truncated"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 3, again.stderr  # the 1 Hz file still fails
    assert "truncated: header says 11.0 s" in again.stderr and "scored anyway" in again.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status FROM calls WHERE call_id = 'cut'").fetchone() == ("ok",)
    assert con.execute("SELECT count(*) FROM evaluations WHERE call_id = 'cut'").fetchone() == (1,)
    con.close()
