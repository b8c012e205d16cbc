"""Where a call's audio is decoded and transcribed: the executor interface, and the records that cross it.

The batch (``callqa.pipeline``) keeps what must stay single: discovery, the content-hash skip, metadata, the
role decision, analysis, scoring and the only DuckDB writer (one transaction per call). For each recording
it hands an executor one ``AudioJob`` (the recording as a path or as bytes, plus how to decode it) and gets back
one ``CallAsr``: the decoded audio's facts and what was said on each speaker channel. Nothing of the audio
itself comes back, so a remote executor can decode and transcribe on another machine and return small rows.

Speakers are not decided here: utterances come back labelled by channel (``left``/``right``, ``unknown`` on
mono, with the mono channel's estimated speaker turns) and ``callqa.roles`` turns them into agent and customer
afterwards, from what is said. That keeps a stored
call re-attributable without audio or ASR, and keeps executors free of any per-call policy.

Implementations:
- ``callqa.asr_pool.LocalExecutor``: decodes on a thread of this process, transcribes each channel in worker
  processes holding one Whisper model each (or on a thread when there is one worker).
- a cluster executor (Ray) implements the same three methods; it must accept ``AudioJob.data`` (bytes through
  its object store) and may use ``AudioJob.path`` when the file system is shared.

Contract of ``result``: it returns a ``CallAsr`` or raises. ``AudioError`` (not usable audio) and
``TranscriptionError`` (the ASR failed) carry a one-line reason; the batch stores any exception from
``submit`` or ``result`` as that call's failure and goes on, so an executor never needs to catch a call's
problems to protect the batch. ``ModelError`` from the first ``result`` means the model could not be loaded.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from .records import Diarization, Utterance

CHANNEL_LABELS = ("left", "right")  # the first and second speaker channel (source channels 0 and 1 unless named)
MONO_LABEL = "unknown"


class AudioLimits(NamedTuple):
    """What a recording may be, checked before decoding (the config file's keys of the same names)."""

    max_duration_s: float = 3 * 3600.0
    min_sample_rate: int = 4000
    max_sample_rate: int = 192_000
    max_file_mb: float = 4096.0
    truncated_ratio: float = 0.9  # holding less than this share of the stated duration is truncated
    score_truncated: bool = False  # score a truncated recording anyway, with a note


class DecodeOptions(NamedTuple):
    """How to decode one recording."""

    # The two source channels (0-based) that carry the speakers, in the order left, right. None: a mono or
    # stereo file as it is; a file with more channels fails unless they are named (FFmpeg's downmix would drop
    # or merge a speaker).
    channels: tuple[int, int] | None = None
    limits: AudioLimits = AudioLimits()


class AudioJob(NamedTuple):
    """One recording to decode and transcribe: exactly one of ``path`` and ``data`` is set."""

    key: str  # the caller's name for it (the audio's SHA-256), for logs and for matching results
    path: str | None = None  # readable where the executor runs (this machine, or a shared file system)
    data: bytes | None = None  # the file's bytes, when the workers cannot see the path
    options: DecodeOptions = DecodeOptions()


class AudioFacts(NamedTuple):
    """What the decoded audio is, as stored in ``calls``."""

    duration_s: float
    source_channels: int
    sample_rate: int  # of the source file
    codec: str
    speaker_mode: str  # stereo | mono | mono_fallback_silent | mono_fallback_dual (roles may make it stereo_swapped)
    note: str  # why a fallback happened, empty otherwise


class ChannelText(NamedTuple):
    """The utterances of one speaker channel, each with ``speaker == label``."""

    label: str  # left | right | unknown (mono)
    utterances: tuple[Utterance, ...]


class CallAsr(NamedTuple):
    facts: AudioFacts
    channels: tuple[ChannelText, ...]
    # When each channel's ASR ran, as (start, end) time.monotonic() values: the batch reports the busy share.
    # A remote executor reports its workers' clocks; only the lengths and overlaps are used.
    intervals: tuple[tuple[float, float], ...]
    # Who spoke when on a mono channel (``callqa.diarize.estimate_speakers`` of the ``unknown`` channel's audio,
    # run where the audio is); None on stereo, or when no estimation ran. Small rows: turns, not audio.
    diarization: Diarization | None = None


ExecutorName = Literal["local", "ray"]  # --executor: this machine, or a Ray cluster


class ClusterSize(NamedTuple):
    """Where an executor runs, as recorded in ``runs``: this machine is one node."""

    nodes: int
    cpus: float
    gpus: float


class RayOptions(NamedTuple):
    """Settings of the Ray executor (callqa.ray_executor)."""

    address: str | None = None  # None: RAY_ADDRESS, else a Ray started on this machine for the run
    cpus_per_actor: float = 1.0  # Ray CPUs each ASR actor reserves; also its model's CPU threads (at least 1)
    gpus_per_actor: float = 0.0  # > 0: the actors run their models on GPUs (faster-whisper on CUDA)
    actors: int = 0  # 0: as many as the cluster's CPUs (or GPUs) hold
    shared_fs: bool = False  # the recordings' paths are readable, under the same names, on every node
    attempts: int = 3  # tries of a call whose worker dies under it, the first included
    patience_s: float = 600.0  # calls waiting this long with no live actor fail instead of waiting forever


@runtime_checkable
class Executor(Protocol):
    """Decodes and transcribes recordings; see the module docstring for the contract."""

    name: str  # local | ray, recorded in runs.executor
    cluster: ClusterSize  # recorded in runs
    workers: int  # models transcribing at once
    model_label: str  # the ASR model's label, stored in calls.model and part of the skip key
    capacity: int  # calls in flight that keep every worker busy; the batch submits at most capacity + 1 ahead

    def submit(self, job: AudioJob) -> Any:
        """Start decoding and transcribing ``job``; returns a handle for ``result``. Does not wait for the work."""
        ...

    def result(self, handle: Any) -> CallAsr:
        """Wait for a submitted job; raises the call's error (AudioError, TranscriptionError, ...)."""
        ...

    def close(self) -> None:
        """Finish or cancel the work in flight and release the workers."""
        ...
