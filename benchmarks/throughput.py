"""Throughput benchmark: `callqa score` end to end against plain faster-whisper, on the same calls and model.

    python benchmarks/throughput.py                 # >= 15 min of call audio, then twice that for scaling
    python benchmarks/throughput.py --minutes 3     # a quick check
    python benchmarks/throughput.py --callqa-args="--batch-size 16"   # measure a lever
    python benchmarks/throughput.py --repeat 3      # each side 3 times, interleaved; the fastest run counts

Both sides run as subprocesses (so each one's wall time includes its start-up and model loading, and its peak
RSS is that of its whole process tree, ASR workers included, polled with psutil): the baseline is faster-whisper as its README shows it, ``WhisperModel(path,
device="cpu")`` and ``model.transcribe(channel)`` with defaults, per channel of each call; callqa is
``python -m callqa score`` into a fresh DuckDB file. The corpus is the sample calls repeated until the audio
lasts long enough; every repeat gets a new call id and new bytes (one sample nudged by one LSB), so nothing is
skipped as already transcribed. WER is measured per speaker against the reference transcripts in
expected.yaml (speakers joined in time order for mono calls).

Prints a table; it is a measurement, not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wer import wer  # noqa: E402

AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".m4a")
CALL_NAME = re.compile(r"^(?P<agent>.+)_(?P<ts>\d{8}T\d{6})_(?P<call>[^_]+)$")


# ---- corpus ------------------------------------------------------------------------------------------------

def audio_duration(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / 1e6


def decoded_pcm(path: Path) -> tuple[np.ndarray, int]:
    """(int16 samples x channels, sample rate) of the file at its own rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        layout = "stereo" if channels >= 2 else "mono"
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        chunks = [f.to_ndarray().reshape(-1, 2 if layout == "stereo" else 1)
                  for frame in container.decode(stream) for f in resampler.resample(frame)]
    return np.concatenate(chunks), rate


def write_repeat(source: Path, target: Path, nudge: int) -> None:
    """The source's audio as 16-bit PCM WAV, one sample changed by one LSB so that its hash is new."""
    pcm, rate = decoded_pcm(source)
    pcm = pcm.copy()
    pcm[nudge % len(pcm), 0] ^= 1
    with wave.open(str(target), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.astype("<i2").tobytes())


def build_corpus(calls: Path, folder: Path, minutes: float) -> dict[str, str]:
    """Fill ``folder`` with >= ``minutes`` of call audio (0: each call once); returns {call id: original id}."""
    sources = sorted(p for p in calls.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and CALL_NAME.match(p.stem))
    if not sources:
        raise SystemExit(f"no call recordings named agent_YYYYMMDDTHHMMSS_callid in {calls}")
    durations = {p: audio_duration(p) for p in sources}
    folder.mkdir(parents=True, exist_ok=True)
    origin, total, repeat = {}, 0.0, 0
    while repeat == 0 or total < minutes * 60:
        for src in sources:
            m = CALL_NAME.match(src.stem)
            call_id = m["call"] if repeat == 0 else f"{m['call']}r{repeat}"
            target = folder / f"{m['agent']}_{m['ts']}_{call_id}{src.suffix if repeat == 0 else '.wav'}"
            if repeat == 0:
                shutil.copy2(src, target)
            else:
                write_repeat(src, target, repeat)
            os.utime(target, (time.time() - 3600, time.time() - 3600))  # old enough to count as finished
            origin[call_id] = m["call"]
            total += durations[src]
            if minutes and total >= minutes * 60:
                break
        repeat += 1
    return origin


def corpus_seconds(folder: Path) -> float:
    return sum(audio_duration(p) for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)


# ---- running each side ---------------------------------------------------------------------------------------

def peak_tree_rss(pid: int, done: threading.Event, peak: list[int]) -> None:
    """Poll the RSS of a process and all its descendants (ASR workers) together, keeping the peak."""
    import psutil

    try:
        root = psutil.Process(pid)
        while not done.wait(0.05):
            total = 0
            for proc in [root, *root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
    except psutil.Error:
        pass


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in bytes of the process tree, stdout) of a subprocess."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    done, peak = threading.Event(), [0]
    poller = threading.Thread(target=peak_tree_rss, args=(proc.pid, done, peak))
    poller.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    done.set()
    poller.join()
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, peak[0], out


def baseline_worker(folder: Path, result: Path) -> None:
    """The plain faster-whisper script: README defaults, one transcribe() per channel of each call."""
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    from callqa.transcribe import bundled_model_path

    model = WhisperModel(str(bundled_model_path()), device="cpu")
    texts, asr = {}, 0.0
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
        import av

        with av.open(str(path)) as c:
            stereo = c.streams.audio[0].codec_context.channels >= 2
        audio = decode_audio(str(path), split_stereo=stereo)
        channels = audio if stereo else (audio,)
        t0 = time.perf_counter()
        texts[path.stem] = [[(s.start, s.text.strip()) for s in model.transcribe(ch)[0]] for ch in channels]
        asr += time.perf_counter() - t0
    result.write_text(json.dumps({"texts": texts, "asr_seconds": asr}))


