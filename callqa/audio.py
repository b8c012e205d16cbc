"""Decode a recording with PyAV (faster-whisper's decoder) to 16 kHz float32, one array per speaker channel.

Stereo recordings carry one speaker per channel, labelled ``left`` and ``right``; which one is the agent is
decided later, from what is said (``callqa.roles``). A silent channel, or two identical channels (dual mono), is
handled as mono, and the fallback is said in ``DecodedAudio.note``. A file with more than two channels is decoded
channel by channel (never through FFmpeg's downmix, which would merge or drop a speaker) and needs the two
speaker channels named (``DecodeOptions.channels``).
"""

from __future__ import annotations

import io
import itertools
import logging
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from .errors import AudioError
from .executor import CHANNEL_LABELS, MONO_LABEL, DecodeOptions
from .records import DecodedAudio, SpeakerMode

log = logging.getLogger("callqa")

SAMPLE_RATE = 16000
SILENT_RMS = 10 ** (-55 / 20)  # -55 dBFS: line noise at most, nobody talking
DUAL_MONO_CORRELATION = 0.995
DUAL_MONO_STRIDE = 7
DUAL_MONO_SAMPLES = 1 << 20


class _Probe(NamedTuple):
    codec: str
    sample_rate: int
    channels: int
    duration_s: float  # from the container; 0 when it does not say


Source = Path | bytes  # a file, or its bytes (sent to a remote worker)


def _media(source: Source):
    """What av.open reads: a path name, or a fresh in-memory file for bytes."""
    return io.BytesIO(source) if isinstance(source, bytes) else str(source)


def probe(path: Source) -> _Probe:
    """What the first audio stream is; raises AudioError if there is none."""
    try:
        with av.open(_media(path), metadata_errors="ignore") as container:
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


def decode(path: Source, n_channels: int, expected_s: float) -> np.ndarray:
    """(channels, samples) float32 at 16 kHz, streamed into one preallocated buffer.

    A 2-hour stereo call needs about 0.9 GB here; collecting frames and concatenating would need several times that.
    More than two channels keep the source's layout: each comes out as it is, none mixed into another.
    """
    layout = {1: "mono", 2: "stereo"}.get(n_channels)  # None: the input's own layout
    resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
    out = np.empty((n_channels, int(expected_s * SAMPLE_RATE) + SAMPLE_RATE), np.float32)
    pos = 0
    with av.open(_media(path), metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        for frame in itertools.chain(_frames(container, stream), [None]):
            for resampled in resampler.resample(frame):
                chunk = resampled.to_ndarray().reshape(-1, n_channels).T
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


def split_speakers(left: np.ndarray, right: np.ndarray) -> tuple[tuple, tuple, SpeakerMode, str]:
    """The two speaker channels, labelled left and right, or a fall back to mono with the reason."""
    silent = [name for name, ch in zip(CHANNEL_LABELS, (left, right)) if _rms(ch) <= SILENT_RMS]
    if len(silent) == 1:
        other = right if silent[0] == "left" else left
        return (other,), (MONO_LABEL,), "mono_fallback_silent", f"{silent[0]} channel is silent; handled as mono"
    if not silent and _identical(left, right):
        return (left,), (MONO_LABEL,), "mono_fallback_dual", "both channels carry the same audio; handled as mono"
    return (left, right), CHANNEL_LABELS, "stereo", ""


def speaker_channels(n_channels: int, options: DecodeOptions) -> tuple[int, int] | None:
    """The two source channels holding the speakers, None for mono; AudioError when that is not clear."""
    if n_channels <= 1:
        return None
    picked = options.channels
    if picked is None:
        if n_channels == 2:
            return (0, 1)
        raise AudioError(f"{n_channels} audio channels: name the two that carry the speakers "
                         "(--channels 0,1 or a manifest/sidecar column 'channels'); none is dropped or mixed")
    if len(set(picked)) != 2 or any(not 0 <= c < n_channels for c in picked):
        raise AudioError(f"channels {','.join(map(str, picked))} do not name two different channels of this "
                         f"{n_channels}-channel file (0 to {n_channels - 1})")
    return picked


def load_audio(path: Source, options: DecodeOptions = DecodeOptions()) -> DecodedAudio:
    """Decode a file (or its bytes); raises AudioError with a one-line reason for anything not usable audio."""
    info = probe(path)
    picked = speaker_channels(info.channels, options)
    try:
        decoded = decode(path, max(info.channels, 1) if picked else 1, info.duration_s)
    except Exception as exc:
        raise AudioError(f"decoding failed ({_reason(exc)})") from exc
    if decoded.shape[1] == 0:
        raise AudioError("no audio samples after decoding (empty or truncated file)")
    if picked:
        if decoded.shape[0] > 2:  # copies of the two rows: the other channels' buffer goes now
            decoded = decoded[list(picked)]
            picked = (0, 1)
        channels, speakers, mode, note = split_speakers(decoded[picked[0]], decoded[picked[1]])
        if note:
            log.info("%s: %s", path if not isinstance(path, bytes) else "audio", note)
    else:
        channels, speakers, mode, note = (decoded[0],), (MONO_LABEL,), "mono", ""
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
