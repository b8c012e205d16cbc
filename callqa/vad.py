"""Silero VAD (shipped with faster-whisper): the threshold of Whisper's VAD pass (callqa.transcribe), and the
speech regions of speaker estimation (callqa.diarize).

At Silero's usual 0.5 whole phrases of telephone speech whose probability hovers about 0.5 were left out: a third
of the speech of the sample calls' mono mixdowns, and 1e-4 of quantisation noise moved 6 s of one call in or out.
Against 0.5 (README, ASR): word deletions on the sample calls' agent channels 25 -> 8 (WER 8.1 -> 6.7 %),
telephone-8k WER 5.3 -> 4.8 %, a real voice talent's prompts (Asterisk, 127 prompts, 2285 words) 3.94 -> 3.85 %;
ASR time +2 to +9 %.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE

VAD_THRESHOLD = 0.35


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz float32 audio; a pause of 0.3 s ends a region (a speaker turn)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(threshold=VAD_THRESHOLD, min_silence_duration_ms=300, speech_pad_ms=100,
                         min_speech_duration_ms=200)
    return [(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in get_speech_timestamps(audio, options)]

