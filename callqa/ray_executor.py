"""Decode and transcribe on a Ray cluster: actors holding one Whisper model each; the driver keeps the rest.

The batch (this machine, the Ray driver) still discovers the recordings, hashes them, skips what is stored,
analyses, scores, redacts and is the only DuckDB writer. For each recording it hands this executor an
``AudioJob``; the bytes go to the object store (or only the path, when the file system is shared), an idle
actor on some node decodes and transcribes them, and a ``CallAsr`` of a few kilobytes comes back.

Ray core actors, not Ray Data ``map_batches``: the batch needs each call back on its own, as soon as it is
done, to store it in its own transaction and to report progress; the skip is decided call by call on the driver
while the cluster works; a call's own error must come back as that call's failure, not fail a dataset; and a
dead worker must cost exactly one retry of exactly the calls it held. A dispatcher thread gives each idle actor
one call at a time (the best balance when call lengths differ by 100x), so it alone decides what is in flight:
at most ``capacity`` calls, bytes included, which keeps the driver's memory flat however long the folder.

Failures: an actor that dies (its process, its node, or the object holding its result) is replaced and its call
is given to another actor, ``attempts`` times in all; a call that raises on the cluster (not decodable, ASR
error, anything else) comes back as that error and is stored as failed with its reason.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .errors import CallQAError, ModelError, TranscriptionError, UsageError
from .executor import AudioJob, CallAsr, ClusterSize, DecodeOptions, RayOptions
from .transcribe import AsrSettings, Transcriber, resolve_model

try:
    import ray
    from ray.exceptions import RayError, RayTaskError
except ImportError as exc:  # the CLI turns this into one line: install the extra
    raise UsageError("--executor ray needs Ray: pip install 'callqa[ray]'") from exc

log = logging.getLogger(__name__)

POLL_S = 0.05  # how long the dispatcher waits for a finished call before it looks at new submissions


def cluster_size() -> ClusterSize:
    alive = [node for node in ray.nodes() if node.get("Alive")]
    totals = ray.cluster_resources()
    return ClusterSize(len(alive), float(totals.get("CPU", 0)), float(totals.get("GPU", 0)))


def transcribe_recording(transcriber: Transcriber, source: Path | bytes, options: DecodeOptions) -> CallAsr:
    """Decode one recording and transcribe each of its speaker channels (what an actor does with a call): the
    local worker's own steps, so both executors return the same CallAsr."""
    from .asr_pool import call_asr, facts_of, transcribe_channel
    from .audio import load_audio

    audio = load_audio(source, options)
    return call_asr(facts_of(audio), [(label, transcribe_channel(transcriber, samples, label))
                                      for samples, label in zip(audio.channels, audio.speakers)])


class AsrActor:
    """One Whisper model on a Ray worker; decodes and transcribes one call at a time."""

    def __init__(self, settings: AsrSettings):
        import threadpoolctl

        from .asr_pool import keep_freed_memory

        keep_freed_memory()
        threadpoolctl.threadpool_limits(1)  # see asr_pool._init_worker
        self.error: CallQAError | None = None
        try:
            self.transcriber: Transcriber | None = Transcriber(settings)
        except CallQAError as exc:  # raised by ready(): the driver tells a bad model from a lost worker
            self.transcriber, self.error = None, exc

    def ready(self) -> str:
        if self.error is not None:
            raise self.error
        return ray.get_runtime_context().get_node_id()

    def transcribe(self, job: AudioJob, data: bytes | None) -> CallAsr:
        assert self.transcriber is not None  # ready() raised instead: the driver gives this actor no call
        return transcribe_recording(self.transcriber, data if data is not None else Path(str(job.path)),
                                    job.options)


class _Task:
    __slots__ = ("job", "data", "future", "attempts")

    def __init__(self, job: AudioJob, data, future: Future):
        self.job, self.data, self.future, self.attempts = job, data, future, 0


