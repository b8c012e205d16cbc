"""Speaker embeddings of short windows of one call's audio, for the diarization stage.

An embedder maps (audio at 16 kHz, window start times in seconds) to one row per window, WINDOW_S long.
Resemblyzer's GE2E encoder (Apache-2.0, weights inside its wheel; needs torch: the ``callqa[mono]`` extra) was
the most accurate and cheap enough of the candidates measured in benchmarks/diarization.py (MFCC statistics and
Whisper's encoder states live there).
"""

from __future__ import annotations

import functools

import numpy as np

from .audio import SAMPLE_RATE
from .errors import ModelError

WINDOW_S = 1.2
_FRAMES = int(round(WINDOW_S / 0.01))


def _frame_slices(n_frames: int, starts: np.ndarray) -> np.ndarray:
    """(windows, _FRAMES) frame indices, clipped at the ends of the call."""
    first = np.clip(np.round(starts / 0.01).astype(int), 0, max(n_frames - _FRAMES, 0))
    return np.minimum(first[:, None] + np.arange(_FRAMES)[None, :], n_frames - 1)


def _mel_power(audio: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power spectrogram, 25 ms periodic-Hann windows every 10 ms, centred: what Resemblyzer was
    trained on (librosa's melspectrogram, equal to 1e-7 here; librosa itself spends 9 s compiling its filters)."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(audio, (200, 200)), 400)[::160]
    spectrum = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (spectrum @ _slaney_mel_filters(40).T).astype(np.float32)


_TARGET_POWER = 10 ** (-30 / 10)  # mean square of audio at -30 dBFS


def _hz_to_mel(f):
    f = np.asarray(f, float)
    return np.where(f >= 1000, 15 + np.log(np.maximum(f, 1e-9) / 1000) / _LOG_STEP, f / (200 / 3))


def _mel_to_hz(m):
    m = np.asarray(m, float)
    return np.where(m >= 15, 1000 * np.exp(_LOG_STEP * (m - 15)), m * 200 / 3)


_LOG_STEP = np.log(6.4) / 27


@functools.lru_cache(maxsize=2)
def _slaney_mel_filters(n_mels: int) -> np.ndarray:
    """Slaney's mel filters (area-normalised triangles) over the 201 bins of a 400-sample FFT at 16 kHz."""
    bins = np.fft.rfftfreq(400, 1 / SAMPLE_RATE)
    hz = _mel_to_hz(np.linspace(_hz_to_mel(0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    triangles = np.maximum(0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))
    return triangles * (2 / (upper - lower))


class ResemblyzerEmbedder:
    name = "resemblyzer"

    def __init__(self):
        try:
            import sklearn.cluster  # noqa: F401  (callqa.diarize clusters with it)
            import torch
            from resemblyzer import VoiceEncoder
        except ImportError as exc:
            raise ModelError("speaker estimation with resemblyzer needs the mono extra: "
                             "pip install 'callqa[mono]' (resemblyzer, torch, scikit-learn)") from exc
        torch.set_num_threads(1)
        self._torch = torch
        self.encoder = VoiceEncoder("cpu", verbose=False)

    def embed(self, audio: np.ndarray, starts: np.ndarray) -> np.ndarray:
        mel = _mel_power(audio)
        slices = _frame_slices(len(mel), starts)
        windows = mel[slices]
        # The encoder was trained on utterances normalised to -30 dBFS and its input is power, not log power:
        # each window is brought to that level, so a loud and a quiet stretch of one voice stay one voice.
        hop = np.pad(audio, (0, 160 * len(mel) - len(audio)))[: 160 * len(mel)].reshape(len(mel), 160)
        level = (hop.astype(np.float64) ** 2).mean(axis=1)[slices].mean(axis=1)
        windows *= (_TARGET_POWER / np.maximum(level, 1e-10))[:, None, None].astype(np.float32)
        with self._torch.no_grad():
            return self.encoder(self._torch.from_numpy(windows)).numpy()