def run_baseline(folder: Path, work: Path) -> dict:
    result = work / f"baseline-{folder.name}.json"
    wall, rss, _ = run_measured([sys.executable, __file__, "--baseline-worker", str(folder), str(result)])
    data = json.loads(result.read_text())
    hyps = {}
    for stem, channels in data["texts"].items():
        if len(channels) == 2:
            hyps[stem] = {"agent": " ".join(t for _, t in channels[0]), "customer": " ".join(t for _, t in channels[1])}
        else:
            hyps[stem] = {"all": " ".join(t for _, t in sorted(channels[0]))}
    return dict(wall=wall, rss=rss, asr=data["asr_seconds"], hyps=hyps)


def run_callqa(folder: Path, work: Path, extra: list[str]) -> dict:
    import duckdb

    db = work / f"callqa-{folder.name}.duckdb"
    db.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "callqa", "score", str(folder), "--db", str(db), *extra]
    wall, rss, out = run_measured(cmd, env)
    asr = float(re.search(r"ASR busy ([\d.]+) s", out)[1])
    con = duckdb.connect(str(db), read_only=True)
    try:
        failed = con.execute("SELECT count(*) FROM calls WHERE status <> 'ok'").fetchone()[0]
        rows = con.execute("SELECT c.source_path, u.speaker, u.start_s, u.text FROM utterances u "
                           "JOIN calls c USING (call_id) ORDER BY c.source_path, u.start_s").fetchall()
    finally:
        con.close()
    roles = role_stage_seconds(db)
    hyps: dict[str, dict[str, list[str]]] = {}
    for source, speaker, _, text in rows:
        per = hyps.setdefault(Path(source).stem, {})
        per.setdefault(speaker if speaker in ("agent", "customer") else "all", []).append(text)
    return dict(wall=wall, rss=rss, asr=asr, failed=failed, roles=roles,
                hyps={stem: {k: " ".join(v) for k, v in per.items()} for stem, per in hyps.items()})


def role_stage_seconds(db: Path) -> float:
    """The role stage's work for every stereo call of the run: ``roles.decide`` on the stored utterances of each
    channel, timed in this process (the batch does the same on the same words, unredacted, once per call)."""
    from callqa.reattribute import channels_of, stored_utterances
    from callqa.roles import decide
    from callqa.store import Store

    with Store(db, read_only=True) as store:
        calls = store.con.execute("SELECT call_id, agent_channel FROM calls WHERE agent_channel IS NOT NULL").fetchall()
        channels = [channels_of(stored_utterances(store, call_id), side) for call_id, side in calls]
    started = time.perf_counter()
    for pair in channels:
        decide(pair)
    return time.perf_counter() - started


# ---- WER -----------------------------------------------------------------------------------------------------

def references(expected: dict, call_id: str) -> dict[str, str]:
    turns = sorted(expected[call_id]["transcript"], key=lambda u: u["start"])
    refs = {spk: " ".join(u["text"] for u in turns if u["speaker"] == spk) for spk in ("agent", "customer")}
    refs["all"] = " ".join(u["text"] for u in turns)
    return refs


def corpus_wer(hyps: dict[str, dict[str, str]], origin: dict[str, str], expected: dict) -> float:
    """Corpus WER over the original calls (repeats decode to the same text), every speaker."""
    ref_list, hyp_list = [], []
    for stem, per in hyps.items():
        call_id = CALL_NAME.match(stem)["call"]
        if origin.get(call_id) != call_id or call_id not in expected:
            continue
        refs = references(expected, origin[call_id])
        keys = ("agent", "customer") if "all" not in per else ("all",)
        for key in keys:
            ref_list.append(refs[key])
            hyp_list.append(per.get(key, ""))
    return wer(ref_list, hyp_list)


# ---- main ----------------------------------------------------------------------------------------------------

