"""`callqa rubric diff OLD NEW`: what a rubric change would do to stored calls, computed in memory; writes nothing.

OLD and NEW are rubric files or stored versions (``ID@VERSION``). A side whose exact rubric (by hash) is already
stored with an evaluation of every selected call reads those stored evaluations, which are the scores users
see; any other side is evaluated from the stored tokens by the rescoring machinery (``Scorer.evaluate_stored``,
forked workers included), exactly as ``callqa rescore`` would, but nothing is written and the file is opened
read-only.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple, Sequence

import pandas as pd

from .daterange import DateRange
from .errors import NotFoundError, UsageError
from .export import render_frame
from .rescore import select_calls
from .reviewed_scores import stored_rubric
from .rubric import Rubric, load_rubric
from .store import Store

log = logging.getLogger(__name__)


class DiffQuery(NamedTuple):
    old: str
    new: str
    since: date | None = None
    until: date | None = None  # last day included
    agents: tuple[str, ...] = ()


class Side(NamedTuple):
    score: float | None
    passed: bool | None
    outcomes: dict[str, str]  # criterion id -> outcome


class CallDiff(NamedTuple):
    call_id: str
    agent_id: str
    started_at: datetime | None
    old_score: float | None
    new_score: float | None
    old_passed: bool | None
    new_passed: bool | None
    changed_criteria: tuple[tuple[str, str | None, str | None], ...]  # (criterion id, old outcome, new outcome)


class DiffResult(NamedTuple):
    old: Rubric
    new: Rubric
    compared: int  # calls evaluated on both sides
    calls: tuple[CallDiff, ...]  # calls whose score or verdict changes
    agents: pd.DataFrame  # agent_id, calls, old/new pass rate and mean score


def resolve_rubric(spec: str, store: Store) -> Rubric:
    """A rubric file, else a stored version written ``ID@VERSION``."""
    path = Path(spec)
    if path.is_file():
        return load_rubric(path)
    rubric_id, at, version = spec.rpartition("@")
    if not at or not version.isdigit():
        raise UsageError(f"{spec!r} is neither a rubric file nor a stored rubric version ID@VERSION")
    row = store.con.execute(
        "SELECT rubric_sha256, source FROM rubrics WHERE rubric_id = ? AND version = ? "
        "ORDER BY first_used_at DESC LIMIT 1", [rubric_id, int(version)]).fetchone()
    if row is None:
        stored = sorted({f"{r}@{v}" for r, v in store.con.execute("SELECT rubric_id, version FROM rubrics").fetchall()})
        raise NotFoundError(f"no rubric {spec!r} in {store.path} (stored: {', '.join(stored) or 'none'})")
    return stored_rubric(row[1], row[0])


def _stored_sides(store: Store, sha256: str, call_ids: Sequence[str]) -> dict[str, Side] | None:
    """The stored evaluations against this rubric version, if every selected call has one."""
    evaluations = store.con.execute(
        "SELECT call_id, score, passed FROM evaluations WHERE rubric_sha256 = ? AND call_id IN (SELECT unnest(?))",
        [sha256, list(call_ids)]).fetchall()
    if len(evaluations) < len(call_ids):
        return None
    outcomes: dict[str, dict[str, str]] = {}
    for call_id, criterion_id, outcome in store.con.execute(
            "SELECT call_id, criterion_id, outcome FROM criterion_results WHERE rubric_sha256 = ? "
            "AND call_id IN (SELECT unnest(?))", [sha256, list(call_ids)]).fetchall():
        outcomes.setdefault(call_id, {})[criterion_id] = outcome
    return {call_id: Side(score, passed, outcomes.get(call_id, {})) for call_id, score, passed in evaluations}


def _evaluated_sides(store: Store, rubrics: Sequence[Rubric], call_ids: Sequence[str]) -> dict[str, dict[str, Side]]:
    """sha256 -> call_id -> Side, evaluated in memory from the stored tokens."""
    from .scoring import Scorer

    scorer = Scorer.from_rubrics(rubrics, redact=False)  # stored text is already redacted; nothing is quoted
    sides: dict[str, dict[str, Side]] = {r.sha256: {} for r in rubrics}
    for _, evaluations in scorer.evaluate_stored(store, call_ids):
        for e in evaluations:
            sides[e.rubric_sha256][e.call_id] = Side(e.score, e.passed, {r.criterion_id: r.outcome for r in e.results})
    return sides


def _same_score(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < 1e-9


def _agent_rates(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=["agent_id", "calls", "old_pass_rate", "new_pass_rate", "old_avg_score",
                                     "new_avg_score", "changed_calls"])
    grouped = frame.groupby("agent_id", sort=True)
    return pd.DataFrame({
        "calls": grouped.size(),
        "old_pass_rate": grouped["old_passed"].apply(lambda s: s.dropna().astype(float).mean()),
        "new_pass_rate": grouped["new_passed"].apply(lambda s: s.dropna().astype(float).mean()),
        "old_avg_score": grouped["old_score"].mean(), "new_avg_score": grouped["new_score"].mean(),
        "changed_calls": grouped["changed"].sum(),
    }).reset_index()


def rubric_diff(db: Path | None, query: DiffQuery) -> DiffResult:
    """Compare OLD and NEW on the selected stored calls; the database is opened read-only."""
    dates = DateRange(query.since, query.until)
    dates.check()
    with Store(db, read_only=True) as store:
        old, new = resolve_rubric(query.old, store), resolve_rubric(query.new, store)
        unknown = set(query.agents) - {a for (a,) in store.con.execute("SELECT DISTINCT agent_id FROM calls").fetchall()}
        if unknown:
            raise NotFoundError(f"no calls of agent {', '.join(map(repr, sorted(unknown)))} in {store.path}")
        call_ids = select_calls(store, dates, query.agents)
        info = {call_id: (agent, started) for call_id, agent, started in store.con.execute(
            "SELECT call_id, agent_id, started_at FROM calls WHERE call_id IN (SELECT unnest(?))",
            [call_ids]).fetchall()}
        sides = {r.sha256: _stored_sides(store, r.sha256, call_ids) for r in (old, new)}
        missing = [r for r in {old.sha256: old, new.sha256: new}.values() if sides[r.sha256] is None]
        if missing:
            sides.update(_evaluated_sides(store, missing, call_ids))
    rows, changed = [], []
    for call_id in call_ids:
        a, b = sides[old.sha256][call_id], sides[new.sha256][call_id]  # type: ignore[index]  # filled above
        differs = not _same_score(a.score, b.score) or a.passed != b.passed
        agent, started = info[call_id]
        rows.append((agent, a.score, b.score, a.passed, b.passed, differs))
        if differs:
            flips = tuple((cid, a.outcomes.get(cid), b.outcomes.get(cid))
                          for cid in dict.fromkeys([*a.outcomes, *b.outcomes])
                          if a.outcomes.get(cid) != b.outcomes.get(cid))
            changed.append(CallDiff(call_id, agent, started, a.score, b.score, a.passed, b.passed, flips))
    frame = pd.DataFrame(rows, columns=["agent_id", "old_score", "new_score", "old_passed", "new_passed", "changed"])
    log.info("rubric diff: %d calls compared, %d change", len(call_ids), len(changed))
    return DiffResult(old, new, len(call_ids), tuple(changed), _agent_rates(frame))


def _flips(diff: CallDiff) -> str:
    return "; ".join(f"{cid}: {old or '-'} -> {new or '-'}" for cid, old, new in diff.changed_criteria)


def calls_frame(result: DiffResult) -> pd.DataFrame:
    return pd.DataFrame([{**d._asdict(), "changed_criteria": _flips(d)} for d in result.calls],
                        columns=list(CallDiff._fields))


def render_diff(result: DiffResult, fmt: str) -> str:
    """json: the changed calls as a list of objects; csv: one row per changed call; table: calls, then agents."""
    if fmt == "json":
        return json.dumps([{**d._asdict(), "started_at": d.started_at and d.started_at.isoformat(),
                            "changed_criteria": [{"criterion_id": c, "old": o, "new": n}
                                                 for c, o, n in d.changed_criteria]}
                           for d in result.calls], indent=2, ensure_ascii=False)
    if fmt == "csv":
        return render_frame(calls_frame(result), "csv")
    if fmt != "table":
        raise UsageError(f"--format {fmt!r}: choose one of table, csv, json")
    head = (f"{result.old.id} v{result.old.version} -> {result.new.id} v{result.new.version}: "
            f"{len(result.calls)} of {result.compared} calls change score or verdict")
    calls = calls_frame(result)
    for column in ("old_score", "new_score"):
        calls[column] = calls[column].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    calls = calls.drop(columns=["started_at"])
    agents = result.agents.copy()
    for column in ("old_pass_rate", "new_pass_rate"):
        agents[column] = agents[column].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%")
    for column in ("old_avg_score", "new_avg_score"):
        agents[column] = agents[column].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    parts = [head, ""]
    if not calls.empty:
        parts += [calls.to_string(index=False, na_rep="-"), ""]
    parts.append(agents.to_string(index=False) if not agents.empty else "no stored calls match")
    return "\n".join(parts)