class RayExecutor:
    """The executor interface (see callqa.executor) over a pool of AsrActors on a Ray cluster."""

    name = "ray"

    def __init__(self, settings: AsrSettings, options: RayOptions = RayOptions()):
        self.options = options
        self.model_label = resolve_model(settings.model)[1]
        _init_ray(options.address)
        try:
            self.cluster = cluster_size()
            self.workers = options.actors or _actors_fitting(self.cluster, options)
            if self.workers < 1:
                raise UsageError(f"the Ray cluster ({self.cluster.cpus:g} CPUs, {self.cluster.gpus:g} GPUs) has no "
                                 f"room for an ASR actor of {options.cpus_per_actor:g} CPUs, "
                                 f"{options.gpus_per_actor:g} GPUs")
        except BaseException:
            ray.shutdown()
            raise
        # A call queued per actor besides the one it runs: the next is dispatched the moment one finishes.
        self.capacity = 2 * self.workers
        threads = max(1, int(options.cpus_per_actor))
        self._settings = settings._replace(cpu_threads=settings.cpu_threads or threads, workers=1,
                                           device="cuda" if options.gpus_per_actor > 0 else settings.device)
        self._actor_class: Any = ray.remote(AsrActor).options(
            num_cpus=options.cpus_per_actor, num_gpus=options.gpus_per_actor, max_restarts=0,
            scheduling_strategy="SPREAD")
        self._lock = threading.Lock()
        self._pending: deque[_Task] = deque()
        self._running: dict = {}  # ObjectRef of a transcribe call -> (actor, _Task)
        self._starting: dict = {}  # ObjectRef of ready() -> actor
        self._idle: list = []
        self._fatal: CallQAError | None = None
        self._failed_starts = 0  # in a row: actors that cannot even start (callqa missing on a node, say)
        self._no_actor_since: float | None = None
        self._closing = threading.Event()
        for _ in range(self.workers):
            self._start_actor()
        self._thread = threading.Thread(target=self._loop, name="callqa-ray", daemon=True)
        self._thread.start()
        log.info("Ray executor: %d actors on %d nodes (%g CPUs, %g GPUs)", self.workers, *self.cluster)

    # the executor interface ---------------------------------------------------------------------------------
    def submit(self, job: AudioJob) -> Future:
        future: Future = Future()
        data = job.data
        if data is None and not self.options.shared_fs:
            data = Path(str(job.path)).read_bytes()  # AudioJob: a path when no data
        # Into the object store now: retries reuse it, and the driver's heap holds no audio.
        ref = ray.put(data) if data is not None else None
        with self._lock:
            if self._fatal is not None:
                future.set_exception(self._fatal)
            else:
                self._pending.append(_Task(job._replace(data=None), ref, future))
        return future

    def result(self, handle: Future) -> CallAsr:
        return handle.result()

    def close(self) -> None:
        self._closing.set()
        self._thread.join()
        for task in [*self._pending, *(task for _, task in self._running.values())]:
            task.future.cancel()
        for actor in [*self._idle, *self._starting.values(), *(actor for actor, _ in self._running.values())]:
            ray.kill(actor)
        self._pending.clear()
        self._running.clear()
        ray.shutdown()

    # the dispatcher thread ----------------------------------------------------------------------------------
    def _start_actor(self) -> None:
        actor = self._actor_class.remote(self._settings)
        self._starting[actor.ready.remote()] = actor

    def _loop(self) -> None:
        while not self._closing.is_set():
            self._dispatch()
            refs = [*self._running, *self._starting]
            if not refs:
                self._closing.wait(POLL_S)
                continue
            done, _ = ray.wait(refs, num_returns=1, timeout=POLL_S)
            for ref in done:
                if ref in self._starting:
                    self._started(ref, self._starting.pop(ref))
                else:
                    self._finished(ref, *self._running.pop(ref))

    def _dispatch(self) -> None:
        with self._lock:
            while self._idle and self._pending:
                actor, task = self._idle.pop(), self._pending.popleft()
                if task.future.cancelled():
                    self._idle.append(actor)
                    continue
                task.attempts += 1
                self._running[actor.transcribe.remote(task.job, task.data)] = (actor, task)
            self._check_patience()

    def _check_patience(self) -> None:
        if not self._pending or self._idle or self._running:
            self._no_actor_since = None
            return
        now = time.monotonic()
        self._no_actor_since = self._no_actor_since or now
        if now - self._no_actor_since >= self.options.patience_s:
            self._fail_pending(TranscriptionError(
                f"no Ray worker could take the call for {self.options.patience_s:g} s (the cluster lost its nodes?)"))

    def _fail_pending(self, error: Exception) -> None:
        while self._pending:
            self._pending.popleft().future.set_exception(error)

    def _give_up(self, error: CallQAError) -> None:
        """No call can be transcribed: this one and every later one fail with ``error``."""
        with self._lock:
            self._fatal = error
            self._fail_pending(error)

    def _started(self, ref, actor) -> None:
        try:
            ray.get(ref)
        except RayTaskError as exc:  # the model would not load
            self._give_up(_call_error(exc))
            ray.kill(actor)
        except RayError as exc:
            self._failed_starts += 1
            if self._failed_starts >= 3 * self.workers:
                self._give_up(ModelError(f"Ray ASR actors cannot start ({_first_line(exc)[:300]}); is the same "
                                         "callqa installed on every node?"))
                return
            log.warning("a Ray ASR actor died while starting (%s); starting another", _first_line(exc))
            self._start_actor()
        else:
            self._failed_starts = 0
            with self._lock:
                self._idle.append(actor)

    def _finished(self, ref, actor, task: _Task) -> None:
        try:
            value = ray.get(ref)
        except RayTaskError as exc:  # the call's own problem: stored as failed with its reason
            task.future.set_exception(_call_error(exc))
        except RayError as exc:  # the worker, its node or its result is gone: the call goes to another actor
            self._replace(actor, exc)
            if task.attempts >= self.options.attempts:
                task.future.set_exception(TranscriptionError(
                    f"lost its Ray worker {task.attempts} times ({_first_line(exc)})"))
            else:
                log.warning("%s: Ray worker lost (%s); trying again", task.job.key[:16], _first_line(exc))
                with self._lock:
                    self._pending.appendleft(task)
            return
        else:
            task.future.set_result(value)
        with self._lock:
            self._idle.append(actor)

    def _replace(self, actor, exc: Exception) -> None:
        try:
            ray.kill(actor)
        except RayError:
            pass
        self._start_actor()


def _init_ray(address: str | None) -> None:
    # ray.init replaces the SIGTERM handler with sys.exit: the batch's own (finish the calls in flight) stays.
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    try:
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, logging_level=logging.WARNING,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot connect to the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: "
                         f"{_first_line(exc)}") from exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _actors_fitting(cluster: ClusterSize, options: RayOptions) -> int:
    if options.gpus_per_actor > 0:
        return int(cluster.gpus // options.gpus_per_actor)
    return int(cluster.cpus // options.cpus_per_actor) if options.cpus_per_actor > 0 else 0


def _call_error(exc: RayTaskError) -> CallQAError:
    cause = exc.cause
    if isinstance(cause, CallQAError):
        return cause
    return TranscriptionError(f"failed on the Ray cluster ({type(cause).__name__}: {_first_line(cause)[:160]})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
