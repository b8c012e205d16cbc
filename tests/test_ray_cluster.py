"""The Ray executor on a real Ray cluster: a head and a second node, one CPU each, on loopback only.

Run from a normal pytest, the one test here re-runs this file inside a private network namespace (see
ray_cluster.py), where the cluster starts once for all the tests below.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from ray_cluster import RayCluster, in_private_netns, netns_problem, run_in_private_netns

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parent.parent

if not in_private_netns():

    def test_executor_options_from_the_command_line_and_the_config(tmp_path):
        from callqa.config import load_config
        from callqa.executor import RayOptions

        config = tmp_path / "callqa.yaml"
        config.write_text("executor: ray\nray_address: head:6379\nray_gpus_per_actor: 0.5\nray_shared_fs: true\n")
        options = load_config(config).score_options(ray_actors=4)
        assert options.ray == RayOptions(address="head:6379", gpus_per_actor=0.5, actors=4, shared_fs=True)
        assert load_config(None).score_options().ray is None  # local

    @pytest.mark.slow  # about 3 minutes on 2 loaded cores: a 2-3 node cluster, real ASR, a local run to compare
    def test_ray_cluster_tests_in_a_private_network_namespace(tmp_path):
        problem = netns_problem()
        if problem:
            pytest.skip(problem)
        proc = run_in_private_netns([sys.executable, "-m", "pytest", __file__, "-q", "-x", "-p", "no:cacheprovider",
                                     f"--basetemp={tmp_path / 'inner'}"], timeout=900, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

else:
    import numpy as np

    from audio_helpers import JFK, STEREO, speech, write_audio
    from test_batch_robustness import _old, _rows, _run_cli, _snapshot

    @pytest.fixture(scope="module")
    def cluster():
        cluster = RayCluster()
        try:
            cluster.start_head(num_cpus=1)
            cluster.add_node(num_cpus=1)
            yield cluster
        finally:
            cluster.stop()

    @pytest.fixture(scope="module")
    def recordings(tmp_path_factory):
        """Six short calls (stereo, dual mono, a dropped call, two synthetic stereo) and one that is not audio."""
        d = tmp_path_factory.mktemp("rec")
        shutil.copy(STEREO, d / "a.garcia_20261106T090000_r-1.wav")
        shutil.copy(JFK, d / "b.chen_20261106T091000_r-2.flac")
        shutil.copy(ROOT / "sample_calls/c.okafor_20261104T165000_rc-1009.wav", d / "c.okafor_20261106T092000_r-3.wav")
        s16 = speech()
        for i in (4, 5):
            write_audio(d / f"a.garcia_20261106T09{i}000_r-{i}.wav",
                        [s16 * (0.3 + i / 20), np.roll(s16, 4000 * i) * 0.3], 16000, ".ulaw.wav")
        (d / "b.chen_20261106T096000_r-6.wav").write_bytes(b"RIFF not really a wave file" * 100)
        for f in d.iterdir():
            _old(f)
        return d

    @pytest.fixture(scope="module")
    def many(tmp_path_factory):
        """Twelve short stereo calls: more than the driver keeps in flight (capacity + 1 with two actors)."""
        d = tmp_path_factory.mktemp("many")
        s16 = speech()[:4 * 16000]
        for i in range(12):
            write_audio(d / f"a.garcia_20261107T09{i:02d}00_m-{i}.wav", [s16 * (0.3 + i / 40), s16[::-1] * 0.3], 16000)
        for f in d.iterdir():
            _old(f)
        return d

    @pytest.fixture(scope="module")
    def local_db(recordings, tmp_path_factory):
        db = tmp_path_factory.mktemp("local") / "local.duckdb"
        out, err = _finish(_run_cli(["score", str(recordings), "--db", str(db), "--workers", "2"], cwd=db.parent))
        return db

    def _finish(proc, expected: int = 3):  # 3: finished, one call (the file that is not audio) failed
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == expected, err[-3000:]
        return out, err

    def _ray_score(recordings, db, cluster, *extra):
        return _run_cli(["score", str(recordings), "--db", str(db), "--log-file", str(db.with_suffix(".jsonl")),
                         "--executor", "ray", "--ray-address", cluster.address, *extra], cwd=db.parent)

    def _wait_for(condition, timeout=180):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    def _logged(db) -> int:
        log = db.with_suffix(".jsonl")
        return len(log.read_text().splitlines()) if log.exists() else 0

    def test_driver_killed_then_rerun_stores_what_a_local_run_does(cluster, recordings, local_db, tmp_path):
        db = tmp_path / "ray.duckdb"
        proc = _ray_score(recordings, db, cluster)
        _wait_for(lambda: _logged(db) >= 1 or proc.poll() is not None)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert 1 <= _logged(db) < 6, "killed mid-run"
        out, _ = _finish(_ray_score(recordings, db, cluster))
        assert "6 files seen" in out and "skipped" in out
        assert _snapshot(db) == _snapshot(local_db)
        places = _rows(db, "SELECT DISTINCT executor, cluster_nodes, cluster_cpus, asr_workers FROM runs")
        assert places == [("ray", 2, 2.0, 2)]

    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
    def test_a_signal_to_the_driver_finishes_the_calls_in_flight_as_locally(cluster, many, tmp_path, sig):
        db = tmp_path / "ray.duckdb"
        proc = _ray_score(many, db, cluster)
        _wait_for(lambda: _logged(db) >= 1 or proc.poll() is not None)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 128 + sig, err[-3000:]
        assert f"{signal.Signals(sig).name} received" in err and "(interrupted)" in out
        done = _logged(db)
        assert 1 <= done < 12, "stopped mid-run"
        assert _rows(db, "SELECT count(*), count(DISTINCT audio_sha256) FROM calls") == [(done, done)]
        assert _rows(db, "SELECT executor, interrupted FROM runs") == [("ray", True)]

    def test_a_worker_node_killed_mid_call_costs_a_retry_not_a_call(cluster, recordings, local_db, tmp_path):
        node = cluster.add_node(num_cpus=1)  # a third node, the one to kill
        cluster.wait_for_nodes(3)
        db = tmp_path / "ray.duckdb"
        proc = _ray_score(recordings, db, cluster)
        _wait_for(lambda: node.busy_with("AsrActor.transcribe") or proc.poll() is not None)
        node.kill()
        out, err = _finish(proc)
        assert "Ray worker lost" in err
        assert _rows(db, "SELECT count(*), count(DISTINCT audio_sha256) FROM calls") == [(6, 6)]
        assert _snapshot(db) == _snapshot(local_db)
        assert _rows(db, "SELECT cluster_nodes, asr_workers FROM runs") == [(3, 3)]

    def test_connecting_keeps_the_batch_signal_handler_and_a_bad_file_fails_with_its_reason(cluster, recordings):
        from callqa.errors import AudioError
        from callqa.executor import AudioJob, RayOptions
        from callqa.ray_executor import RayExecutor
        from callqa.transcribe import AsrSettings

        def handler(signum, frame):  # the CLI's: finish the calls in flight (ray.init would install sys.exit)
            pass

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            executor = RayExecutor(AsrSettings(), RayOptions(address=cluster.address))
            try:
                assert signal.getsignal(signal.SIGTERM) is handler
                bad = recordings / "b.chen_20261106T096000_r-6.wav"
                with pytest.raises(AudioError, match=r"^not a decodable audio file \(.*Invalid data"):
                    executor.result(executor.submit(AudioJob("bad", path=str(bad))))
            finally:
                executor.close()
        finally:
            signal.signal(signal.SIGTERM, previous)
