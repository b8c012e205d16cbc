"""The Ray executor on a real Ray cluster: a head and a second node, one CPU each, on loopback only.

Run from a normal pytest, the one test here re-runs this file inside a private network namespace (see
ray_cluster.py), where the cluster starts once for all the tests below.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from ray_cluster import RayCluster, in_private_netns, netns_problem, run_in_private_netns

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parent.parent
SHORT_CALLS = [
    ROOT / "tests/data/speech/stereo_two_talkers.wav",  # two talkers, one per channel
    ROOT / "tests/data/speech/jfk.flac",  # dual mono
    ROOT / "sample_calls/c.okafor_20261104T165000_rc-1009.wav",  # a dropped call, 9 s
]

if not in_private_netns():

    def test_ray_cluster_tests_in_a_private_network_namespace():
        problem = netns_problem()
        if problem:
            pytest.skip(problem)
        proc = run_in_private_netns([sys.executable, "-m", "pytest", __file__, "-q", "-x", "-p", "no:cacheprovider"],
                                    timeout=900, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

else:
    from callqa.executor import AudioJob, DecodeOptions
    from callqa.ray_executor import RayExecutor, RayOptions, transcribe_recording
    from callqa.transcribe import AsrSettings, Transcriber

    @pytest.fixture(scope="module")
    def cluster(tmp_path_factory):
        cluster = RayCluster(tmp_path_factory.mktemp("ray"))
        try:
            cluster.start_head(num_cpus=1)
            cluster.add_node(num_cpus=1)
            yield cluster
        finally:
            cluster.stop()

    @pytest.fixture(scope="module")
    def local_results():
        import threadpoolctl

        transcriber = Transcriber(AsrSettings(cpu_threads=1))  # as each local worker of a 2-core machine
        with threadpoolctl.threadpool_limits(1):  # as in every ASR worker: BLAS threads change the last digits
            return {str(p): transcribe_recording(transcriber, p, DecodeOptions()) for p in SHORT_CALLS}

    def _jobs(paths):
        return [AudioJob(key=str(p), path=str(p)) for p in paths]

    def test_executor_returns_what_a_local_transcriber_does(cluster, local_results):
        executor = RayExecutor(AsrSettings(), RayOptions(address=cluster.address))
        try:
            assert executor.cluster.nodes == 2 and executor.workers == 2
            handles = [(job, executor.submit(job)) for job in _jobs(SHORT_CALLS)]
            results = {job.key: executor.result(handle) for job, handle in handles}
        finally:
            executor.close()
        for key, expected in local_results.items():
            assert results[key].facts == expected.facts
            assert results[key].channels == expected.channels

    def test_a_worker_node_killed_mid_run_costs_a_retry_not_a_call(cluster, local_results, caplog):
        node = cluster.add_node(num_cpus=1)  # a third node, the one to kill
        cluster.wait_for_nodes(3)
        executor = RayExecutor(AsrSettings(), RayOptions(address=cluster.address))
        try:
            assert executor.workers == 3
            jobs = _jobs(SHORT_CALLS * 2)
            with caplog.at_level(logging.WARNING, logger="callqa.ray_executor"):
                handles = [executor.submit(job) for job in jobs]
                executor.result(handles[0])
                node.kill()
                results = [executor.result(handle) for handle in handles]
        finally:
            executor.close()
        assert [r.channels for r in results] == [local_results[job.key].channels for job in jobs]
        assert any("Ray worker lost" in r.message for r in caplog.records)
