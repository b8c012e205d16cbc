"""The nightly batch: ingest -> audio -> transcribe -> analyse -> score -> redact -> store.

Stages overlap: the next recording decodes on a thread while ASR workers transcribe the ones before it and
this thread analyses, scores and stores finished ones, one DuckDB transaction per call. The ASR starts first:
the workers fork before this process imports pyarrow, DuckDB or spaCy, and spaCy loads while the first calls are
transcribed.

Every problem with one recording is isolated: the call is stored with status 'failed' and a one-line reason,
and the batch goes on. Problems that make the whole run pointless (bad rubric, manifest, DB path, model) raise
a UsageError before anything is stored.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple

from . import __version__, roles
from .asr_pool import busy_seconds
from .errors import ModelError
from .executor import AudioJob, AudioLimits, CallAsr, DecodeOptions, Executor, RayOptions
from .executors import make_executor, run_place
from .ingest import (
    DEFAULT_NAME_PATTERN,
    Candidate,
    compile_name_pattern,
    discover,
    missing_manifest_files,
    read_manifest,
    resolve_metadata,
    sha256_file,
)
from .records import AgentChannel, CallRecord, CallSource
from .rubric import load_rubrics
from .transcribe import AsrSettings

if TYPE_CHECKING:
    from .scoring import Scorer

log = logging.getLogger("callqa")

SETTLE_SECONDS = 2.0  # a file modified this recently is watched for a moment: is it still growing?


class ScoreOptions(NamedTuple):
    db: Path | None = None
    rubrics: tuple[Path, ...] = ()
    manifest: Path | None = None
    name_pattern: str = DEFAULT_NAME_PATTERN
    agent_channel: AgentChannel = "auto"  # auto | left | right; a manifest/sidecar agent_channel wins for its call
    channels: tuple[int, int] | None = None  # the speaker channels of files with more than two
    asr: AsrSettings = AsrSettings()
    ray: RayOptions | None = None  # set (--executor ray): decoding and ASR on a Ray cluster
    redact: bool = True
    allow_list: tuple[str, ...] = ()
    settle_seconds: float = SETTLE_SECONDS
    audio_limits: AudioLimits = AudioLimits()
    reattribute: bool = False  # transcribe again stored mono calls whose speakers were not estimated


_COUNTED_AS = {"transcribed": "processed", "rescored": "rescored", "skipped": "skipped", "failed": "failed",
               "missing": "failed", "in_progress": "in_progress"}


class CallOutcome(NamedTuple):
    """What happened to one recording, reported as it happens (progress, JSON log lines)."""

    path: str
    call_id: str | None
    status: str  # transcribed | rescored | skipped | failed | in_progress | missing
    seconds: float
    audio_seconds: float
    scores: dict[str, float | None]
    error: str | None


class RunSummary(NamedTuple):
    run_id: str
    files_seen: int
    processed: int
    rescored: int
    skipped: int
    failed: int
    in_progress: int
    problems: tuple[tuple[str, str, str], ...]  # (status, path, reason) of failed, missing and in-progress files
    audio_seconds: float
    wall_seconds: float
    asr_seconds: float
    interrupted: bool

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


class _Prepared(NamedTuple):
    candidate: Candidate
    source: CallSource | None
    job: AudioJob | None  # None: nothing to decode (unreadable, already stored, or a bad per-call setting)
    agent_channel: str  # auto | left | right, for this call
    error: str | None


class _Transcribed(NamedTuple):
    prepared: _Prepared
    asr: CallAsr | None  # None: not transcribed ahead (no audio, or likely a duplicate)
    error: str | None  # why decoding, the ASR or the hand-off failed


def failure(stage: str, exc: BaseException) -> str:
    """One line for a call's stored error: the library's own reason, or the stage and the exception."""
    from .errors import CallQAError

    if isinstance(exc, CallQAError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{stage} failed ({type(exc).__name__}{': ' + text if text else ''})"


def _stable_size(path: Path, settle_seconds: float) -> bool:
    """False while a recorder is still writing the file: modified very recently and its size still changing."""
    first = path.stat()
    if time.time() - first.st_mtime >= settle_seconds:
        return True
    time.sleep(settle_seconds / 2)
    return path.stat().st_size == first.st_size


class BatchRun:
    """One `callqa score` run over a list of recordings, holding the models and the DB writer."""

    def __init__(self, options: ScoreOptions, on_outcome: Callable[[CallOutcome], None] | None = None,
                 stop: threading.Event | None = None):
        self.options = options
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.stop = stop or threading.Event()
        self.name_pattern = compile_name_pattern(options.name_pattern)
        self.manifest = read_manifest(options.manifest) if options.manifest else {}
        self.rubrics = load_rubrics(options.rubrics)  # validated now; compiled with spaCy once the ASR runs
        self.asr: Executor = make_executor(options.asr, options.ray)  # before the Store: see make_executor
        try:
            from .store import Store

            self.store = Store(options.db)
        except BaseException:
            self.asr.close()
            raise
        self._scorer: Scorer | None = None  # see scorer()
        self.started_run = False
        self.run_id = uuid.uuid4().hex[:12]
        self.counts = dict(processed=0, rescored=0, skipped=0, failed=0, in_progress=0)
        self.problems: list[tuple[str, str, str]] = []
        self.audio_seconds = 0.0
        self.asr_intervals: list[tuple[float, float]] = []  # when an ASR ran, to tell its share of the run
        self._asr_hashes: set[str] = set()  # audio transcribed (or being transcribed) in this run

    def close(self) -> None:
        try:
            self.asr.close()
        finally:
            self.store.close()

    def _prepare(self, candidate: Candidate) -> _Prepared:
        """Hash and resolve metadata (runs on a worker thread, overlapping the ASR of the previous call)."""
        path, forced = candidate.path, self.options.agent_channel
        try:
            if not _stable_size(path, self.options.settle_seconds):
                return _Prepared(candidate, None, None, forced, "in_progress")
            sha, size = sha256_file(path)
        except OSError as exc:
            return _Prepared(candidate, None, None, forced, f"cannot read file: {exc.strerror or exc}")
        source = resolve_metadata(candidate, sha, size, self.name_pattern)
        try:
            source, forced, channels = roles.call_settings(source, forced, self.options.channels)
        except ValueError as exc:
            return _Prepared(candidate, source, None, forced, str(exc))
        if self._already_done(source):
            return _Prepared(candidate, source, None, forced, None)
        options = DecodeOptions(channels, self.options.audio_limits)
        return _Prepared(candidate, source, AudioJob(sha, path=str(path), options=options), forced, None)

    def _already_done(self, source: CallSource) -> bool:
        stored = self._stored.get((source.audio_sha256, self.asr.model_label))
        return stored is not None and stored[1] == "ok"

    def run(self, paths: list[Path], command: str = "") -> RunSummary:
        started = time.perf_counter()
        candidates = discover(paths, self.manifest)
        for missing in missing_manifest_files(self.manifest):
            self._report(CallOutcome(str(missing), None, "missing", 0.0, 0.0, {}, "named in the manifest, not found"))
        self._stored = self.store.stored_calls(redo_unestimated=self.options.reattribute)
        self._command = command or " ".join(sys.argv)
        try:
            for transcribed in self._transcribed(self._prepared(candidates)):
                self._process(transcribed)
            self._open_run()  # also when nothing was transcribed: the rubrics and the run are recorded
        finally:
            summary = self._summary(len(candidates), time.perf_counter() - started)
            if self.started_run:
                self.store.finish_run(self.run_id, {
                    "files_seen": summary.files_seen, "processed": summary.processed, "skipped": summary.skipped,
                    "failed": summary.failed, "audio_seconds": summary.audio_seconds,
                    "wall_seconds": summary.wall_seconds, "interrupted": summary.interrupted,
                })
        return summary

    def _open_run(self) -> None:
        """Record the rubrics and this run: before the first call is stored."""
        if not self.started_run:
            self.store.save_rubrics(self.rubrics)
            self.store.start_run(self.run_id, self._command, __version__, run_place(self.asr))
            self.started_run = True

    def scorer(self) -> Scorer:
        """spaCy, Presidio and the compiled rubrics, loaded on first use: while the first calls are transcribed,
        or not at all when every call is already stored and scored."""
        if self._scorer is None:
            from .scoring import Scorer

            opts = self.options
            self._scorer = Scorer.from_rubrics(self.rubrics, redact=opts.redact, allow_list=opts.allow_list)
        return self._scorer

    def _prepared(self, candidates: list[Candidate]) -> Iterator[_Prepared]:
        """Decode the next recording while the current one is transcribed; stop between calls when asked."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="callqa-decode") as pool:
            pending: Future | None = pool.submit(self._prepare, candidates[0]) if candidates else None
            for i in range(len(candidates)):
                assert pending is not None  # submitted for every candidate
                prepared = pending.result()
                pending = pool.submit(self._prepare, candidates[i + 1]) if i + 1 < len(candidates) else None
                if self.stop.is_set():
                    if pending is not None:
                        pending.cancel()
                    return
                yield prepared

    def _transcribed(self, prepared: Iterator[_Prepared]) -> Iterator[_Transcribed]:
        """Keep the ASR workers busy with the next recordings while this thread analyses, scores and stores.

        CTranslate2 releases the GIL, so spaCy and DuckDB work here (the only thread touching the database)
        while the cores decode speech. On a stop, the calls already submitted are finished and stored; no
        further one is submitted or decoded.
        """
        prepared = iter(prepared)
        in_flight: deque[tuple[_Prepared, tuple[object, str | None]]] = deque(
            (item, self._submit(item)) for item in itertools.islice(prepared, self.asr.capacity + 1))
        self._open_run()
        if any(handle is not None for _, (handle, _) in in_flight):
            self.scorer()  # spaCy loads while the first calls are transcribed
        for item in prepared:
            yield self._collect(*in_flight.popleft())
            if self.stop.is_set():
                break
            in_flight.append((item, self._submit(item)))
        while in_flight:
            yield self._collect(*in_flight.popleft())

    def _submit(self, prepared: _Prepared) -> tuple[object, str | None]:
        """Start decoding and ASR of a recording, unless its audio is (or is being) stored already:
        (the executor's handle or None, why the hand-off failed)."""
        source, job = prepared.source, prepared.job
        if job is None or prepared.error is not None or source is None:
            return None, None
        if source.audio_sha256 in self._asr_hashes or self._already_done(source):
            return None, None
        self._asr_hashes.add(source.audio_sha256)
        return self._start(job)

    def _start(self, job: AudioJob) -> tuple[object, str | None]:
        try:
            return self.asr.submit(job), None
        except ModelError:
            raise
        except Exception as exc:  # one call's hand-off (a MemoryError, say) fails that call only
            log.debug("%s: hand-off failed", job.path, exc_info=True)
            return None, failure("hand-off to the ASR", exc)

    def _collect(self, prepared: _Prepared, started: tuple[object, str | None]) -> _Transcribed:
        handle, error = started
        if handle is None:
            return _Transcribed(prepared, None, error)
        try:
            result = self.asr.result(handle)
        except ModelError:
            raise
        except Exception as exc:  # decoding or ASR of this call: it fails, the batch goes on
            log.debug("%s: decoding or ASR failed", prepared.candidate.path, exc_info=True)
            return _Transcribed(prepared, None, failure("decoding or ASR", exc))
        self.asr_intervals.extend(result.intervals)
        return _Transcribed(prepared, result, None)

    def _process(self, transcribed: _Transcribed) -> None:
        t0 = time.perf_counter()
        prepared = transcribed.prepared
        source, path = prepared.source, str(prepared.candidate.path)
        if prepared.error == "in_progress":
            self._report(CallOutcome(path, None, "in_progress", 0.0, 0.0, {}, "still being written; left for the next run"))
            return
        if source is None:  # unreadable: no hash, so the call is keyed by its path's metadata alone
            source = resolve_metadata(prepared.candidate, "", 0, self.name_pattern)
            source = source._replace(call_id=source.call_id or path)
        if source.audio_sha256 and self._already_done(source):  # also the same audio earlier in this run
            self._skip_or_rescore(source, path, t0, prepared.agent_channel)
            return
        record, error = self._transcribe_and_score(source, transcribed)
        source = record.source
        self.store.save_call(record, self.run_id)
        self._stored[(source.audio_sha256, record.model)] = (source.call_id, record.status)
        duration = record.duration_s or 0.0
        status = "failed" if error else "transcribed"
        scores = {e.rubric_id: e.score for e in record.evaluations}
        self._report(CallOutcome(source.path, source.call_id, status, time.perf_counter() - t0, duration, scores, error))

    def _transcribe_and_score(self, source: CallSource, transcribed: _Transcribed) -> tuple[CallRecord, str | None]:
        prepared = transcribed.prepared
        conflict = self._id_conflict(source)
        if conflict:  # stored beside the call that owns the id, never over it
            source = source._replace(call_id=f"{source.call_id}#{source.audio_sha256[:8]}")
        error = prepared.error or transcribed.error or conflict
        if error is None and prepared.job is not None and transcribed.asr is None:
            # Not started ahead because the same audio was already in flight under another name, and that copy failed.
            transcribed = self._collect(prepared, self._start(prepared.job))
            error = transcribed.error
        base: dict[str, Any] = dict(source=source, model=self.asr.model_label, redacted=self.options.redact)
        asr = transcribed.asr
        if asr is not None:
            facts = asr.facts
            base.update(duration_s=facts.duration_s, channels=facts.source_channels, sample_rate=facts.sample_rate,
                        codec=facts.codec, speaker_mode=facts.speaker_mode)
        if error is not None or asr is None:
            return CallRecord(status="failed", error=error, **base), error
        try:
            transcript, decision = roles.build_transcript(source.call_id, asr, prepared.agent_channel)
            analysed, evaluations = self.scorer().score(transcript)
        except Exception as exc:  # a fault in one call's analysis stores that call as failed, not the batch
            log.debug("%s: analysis failed", source.path, exc_info=True)
            error = failure("analysis", exc)
            return CallRecord(status="failed", error=error, **base), error
        truncated = tuple(part for part in asr.facts.note.split("; ") if part.startswith("truncated:"))
        if truncated:  # scored anyway (score_truncated): a person should know the agent is judged on a part
            decision = decision._replace(review_reasons=decision.review_reasons + truncated)
        if decision.review_reasons:
            log.warning("%s: %s", source.path, "; ".join(decision.review_reasons))
        base.update(speaker_mode=transcript.speaker_mode, roles=decision, diarization=asr.diarization)
        return CallRecord(status="ok", error=None, analysed=analysed, evaluations=evaluations, **base), None

    def _id_conflict(self, source: CallSource) -> str | None:
        """A call id already used by different audio from another path is a metadata error, not an update."""
        owner = self.store.call_owner(source.call_id)
        if owner and owner[1] != source.audio_sha256 and owner[0] != source.path:
            return f"call id {source.call_id!r} is already used by {owner[0]}"
        return None

    def _skip_or_rescore(self, source: CallSource, path: str, t0: float, agent_channel: str) -> None:
        call_id = self._stored[(source.audio_sha256, self.asr.model_label)][0]
        self.store.note_path(source, call_id)
        from .reattribute import redecide  # imports DuckDB: after the ASR workers forked

        # A forced channel that differs, or a detection by an older role stage: decided again from the stored
        # words; if the agent moves, its evaluations go and it is rescored below.
        redecide(self.store, [call_id], lambda _: agent_channel)
        # Only a rubric version this call has no evaluation for needs the scorer (and so spaCy) at all.
        lacking = {r.sha256 for r in self.rubrics if self.store.missing_evaluations([call_id], r.sha256)}
        if lacking:
            self.scorer().rescore(self.store, [call_id], self.run_id, only=lacking)
        status = "rescored" if lacking else "skipped"
        self._report(CallOutcome(path, call_id, status, time.perf_counter() - t0, 0.0, {}, None))

    def _report(self, outcome: CallOutcome) -> None:
        self.counts[_COUNTED_AS[outcome.status]] += 1
        self.audio_seconds += outcome.audio_seconds
        if outcome.error:
            self.problems.append((outcome.status, outcome.path, outcome.error))
        log.info("%s: %s%s", outcome.path, outcome.status, f" ({outcome.error})" if outcome.error else "")
        self.on_outcome(outcome)

    def _summary(self, files_seen: int, wall: float) -> RunSummary:
        c = self.counts
        return RunSummary(self.run_id, files_seen, c["processed"], c["rescored"], c["skipped"], c["failed"],
                          c["in_progress"], tuple(self.problems), self.audio_seconds, wall,
                          busy_seconds(self.asr_intervals), self.stop.is_set())


def score_paths(paths: list[Path], options: ScoreOptions, on_outcome: Callable[[CallOutcome], None] | None = None,
                stop: threading.Event | None = None, command: str = "") -> RunSummary:
    """Run the batch over files and folders; see BatchRun."""
    batch = BatchRun(options, on_outcome, stop)
    try:
        return batch.run([Path(p) for p in paths], command)
    finally:
        batch.close()
