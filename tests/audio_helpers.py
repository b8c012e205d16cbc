"""Write real audio files in the formats phone systems produce, for tests (PyAV encoders)."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
from faster_whisper.audio import decode_audio

DATA = Path(__file__).parent / "data"
JFK = DATA / "speech" / "jfk.flac"
STEREO = DATA / "speech" / "stereo_two_talkers.wav"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")

FORMATS = {  # suffix -> (container format, codec, sample format)
    ".wav": ("wav", "pcm_s16le", "s16"),
    ".f32.wav": ("wav", "pcm_f32le", "flt"),
    ".ulaw.wav": ("wav", "pcm_mulaw", "s16"),
    ".alaw.wav": ("wav", "pcm_alaw", "s16"),
    ".flac": ("flac", "flac", "s16"),
    ".mp3": ("mp3", "libmp3lame", "fltp"),
    ".ogg": ("ogg", "libopus", "flt"),
    ".m4a": ("ipod", "aac", "fltp"),
}


def wav_bytes(data: bytes, rate: int, format_tag: int = 1, stated_bytes: int | None = None) -> bytes:
    """A WAV file of 16-bit mono ``data`` written by hand, so its header may lie: ``rate``, the data size
    (``stated_bytes``, default the real one) and the codec (``format_tag``: 1 is PCM; 0x7777 no decoder knows)."""
    size = len(data) if stated_bytes is None else stated_bytes
    fmt = struct.pack("<IHHIIHH", 16, format_tag, 1, rate, rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", min(36 + size, 0xFFFFFFFF)) + b"WAVEfmt " + fmt + b"data"
            + struct.pack("<I", size) + data)


def speech(path: Path = JFK, rate: int = 16000) -> np.ndarray:
    return decode_audio(str(path), sampling_rate=rate)


def write_audio(path: Path, channels: list[np.ndarray], rate: int, kind: str = ".wav") -> Path:
    """Encode float32 channels (same length) into ``path`` with the codec of ``kind`` (a FORMATS key)."""
    fmt, codec, sample_fmt = FORMATS[kind]
    data = np.stack([np.clip(c, -1, 1) if sample_fmt == "s16" else c for c in channels])
    layout = "mono" if len(channels) == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=48000 if codec == "libopus" else rate, layout=layout)
        if sample_fmt == "s16":
            frame_data = (data.T.reshape(1, -1) * 32767).astype(np.int16)
        elif sample_fmt == "flt":
            frame_data = data.T.reshape(1, -1).astype(np.float32)
        else:
            frame_data = data.astype(np.float32)
        frame = av.AudioFrame.from_ndarray(frame_data, format=sample_fmt, layout=layout)
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                      rate=stream.codec_context.sample_rate)
        for f in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_pcm_wav(path: Path, channels: list[np.ndarray], rate: int) -> Path:
    """16-bit PCM WAV with one channel per array and no channel layout, as many recorders write files with more
    than two channels (the wave module)."""
    import wave

    data = (np.stack([np.clip(c, -1, 1) for c in channels]).T * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels)), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    idx = np.arange(0, len(x), src / dst)
    return np.interp(idx, np.arange(len(x)), x).astype(np.float32)
