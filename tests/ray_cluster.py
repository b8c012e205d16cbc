"""A real Ray cluster for tests: a head and worker nodes on 127.0.0.1, in a private network namespace.

Outside a network namespace of its own, Ray registers the machine's interface address and listens on it; these
tests must stay on loopback. ``run_in_private_netns`` re-runs a command under ``unshare --net --pid``: its
own loopback (brought up first), and its own PID namespace, so that every process the cluster leaves behind
dies with the command, whatever happens (a test killed by a timeout included).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

IN_NETNS = "CALLQA_TEST_PRIVATE_NETNS"  # set inside the namespace
RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of the Python running the tests
_UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]


def in_private_netns() -> bool:
    return os.environ.get(IN_NETNS) == "1"


def netns_problem() -> str | None:
    """Why a private network namespace cannot be made here, or None."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    probe = subprocess.run([*_UNSHARE, "true"], capture_output=True, text=True, timeout=30)
    return None if probe.returncode == 0 else f"unshare --net not permitted here: {probe.stderr.strip()}"


def run_in_private_netns(args: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [*_UNSHARE, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *args]
    env = {**os.environ, IN_NETNS: "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


class RayNode:
    def __init__(self, pgid: int, head: bool):
        self.pgid, self.head = pgid, head

    def processes(self) -> list[psutil.Process]:
        """The node's Ray processes and the workers its raylet started (those make process groups of their own)."""
        group = [p for p in psutil.process_iter() if _pgid(p.pid) == self.pgid]
        workers = [c for p in group if p.name() == "raylet" for c in _children(p)]
        return group + workers

    def busy_with(self, task: str) -> bool:
        """Whether a worker of this node runs ``task`` (Ray titles a worker ray::Class.method while it does)."""
        for proc in self.processes():
            try:
                if proc.cmdline()[:1] == [f"ray::{task}"]:
                    return True
            except psutil.Error:
                continue
        return False

    def kill(self) -> None:
        """End the node as a crash would: SIGKILL to its process group and to its raylet's workers."""
        processes = self.processes()
        for proc in processes:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(processes, timeout=10)


class RayCluster:
    """Nodes started with ``ray start``; only inside a private network namespace (see module docstring)."""

    def __init__(self, port: int = 6379):
        if not in_private_netns():
            raise RuntimeError("a test Ray cluster runs only inside run_in_private_netns")
        # Short: Ray's socket paths under it must fit in 107 bytes.
        self.temp_dir, self.port = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp")), port
        self.address = f"127.0.0.1:{port}"
        self.nodes: list[RayNode] = []

    def _start(self, args: list[str], head: bool) -> RayNode:
        # A process group of its own (to kill the node), in this session: with the kernel's autogroup
        # scheduling a new session would get its own share of a busy machine's CPUs, and skew the benchmark.
        common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]
        proc = subprocess.Popen([*RAY, "start", *args, *common], process_group=0, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{out[-3000:]}")
        node = RayNode(proc.pid, head)
        self.nodes.append(node)
        return node

    def start_head(self, num_cpus: int = 1) -> RayNode:
        return self._start(["--head", f"--port={self.port}", f"--num-cpus={num_cpus}", "--include-dashboard=false",
                            f"--temp-dir={self.temp_dir}"], head=True)

    def add_node(self, num_cpus: int = 1) -> RayNode:
        return self._start([f"--address={self.address}", f"--num-cpus={num_cpus}"], head=False)

    def wait_for_nodes(self, count: int, timeout: float = 60) -> None:
        import ray

        ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
        try:
            deadline = time.monotonic() + timeout
            while sum(node["Alive"] for node in ray.nodes()) < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"fewer than {count} Ray nodes alive after {timeout} s")
                time.sleep(0.2)
        finally:
            ray.shutdown()

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        self.nodes.clear()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
