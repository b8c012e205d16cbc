"""The batch with the role stage: files with more than two channels, and one call's failure staying its own."""

from __future__ import annotations

import shutil

import av
import duckdb
import numpy as np
from typer.testing import CliRunner

from audio_helpers import JFK, STEREO, write_pcm_wav
from callqa import asr_pool
from callqa.cli import app
from callqa.transcribe import Transcriber

runner = CliRunner()


def _talkers() -> tuple[np.ndarray, np.ndarray]:
    """The two channels of the real two-talker recording, as float arrays at its 16 kHz."""
    with av.open(str(STEREO)) as container:
        data = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    data = data.reshape(-1, 2).T if data.shape[0] == 1 else data
    return data[0].astype(np.float32) / 32768, data[1].astype(np.float32) / 32768


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_three_channel_file_fails_with_a_reason_or_keeps_both_named_speakers(tmp_path):
    first, second = _talkers()
    path = write_pcm_wav(tmp_path / "a.garcia_20261102T091500_three.wav", [first, np.zeros_like(first), second],
                         16000)
    db = tmp_path / "q.duckdb"
    result = runner.invoke(app, ["score", str(path), "--db", str(db)])
    assert result.exit_code == 3, result.output
    assert _rows(db, "SELECT status, error FROM calls") == [
        ("failed", "3 audio channels: name the two that carry the speakers (--channels 0,1 or a manifest/sidecar "
                   "column 'channels'); none is dropped or mixed")]
    result = runner.invoke(app, ["score", str(path), "--db", str(db), "--channels", "0,2"])
    assert result.exit_code == 0, result.output
    said = " ".join(t for (t,) in _rows(db, "SELECT text FROM utterances")).lower()
    assert "wizard" in said and "horizon" in said  # the third channel's talker is there, not dropped or mixed
    assert {s for (s,) in _rows(db, "SELECT speaker FROM utterances")} == {"agent", "customer"}
    assert _rows(db, "SELECT channels, status, role_source FROM calls") == [(3, "ok", "detected")]


def test_bad_channels_option_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["score", str(STEREO), "--db", str(tmp_path / "q.duckdb"), "--channels", "0"])
    assert result.exit_code == 2 and "--channels '0': expected two different channel numbers" in result.output
    result = runner.invoke(app, ["score", str(STEREO), "--db", str(tmp_path / "q.duckdb"), "--agent-channel", "up"])
    assert result.exit_code == 2 and "--agent-channel" in result.output  # typer lists the choices


def test_any_exception_in_one_calls_decode_or_asr_fails_that_call_only(tmp_path, monkeypatch):
    folder = tmp_path / "rec"
    folder.mkdir()
    for name in ("ok", "decode-oom", "asr-oom"):
        shutil.copy(STEREO if name == "ok" else JFK, folder / f"a.garcia_20261102T0915{len(name):02d}_{name}.wav")
    real_load, real_asr = asr_pool.load_audio, Transcriber.transcribe_channel

    def load(source, options):
        if "decode-oom" in str(source):
            raise MemoryError()
        return real_load(source, options)

    def asr(self, audio, speaker):
        if len(audio) > 16000 * 8:  # the 11 s JFK recording
            raise MemoryError("cannot allocate")
        return real_asr(self, audio, speaker)

    monkeypatch.setattr(asr_pool, "load_audio", load)
    monkeypatch.setattr(Transcriber, "transcribe_channel", asr)
    db = tmp_path / "q.duckdb"
    result = runner.invoke(app, ["score", str(folder), "--db", str(db), "--workers", "1"])
    assert result.exit_code == 3, result.output
    assert dict(_rows(db, "SELECT call_id, coalesce(error, status) FROM calls")) == {
        "ok": "ok", "decode-oom": "decoding or ASR failed (MemoryError)",
        "asr-oom": "decoding or ASR failed (MemoryError: cannot allocate)"}
