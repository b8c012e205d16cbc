"""Human reviews: `callqa reviews import` of a filled-in review form (CSV or XLSX), and the reviewed scores.

A review is one reviewer's outcome (pass/fail/na) for one criterion of one call, keyed by call, rubric id,
criterion and reviewer: importing the same key again replaces the row. A review applies to every version of its
rubric that has the criterion, because it judges what was said on the call, not a rubric's wording.

``evaluations.reviewed_score`` is the score recomputed by the rubric's own arithmetic (``score.totals``) with the
latest review of each criterion in place of the automatic outcome; it is NULL for a call without reviews. It is
refreshed whenever reviews are imported and whenever evaluations of reviewed calls are written (score, rescore).
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Sequence

import duckdb

from .errors import UsageError
from .reviewed_scores import refresh_reviewed_scores
from .store import Store, transaction
from .tables import arrow_table, insert_frame

log = logging.getLogger(__name__)

OUTCOMES = ("pass", "fail", "na")
_OUTCOME_SPELLINGS = {"pass": "pass", "fail": "fail", "na": "na", "n/a": "na"}
REQUIRED_COLUMNS = ("call_id", "criterion_id", "outcome")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

class ReviewFileError(UsageError):
    """The review file cannot be read or is malformed; nothing was imported."""


class ReviewRow(NamedTuple):
    line: int  # line (CSV) or row (XLSX) of the file, the header being 1
    call_id: str
    rubric_id: str | None
    criterion_id: str
    outcome: str
    reviewer: str
    reviewed_at: datetime | None
    comment: str | None


class ImportSummary(NamedTuple):
    imported: int
    replaced: int  # of those, rows that replaced an earlier review of the same reviewer, call and criterion
    blank: int  # form rows with no outcome filled in
    skipped: tuple[str, ...]  # "line N: why", for rows naming an unknown call or criterion


# ---------------------------------------------------------------- reading the file


def unescape_cell(value: str) -> str:
    """Undo the apostrophe a review form puts before a value that would otherwise run as a spreadsheet formula."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES) else value


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    return unescape_cell(text.strip())


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("%s is not UTF-8; reading it as Windows-1252 (Excel's plain CSV)", path)
        return raw.decode("cp1252", errors="replace")


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    text = _decode(path.read_bytes(), path)
    header = text.splitlines()[0] if text.strip() else ""
    # Excel writes ';' where the decimal separator is a comma, and tabs for "Unicode text"
    delimiter = max((",", ";", "\t"), key=header.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows, line = [], 1
    try:
        for record in reader:
            rows.append((line, [_cell(v) for v in record]))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ReviewFileError(f"{path}:{reader.line_num}: not a readable CSV file: {exc}") from exc
    return rows


def _xlsx_rows(path: Path) -> list[tuple[int, list[str]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, XML and KeyError alike for a broken file
        raise ReviewFileError(f"{path}: not a readable XLSX file: {exc}") from exc
    try:
        sheet = book["review"] if "review" in book.sheetnames else book.worksheets[0]
        return [(n, [_cell(v) for v in row]) for n, row in enumerate(sheet.iter_rows(values_only=True), start=1)]
    finally:
        book.close()


def _when(text: str, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReviewFileError(f"{where}: reviewed_at {text!r} is not a date (write 2026-11-20 or "
                              "2026-11-20T14:30)") from None
    return parsed.replace(tzinfo=None) if parsed.tzinfo else parsed


def read_review_file(path: Path, reviewer: str | None = None) -> tuple[list[ReviewRow], int]:
    """The filled-in rows of a review file and the number of rows left blank; raises ReviewFileError."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ReviewFileError(f"{path}: a review file must be .csv or .xlsx")
    try:
        rows = _xlsx_rows(path) if suffix == ".xlsx" else _csv_rows(path)
    except OSError as exc:
        raise ReviewFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    rows = [(line, cells) for line, cells in rows if any(cells)]
    if not rows:
        raise ReviewFileError(f"{path}: the file is empty")
    header = [name.lower() for name in rows[0][1]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if reviewer is None and "reviewer" not in header:
        missing.append("reviewer (or --reviewer NAME)")
    if missing:
        raise ReviewFileError(f"{path}:{rows[0][0]}: missing column(s) {', '.join(missing)} "
                              f"(found: {', '.join(filter(None, header)) or 'none'})")
    reviews, problems, blank = [], [], 0
    seen: dict = {}
    for line, cells in rows[1:]:
        record = dict(zip(header, cells + [""] * (len(header) - len(cells))))
        where = f"{path}:{line}"
        spelled = record["outcome"].lower()
        if not spelled:
            blank += 1
            continue
        outcome = _OUTCOME_SPELLINGS.get(spelled)
        name = record.get("reviewer") or reviewer
        if outcome is None:
            problems.append(f"{where}: outcome {record['outcome']!r}: write pass, fail or na")
        elif not record["call_id"] or not record["criterion_id"]:
            problems.append(f"{where}: an outcome without a call_id and criterion_id")
        elif not name:
            problems.append(f"{where}: no reviewer (fill in the reviewer column or give --reviewer NAME)")
        else:
            try:
                reviewed_at = _when(record["reviewed_at"], where) if record.get("reviewed_at") else None
            except ReviewFileError as exc:
                problems.append(str(exc))
                continue
            row = ReviewRow(line, record["call_id"], record.get("rubric_id") or None, record["criterion_id"],
                            outcome, name, reviewed_at, record.get("comment") or None)
            key = (row.call_id, row.rubric_id, row.criterion_id, row.reviewer)
            if key in seen and seen[key][1:] != (row.outcome, row.comment):
                problems.append(f"{where}: the same reviewer, call and criterion as line {seen[key][0]} with "
                                "another outcome or comment")
            seen[key] = (line, row.outcome, row.comment)
            reviews.append(row)
    if problems:
        raise ReviewFileError("malformed review file, nothing imported:\n" + "\n".join(problems))
    return reviews, blank


# ---------------------------------------------------------------- importing


def _resolve(rows: Sequence[ReviewRow], con: duckdb.DuckDBPyConnection) -> tuple[list[ReviewRow], list[str]]:
    """Rows whose call and criterion are stored, each with its rubric id filled in; the others as reasons."""
    known = con.execute(
        "SELECT DISTINCT cr.call_id, cr.rubric_id, cr.criterion_id FROM criterion_results cr "
        "JOIN calls c USING (call_id) WHERE c.status = 'ok' AND cr.call_id IN (SELECT unnest(?))",
        [sorted({r.call_id for r in rows})]).fetchall()
    rubrics_of: dict[tuple[str, str], set[str]] = {}
    for call_id, rubric_id, criterion_id in known:
        rubrics_of.setdefault((call_id, criterion_id), set()).add(rubric_id)
    calls = {call_id for call_id, _, _ in known}
    kept, skipped = [], []
    for row in rows:
        rubrics = rubrics_of.get((row.call_id, row.criterion_id), set())
        if row.call_id not in calls:
            skipped.append(f"line {row.line}: unknown call {row.call_id!r}")
        elif row.rubric_id is not None and row.rubric_id not in rubrics:
            skipped.append(f"line {row.line}: call {row.call_id!r} has no criterion {row.criterion_id!r} "
                           f"in rubric {row.rubric_id!r}")
        elif not rubrics:
            skipped.append(f"line {row.line}: unknown criterion {row.criterion_id!r} for call {row.call_id!r}")
        elif row.rubric_id is None and len(rubrics) > 1:
            skipped.append(f"line {row.line}: criterion {row.criterion_id!r} is in rubrics "
                           f"{', '.join(sorted(rubrics))}: fill in rubric_id")
        else:
            kept.append(row._replace(rubric_id=row.rubric_id or next(iter(rubrics))))
    return kept, skipped


def _redacted_comments(rows: Sequence[ReviewRow], allow_list: Sequence[str]) -> list[ReviewRow]:
    """Comments go through the transcripts' redaction: reviewers quote callers."""
    texts = [r.comment for r in rows if r.comment]
    if not texts:
        return list(rows)
    from .nlp import load_nlp
    from .redact import Redactor, replace_spans

    redactor = Redactor(load_nlp(), allow_list=tuple(allow_list))
    redacted = iter(replace_spans(t, spans) for t, spans in zip(texts, redactor.find_many(texts)))
    return [r._replace(comment=next(redacted)) if r.comment else r for r in rows]


def import_reviews(db: Path | None, path: Path, reviewer: str | None = None,
                   allow_list: Sequence[str] = ()) -> ImportSummary:
    """Import a filled-in review file; rows naming unknown calls or criteria are skipped and reported."""
    rows, blank = read_review_file(path, reviewer)
    with Store(db) as store:
        kept, skipped = _resolve(rows, store.con)
        kept = _redacted_comments(kept, allow_list)
        now = datetime.now()
        frame = arrow_table(
            [(r.call_id, r.rubric_id, r.criterion_id, r.reviewer, r.outcome, r.reviewed_at or now, r.comment, now,
              str(path)) for r in kept],
            ["call_id", "rubric_id", "criterion_id", "reviewer", "outcome", "reviewed_at", "comment", "imported_at",
             "source_file"])
        with transaction(store.con):
            replaced = 0
            if kept:
                store.con.register("_callqa_reviews", frame)
                try:
                    deleted = store.con.execute(
                        "DELETE FROM human_reviews h USING _callqa_reviews n WHERE h.call_id = n.call_id AND "
                        "h.rubric_id = n.rubric_id AND h.criterion_id = n.criterion_id AND h.reviewer = n.reviewer"
                    ).fetchone()
                    replaced = deleted[0] if deleted else 0
                finally:
                    store.con.unregister("_callqa_reviews")
                insert_frame(store.con, "human_reviews", frame)
            refresh_reviewed_scores(store.con, sorted({r.call_id for r in kept}))
    log.info("imported %d reviews from %s (%d replaced, %d skipped)", len(kept), path, replaced, len(skipped))
    return ImportSummary(len(kept), replaced, blank, tuple(skipped))


# ---------------------------------------------------------------- reviewed scores
