"""The local executor: decoding on a thread, the ASR on a thread of this process or in worker processes.

On a machine with few cores, N single-threaded CTranslate2 processes decoding different calls beat one process
with N threads (measured on 2 cores, bundled tiny.en: 32.7x real time against 18.9x; the threads of one small
model spend much of their time waiting for each other). One channel's audio goes to a worker and its utterances
come back: the role decision, the analysis and every database write stay in the calling process, one
transaction per call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import threadpoolctl

from .audio import load_audio
from .diarize import estimate_speakers
from .errors import CallQAError
from .executor import MONO_LABEL, AudioFacts, AudioJob, CallAsr, ChannelText, ClusterSize
from .records import DecodedAudio, Diarization, Utterance
from .transcribe import AsrSettings, Transcriber, resolve_model


class _ChannelResult(NamedTuple):
    utterances: list[Utterance]
    started: float
    finished: float
    diarization: Diarization | None = None  # of a mono channel


class _Started(NamedTuple):
    """A decoded call whose channels are being transcribed."""

    facts: AudioFacts
    parts: tuple[tuple[str, Future], ...]  # (channel label, its transcription)


def worker_count(settings: AsrSettings) -> int:
    return settings.workers or (os.cpu_count() or 1)


def thread_count(settings: AsrSettings) -> int:
    """CPU threads per model: the cores shared out between the worker processes, unless set."""
    return settings.cpu_threads or max(1, (os.cpu_count() or 1) // worker_count(settings))


def facts_of(audio: DecodedAudio) -> AudioFacts:
    return AudioFacts(audio.duration_s, audio.source_channels, audio.sample_rate, audio.codec, audio.speaker_mode,
                      audio.note)


class LocalExecutor:
    """The executor on this machine (see callqa.executor): decoding on one thread of this process, in order,
    while the ASR of earlier calls runs; each channel's ASR in a worker process with its own model."""

    name = "local"

    def __init__(self, settings: AsrSettings):
        self.cluster = ClusterSize(1, float(os.cpu_count() or 1), 0.0)
        settings = settings._replace(cpu_threads=thread_count(settings))
        self.workers = self.capacity = worker_count(settings)
        self.model_label = resolve_model(settings.model)[1]
        self.executor: Executor
        self.transcriber: Transcriber | None = None  # in this process: one worker, on a thread
        if self.workers == 1:
            self.transcriber = Transcriber(settings)
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callqa-asr")
            self._ready: list[Future] = []
        else:
            self.executor = ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_init_worker,
                                                initargs=(settings, os.getpid()))
            # Submitting forks the workers now, before the caller opens the DB (DuckDB starts threads), and each
            # loads its model while the caller decodes the first calls.
            self._ready = [self.executor.submit(_worker_ready) for _ in range(self.workers)]
        self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callqa-decode")

    def submit(self, job: AudioJob) -> Future:
        """Queue the decoding of a call; once decoded, every channel's ASR starts. A channel is a task of its own:
        two halves of the last call keep two cores busy where one whole call would leave one idle (1-2 s at the
        end of a batch). Raises ModelError if the workers could not load the model (the first submission waits
        for them)."""
        for ready in self._ready:
            ready.result()
        return self._decoder.submit(self._decode_and_start, job)

    def _decode_and_start(self, job: AudioJob) -> _Started:
        audio = load_audio(Path(job.path) if job.path is not None else job.data or b"", job.options)
        return _Started(facts_of(audio), tuple(
            (label, self.executor.submit(transcribe_channel, self.transcriber, channel, label))
            for channel, label in zip(audio.channels, audio.speakers)))

    def result(self, handle: Future) -> CallAsr:
        started: _Started = handle.result()
        return call_asr(started.facts, [(label, part.result()) for label, part in started.parts])

    def close(self) -> None:
        self._decoder.shutdown(wait=True, cancel_futures=True)
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
    keep_freed_memory()
    # One BLAS thread: the feature extractor's one matrix product per window would otherwise wake a second
    # OpenBLAS thread that spins on the other core (0.5 CPU-s burnt for 0.14 s of work on one 90 s call).
    threadpoolctl.threadpool_limits(1)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    try:
        _worker = Transcriber(settings)
    except CallQAError as exc:  # raised by the first task instead: a failing initializer breaks the pool
        _worker_error = exc


def keep_freed_memory() -> None:
    """Let glibc keep big freed blocks instead of handing them back to the kernel at once.

    Whisper's encoder allocates and frees tens of MB (the attention matrices) for every 30 s window; by default
    each of those blocks is mmapped and unmapped, so every window page-faults it in again: 10 % of a worker's
    CPU went to system time (1.3 s of 13 s; 0.15 s with this). Costs ~30 MB of resident memory per worker.
    Elsewhere than glibc this does nothing.
    """
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, 1)  # a thread's own arena would map and unmap a 64 MB heap for each such block
        mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
        mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h
_KEEP_BYTES = 1 << 30


def _exit_with_parent(parent: int) -> None:
    """A parent killed with SIGKILL cannot stop its workers; they notice and go."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _worker_ready() -> None:
    if _worker_error is not None:
        raise _worker_error


def transcribe_channel(transcriber: Transcriber | None, channel: np.ndarray, speaker: str) -> _ChannelResult:
    """In a worker process, ``transcriber`` is None: the worker's own model runs."""
    transcriber = transcriber or _worker
    if transcriber is None:
        raise _worker_error or RuntimeError("ASR worker without a model")
    started = time.monotonic()
    utterances = transcriber.transcribe_channel(channel, speaker)  # type: ignore[arg-type]  # a channel label until roles
    # A mono channel's speakers are estimated here, beside its audio: only the turns travel back.
    diarization = estimate_speakers(channel) if speaker == MONO_LABEL and utterances else None
    return _ChannelResult(utterances, started, time.monotonic(), diarization)


def call_asr(facts: AudioFacts, done: list[tuple[str, _ChannelResult]]) -> CallAsr:
    """A call's ASR from its channels' results (the Ray executor's actors build theirs here too)."""
    return CallAsr(facts, tuple(ChannelText(label, tuple(d.utterances)) for label, d in done),
                   tuple((d.started, d.finished) for _, d in done),
                   next((d.diarization for _, d in done if d.diarization is not None), None))


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals: the time at least one ASR was running."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
