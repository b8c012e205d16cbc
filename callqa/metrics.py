"""Call metrics computed from the timeline of utterances (no spaCy needed), stored per call and checked by
metric criteria of a rubric.

A metric that cannot be computed for a call has value None, and a criterion on it is ``na``: speaker metrics
need speaker attribution (stereo, one speaker per channel), so on mono they are None rather than 0.
Each metric also says where it happened (start_s/end_s) so a reviewer can jump to the moment.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Callable, NamedTuple

from .records import MONO_ESTIMATED, STEREO_MODES, MetricValue, Transcript, Utterance

MIN_SILENCE_S = 2.0  # shorter gaps are turn-taking, not silence
INTERRUPTION_TOLERANCE_S = 0.25  # an agent starting this close to the customer's end is taking the turn
# On mono the estimated speakers never overlap (each moment has one), so an interruption cannot show as two
# voices at once. It shows as no pause at all: the estimated turns (speech frames of Silero VAD, which ends a
# region only after 0.3 s of silence; callqa.diarize.open_pauses puts back the shorter silences at a change of
# speaker) change from the customer to the agent inside continuous speech. People taking turns leave a pause; a
# barge-in leaves none, or the voices overlap. Counted when the customer had been speaking for MONO_CUSTOMER_MIN_S
# (a one-word backchannel is not being interrupted), their own pauses under MONO_PHRASE_PAUSE_S between phrases
# included: a caller cut off mid-sentence has been speaking since the sentence began, not since their last breath.
# Whisper's word times are not used for this: they stretch across pauses.
MONO_BARGE_IN_GAP_S = 0.1
MONO_CUSTOMER_MIN_S = 1.0
MONO_PHRASE_PAUSE_S = 0.5
HOLD_ANNOUNCED_WITHIN_S = 10.0  # the announcement must end this close before the silence starts
HOLD_PHRASES = re.compile(
    r"\b(on hold|hold on|please hold|hold please|hold for a|hold for one|one moment|a moment|one second|"
    r"just a second|a few seconds|one minute|just a minute|give me a minute|bear with me)\b"
)
_WORD = re.compile(r"\S+")


class MetricInfo(NamedTuple):
    description: str
    speaker: str | None  # whose behaviour it measures, shown as the evidence speaker


METRICS: dict[str, MetricInfo] = {
    "agent_interruptions": MetricInfo("times the agent starts speaking while the customer speaks", "agent"),
    "longest_silence_s": MetricInfo(f"longest gap between utterances when no one speaks (>= {MIN_SILENCE_S:g} s)", None),
    "total_silence_s": MetricInfo(f"sum of gaps when no one speaks, gaps under {MIN_SILENCE_S:g} s ignored", None),
    "hold_count": MetricInfo("silences that follow the agent announcing a hold", "agent"),
    "longest_hold_s": MetricInfo("longest silence after an announced hold (0 without holds)", "agent"),
    "agent_talk_ratio": MetricInfo("agent speaking time / all speaking time (0-1)", "agent"),
    "agent_words_per_minute": MetricInfo("agent words per minute of agent speaking time", "agent"),
    "customer_sentiment_start": MetricInfo("VADER compound (-1..1) of the first third of the customer's words", "customer"),
    "customer_sentiment_end": MetricInfo("VADER compound (-1..1) of the last third of the customer's words", "customer"),
    "customer_sentiment_change": MetricInfo("customer_sentiment_end - customer_sentiment_start", "customer"),
}

_NONE = MetricValue(None, None, None)


def _attributed(transcript: Transcript) -> bool:
    """Speaker metrics need every utterance attributed to the agent or the customer (on mono: estimated)."""
    return (transcript.speaker_mode in STEREO_MODES or transcript.speaker_mode == MONO_ESTIMATED) and all(
        u.speaker in ("agent", "customer") for u in transcript.utterances
    )


def _by(transcript: Transcript, speaker: str) -> list[Utterance]:
    return [u for u in transcript.utterances if u.speaker == speaker]


def _gaps(transcript: Transcript) -> list[tuple[float, float]]:
    """Silences of at least MIN_SILENCE_S between the first and the last speech (lead-in and hang-up excluded)."""
    spans = sorted((u.start, u.end) for u in transcript.utterances)
    gaps = []
    covered_until = spans[0][1] if spans else 0.0
    for start, end in spans[1:]:
        if start - covered_until >= MIN_SILENCE_S:
            gaps.append((covered_until, start))
        covered_until = max(covered_until, end)
    return gaps


def _silence(transcript: Transcript) -> dict[str, MetricValue]:
    if not transcript.utterances:
        return {"longest_silence_s": _NONE, "total_silence_s": _NONE}
    gaps = _gaps(transcript)
    if not gaps:
        return {"longest_silence_s": MetricValue(0.0, None, None), "total_silence_s": MetricValue(0.0, None, None)}
    longest = max(gaps, key=lambda g: g[1] - g[0])
    total = sum(end - start for start, end in gaps)
    return {
        "longest_silence_s": MetricValue(round(longest[1] - longest[0], 3), longest[0], longest[1]),
        "total_silence_s": MetricValue(round(total, 3), gaps[0][0], gaps[-1][1]),
    }


def _holds(transcript: Transcript) -> dict[str, MetricValue]:
    # On mono the announcer is unknown, but the hold phrase itself says it is the agent.
    announcers = ("agent", "unknown")
    announcements = [u for u in transcript.utterances if u.speaker in announcers and HOLD_PHRASES.search(u.text.lower())]
    holds: list[tuple[float, float, float]] = []  # (announcement start, silence start, silence end)
    used: set[int] = set()
    for gap_start, gap_end in _gaps(transcript):
        before = [u for u in announcements if u.end <= gap_start + 1e-6 and gap_start - u.end <= HOLD_ANNOUNCED_WITHIN_S]
        if before and before[-1].seq not in used:
            used.add(before[-1].seq)
            holds.append((before[-1].start, gap_start, gap_end))
    if not holds:
        return {"hold_count": MetricValue(0.0, None, None), "longest_hold_s": MetricValue(0.0, None, None)}
    longest = max(holds, key=lambda h: h[2] - h[1])
    return {
        "hold_count": MetricValue(float(len(holds)), holds[0][0], holds[0][2]),
        "longest_hold_s": MetricValue(round(longest[2] - longest[1], 3), longest[1], longest[2]),
    }


def _interruptions(transcript: Transcript) -> dict[str, MetricValue]:
    if not _attributed(transcript):
        return {"agent_interruptions": _NONE}
    if transcript.speaker_mode == MONO_ESTIMATED:
        return {"agent_interruptions": _barge_ins(transcript)}
    customer = _by(transcript, "customer")
    hits = [
        (a.start, c.end)
        for a in _by(transcript, "agent")
        for c in customer
        if c.start < a.start < c.end - INTERRUPTION_TOLERANCE_S
    ]
    hits = sorted(set(hits))
    first = hits[0] if hits else (None, None)
    return {"agent_interruptions": MetricValue(float(len({h[0] for h in hits})), *first)}


def _barge_ins(transcript: Transcript) -> MetricValue:
    """Agent turns that start without a pause where the customer's speech ends (see MONO_BARGE_IN_GAP_S)."""
    spans = transcript.turns or tuple((u.start, u.end, u.speaker) for u in transcript.utterances)
    hits: list[tuple[float, float]] = []
    customer_since: float | None = None  # start of the customer's current stretch of speech
    previous: tuple[float, float, str] | None = None
    for start, end, speaker in sorted(spans):
        # the span this one runs on from without a pause, if any
        joined = previous if previous is not None and start - previous[1] < MONO_BARGE_IN_GAP_S else None
        if speaker == "customer":
            same_stretch = (previous is not None and previous[2] == "customer"
                            and start - previous[1] < MONO_PHRASE_PAUSE_S)
            customer_since = customer_since if same_stretch else start
        elif (joined is not None and joined[2] == "customer" and customer_since is not None
              and joined[1] - customer_since >= MONO_CUSTOMER_MIN_S):
            hits.append((start, joined[1]))
        previous = (start, end, speaker)
    return MetricValue(float(len(hits)), *(hits[0] if hits else (None, None)))


