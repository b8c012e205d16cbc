"""Build callqa databases for tests from constructed records (no ASR, no spaCy): the real Store writes them.

Scores follow the rubric semantics: section score = passed weight / applicable weight x 100, overall = the
section-weighted mean over sections with an applicable criterion, a failed auto_fail criterion sets it to 0.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import yaml

from callqa import views
from callqa.records import (
    AnalysedCall,
    CallSource,
    CriterionResult,
    Evaluation,
    Evidence,
    MetricValue,
    Transcript,
    Utterance,
    Word,
)
from callqa.store import CallRecord, RubricRow, Store

# section id: (weight, criteria ids); every criterion has weight 1
CLINIC_SECTIONS = {
    "courtesy": (50.0, ("greeting", "no_rude_language", "dead_air")),
    "resolution": (50.0, ("reason_for_call", "verify_identity", "closing_thanks")),
}
AUTO_FAIL = frozenset({"no_rude_language", "verify_identity"})
CRITERIA = tuple(c for _, ids in CLINIC_SECTIONS.values() for c in ids)

DIALOGUE = (
    ("agent", 0.5, 4.0, "Thank you for calling Riverside Clinic, this is Sam."),
    ("customer", 4.5, 8.0, "Hi, I need to move my appointment."),
    ("agent", 8.5, 12.0, "Can I have your full name and date of birth?"),
    ("customer", 12.5, 15.0, "Jane Doe, [DOB]."),
    ("agent", 40.0, 44.0, "You're all set. Thank you for calling, have a great day."),
)


class CallSpec(NamedTuple):
    call_id: str
    agent_id: str
    started_at: datetime | None
    outcomes: dict[str, str]  # criterion id -> pass | fail | na; missing criteria are na
    utterances: tuple[tuple[str, float, float, str], ...] = DIALOGUE
    evidence: dict[str, tuple[str | None, float, float, str | None]] = {}  # criterion -> (speaker, start, end, quote)
    values: dict[str, float] = {}  # criterion id -> measured value (metric criteria)
    metrics: dict[str, tuple[float | None, float | None, float | None]] = {"longest_silence_s": (25.0, 15.0, 40.0)}
    status: str = "ok"


def rubric_row(rubric_id: str = "clinic-helpdesk", version: int = 1, pass_mark: float = 80.0,
               sections: dict[str, tuple[float, tuple[str, ...]]] = CLINIC_SECTIONS) -> RubricRow:
    document = {
        "id": rubric_id, "name": f"{rubric_id} rubric", "version": version, "pass_mark": pass_mark,
        "sections": [
            {"id": sid, "name": sid.title(), "weight": weight,
             "criteria": [{"id": cid, "name": cid.replace("_", " ").capitalize()} for cid in ids]}
            for sid, (weight, ids) in sections.items()
        ],
    }
    source = yaml.safe_dump(document, sort_keys=False)
    return RubricRow(
        rubric_sha256=hashlib.sha256(source.encode()).hexdigest(), rubric_id=rubric_id, version=version,
        name=document["name"], pass_mark=pass_mark,
        sections=[{"id": sid, "name": sid.title(), "weight": weight} for sid, (weight, _) in sections.items()],
        source=source,
    )


def evaluate(spec: CallSpec, rubric: RubricRow) -> Evaluation:
    sections = {s["id"]: s["weight"] for s in rubric.sections}
    criteria = yaml.safe_load(rubric.source)["sections"]
    results, section_scores = [], {}
    for section in criteria:
        outcomes = [(c["id"], spec.outcomes.get(c["id"], "na")) for c in section["criteria"]]
        applicable = [o for _, o in outcomes if o != "na"]
        section_scores[section["id"]] = (100.0 * applicable.count("pass") / len(applicable)) if applicable else None
        for cid, outcome in outcomes:
            quote = spec.evidence.get(cid)
            evidence = Evidence(*quote) if quote else Evidence(None, None, None, None)
            results.append(CriterionResult(section["id"], cid, outcome, 1.0, spec.values.get(cid), evidence))
    weighted = [(sections[sid], score) for sid, score in section_scores.items() if score is not None]
    score = sum(w * s for w, s in weighted) / sum(w for w, _ in weighted) if weighted else None
    auto_failed = any(r.outcome == "fail" and r.criterion_id in AUTO_FAIL for r in results)
    if auto_failed:
        score = 0.0
    return Evaluation(
        call_id=spec.call_id, rubric_id=rubric.rubric_id, rubric_version=rubric.version,
        rubric_sha256=rubric.rubric_sha256, score=score, passed=None if score is None else score >= rubric.pass_mark,
        auto_failed=auto_failed, section_scores=section_scores, results=tuple(results),
    )


def _utterance(seq: int, speaker: str, start: float, end: float, text: str) -> Utterance:
    tokens = text.split()
    step = (end - start) / len(tokens)
    words = tuple(Word(" " + t, start + i * step, start + (i + 1) * step, 0.9) for i, t in enumerate(tokens))
    return Utterance(seq, speaker, start, end, text, 0.9, words)


def call_record(spec: CallSpec, rubrics: tuple[RubricRow, ...]) -> CallRecord:
    source = CallSource(
        path=f"/recordings/{spec.call_id}.wav", call_id=spec.call_id, agent_id=spec.agent_id,
        started_at=spec.started_at, audio_sha256=hashlib.sha256(spec.call_id.encode()).hexdigest(),
        size_bytes=64000, extra={"queue": "appointments"}, metadata_from="manifest",
    )
    if spec.status != "ok":
        return CallRecord(source, "failed", "cannot decode audio: invalid data", "tiny.en", True)
    duration = max(end for _, _, end, _ in spec.utterances) + 1.0
    utterances = tuple(_utterance(i, *u) for i, u in enumerate(spec.utterances))
    analysed = AnalysedCall(
        Transcript(spec.call_id, duration, "stereo", utterances), (),
        {name: MetricValue(*value) for name, value in spec.metrics.items()},
    )
    return CallRecord(
        source, "ok", None, "tiny.en", True, duration_s=duration, channels=2, sample_rate=8000,
        codec="pcm_mulaw", speaker_mode="stereo", analysed=analysed,
        evaluations=tuple(evaluate(spec, rubric) for rubric in rubrics),
    )


def build_db(path: Path, specs: list[CallSpec], rubrics: tuple[RubricRow, ...] = (rubric_row(),)) -> Path:
    """Write a fresh database at ``path`` holding every call of ``specs`` scored against every rubric."""
    with Store(path) as store:
        for rubric in rubrics:
            store.save_rubric(rubric)
        views.create_views(store.con)  # section columns follow the rubrics just saved
        for spec in specs:
            store.save_call(call_record(spec, rubrics), run_id="test-run")
    return path
