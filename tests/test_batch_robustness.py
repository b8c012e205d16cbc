"""The nightly batch survives bad inputs, crashes and rubric changes (issue: incremental, resumable, isolated)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from audio_helpers import JFK, STEREO, speech, write_audio
from callqa.cli import app
from callqa.pipeline import ScoreOptions, score_paths
from callqa.transcribe import Transcriber

ROOT = Path(__file__).resolve().parent.parent


def _run_cli(args, cwd, **kwargs):
    """`python -m callqa` as a separate process; as root, without the power to read files it has no rights to."""
    prefix = []
    if os.geteuid() == 0:
        prefix = [shutil.which("setpriv"), "--bounding-set=-dac_override,-dac_read_search", "--"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(prefix + [sys.executable, "-m", "callqa", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _old(path: Path) -> Path:
    """Give a file an mtime in the past, as recordings from last night have."""
    past = time.time() - 3600
    os.utime(path, (past, past))
    return path


def _rows(db: Path, sql: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_bad_input_matrix_in_one_batch_with_good_calls(tmp_path):
    d = tmp_path / "recordings"
    d.mkdir()
    s8 = speech(rate=8000)
    # good calls
    shutil.copy(STEREO, d / "a.garcia_20261102T091500_good-stereo.wav")
    shutil.copy(JFK, d / "b.chen_20261102T101500_good-jfk.flac")
    # bad and awkward inputs
    (d / "a.garcia_20261102T110000_empty.wav").write_bytes(b"")
    (d / "a.garcia_20261102T110100_truncated.wav").write_bytes(STEREO.read_bytes()[:30])
    (d / "a.garcia_20261102T110200_corrupt.mp3").write_bytes(np.random.default_rng(1).bytes(4000))
    (d / "a.garcia_20261102T110300_text.wav").write_text("Meeting notes, not a recording.\n" * 40)
    with wave.open(str(d / "a.garcia_20261102T110400_nosamples.wav"), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(8000)
    locked = d / "a.garcia_20261102T110500_locked.wav"
    shutil.copy(STEREO, locked)
    locked.chmod(0)
    shutil.copy(STEREO, d / "z.zane_20261102T091500_dup.wav")  # same audio under a second name
    write_audio(d / "x.ruiz_20261102T101500_good-jfk.wav", [s8 * 0.5], 8000, ".ulaw.wav")  # call id taken
    raw_name = os.fsencode(d) + b"/d.diaz_20261102T130000_caf\xe9.wav"
    write_audio(Path(os.fsdecode(raw_name)), [s8 * 0.9], 8000, ".ulaw.wav")  # non-UTF-8 file name
    write_audio(d / "e.eze_20261102T140000_silent.wav", [np.zeros(40000, np.float32)] * 2, 8000, ".ulaw.wav")
    write_audio(d / "f.fox_20261102T150000_sidecar.wav", [s8 * 0.8], 8000, ".alaw.wav")
    (d / "f.fox_20261102T150000_sidecar.json").write_text("{not json")
    write_audio(d / "recording-without-metadata.wav", [s8 * 0.7], 8000, ".ulaw.wav")
    manifest = d / "manifest.csv"
    manifest.write_text("file,agent_id,started_at,call_id,queue\n"
                        "a.garcia_20261102T091500_good-stereo.wav,m.manifest,2026-11-02T09:15:00,good-stereo,front\n"
                        "gone.wav,a.garcia,2026-11-02T16:00:00,gone,front\n")
    for f in d.iterdir():
        _old(f)
    growing = d / "g.gray_20261102T170000_growing.wav"
    growing.write_bytes(STEREO.read_bytes()[:44])
    done = threading.Event()

    def recorder():  # a phone system still writing tonight's last call
        with growing.open("ab") as fh:
            while not done.is_set():
                fh.write(b"\x00" * 1600)
                fh.flush()
                time.sleep(0.05)

    writer = threading.Thread(target=recorder)
    writer.start()
    try:
        proc = _run_cli(["score", str(d), "--manifest", str(manifest), "--db", str(tmp_path / "q.duckdb"),
                         "--log-file", str(tmp_path / "log.jsonl")], cwd=tmp_path)
        out, err = proc.communicate(timeout=300)
    finally:
        done.set()
        writer.join()
    assert proc.returncode == 3, err
    expected = {  # file name fragment -> (status in the JSON log, message)
        "good-stereo.wav": ("transcribed", None),
        "good-jfk.flac": ("transcribed", None),
        "_empty.wav": ("failed", "not a decodable audio file"),
        "_truncated.wav": ("failed", "not a decodable audio file"),
        "_corrupt.mp3": ("failed", "not a decodable audio file"),
        "_text.wav": ("failed", "not a decodable audio file"),
        "_nosamples.wav": ("failed", "no audio samples after decoding"),
        "_locked.wav": ("failed", "cannot read file: Permission denied"),
        "_dup.wav": ("skipped", None),
        "x.ruiz_20261102T101500_good-jfk.wav": ("failed", "call id 'good-jfk' is already used by"),
        "caf\\xe9.wav": ("transcribed", None),
        "_silent.wav": ("transcribed", None),
        "_sidecar.wav": ("transcribed", None),
        "recording-without-metadata.wav": ("transcribed", None),
        "gone.wav": ("missing", "named in the manifest, not found"),
        "_growing.wav": ("in_progress", "still being written"),
    }
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(log) == len(expected)
    for fragment, (status, message) in expected.items():
        (entry,) = [e for e in log if e["path"].endswith(fragment)]
        assert entry["status"] == status, (fragment, entry)
        if message:
            assert message in entry["error"] and "\n" not in entry["error"], (fragment, entry)
            assert fragment in out and message in out, f"summary lists {fragment}"
    assert "15 files seen, 6 transcribed, 0 rescored, 1 skipped, 8 failed, 1 still being written" in out
    db = tmp_path / "q.duckdb"
    calls = dict(_rows(db, "SELECT call_id, status FROM calls"))
    assert calls["good-stereo"] == calls["good-jfk"] == "ok"
    assert sum(status == "failed" for status in calls.values()) == 7
    assert _rows(db, "SELECT agent_id, extra->>'queue' FROM calls WHERE call_id = 'good-stereo'") == [("m.manifest", "front")]
    assert _rows(db, "SELECT count(*) FROM call_paths WHERE call_id = 'good-stereo'") == [(2,)]
    assert {r[0] for r in _rows(db, "SELECT DISTINCT speaker FROM utterances WHERE call_id = 'good-stereo'")} == {
        "agent", "customer"}
    assert _rows(db, "SELECT count(*) FROM evaluations WHERE call_id IN ('good-stereo', 'good-jfk')") == [(2,)]
    assert _rows(db, "SELECT agent_id FROM calls WHERE source_path LIKE '%recording-without-metadata.wav'") == [
        ("unknown",)]
    assert _rows(db, "SELECT count(*) FROM utterances JOIN calls USING (call_id) WHERE source_path LIKE '%silent.wav'") == [(0,)]


@pytest.mark.slow
def test_asr_failure_is_isolated(tmp_path, monkeypatch):
    d = tmp_path / "rec"
    d.mkdir()
    _old(shutil.copy(STEREO, d / "a.garcia_20261102T091500_ok.wav"))
    _old(shutil.copy(JFK, d / "a.garcia_20261102T091600_asr-breaks.flac"))
    real = Transcriber._segments

    def breaking(self, audio):
        if len(audio) > 16000 * 8:  # the 11 s JFK recording
            raise RuntimeError("simulated CTranslate2 failure")
        return real(self, audio)

    monkeypatch.setattr(Transcriber, "_segments", breaking)
    summary = score_paths([d], ScoreOptions(db=tmp_path / "q.duckdb"))
    assert (summary.processed, summary.failed) == (1, 1)
    rows = dict(_rows(tmp_path / "q.duckdb", "SELECT call_id, coalesce(error, status) FROM calls"))
    assert rows["ok"] == "ok"
    assert rows["asr-breaks"] == "ASR failed (RuntimeError: simulated CTranslate2 failure)"


@pytest.mark.slow
def test_rubric_change_rescores_without_transcribing_again(tmp_path, monkeypatch):
    d = tmp_path / "rec"
    d.mkdir()
    _old(shutil.copy(STEREO, d / "a.garcia_20261102T091500_c1.wav"))
    _old(shutil.copy(JFK, d / "b.chen_20261102T091600_c2.flac"))
    asr_calls = []
    real = Transcriber.transcribe_channel
    monkeypatch.setattr(Transcriber, "transcribe_channel",
                        lambda self, audio, speaker: asr_calls.append(1) or real(self, audio, speaker))
    db = tmp_path / "q.duckdb"
    runner = CliRunner()
    assert runner.invoke(app, ["score", str(d), "--db", str(db), "--workers", "1"]).exit_code == 0
    assert len(asr_calls) == 3  # the stereo call's two channels and the mono one
    changed = tmp_path / "clinic_v2.yaml"
    changed.write_text((ROOT / "rubrics" / "clinic_helpdesk.yaml").read_text().replace("pass_mark: 80", "pass_mark: 70")
                       .replace("version: 1", "version: 2"))
    result = runner.invoke(app, ["score", str(d), "--db", str(db), "--rubric", str(changed), "--workers", "1"])
    assert result.exit_code == 0 and "2 rescored" in result.stdout
    assert len(asr_calls) == 3, "no recording was transcribed again"
    versions = _rows(db, "SELECT rubric_version, count(*) FROM evaluations GROUP BY 1 ORDER BY 1")
    assert versions == [(1, 2), (2, 2)], "old evaluations stay, keyed by rubric hash"
    assert _rows(db, "SELECT DISTINCT rubric_version FROM call_scores") == [(2,)]


COMPARED = {  # table -> columns that differ between runs by nature (ids and clocks)
    "calls": ("run_id", "ingested_at"), "utterances": (), "words": (), "tokens": (), "call_metrics": (),
    "evaluations": ("run_id", "evaluated_at"), "section_scores": (), "criterion_results": (),
    "call_paths": ("first_seen_at",), "rubrics": ("first_used_at",),
}


def _snapshot(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        snap = {}
        for table, skip in COMPARED.items():
            cols = [c for (c,) in con.execute(f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{table}' "
                                              "ORDER BY column_index").fetchall() if c not in skip]
            snap[table] = sorted(con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr)
        return snap
    finally:
        con.close()


@pytest.mark.slow
def test_sigkill_mid_batch_then_rerun_equals_an_uninterrupted_run(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    s16 = speech()
    for i in range(6):
        write_audio(d / f"a.garcia_20261102T09{i:02d}00_k{i}.wav", [s16 * (0.5 + i / 20), np.roll(s16, 4000 * i) * 0.3],
                    16000, ".ulaw.wav")
    for f in d.iterdir():
        _old(f)
    clean_db, db, log = tmp_path / "clean.duckdb", tmp_path / "killed.duckdb", tmp_path / "log.jsonl"
    clean = _run_cli(["score", str(d), "--db", str(clean_db)], cwd=tmp_path)
    clean.communicate(timeout=300)
    assert clean.returncode == 0
    proc = _run_cli(["score", str(d), "--db", str(db), "--log-file", str(log)], cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    stored_before_rerun = len(log.read_text().splitlines())
    assert 2 <= stored_before_rerun < 6, "killed mid-batch"
    rerun = _run_cli(["score", str(d), "--db", str(db)], cwd=tmp_path)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert "6 files seen" in out and "skipped" in out
    assert _snapshot(db) == _snapshot(clean_db)


@pytest.mark.slow
def test_sigterm_finishes_the_current_call_and_prints_the_summary(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    s16 = speech()
    for i in range(8):
        write_audio(d / f"a.garcia_20261102T09{i:02d}00_t{i}.wav", [s16 * (0.4 + i / 20), s16[::-1] * 0.3], 16000)
    for f in d.iterdir():
        _old(f)
    log = tmp_path / "log.jsonl"
    # Two workers, whatever the cores: with one per core, 8 cores would have all 8 calls in flight at the signal.
    proc = _run_cli(["score", str(d), "--db", str(tmp_path / "q.duckdb"), "--log-file", str(log), "--workers", "2"],
                    cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and (not log.exists() or not log.read_text().strip()):
        time.sleep(0.05)
    if proc.poll() is not None or not log.exists() or not log.read_text().strip():
        proc.kill()
        pytest.fail(f"no call stored within 120 s: {proc.communicate()[1][-2000:]}")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "SIGTERM received" in err and "(interrupted)" in out
    done = len(log.read_text().splitlines())
    assert 1 <= done < 8
    assert _rows(tmp_path / "q.duckdb", "SELECT count(*) FROM calls") == [(done,)]
    assert _rows(tmp_path / "q.duckdb", "SELECT interrupted FROM runs") == [(True,)]


@pytest.mark.slow
def test_a_rerun_with_everything_stored_does_not_load_spacy(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    _old(shutil.copy(JFK, d / "b.chen_20261102T091600_c2.flac"))
    db = tmp_path / "q.duckdb"
    first = _run_cli(["score", str(d), "--db", str(db)], cwd=tmp_path)
    assert first.communicate(timeout=300) and first.returncode == 0
    rerun = ("import sys; from pathlib import Path; from callqa.pipeline import ScoreOptions, score_paths; "
             f"s = score_paths([Path({str(d)!r})], ScoreOptions(db=Path({str(db)!r}))); "
             "print(s.skipped, 'spacy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", rerun], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["1", "False"], out.stderr
    changed = tmp_path / "v2.yaml"  # a new rubric version does need the pipeline: the call is rescored
    changed.write_text((ROOT / "rubrics" / "clinic_helpdesk.yaml").read_text().replace("version: 1", "version: 2"))
    rerun = rerun.replace("ScoreOptions(db=", f"ScoreOptions(rubrics=(Path({str(changed)!r}),), db=")
    rerun = rerun.replace("print(s.skipped,", "print(s.rescored,")
    out = subprocess.run([sys.executable, "-c", rerun], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["1", "True"], out.stderr