def _word_count(u: Utterance) -> int:
    return len(u.words) if u.words else len(_WORD.findall(u.text))


def _talk(transcript: Transcript) -> dict[str, MetricValue]:
    if not _attributed(transcript):
        return {"agent_talk_ratio": _NONE, "agent_words_per_minute": _NONE}
    agent = _by(transcript, "agent")
    agent_s = sum(u.end - u.start for u in agent)
    all_s = sum(u.end - u.start for u in transcript.utterances)
    ratio = MetricValue(round(agent_s / all_s, 4), None, None) if all_s > 0 else _NONE
    words = sum(_word_count(u) for u in agent)
    wpm = _NONE
    if agent_s > 0 and words:
        wpm = MetricValue(round(words / (agent_s / 60.0), 1), agent[0].start, agent[-1].end)
    return {"agent_talk_ratio": ratio, "agent_words_per_minute": wpm}


def _timed_words(utterances: list[Utterance]) -> list[tuple[str, float, float]]:
    out = []
    for u in utterances:
        if u.words:
            out += [(w.word.strip(), w.start, w.end) for w in u.words if w.word.strip()]
        else:
            # No word timings: spread the utterance's time evenly over its words.
            texts = _WORD.findall(u.text)
            step = (u.end - u.start) / max(len(texts), 1)
            out += [(t, u.start + i * step, u.start + (i + 1) * step) for i, t in enumerate(texts)]
    return out


@functools.lru_cache(maxsize=1)
def _vader() -> Callable[[str], dict]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer().polarity_scores


def _sentiment(transcript: Transcript) -> dict[str, MetricValue]:
    words = _timed_words(_by(transcript, "customer")) if _attributed(transcript) else []
    if len(words) < 3:
        return {name: _NONE for name in ("customer_sentiment_start", "customer_sentiment_end", "customer_sentiment_change")}
    third = math.ceil(len(words) / 3)
    first, last = words[:third], words[-third:]
    start = _vader()(" ".join(w[0] for w in first))["compound"]
    end = _vader()(" ".join(w[0] for w in last))["compound"]
    return {
        "customer_sentiment_start": MetricValue(start, first[0][1], first[-1][2]),
        "customer_sentiment_end": MetricValue(end, last[0][1], last[-1][2]),
        "customer_sentiment_change": MetricValue(round(end - start, 4), first[0][1], last[-1][2]),
    }


def compute_metrics(transcript: Transcript) -> dict[str, MetricValue]:
    """Every metric of METRICS for one call; value None where the call does not allow it."""
    metrics: dict[str, MetricValue] = {}
    for part in (_interruptions, _silence, _holds, _talk, _sentiment):
        metrics.update(part(transcript))
    assert metrics.keys() == METRICS.keys()
    return metrics
