"""Looking into the database: one call with everything stored for it (`callqa show`), and analysts' ad-hoc SQL
on a connection that cannot write (`callqa sql`).

`run_sql` has three guards, because a read-only DuckDB connection still writes *other* files (COPY ... TO,
ATTACH, INSTALL, EXPORT DATABASE): every statement's type is checked before the file is opened, and only reads
run; the connection is read-only; and file/network access is switched off and the configuration locked, so a
read that DuckDB types as SELECT still cannot touch anything but the database.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd

from .errors import NotFoundError, ReadOnlyError, UsageError
from .report import clock
from .store import Store
from .views import LATEST_RUBRICS

READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT})  # also DESCRIBE, SHOW, SUMMARIZE, PRAGMA reads
_EXPLAIN = re.compile(r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*EXPLAIN\s+(?:ANALY[SZ]E\s+|\([^)]*\)\s*)?",
                      re.IGNORECASE | re.DOTALL)
_CONTROL = dict.fromkeys([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F], "?")  # no terminal escapes from text


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


def _clean(value: object) -> str:
    return "" if value is None else str(value).translate(_CONTROL)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _evaluation_lines(evaluation: dict) -> list[str]:
    verdict = ("AUTO-FAIL" if evaluation["auto_failed"] else "no score (nothing applied)" if evaluation["score"] is None
               else "PASS" if evaluation["passed"] else "FAIL")
    latest = "" if evaluation["latest"] else "  (older rubric version)"
    lines = [f"Rubric {_clean(evaluation['rubric_id'])} v{evaluation['rubric_version']}: score "
             f"{_number(evaluation['score'])} {verdict} (pass mark {_number(evaluation['pass_mark'])}){latest}"]
    for section_id, score in evaluation["sections"].items():
        lines.append(f"  {_clean(section_id)}: {_number(score)}")
        for result in (r for r in evaluation["criteria"] if r["section_id"] == section_id):
            evidence = result["evidence"]
            where = f" at {clock(evidence['start_s'])}" if evidence["start_s"] is not None else ""
            speaker = f"{_clean(evidence['speaker'])}: " if evidence["speaker"] else ""
            said = f" {speaker}\"{_clean(evidence['text'])}\"" if evidence["text"] else ""
            value = f" value {_number(result['value'])}" if result["value"] is not None else ""
            lines.append(f"    {result['outcome'].upper():4} {_clean(result['criterion_id'])}{value}{where}{said}")
    return lines


def _role_lines(call: dict) -> list[str]:
    """The role decision and its evidence, then anything that asks for a human look."""
    lines = []
    if call.get("agent_channel"):
        confidence = call.get("role_confidence")
        sure = f", confidence {confidence:.2f}" if confidence is not None else ""
        lines.append(f"Roles: agent on the {_clean(call['agent_channel'])} channel "
                     f"({_clean(call.get('role_source'))}{sure})")
        lines += [f"  cue {_clean(cue)}" for cue in call.get("role_cues") or ()]
    lines += [f"Review: {_clean(reason)}" for reason in call.get("review_reasons") or ()]
    return lines


def render_call_text(shown: dict) -> str:
    """``show_call``'s result for a terminal: header, transcript, metrics, then each rubric's criteria."""
    call = shown["call"]
    duration = clock(call["duration_s"]) or "?"
    lines = [
        f"Call {_clean(call['call_id'])}  agent {_clean(call['agent_id'])}  "
        f"started {_clean(call['started_at']) or 'unknown'}  duration {duration}  {_clean(call['speaker_mode'])}",
        f"Source {_clean(call['source_path'])}  status {_clean(call['status'])}"
        + (f": {_clean(call['error'])}" if call["error"] else ""),
        *_role_lines(call),
        "",
        "Transcript",
    ]
    lines += [f"  [{clock(u['start_s']):>7}] {_clean(u['speaker']):8} {_clean(u['text'])}"
              for u in shown["utterances"]] or ["  (none stored)"]
    lines += ["", "Metrics"]
    lines += [f"  {_clean(name):28} {_number(m['value'])}" + (f" at {clock(m['start_s'])}" if m["start_s"] is not None
                                                                 else "")
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


# ---------------------------------------------------------------- callqa sql


def _refusal(statement: duckdb.Statement) -> str | None:
    """Why a statement may not run, or None for a read."""
    kind = statement.type
    if kind in READ_STATEMENTS:
        return None
    if kind == duckdb.StatementType.EXPLAIN:  # EXPLAIN ANALYZE runs its statement, so that must be a read too
        inner = _EXPLAIN.sub("", statement.query, count=1)
        try:
            inner_statements = duckdb.extract_statements(inner)
        except duckdb.Error:
            return "an EXPLAIN whose statement cannot be checked"
        return next((reason for s in inner_statements if (reason := _refusal(s))), None)
    return f"a {kind.name} statement"


def check_read_only(sql: str) -> list[duckdb.Statement]:
    """Parse ``sql``; raise ReadOnlyError unless every statement only reads."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(f"SQL syntax: {str(exc).splitlines()[0]}") from exc
    if not statements:
        raise UsageError("no SQL statement given")
    for statement in statements:
        reason = _refusal(statement)
        if reason:
            snippet = " ".join(statement.query.split())[:60]
            raise ReadOnlyError(
                f"refused {reason} ({snippet!r}): callqa sql only reads - use SELECT, WITH, DESCRIBE, SHOW, "
                "SUMMARIZE or EXPLAIN; nothing was run and the database is unchanged"
            )
    return statements


def run_sql(db_path: Path | str | None, sql: str) -> pd.DataFrame:
    """Run read-only SQL against the callqa database; the last statement's rows as a DataFrame."""
    statements = check_read_only(sql)
    with Store(db_path, read_only=True) as store:
        store.con.execute("SET enable_external_access = false")
        store.con.execute("SET lock_configuration = true")
        try:
            for statement in statements[:-1]:
                store.con.execute(statement)
            return store.con.execute(statements[-1]).df()
        except duckdb.PermissionException as exc:
            raise ReadOnlyError(f"callqa sql reads only the callqa database; files and network are off: "
                                f"{str(exc).splitlines()[0]}") from exc
        except duckdb.Error as exc:
            raise UsageError(f"SQL: {str(exc).splitlines()[0]}") from exc
