"""Shared helpers of the rubric-engine tests: transcripts with word timings, rubrics from text, spaCy once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import yaml

from callqa.analyse import analyse
from callqa.phrases import compile_rubric
from callqa.records import Transcript, Utterance, Word
from callqa.rubric import Rubric, parse_rubric
from callqa.score import evaluate

DATA = Path(__file__).parent / "data"
RUBRICS = DATA / "rubrics"
CONVERSATIONS = DATA / "conversations"
SHIPPED = Path(__file__).parent.parent / "rubrics"


def utterance(seq: int, speaker: str, start: float, text: str, end: float | None = None) -> Utterance:
    """Words spread evenly from start to end (default 0.4 s a word), Whisper style with leading spaces."""
    words = text.split()
    end = start + 0.4 * len(words) if end is None else end
    step = (end - start) / max(len(words), 1)
    timed = tuple(Word(f" {w}", start + i * step, start + (i + 1) * step, 0.9) for i, w in enumerate(words))
    return Utterance(seq, speaker, start, end, text, 0.9, timed)


def transcript(lines, duration: float | None = None, speaker_mode: str = "stereo", call_id: str = "call") -> Transcript:
    """``lines``: (speaker, start_s, text) or (speaker, start_s, text, end_s)."""
    utterances = tuple(utterance(i, *line) for i, line in enumerate(lines))
    duration = duration if duration is not None else max((u.end for u in utterances), default=0.0) + 1.0
    return Transcript(call_id, duration, speaker_mode, utterances)


def rubric(text: str) -> Rubric:
    return parse_rubric(textwrap.dedent(text))


def one_criterion(criterion: dict, **rubric_keys) -> Rubric:
    """A rubric with a single section holding ``criterion`` (id ``c`` unless given)."""
    doc = {"id": "t", "version": 1, "pass_mark": 80, **rubric_keys,
           "sections": [{"id": "s", "weight": 1, "criteria": [{"id": "c", **criterion}]}]}
    return parse_rubric(yaml.safe_dump(doc, sort_keys=False))


def outcomes(rubric_: Rubric, call: Transcript, nlp_) -> dict[str, str]:
    evaluation = score(rubric_, call, nlp_)
    return {r.criterion_id: r.outcome for r in evaluation.results}


def score(rubric_: Rubric, call: Transcript, nlp_):
    return evaluate(analyse(call, nlp_), compile_rubric(rubric_, nlp_))


def result(rubric_: Rubric, call: Transcript, nlp_, criterion_id: str = "c"):
    return next(r for r in score(rubric_, call, nlp_).results if r.criterion_id == criterion_id)


_MARKUP = ("[", "<")  # corpus annotations such as [noise], [laughter], <unk>: not words anyone said


def harper_valley(sid: str, field: str = "human_transcript") -> Transcript:
    """A Harper Valley Bank conversation as a stereo Transcript; agent/caller -> agent/customer."""
    data = json.loads((CONVERSATIONS / f"{sid}.json").read_text())
    meta = data["metadata_subset"]
    lines = []
    for seg in sorted(data["segments"], key=lambda s: s["start_ms"]):
        text = " ".join(w for w in seg[field].split() if not w.startswith(_MARKUP))
        if text:
            speaker = "agent" if seg["speaker_role"] == "agent" else "customer"
            start = seg["start_ms"] / 1000
            lines.append((speaker, start, text, start + seg["duration_ms"] / 1000))
    return transcript(lines, duration=(meta["end_time_ms"] - meta["start_time_ms"]) / 1000, call_id=sid)
