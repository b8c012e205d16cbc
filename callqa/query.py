"""Looking into the database: one call with everything stored for it (`callqa show`; ad-hoc SQL is in
sql_guard.py). Loads no pandas."""

from __future__ import annotations

import json

import duckdb

from .errors import NotFoundError, UsageError
from .store import Store
from .text import clock, terminal_safe
from .views import LATEST_RUBRICS

# ---------------------------------------------------------------- callqa show


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    cursor = con.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def show_call(store: Store, call_id: str) -> dict:
    """Everything stored for one call: its row in ``calls``, transcript, metrics and every evaluation."""
    con = store.con
    calls = _rows(con, "SELECT * FROM calls WHERE call_id = ?", [call_id])
    if not calls:
        close = [r[0] for r in con.execute(
            "SELECT call_id FROM calls ORDER BY jaro_winkler_similarity(call_id, ?) DESC LIMIT 3", [call_id]
        ).fetchall()]
        hint = f" (closest: {', '.join(close)})" if close else ""
        raise NotFoundError(f"no call {call_id!r} in {store.path}{hint}")
    call = calls[0]
    call["extra"] = json.loads(call["extra"]) if call["extra"] else {}
    evaluations = _rows(
        con,
        f"""SELECT e.rubric_id, e.rubric_version, e.rubric_sha256, r.name AS rubric_name, r.pass_mark, e.score,
                  e.passed, e.auto_failed, e.evaluated_at,
                  e.rubric_sha256 IN ({LATEST_RUBRICS}) AS latest
           FROM evaluations e LEFT JOIN rubrics r USING (rubric_sha256)
           WHERE e.call_id = ? ORDER BY e.rubric_id, e.rubric_version DESC""",
        [call_id],
    )
    for evaluation in evaluations:
        key = [call_id, evaluation["rubric_sha256"]]
        evaluation["sections"] = {r["section_id"]: r["score"] for r in _rows(
            con, "SELECT section_id, score FROM section_scores WHERE call_id = ? AND rubric_sha256 = ? "
                 "ORDER BY rowid", key)}
        evaluation["criteria"] = [
            {"section_id": r["section_id"], "criterion_id": r["criterion_id"], "outcome": r["outcome"],
             "weight": r["weight"], "value": r["value"],
             "evidence": {"speaker": r["evidence_speaker"], "start_s": r["evidence_start_s"],
                          "end_s": r["evidence_end_s"], "text": r["evidence_text"]}}
            for r in _rows(con, "SELECT * FROM criterion_results WHERE call_id = ? AND rubric_sha256 = ? "
                                "ORDER BY rowid", key)
        ]
    return {
        "call": call,
        "utterances": _rows(con, "SELECT seq, speaker, start_s, end_s, text, confidence FROM utterances "
                                 "WHERE call_id = ? ORDER BY seq", [call_id]),
        "metrics": {r["metric"]: {"value": r["value"], "start_s": r["start_s"], "end_s": r["end_s"]}
                    for r in _rows(con, "SELECT * FROM call_metrics WHERE call_id = ? ORDER BY metric", [call_id])},
        "evaluations": evaluations,
    }


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _evaluation_lines(evaluation: dict) -> list[str]:
    verdict = ("AUTO-FAIL" if evaluation["auto_failed"] else "no score (nothing applied)" if evaluation["score"] is None
               else "PASS" if evaluation["passed"] else "FAIL")
    latest = "" if evaluation["latest"] else "  (older rubric version)"
    lines = [f"Rubric {terminal_safe(evaluation['rubric_id'])} v{evaluation['rubric_version']}: score "
             f"{_number(evaluation['score'])} {verdict} (pass mark {_number(evaluation['pass_mark'])}){latest}"]
    for section_id, score in evaluation["sections"].items():
        lines.append(f"  {terminal_safe(section_id)}: {_number(score)}")
        for result in (r for r in evaluation["criteria"] if r["section_id"] == section_id):
            evidence = result["evidence"]
            where = f" at {clock(evidence['start_s'])}" if evidence["start_s"] is not None else ""
            speaker = f"{terminal_safe(evidence['speaker'])}: " if evidence["speaker"] else ""
            said = f" {speaker}\"{terminal_safe(evidence['text'])}\"" if evidence["text"] else ""
            value = f" value {_number(result['value'])}" if result["value"] is not None else ""
            criterion = terminal_safe(result["criterion_id"])
            lines.append(f"    {result['outcome'].upper():4} {criterion}{value}{where}{said}")
    return lines


def _role_lines(call: dict) -> list[str]:
    """The role decision and its evidence, then anything that asks for a human look."""
    lines = []
    if call.get("agent_channel"):
        confidence = call.get("role_confidence")
        sure = f", confidence {confidence:.2f}" if confidence is not None else ""
        lines.append(f"Roles: agent on the {terminal_safe(call['agent_channel'])} channel "
                     f"({terminal_safe(call.get('role_source'))}{sure})")
        lines += [f"  cue {terminal_safe(cue)}" for cue in call.get("role_cues") or ()]
    lines += [f"Review: {terminal_safe(reason)}" for reason in call.get("review_reasons") or ()]
    return lines


def render_call_text(shown: dict) -> str:
    """``show_call``'s result for a terminal: header, transcript, metrics, then each rubric's criteria."""
    call = shown["call"]
    duration = clock(call["duration_s"]) or "?"
    lines = [
        f"Call {terminal_safe(call['call_id'])}  agent {terminal_safe(call['agent_id'])}  "
        f"started {terminal_safe(call['started_at']) or 'unknown'}  duration {duration}  "
        f"{terminal_safe(call['speaker_mode'])}",
        f"Source {terminal_safe(call['source_path'])}  status {terminal_safe(call['status'])}"
        + (f": {terminal_safe(call['error'])}" if call["error"] else ""),
        *_role_lines(call),
        "",
        "Transcript",
    ]
    lines += [f"  [{clock(u['start_s']):>7}] {terminal_safe(u['speaker']):8} {terminal_safe(u['text'])}"
              for u in shown["utterances"]] or ["  (none stored)"]
    lines += ["", "Metrics"]
    lines += [f"  {terminal_safe(name):28} {_number(m['value'])}"
              + (f" at {clock(m['start_s'])}" if m["start_s"] is not None else "")
              for name, m in shown["metrics"].items()] or ["  (none stored)"]
    for evaluation in shown["evaluations"]:
        lines += ["", *_evaluation_lines(evaluation)]
    return "\n".join(lines)


def render_call(shown: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(shown, indent=2, ensure_ascii=False,
                          default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    if fmt == "text":
        return render_call_text(shown)
    raise UsageError(f"--format {fmt!r}: choose text or json")