def measure(minutes: float, calls: Path, expected: dict, work: Path, extra: list[str], baseline: bool,
            repeat: int) -> dict:
    """Time both sides ``repeat`` times, interleaved, and keep each side's fastest run: on a shared machine the
    slower runs measure the neighbours."""
    folder = work / f"corpus-{minutes:g}min"
    origin = build_corpus(calls, folder, minutes)
    seconds = corpus_seconds(folder)
    print(f"[{minutes:g} min] corpus: {len(origin)} calls, {seconds / 60:.1f} min of audio in {folder}", flush=True)
    result = {"audio_s": seconds, "calls": len(origin)}
    for _ in range(repeat):
        if baseline:
            b = run_baseline(folder, work)
            b["wer"] = corpus_wer(b["hyps"], origin, expected)
            print(f"[{minutes:g} min] baseline: {b['wall']:.1f} s", flush=True)
            result["baseline"] = min(result.get("baseline", b), b, key=lambda run: run["wall"])
        c = run_callqa(folder, work, extra)
        print(f"[{minutes:g} min] callqa: {c['wall']:.1f} s ({c['failed']} failed)", flush=True)
        result["callqa"] = min(result.get("callqa", c), c, key=lambda run: run["wall"])
    return result


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def table(runs: list[dict], extra: list[str]) -> str:
    first = runs[0]
    b, c = first.get("baseline"), first["callqa"]
    gib = 1024 ** 3
    rows = [("audio", f"{first['audio_s'] / 60:.1f} min ({first['calls']} calls)", "", "")]
    if b:
        rows.append(("wall time", f"{b['wall']:.1f} s ({first['audio_s'] / b['wall']:.1f}x RT)",
                     f"{c['wall']:.1f} s ({first['audio_s'] / c['wall']:.1f}x RT)", ""))
        ratio = b["wall"] / c["wall"]
        rows.append(("speed-up, baseline / callqa", "", f"{ratio:.2f}x", f"target >= 3.5x: {verdict(ratio >= 3.5)}"))
    else:
        rows.append(("wall time", "-", f"{c['wall']:.1f} s ({first['audio_s'] / c['wall']:.1f}x RT)", ""))
    outside = 1 - c["asr"] / c["wall"]
    rows.append(("ASR busy time", f"{b['asr']:.1f} s" if b else "-", f"{c['asr']:.1f} s", ""))
    rows.append(("time outside ASR", f"{1 - b['asr'] / b['wall']:.1%}" if b else "-", f"{outside:.1%}",
                 f"target <= 5 %: {verdict(outside <= 0.05)}"))
    share = c["roles"] / c["wall"]
    rows.append(("role stage", "-", f"{c['roles'] * 1000:.0f} ms = {share:.2%} of wall", f"target <= 1 %: "
                 f"{verdict(share <= 0.01)}"))
    rows.append(("peak RSS", f"{b['rss'] / gib:.2f} GB" if b else "-", f"{c['rss'] / gib:.2f} GB",
                 f"target <= 1.5 GB: {verdict(c['rss'] <= 1.5 * gib)}"))
    if b:
        rows.append(("WER vs reference", f"{b['wer']:.1%}", f"{c['wer']:.1%}",
                     f"callqa <= baseline + 1 pt: {verdict(c['wer'] <= b['wer'] + 0.01)}"))
    else:
        rows.append(("WER vs reference", "-", f"{c['wer']:.1%}", ""))
    for later in runs[1:]:
        scale = later["audio_s"] / first["audio_s"]
        for side in ("baseline", "callqa"):
            if side in later:
                cost = later[side]["wall"] / first[side]["wall"]
                rows.append((f"scaling {side}: {scale:.2f}x audio", f"{later['audio_s'] / 60:.1f} min",
                             f"{later[side]['wall']:.1f} s = {cost:.2f}x time",
                             f"target <= {2.1 * scale / 2:.2f}x: {verdict(cost <= 2.1 * scale / 2)}"
                             if side == "callqa" else ""))
    widths = [max(len(r[i]) for r in rows + [("", "baseline", "callqa", "")]) for i in range(4)]
    head = ("", "baseline", "callqa" + (f" {' '.join(extra)}" if extra else ""), "")
    widths[2] = max(widths[2], len(head[2]))
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline-worker":
        baseline_worker(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=Path, default=ROOT / "sample_calls", help="folder of sample calls")
    parser.add_argument("--expected", type=Path, help="reference transcripts [default: CALLS/expected.yaml]")
    parser.add_argument("--minutes", type=float, default=15.0, help="minutes of audio (default 15)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the run on twice the audio")
    parser.add_argument("--no-baseline", action="store_true", help="time callqa only")
    parser.add_argument("--callqa-args", default="", help="extra options for callqa score, e.g. '--beam-size 5'")
    parser.add_argument("--work", type=Path, help="folder for the corpus and DBs [default: a temporary one]")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side, interleaved; the fastest counts")
    args = parser.parse_args()
    expected = yaml.safe_load((args.expected or args.calls / "expected.yaml").read_text())
    extra = args.callqa_args.split()
    work = args.work or Path(tempfile.mkdtemp(prefix="callqa-bench-"))
    runs = [measure(args.minutes, args.calls, expected, work, extra, not args.no_baseline, args.repeat)]
    # Stored text is redacted ([NAME] would count as errors): callqa's WER comes from a --no-redact run of the
    # original calls; the timed runs above use the defaults.
    originals = work / "originals"
    origin = build_corpus(args.calls, originals, 0)
    runs[0]["callqa"]["wer"] = corpus_wer(run_callqa(originals, work, ["--no-redact", *extra])["hyps"], origin, expected)
    if not args.no_scaling:
        runs.append(measure(2 * args.minutes, args.calls, expected, work, extra, not args.no_baseline, args.repeat))
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print(table(runs, extra))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
