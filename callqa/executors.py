"""Which executor a run uses (``--executor``), and how ``runs`` records where it ran."""

from __future__ import annotations

from .asr_pool import LocalExecutor
from .executor import Executor, RayOptions
from .transcribe import AsrSettings


def make_executor(asr: AsrSettings, ray: RayOptions | None) -> Executor:
    """Start the run's executor: before the batch opens its Store, since the local one forks its workers now,
    while this process is light: pyarrow, DuckDB and spaCy start threads, and a worker inheriting their malloc
    arenas spends 5-10 % of its time in the kernel (see asr_pool.keep_freed_memory)."""
    if ray is not None:
        from .ray_executor import RayExecutor  # imports Ray: only when asked for

        return RayExecutor(asr, ray)
    return LocalExecutor(asr)


def run_place(executor: Executor) -> dict:
    """The runs columns saying where decoding and ASR ran."""
    cluster = executor.cluster
    return {"executor": executor.name, "cluster_nodes": cluster.nodes, "cluster_cpus": cluster.cpus,
            "cluster_gpus": cluster.gpus, "asr_workers": executor.workers}
