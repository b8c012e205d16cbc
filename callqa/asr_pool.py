"""Where the ASR runs: a thread of this process, or worker processes with one model each.

On a machine with few cores, N single-threaded CTranslate2 processes decoding different calls beat one process
with N threads (measured on 2 cores, bundled tiny.en: 32.7x real time against 18.9x; the threads of one small
model spend much of their time waiting for each other). Only audio goes to the workers and only utterances come
back: the analysis and every database write stay in the calling process, one transaction per call.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import NamedTuple

from .errors import CallQAError
from .records import DecodedAudio, Utterance
from .transcribe import AsrSettings, Transcriber, resolve_model


class AsrResult(NamedTuple):
    utterances: tuple[Utterance, ...]
    started: float  # time.monotonic(), comparable across processes on one machine
    finished: float


def worker_count(settings: AsrSettings) -> int:
    return settings.workers or (os.cpu_count() or 1)


def thread_count(settings: AsrSettings) -> int:
    """CPU threads per model: the cores shared out between the worker processes, unless set."""
    return settings.cpu_threads or max(1, (os.cpu_count() or 1) // worker_count(settings))


def _timed(transcriber: Transcriber, audio: DecodedAudio) -> AsrResult:
    started = time.monotonic()
    utterances = transcriber.transcribe(audio)
    return AsrResult(utterances, started, time.monotonic())


class AsrRunner:
    """Submits DecodedAudio for transcription; futures resolve to AsrResult or raise TranscriptionError."""

    def __init__(self, settings: AsrSettings):
        settings = settings._replace(cpu_threads=thread_count(settings))
        self.workers = worker_count(settings)
        self.model_label = resolve_model(settings.model)[1]
        self.executor: Executor
        if self.workers == 1:
            self.transcriber = Transcriber(settings)
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callqa-asr")
        else:
            self.transcriber = None
            self.executor = ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_init_worker,
                                                initargs=(settings, os.getpid()))
            # Every worker loads its model now, while the caller goes on (loading spaCy, opening the DB).
            self._ready = [self.executor.submit(_worker_ready) for _ in range(self.workers)]

    def wait_ready(self) -> None:
        """Raise ModelError if a worker's model could not load (so the run fails before any work)."""
        if self.transcriber is None:
            for ready in self._ready:
                ready.result()

    def submit(self, audio: DecodedAudio) -> Future:
        if self.transcriber is not None:
            return self.executor.submit(_timed, self.transcriber, audio)
        return self.executor.submit(_worker_transcribe, audio)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _context():
    # fork starts workers fastest and keeps them light (the parent has not loaded a model or spaCy yet)
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


_worker: Transcriber | None = None
_worker_error: CallQAError | None = None


def _init_worker(settings: AsrSettings, parent: int) -> None:
    global _worker, _worker_error
    # SIGINT/SIGTERM are the parent's to handle: it finishes the calls in flight, which needs the workers alive.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    try:
        _worker = Transcriber(settings)
    except CallQAError as exc:  # raised by the first task instead: a failing initializer breaks the pool
        _worker_error = exc


def _exit_with_parent(parent: int) -> None:
    """A parent killed with SIGKILL cannot stop its workers; they notice and go."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _worker_ready() -> None:
    if _worker_error is not None:
        raise _worker_error


def _worker_transcribe(audio: DecodedAudio) -> AsrResult:
    assert _worker is not None
    return _timed(_worker, audio)


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals: the time at least one ASR was running."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
