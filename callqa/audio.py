"""Decode a recording with PyAV (faster-whisper's decoder) to 16 kHz float32, one array per speaker.

Stereo recordings carry one speaker per channel. A silent channel, or two identical channels (dual mono), is
handled as mono, and the fallback is said in ``DecodedAudio.note``.

Before anything is decoded, the file's size and the container's sample rate and stated duration are checked
against ``AudioLimits``: a WAV header claiming 1 Hz would otherwise decode (resampled to 16 kHz) into gigabytes.
Decoding stops at the duration limit too, for containers that state no duration. A recording that holds much
less than its container states (a copy cut short) is refused as truncated, or scored with a note when
``AudioLimits.score_truncated`` is set.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from .errors import AudioError
from .records import DecodedAudio, SpeakerMode

log = logging.getLogger("callqa")

SAMPLE_RATE = 16000
SILENT_RMS = 10 ** (-55 / 20)  # -55 dBFS: line noise at most, nobody talking
DUAL_MONO_CORRELATION = 0.995
DUAL_MONO_STRIDE = 7
DUAL_MONO_SAMPLES = 1 << 20


class AudioLimits(NamedTuple):
    """What a recording may be, checked before decoding (the config file's keys of the same names)."""

    max_duration_s: float = 3 * 3600.0
    min_sample_rate: int = 4000
    max_sample_rate: int = 192_000
    max_file_mb: float = 4096.0
    truncated_ratio: float = 0.9  # holding less than this share of the stated duration is truncated
    score_truncated: bool = False  # score a truncated recording anyway, with a note


TRUNCATION_SLACK_S = 1.0  # encoder padding and damaged frames: a shortfall under this is never truncation


class _Probe(NamedTuple):
    codec: str
    sample_rate: int
    channels: int
    duration_s: float  # from the container; 0 when it does not say


def probe(path: Path) -> _Probe:
    """What the first audio stream is; raises AudioError if there is none."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("no audio stream in the file")
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            duration = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                        else (container.duration or 0) / 1e6)
            return _Probe(ctx.name, int(ctx.sample_rate or 0), int(ctx.channels or 0), duration)
    except AudioError:
        raise
    except Exception as exc:  # PyAV raises many FFmpeg error types; every one means "not decodable"
        raise AudioError(f"not a decodable audio file ({_reason(exc)})") from exc


def _head(path: Path) -> tuple[int, bytes]:
    """The file's size and its first 64 KiB, where the headers are."""
    with path.open("rb") as fh:
        return os.fstat(fh.fileno()).st_size, fh.read(1 << 16)


def _wav_stated_s(head: bytes) -> float:
    """The duration a RIFF/WAVE header states (data chunk size / byte rate); 0 for other files or no statement.

    FFmpeg measures some truncated PCM WAVs by their file size, which would hide the cut; 0 and 0xFFFFFFFF are
    what recorders write while they do not know the length yet."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0.0
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt " and size >= 16 and pos + 24 <= len(head):
            byte_rate = struct.unpack_from("<I", head, pos + 16)[0]
        elif chunk == b"data":
            return size / byte_rate if byte_rate and size not in (0, 0xFFFFFFFF) else 0.0
        pos += 8 + size + (size & 1)
    return 0.0


def check_limits(info: _Probe, size_bytes: int, head: bytes, limits: AudioLimits) -> float:
    """Refuse, before decoding, what the container says is too big to decode (AudioError); else the duration the
    container states, 0 when it states none."""
    size_mb = size_bytes / (1 << 20)
    if size_mb > limits.max_file_mb:
        raise AudioError(f"the file is {size_mb:.0f} MB; the limit is {limits.max_file_mb:g} MB (max_file_mb)")
    if info.sample_rate and not limits.min_sample_rate <= info.sample_rate <= limits.max_sample_rate:
        raise AudioError(f"sample rate {info.sample_rate} Hz is outside {limits.min_sample_rate}-"
                         f"{limits.max_sample_rate} Hz (min_sample_rate, max_sample_rate)")
    stated_s = max(info.duration_s, _wav_stated_s(head))
    if stated_s > limits.max_duration_s:
        raise AudioError(f"header says {stated_s:.0f} s; the limit is {limits.max_duration_s:g} s (max_duration_s)")
    return stated_s


def truncation(stated_s: float, held_s: float, limits: AudioLimits) -> str:
    """"truncated: ..." when the file holds much less than its container states (AudioError unless
    ``limits.score_truncated``), else ""."""
    if stated_s - held_s <= TRUNCATION_SLACK_S or held_s >= stated_s * limits.truncated_ratio:
        return ""
    problem = f"truncated: header says {stated_s:.1f} s, file holds {held_s:.1f} s"
    if not limits.score_truncated:
        raise AudioError(problem)
    return problem


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _frames(container, stream):
    """Decoded frames, skipping the damaged ones (as faster-whisper's decoder does)."""
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def decode(path: Path, n_channels: int, expected_s: float,
           max_s: float = AudioLimits().max_duration_s) -> np.ndarray:
    """(channels, samples) float32 at 16 kHz, streamed into one preallocated buffer; AudioError past ``max_s``.

    A 2-hour stereo call needs about 0.9 GB here; collecting frames and concatenating would need several times that.
    """
    layout = "stereo" if n_channels == 2 else "mono"
    resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
    limit = int(max_s * SAMPLE_RATE) + SAMPLE_RATE
    out = np.empty((n_channels, min(int(expected_s * SAMPLE_RATE) + SAMPLE_RATE, limit)), np.float32)
    pos = 0
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        for frame in itertools.chain(_frames(container, stream), [None]):
            for resampled in resampler.resample(frame):
                chunk = resampled.to_ndarray().reshape(-1, n_channels).T
                if pos + chunk.shape[1] > limit:
                    raise AudioError(f"longer than the limit of {max_s:g} s (max_duration_s) although the header "
                                     f"says {expected_s:.0f} s")
                if pos + chunk.shape[1] > out.shape[1]:
                    out = np.concatenate([out, np.empty_like(out)], axis=1)[:, : 2 * out.shape[1] + chunk.shape[1]]
                np.multiply(chunk, 1 / 32768, out=out[:, pos : pos + chunk.shape[1]], casting="unsafe")
                pos += chunk.shape[1]
    return out[:, :pos]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.dot(x, x) / x.size)) if x.size else 0.0


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    stride = max(DUAL_MONO_STRIDE, a.size // DUAL_MONO_SAMPLES)  # a sample of the signal is proof enough, and cheap
    a, b = a[::stride], b[::stride]
    if _rms(a - b) <= SILENT_RMS:
        return True
    corr = np.corrcoef(a, b)[0, 1]
    return bool(np.isfinite(corr) and corr >= DUAL_MONO_CORRELATION)


def split_speakers(left: np.ndarray, right: np.ndarray,
                   agent_channel: str) -> tuple[tuple, tuple, SpeakerMode, str]:
    """Assign the two channels to agent and customer, or fall back to mono with the reason."""
    silent = [name for name, ch in (("left", left), ("right", right)) if _rms(ch) <= SILENT_RMS]
    if len(silent) == 1:
        other = right if silent[0] == "left" else left
        return (other,), ("unknown",), "mono_fallback_silent", f"{silent[0]} channel is silent; handled as mono"
    if not silent and _identical(left, right):
        return (left,), ("unknown",), "mono_fallback_dual", "both channels carry the same audio; handled as mono"
    agent, customer = (left, right) if agent_channel == "left" else (right, left)
    return (agent, customer), ("agent", "customer"), "stereo", ""


def load_audio(path: Path, agent_channel: str = "left", limits: AudioLimits = AudioLimits()) -> DecodedAudio:
    """Decode ``path``; raises AudioError with a one-line reason for anything that is not usable audio."""
    if agent_channel not in ("left", "right"):
        raise ValueError(f"agent_channel must be left or right, not {agent_channel!r}")
    info = probe(path)
    stated_s = check_limits(info, *_head(path), limits)
    stereo = info.channels >= 2
    try:
        decoded = decode(path, 2 if stereo else 1, info.duration_s, limits.max_duration_s)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"decoding failed ({_reason(exc)})") from exc
    if decoded.shape[1] == 0:
        raise AudioError("no audio samples after decoding (empty or truncated file)")
    truncated = truncation(stated_s, decoded.shape[1] / SAMPLE_RATE, limits)
    if truncated:
        log.warning("%s: %s; scored anyway (score_truncated)", path, truncated)
    if stereo:
        channels, speakers, mode, note = split_speakers(decoded[0], decoded[1], agent_channel)
        if note:
            log.info("%s: %s", path, note)
    else:
        channels, speakers, mode, note = (decoded[0],), ("unknown",), "mono", ""
    if truncated:  # until calls have review reasons of their own, the flag rides on the audio note
        note = "; ".join(filter(None, [truncated, note]))
    return DecodedAudio(
        channels=channels,
        speakers=speakers,
        sample_rate=info.sample_rate,
        source_channels=info.channels,
        codec=info.codec,
        duration_s=decoded.shape[1] / SAMPLE_RATE,
        speaker_mode=mode,
        note=note,
    )
