"""Immutable records passed between the pipeline stages.

ingest -> CallSource; audio -> DecodedAudio; transcribe -> Transcript (Utterance, Word);
analyse -> AnalysedCall (Token); rubric/score -> Evaluation (CriterionResult).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

Speaker = Literal["agent", "customer", "unknown"]
SPEAKERS: tuple[Speaker, ...] = get_args(Speaker)
# How the speakers were told apart: one per channel (as configured, or swapped after checking), or mono
# (estimated, or unseparated; a fallback when a stereo file's channels are silent or identical).
SpeakerMode = Literal["stereo", "stereo_swapped", "mono", "mono_estimated", "mono_fallback_silent",
                      "mono_fallback_dual"]
SPEAKER_MODES: tuple[SpeakerMode, ...] = get_args(SpeakerMode)
AgentChannel = Literal["auto", "left", "right"]
StereoChannel = Literal["left", "right"]  # what `--agent-channel` accepts until "auto" (speaker estimation) lands
Status = Literal["ok", "failed"]
Outcome = Literal["pass", "fail", "na"]
MetadataFrom = Literal["manifest", "sidecar", "filename", "none"]
STEREO_MODES = ("stereo", "stereo_swapped")  # one speaker per channel; swapped: the agent on the right
# One channel, speakers estimated by callqa.diarize and named by callqa.roles.
MONO_ESTIMATED: SpeakerMode = "mono_estimated"


class CallSource(NamedTuple):
    """One recording found by ingest, with the metadata resolved for it."""

    path: str
    call_id: str
    agent_id: str
    started_at: datetime | None
    audio_sha256: str
    size_bytes: int
    extra: dict[str, Any]
    metadata_from: MetadataFrom


class DecodedAudio(NamedTuple):
    """16 kHz float32 audio, one array per speaker channel."""

    channels: tuple[np.ndarray, ...]
    speakers: tuple[str, ...]  # parallel to channels: their labels ("left", "right"), or ("unknown",) on mono
    sample_rate: int  # of the source file
    source_channels: int
    codec: str
    duration_s: float
    speaker_mode: SpeakerMode
    note: str  # why a fallback happened, empty otherwise


class Word(NamedTuple):
    word: str  # as Whisper gives it, usually with a leading space
    start: float
    end: float
    probability: float


class Utterance(NamedTuple):
    """A stretch of speech by one speaker.

    Invariant: ``text == "".join(w.word for w in words).strip()`` whenever ``words`` is non-empty,
    so character offsets in ``text`` map onto words.
    """

    seq: int
    speaker: Speaker
    start: float
    end: float
    text: str
    confidence: float
    words: tuple[Word, ...]


class Transcript(NamedTuple):
    call_id: str
    duration_s: float
    speaker_mode: SpeakerMode
    utterances: tuple[Utterance, ...]
    # mono_estimated: the estimated speaker turns as (start, end, agent|customer), where speech ran on without
    # a pause when the speaker changed (callqa.metrics counts interruptions from them); empty otherwise.
    turns: tuple[tuple[float, float, str], ...] = ()


class Token(NamedTuple):
    """One spaCy token of an utterance, with everything needed to rebuild a Doc without re-parsing."""

    utterance_seq: int
    idx: int  # position within the utterance
    text: str
    whitespace: bool  # a space follows the token
    lemma: str
    norm: str
    pos: str
    tag: str
    dep: str
    head: int  # idx of the head token within the same utterance
    negated: bool  # inside a negated clause, from the dependency parse
    start_s: float
    end_s: float
    speaker: Speaker


class AnalysedCall(NamedTuple):
    transcript: Transcript
    tokens: tuple[Token, ...]
    metrics: dict[str, "MetricValue"]


class MetricValue(NamedTuple):
    """A call metric; value None means it cannot be computed for this call (e.g. interruptions on mono)."""

    value: float | None
    start_s: float | None
    end_s: float | None


class Evidence(NamedTuple):
    speaker: str | None  # a Speaker, or several joined by "/" when the evidence spans them
    start_s: float | None
    end_s: float | None
    text: str | None


class CriterionResult(NamedTuple):
    section_id: str
    criterion_id: str
    outcome: Outcome
    weight: float
    value: float | None
    evidence: Evidence


class Evaluation(NamedTuple):
    call_id: str
    rubric_id: str
    rubric_version: int
    rubric_sha256: str
    score: float | None  # None when no criterion applies to the call (e.g. a dropped call)
    passed: bool | None
    auto_failed: bool
    section_scores: dict[str, float | None]
    results: tuple[CriterionResult, ...]


class RoleDecision(NamedTuple):
    """Which speaker channel is the agent (callqa.roles); stored in calls (agent_channel, role_source, ...)."""

    agent_channel: str | None  # left | right; None when the call has no two speaker channels (mono)
    source: str | None  # forced | detected; None on mono
    confidence: float | None  # of the detection, 0.5-1 (forced: how far what is said agrees with the force)
    cues: tuple[str, ...]  # the strongest evidence, e.g. "left +3.0 opening: thank you for calling"
    review_reasons: tuple[str, ...]  # why a person should look at the call; empty when none


class Turn(NamedTuple):
    start: float
    end: float
    speaker: int  # 0 = the first to speak


class Diarization(NamedTuple):
    """Who spoke when on a mono channel (callqa.diarize)."""

    turns: tuple[Turn, ...]
    speakers: int  # estimated number of speakers (0 without speech)
    confidence: float  # 0-1, see callqa.diarize
    flags: tuple[str, ...]  # e.g. one_speaker, more_than_two_speakers, too_little_speech
    method: str  # the embedder
    separation: float  # cosine silhouette of a two-way split of the windows: near 0 for one voice


class CallRecord(NamedTuple):
    """Everything stored for one recording; ``analysed`` is None for a failed call."""

    source: CallSource
    status: Status
    error: str | None
    model: str
    redacted: bool
    duration_s: float | None = None
    channels: int | None = None
    sample_rate: int | None = None
    codec: str | None = None
    speaker_mode: SpeakerMode | None = None
    analysed: AnalysedCall | None = None
    evaluations: tuple[Evaluation, ...] = ()
    roles: RoleDecision | None = None
    diarization: Diarization | None = None
