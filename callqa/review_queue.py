"""`callqa sample`: a review queue, written as a review form (CSV or XLSX) that `callqa reviews import` reads back.

Per agent, up to N calls are chosen, each for a stated reason. A share of the calls (a fifth, at least one when
N >= 2) is drawn at random from the agent's other calls, so reviewers also see ordinary calls; the other places go
round the reasons in turn, the strongest case of each first: failed calls (auto-fails first, then the lowest
scores), calls near the pass mark (the closest first), calls whose speakers or roles are uncertain (mono or
estimated speakers; ``calls.role_confidence`` and ``calls.review_reasons`` where the database has them). Places a
reason cannot fill go to random calls. The draw is seeded: the same seed, data and options give the same queue.
"""

from __future__ import annotations

import csv
import logging
import random
from collections import Counter
from datetime import date
from pathlib import Path
from typing import NamedTuple, Sequence

import pandas as pd

from .errors import UsageError
from .export import write_atomically
from .report import clock
from .reviews import FORMULA_PREFIXES
from .scorecards import ScorecardQuery, criterion_names, select_calls
from .store import Store

log = logging.getLogger(__name__)

NEAR_PASS_MARK = 5.0  # points either side of the pass mark
LOW_ROLE_CONFIDENCE = 0.7
RANDOM_SHARE = 0.2
FORM_COLUMNS = ("call_id", "agent_id", "started_at", "reason", "rubric_id", "rubric_version", "score", "passed",
                "section_id", "criterion_id", "criterion", "auto_outcome", "evidence_at", "evidence_speaker",
                "evidence", "outcome", "reviewer", "comment")
REASONS = ("failed", "near pass mark", "uncertain speakers", "random")


class SampleQuery(NamedTuple):
    per_agent: int = 5
    since: date | None = None
    until: date | None = None
    agents: tuple[str, ...] = ()
    rubric: str | None = None
    seed: int = 0


class SampleSummary(NamedTuple):
    calls: int
    rows: int
    agents: int
    reasons: dict[str, int]  # selection reason -> calls


class Candidate(NamedTuple):
    call_id: str
    agent_id: str
    reasons: tuple[tuple[str, str, float], ...]  # (category, label, priority: lower first)


def spreadsheet_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe (reviews import drops it)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _optional_columns(store: Store) -> list[str]:
    """Columns of ``calls`` that newer callqa versions add and the queue uses when present."""
    present = {d[0] for d in store.con.execute("SELECT * FROM calls LIMIT 0").description}
    return [c for c in ("role_confidence", "review_reasons") if c in present]


def _reasons(row: dict) -> list[tuple[str, str, float]]:
    found = []
    if row["auto_failed"]:
        found.append(("failed", "auto-failed", -1.0))
    elif row["passed"] is False:
        found.append(("failed", f"failed ({row['score']:.1f})", row["score"]))
    if row["score"] is not None and not row["auto_failed"] and abs(row["score"] - row["pass_mark"]) <= NEAR_PASS_MARK:
        found.append(("near pass mark", f"near pass mark ({row['score']:.1f} vs {row['pass_mark']:g})",
                      abs(row["score"] - row["pass_mark"])))
    if row["speaker_mode"] not in (None, "stereo"):
        found.append(("uncertain speakers", f"speakers estimated ({row['speaker_mode']})", 0.5))
    confidence = row.get("role_confidence")
    if confidence is not None and not pd.isna(confidence) and confidence < LOW_ROLE_CONFIDENCE:
        found.append(("uncertain speakers", f"low role confidence ({confidence:.2f})", float(confidence) - 1))
    noted = row.get("review_reasons")  # a list of reasons (VARCHAR[]) where the database has the column
    noted = noted if noted is None or isinstance(noted, str) else "; ".join(map(str, noted))
    if noted:
        found.append(("uncertain speakers", noted, 0.0))
    return found


def candidates(store: Store, query: SampleQuery) -> tuple[list[Candidate], pd.DataFrame]:
    """Every selected call with its reasons, and the selected evaluations (``call_scores`` rows)."""
    if query.per_agent < 1:
        raise UsageError("--per-agent must be at least 1")
    selection = select_calls(store, ScorecardQuery(query.agents, query.since, query.until, None, query.rubric))
    extra = "".join(f", c.{column}" for column in _optional_columns(store))
    frame = store.con.execute(
        f"SELECT cs.*, c.speaker_mode{extra} FROM ({selection.sql}) cs JOIN calls c USING (call_id) "
        "ORDER BY cs.agent_id, cs.started_at NULLS LAST, cs.call_id, cs.rubric_id", selection.params).df()
    found: dict[str, Candidate] = {}
    for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
        previous = found.get(row["call_id"])
        reasons = (previous.reasons if previous else ()) + tuple(_reasons(row))
        found[row["call_id"]] = Candidate(row["call_id"], row["agent_id"], reasons)
    return list(found.values()), frame


