"""Which executor a run uses (``--executor``), and how ``runs`` records where it ran."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .asr_pool import LocalExecutor
from .executor import Executor

if TYPE_CHECKING:
    from .pipeline import ScoreOptions


def make_executor(options: ScoreOptions) -> Executor:
    """Start the run's executor: before the batch opens its Store, since the local one forks its workers now,
    while this process is light: pyarrow, DuckDB and spaCy start threads, and a worker inheriting their malloc
    arenas spends 5-10 % of its time in the kernel (see asr_pool.keep_freed_memory)."""
    if options.ray is not None:
        from .ray_executor import RayExecutor  # imports Ray: only when asked for

        return RayExecutor(options.asr, options.ray)
    return LocalExecutor(options.asr)


def run_place(executor: Executor) -> dict:
    """The runs columns saying where decoding and ASR ran."""
    cluster = executor.cluster
    return {"executor": executor.name, "cluster_nodes": cluster.nodes, "cluster_cpus": cluster.cpus,
            "cluster_gpus": cluster.gpus, "asr_workers": executor.workers}
