"""Decode a recording with PyAV (faster-whisper's decoder) to 16 kHz float32, one array per speaker.

Stereo recordings carry one speaker per channel. A silent channel, or two identical channels (dual mono), is
handled as mono, and the fallback is said in ``DecodedAudio.note``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
from faster_whisper.audio import decode_audio

from .errors import AudioError
from .records import DecodedAudio

log = logging.getLogger("callqa")

SAMPLE_RATE = 16000
SILENT_RMS = 10 ** (-55 / 20)  # -55 dBFS: line noise at most, nobody talking
DUAL_MONO_CORRELATION = 0.995


def probe(path: Path) -> tuple[str, int, int]:
    """(codec, sample_rate, channels) of the first audio stream; raises AudioError if there is none."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("no audio stream in the file")
            ctx = container.streams.audio[0].codec_context
            return ctx.name, int(ctx.sample_rate or 0), int(ctx.channels or 0)
    except AudioError:
        raise
    except Exception as exc:  # PyAV raises many FFmpeg error types; every one means "not decodable"
        raise AudioError(f"not a decodable audio file ({_reason(exc)})") from exc


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    if _rms(a - b) <= SILENT_RMS:
        return True
    corr = np.corrcoef(a, b)[0, 1]
    return bool(np.isfinite(corr) and corr >= DUAL_MONO_CORRELATION)


def split_speakers(left: np.ndarray, right: np.ndarray, agent_channel: str) -> tuple[tuple, tuple, str, str]:
    """Assign the two channels to agent and customer, or fall back to mono with the reason."""
    silent = [name for name, ch in (("left", left), ("right", right)) if _rms(ch) <= SILENT_RMS]
    if len(silent) == 1:
        other = right if silent[0] == "left" else left
        return (other,), ("unknown",), "mono_fallback_silent", f"{silent[0]} channel is silent; handled as mono"
    if not silent and _identical(left, right):
        mixed = (left + right) / 2
        return (mixed,), ("unknown",), "mono_fallback_dual", "both channels carry the same audio; handled as mono"
    agent, customer = (left, right) if agent_channel == "left" else (right, left)
    return (agent, customer), ("agent", "customer"), "stereo", ""


def load_audio(path: Path, agent_channel: str = "left") -> DecodedAudio:
    """Decode ``path``; raises AudioError with a one-line reason for anything that is not usable audio."""
    if agent_channel not in ("left", "right"):
        raise ValueError(f"agent_channel must be left or right, not {agent_channel!r}")
    codec, rate, n_channels = probe(path)
    stereo = n_channels >= 2
    try:
        decoded = decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=stereo)
    except Exception as exc:
        raise AudioError(f"decoding failed ({_reason(exc)})") from exc
    first = decoded[0] if stereo else decoded
    if first.size == 0:
        raise AudioError("no audio samples after decoding (empty or truncated file)")
    duration = first.size / SAMPLE_RATE
    if stereo:
        channels, speakers, mode, note = split_speakers(decoded[0], decoded[1], agent_channel)
        if note:
            log.info("%s: %s", path, note)
    else:
        channels, speakers, mode, note = (decoded,), ("unknown",), "mono", ""
    return DecodedAudio(
        channels=channels,
        speakers=speakers,
        sample_rate=rate,
        source_channels=n_channels,
        codec=codec,
        duration_s=duration,
        speaker_mode=mode,
        note=note,
    )