def choose(calls: Sequence[Candidate], per_agent: int, seed: int) -> list[tuple[Candidate, str]]:
    """(call, the reason it was chosen for) for up to ``per_agent`` calls of each agent."""
    chosen: list[tuple[Candidate, str]] = []
    by_agent: dict[str, list[Candidate]] = {}
    for call in calls:
        by_agent.setdefault(call.agent_id, []).append(call)
    for agent, agent_calls in sorted(by_agent.items()):
        rng = random.Random(f"{seed}:{agent}")  # an agent's queue does not depend on the other agents
        random_places = max(1, round(per_agent * RANDOM_SHARE)) if per_agent >= 2 else 0
        queues = {category: sorted(((priority, call.call_id, label, call) for call in agent_calls
                                    for cat, label, priority in call.reasons if cat == category),
                                   key=lambda item: item[:2])
                  for category in REASONS[:-1]}
        taken: dict[str, tuple[Candidate, str]] = {}
        while len(taken) < min(per_agent - random_places, len(agent_calls)) and any(queues.values()):
            for category in REASONS[:-1]:
                queue = queues[category]
                while queue and queue[0][1] in taken:
                    queue.pop(0)
                if queue and len(taken) < per_agent - random_places:
                    _, call_id, label, call = queue.pop(0)
                    taken[call_id] = (call, label)
        rest = sorted((c for c in agent_calls if c.call_id not in taken), key=lambda c: c.call_id)
        rng.shuffle(rest)
        for call in rest[:per_agent - len(taken)]:
            taken[call.call_id] = (call, "random")
        chosen += taken.values()
    return chosen


def form_rows(store: Store, chosen: Sequence[tuple[Candidate, str]], evaluations: pd.DataFrame) -> pd.DataFrame:
    """One row per chosen call, rubric and scored criterion, with the automatic outcome and its evidence."""
    reason_of = {call.call_id: "; ".join(dict.fromkeys([label, *(r[1] for r in call.reasons)]))
                 for call, label in chosen}
    picked = evaluations[evaluations["call_id"].isin(list(reason_of))]
    if picked.empty:
        return pd.DataFrame(columns=list(FORM_COLUMNS))
    keys = picked[["call_id", "rubric_sha256"]]
    store.con.register("_callqa_sample", keys)
    try:
        results = store.con.execute(
            """SELECT cr.*, cr.rowid AS position FROM criterion_results cr
               JOIN _callqa_sample k USING (call_id, rubric_sha256) WHERE cr.weight > 0""").df()
        names = {sha: criterion_names(source) for sha, source in store.con.execute(
            "SELECT rubric_sha256, source FROM rubrics WHERE rubric_sha256 IN (SELECT rubric_sha256 FROM "
            "_callqa_sample)").fetchall()}
    finally:
        store.con.unregister("_callqa_sample")
    merged = picked.merge(results, on=["call_id", "rubric_id", "rubric_sha256"])
    merged = merged.sort_values(["agent_id", "started_at", "call_id", "rubric_id", "position"], na_position="last")
    form = pd.DataFrame({
        "call_id": merged["call_id"], "agent_id": merged["agent_id"], "started_at": merged["started_at"],
        "reason": merged["call_id"].map(reason_of), "rubric_id": merged["rubric_id"],
        "rubric_version": merged["rubric_version"], "score": merged["score"].round(1), "passed": merged["passed"],
        "section_id": merged["section_id"], "criterion_id": merged["criterion_id"],
        "criterion": [names.get(sha, {}).get(cid, cid) for sha, cid in zip(merged["rubric_sha256"],
                                                                          merged["criterion_id"])],
        "auto_outcome": merged["outcome"], "evidence_at": merged["evidence_start_s"].map(clock),
        "evidence_speaker": merged["evidence_speaker"], "evidence": merged["evidence_text"],
        "outcome": "", "reviewer": "", "comment": "",
    })
    return form.reset_index(drop=True)


def _cells(form: pd.DataFrame) -> list[list[object]]:
    rows = []
    for record in form.astype(object).where(form.notna(), None).itertuples(index=False):
        rows.append([spreadsheet_safe(v.isoformat(sep=" ") if hasattr(v, "isoformat") else v) for v in record])
    return rows


def _write_csv(form: pd.DataFrame, path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:  # the BOM makes Excel read UTF-8
        writer = csv.writer(handle)
        writer.writerow(form.columns)
        writer.writerows(_cells(form))


def _write_xlsx(form: pd.DataFrame, path: Path) -> None:
    import openpyxl
    from openpyxl.worksheet.datavalidation import DataValidation

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "review"
    sheet.append(list(form.columns))
    for row in _cells(form):
        sheet.append(row)
    for cell in sheet[1]:
        if isinstance(cell.value, str):
            sheet.column_dimensions[cell.column_letter].width = max(10, min(48, len(cell.value) + 4))
    sheet.freeze_panes = "A2"
    column = sheet.cell(row=1, column=form.columns.get_loc("outcome") + 1).column_letter
    choices = DataValidation(type="list", formula1='"pass,fail,na"', allow_blank=True)
    sheet.add_data_validation(choices)
    choices.add(f"{column}2:{column}{max(2, len(form) + 1)}")
    book.save(path)


def write_sample(db: Path | None, query: SampleQuery, output: Path) -> SampleSummary:
    """Choose the calls and write the review form to ``output`` (.csv or .xlsx); the database is only read."""
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise UsageError(f"-o {output}: the review form is a .csv or .xlsx file")
    with Store(db, read_only=True) as store:
        calls, evaluations = candidates(store, query)
        chosen = choose(calls, query.per_agent, query.seed)
        form = form_rows(store, chosen, evaluations)
    write = _write_xlsx if suffix == ".xlsx" else _write_csv
    write_atomically(output, lambda temporary: write(form, temporary))
    reasons = Counter("random" if label == "random" else next(r[0] for r in call.reasons if r[1] == label)
                      for call, label in chosen)
    log.info("wrote %s: %d calls, %d rows", output, len(chosen), len(form))
    return SampleSummary(len(chosen), len(form), len({call.agent_id for call, _ in chosen}), dict(reasons))
