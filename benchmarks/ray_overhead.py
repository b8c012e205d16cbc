"""Ray executor against the local one on the same cores: overhead, per-call overhead, projection for N nodes.

    python benchmarks/ray_overhead.py              # the 12 sample calls, 2 rounds
    python benchmarks/ray_overhead.py --repeat 3
    python benchmarks/ray_overhead.py --memory 10000   # the driver's RSS over 10,000 calls through the executor
    python benchmarks/ray_overhead.py --folder 10000   # the same for `callqa score` on a 10,000-file folder

The cluster is real and has the local run's cores: a head and a second node of one CPU each, started by
``ray start`` on 127.0.0.1 inside a private network namespace (the script re-runs itself there, see
tests/ray_cluster.py). Both sides are ``python -m callqa score`` into a fresh DuckDB file: local with 2 worker
processes, ray with 2 actors (bytes through the object store). Runs alternate, local/ray then ray/local,
so the load others put on the machine falls on both; the ratios are what to read, not the seconds.

Per-call overhead: the same two runs on one call as well; ((ray - local) on all calls - (ray - local) on one
call) / (calls - 1) takes the fixed start-up cost (ray.init, actor start) out. The driver's own time per call
(analysis, scoring, store: the log file's ``seconds``) bounds what one driver can feed.

--memory N: N distinct recordings of 512 KB that cannot be decoded (each fails fast on an actor, so the run measures
the executor and not Whisper) pass through RayExecutor as the batch passes them (capacity + 1 in flight); the
driver's RSS is printed every 1,000 calls.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from audio_helpers import wav_bytes  # noqa: E402
from ray_cluster import RayCluster, in_private_netns, netns_problem, run_in_private_netns  # noqa: E402

SAMPLES = ROOT / "sample_calls"
AUDIO = (".wav", ".mp3", ".flac")


def score(folder: Path, work: Path, executor: str, address: str) -> tuple[float, list[dict]]:
    db, log = work / f"{executor}-{time.monotonic_ns()}.duckdb", work / "log.jsonl"
    log.unlink(missing_ok=True)
    args = ["-q", "score", str(folder), "--db", str(db), "--log-file", str(log)]
    args += ["--executor", "ray", "--ray-address", address] if executor == "ray" else ["--workers", "2"]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "callqa", *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{executor} run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    db.unlink()
    return wall, [json.loads(line) for line in log.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each side (default 2)")
    parser.add_argument("--memory", type=int, default=0, help="instead: N calls through the executor, driver RSS")
    parser.add_argument("--folder", type=int, default=0, help="instead: callqa score on N files, driver RSS")
    args = parser.parse_args()
    if not in_private_netns():
        problem = netns_problem()
        if problem:
            raise SystemExit(problem)
        proc = run_in_private_netns([sys.executable, __file__, *sys.argv[1:]], timeout=7200, cwd=ROOT)
        print(proc.stdout, end="")
        sys.stderr.write(proc.stderr[-3000:] if proc.returncode else "")
        raise SystemExit(proc.returncode)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        every, one = work / "all", work / "one"
        every.mkdir(), one.mkdir()
        calls = sorted(p for p in SAMPLES.iterdir() if p.suffix in AUDIO)
        for call in calls:
            shutil.copy(call, every / call.name)
        shutil.copy(calls[0], one / calls[0].name)
        cluster = RayCluster()
        try:
            cluster.start_head(num_cpus=1)
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes(2)
            if args.memory:
                return memory(args.memory, cluster.address)
            if args.folder:
                return folder_memory(args.folder, cluster.address, work)
            walls: dict[tuple[str, str], list[float]] = {}
            driver_s: list[float] = []
            audio_s = 0.0
            for round_ in range(args.repeat):
                order = ("local", "ray") if round_ % 2 == 0 else ("ray", "local")
                for folder in (every, one):
                    for executor in order:
                        wall, outcomes = score(folder, work, executor, cluster.address)
                        walls.setdefault((folder.name, executor), []).append(wall)
                        if folder is every:
                            audio_s = sum(o["audio_seconds"] for o in outcomes)
                            if executor == "ray":
                                driver_s += [o["seconds"] for o in outcomes]
                        print(f"round {round_ + 1}: {executor:5} {len(outcomes):2} calls  {wall:6.1f} s", flush=True)
        finally:
            cluster.stop()
    report(walls, len(calls), audio_s, driver_s)


def memory(n: int, address: str) -> None:
    from collections import deque

    import numpy as np
    import psutil

    from callqa.errors import AudioError
    from callqa.executor import AudioJob, RayOptions
    from callqa.ray_executor import RayExecutor
    from callqa.transcribe import AsrSettings

    executor = RayExecutor(AsrSettings(), RayOptions(address=address))
    me, in_flight, failed = psutil.Process(), deque(), 0
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    try:
        for i in range(n + 1):
            if i % 1000 == 0:
                print(f"{i:6} calls: driver RSS {me.memory_info().rss / 2**20:6.1f} MiB, "
                      f"{time.perf_counter() - started:6.1f} s", flush=True)
            if i == n:
                break
            in_flight.append(executor.submit(AudioJob(str(i), data=_undecodable_wav(rng.bytes(512 * 1024)))))
            while len(in_flight) > executor.capacity or (i == n - 1 and in_flight):
                try:
                    executor.result(in_flight.popleft())
                except AudioError:
                    failed += 1
    finally:
        executor.close()
    print(f"{failed} of {n} failed as not audio on the cluster (expected: all)")


def folder_memory(n: int, address: str, work: Path) -> None:
    """`callqa score` on a folder of n undecodable recordings of 64 KB: the batch's driver RSS as calls are stored
    (as failed, each with its reason), discovery, the hash skip and the DuckDB writes included."""
    import numpy as np
    import psutil

    folder, log = work / "many", work / "many.jsonl"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        (folder / f"a.garcia_20261101T{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}_m-{i}.wav").write_bytes(
            _undecodable_wav(rng.bytes(64 * 1024)))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "callqa", "-q", "score", str(folder), "--db", str(work / "m.duckdb"),
                             "--log-file", str(log), "--executor", "ray", "--ray-address", address], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver, peak, reported = psutil.Process(proc.pid), 0.0, -1
    while proc.poll() is None:
        try:
            rss = driver.memory_info().rss / 2**20
        except psutil.Error:
            break
        peak = max(peak, rss)
        done = sum(1 for _ in log.open()) if log.exists() else 0
        if done // 1000 > reported:
            reported = done // 1000
            print(f"{done:6} calls stored: driver RSS {rss:6.1f} MiB (peak {peak:6.1f}), "
                  f"{time.perf_counter() - started:6.1f} s", flush=True)
        time.sleep(0.5)
    out, err = proc.communicate()
    print(f"exit {proc.returncode}; {out.strip().splitlines()[-1] if out.strip() else err[-300:]}; driver peak RSS "
          f"{peak:.1f} MiB")


def _undecodable_wav(data: bytes) -> bytes:
    """A WAV header naming a codec FFmpeg has no decoder for: rejected in milliseconds, so the run measures the
    executor. (Headerless bytes are not safe: FFmpeg reads one in ten repeating patterns as raw AMR audio, and
    spends 60 ms probing random ones.)"""
    return wav_bytes(data, 8000, format_tag=0x7777)


def report(walls: dict, n_calls: int, audio_s: float, driver_s: list[float]) -> None:
    best = {key: min(values) for key, values in walls.items()}
    ratios = [r / l for r, l in zip(walls["all", "ray"], walls["all", "local"])]
    per_call = ((best["all", "ray"] - best["all", "local"]) - (best["one", "ray"] - best["one", "local"])) / (
        n_calls - 1)
    local_rate = audio_s / best["all", "local"]  # audio seconds per wall second on 2 cores
    mean_call = audio_s / n_calls
    driver = statistics.mean(driver_s)
    print()
    print(f"{n_calls} calls, {audio_s / 60:.1f} min of audio; fastest of {len(ratios)} rounds each")
    print(f"local  (2 worker processes): {best['all', 'local']:6.1f} s  ({local_rate:.1f}x real time)")
    print(f"ray    (2 nodes x 1 actor) : {best['all', 'ray']:6.1f} s  ({audio_s / best['all', 'ray']:.1f}x real time)")
    ratio = best["all", "ray"] / best["all", "local"]
    print(f"ray / local per round: {', '.join(f'{r:.3f}' for r in ratios)}; fastest against fastest: "
          f"{ratio:.3f} (overhead {ratio - 1:+.1%})")
    print(f"one call: local {best['one', 'local']:.1f} s, ray {best['one', 'ray']:.1f} s "
          f"(fixed start-up difference {best['one', 'ray'] - best['one', 'local']:+.1f} s)")
    print(f"per-call overhead of ray (start-up taken out): {per_call:+.3f} s per call "
          f"({per_call / (best['all', 'local'] / n_calls):+.1%} of a call's local wall time)")
    print(f"driver time per call (analysis, scoring, store): {driver:.3f} s mean")
    # Each node of c cores transcribes at the local rate scaled by c/2, less the per-call overhead; one driver
    # analyses and stores at most 1/driver calls a second, whatever the cluster's size.
    node_calls_per_s = 1 / (best["all", "local"] / n_calls + max(per_call, 0.0))  # a 2-core node
    ceiling = 1 / driver
    print(f"projection (2-core nodes, calls of {mean_call:.0f} s like these): N nodes ~ "
          f"min(N x {node_calls_per_s:.2f}, {ceiling:.1f}) calls/s; the driver caps it from about "
          f"N = {ceiling / node_calls_per_s:.0f}")
    for n in (1, 2, 4, 8, 16, 32, 64):
        rate = min(n * node_calls_per_s, ceiling)
        print(f"  {n:3} nodes: {rate:6.2f} calls/s = {rate * mean_call:6.1f}x real time "
              f"= {rate * mean_call * 8:6.0f} h of audio in an 8 h night")


if __name__ == "__main__":
    main()
