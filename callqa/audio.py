"""Decode a recording with PyAV (faster-whisper's decoder) to 16 kHz float32, one array per speaker channel.

Stereo recordings carry one speaker per channel, labelled ``left`` and ``right``; which one is the agent is
decided later, from what is said (``callqa.roles``). A silent channel, or two identical channels (dual mono), is
handled as mono, and the fallback is said in ``DecodedAudio.note``. A file with more than two channels is decoded
channel by channel (never through FFmpeg's downmix, which would merge or drop a speaker) and needs the two
speaker channels named (``DecodeOptions.channels``).

Before anything is decoded, the file's size and the container's sample rate and stated duration are checked
against ``AudioLimits``: a WAV header claiming 1 Hz would otherwise decode (resampled to 16 kHz) into gigabytes.
Decoding stops at the duration limit too, for containers that state no duration. A recording that holds much
less than its container states (a copy cut short) is refused as truncated, or scored with a note when
``AudioLimits.score_truncated`` is set.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import struct
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from .errors import AudioError
from .executor import CHANNEL_LABELS, MONO_LABEL, AudioLimits, DecodeOptions
from .records import DecodedAudio, SpeakerMode

log = logging.getLogger("callqa")

SAMPLE_RATE = 16000
SILENT_RMS = 10 ** (-55 / 20)  # -55 dBFS: line noise at most, nobody talking
DUAL_MONO_CORRELATION = 0.995
DUAL_MONO_STRIDE = 7
DUAL_MONO_SAMPLES = 1 << 20


TRUNCATION_SLACK_S = 1.0  # encoder padding and damaged frames: a shortfall under this is never truncation


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
            if ctx is None:  # FFmpeg read the container but has no decoder for its codec
                raise AudioError("no decoder for the audio stream's codec")
            duration = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                        else (container.duration or 0) / 1e6)
            return _Probe(ctx.name, int(ctx.sample_rate or 0), int(ctx.channels or 0), duration)
    except AudioError:
        raise
    except Exception as exc:  # PyAV raises many FFmpeg error types; every one means "not decodable"
        raise AudioError(f"not a decodable audio file ({_reason(exc)})") from exc


def _head(path: Source) -> tuple[int, bytes]:
    """The file's size and its first 64 KiB, where the headers are."""
    if isinstance(path, bytes):
        return len(path), path[:1 << 16]
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
    if isinstance(exc, av.error.FFmpegError) and exc.filename:
        # FFmpeg names its input, a path or '<none>' for bytes: the same file gets the same reason either way
        # (a Ray worker decodes bytes), and the path is in the call's row already.
        return f"[Errno {exc.errno}] {exc.strerror}"[:200]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _frames(container, stream):
    """Decoded frames, skipping the damaged ones (as faster-whisper's decoder does)."""
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def decode(path: Source, n_channels: int, expected_s: float,
           max_s: float = AudioLimits().max_duration_s) -> np.ndarray:
    """(channels, samples) float32 at 16 kHz, streamed into one preallocated buffer; AudioError past ``max_s``.

    A 2-hour stereo call needs about 0.9 GB here; collecting frames and concatenating would need several times that.
    More than two channels keep the source's layout: each comes out as it is, none mixed into another.
    """
    layout = {1: "mono", 2: "stereo"}.get(n_channels)  # None: the input's own layout
    resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
    limit = int(max_s * SAMPLE_RATE) + SAMPLE_RATE
    out = np.empty((n_channels, min(int(expected_s * SAMPLE_RATE) + SAMPLE_RATE, limit)), np.float32)
    pos = 0
    with av.open(_media(path), metadata_errors="ignore") as container:
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
    limits = options.limits
    info = probe(path)
    stated_s = check_limits(info, *_head(path), limits)
    picked = speaker_channels(info.channels, options)
    try:
        decoded = decode(path, max(info.channels, 1) if picked else 1, info.duration_s, limits.max_duration_s)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"decoding failed ({_reason(exc)})") from exc
    if decoded.shape[1] == 0:
        raise AudioError("no audio samples after decoding (empty or truncated file)")
    truncated = truncation(stated_s, decoded.shape[1] / SAMPLE_RATE, limits)
    name = path if not isinstance(path, bytes) else "audio"
    if truncated:
        log.warning("%s: %s; scored anyway (score_truncated)", name, truncated)
    if picked:
        if decoded.shape[0] > 2:  # copies of the two rows: the other channels' buffer goes now
            decoded = decoded[list(picked)]
            picked = (0, 1)
        channels, speakers, mode, note = split_speakers(decoded[picked[0]], decoded[picked[1]])
        if note:
            log.info("%s: %s", name, note)
    else:
        channels, speakers, mode, note = (decoded[0],), (MONO_LABEL,), "mono", ""
    if truncated:
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
