"""Scorecards for trainers as files or terminal text: a table, CSV, JSON, XLSX, Parquet or the self-contained
HTML report (report.py); the data comes from scorecards.py.

Numbers are written unrounded (CSV/JSON/XLSX/Parquet) so that they match the SQL views exactly; only the
terminal table and the HTML report round for reading. Ids and text come from file names, manifests and
sidecars, so the spreadsheet formats (CSV, XLSX) neutralise anything a spreadsheet would run as a formula
(OWASP's CSV-injection rules: a leading ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a ``'``, and
every CSV cell is quoted);
JSON and Parquet keep exact values.

A file is written to a temporary file beside it and renamed over it, so a full disk or a crash never leaves a
half-written report where the previous one was, and an output that is the database itself (or its WAL) is
refused.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

from .errors import UsageError
from .formats import SCORECARD_FORMATS
from .scorecards import ScorecardQuery, criteria_frame, report_data, scorecard_frame
from .store import Store
from .text import terminal_safe

log = logging.getLogger("callqa")

FORMATS = SCORECARD_FORMATS
FILE_ONLY_FORMATS = ("xlsx", "parquet")
_SUFFIX_FORMATS = {".txt": "table", ".csv": "csv", ".json": "json", ".xlsx": "xlsx", ".parquet": "parquet",
                   ".html": "html", ".htm": "html"}
# OWASP's formula triggers, and their full-width forms that some spreadsheet locales also accept
_FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


# ---------------------------------------------------------------- rendering


def spreadsheet_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, with a leading ``'``; other values unchanged."""
    if isinstance(value, str) and value and (value[0] in _FORMULA_START or value.lstrip()[:1] in _FORMULA_START):
        return "'" + value
    return value


def _text_cells(frame: pd.DataFrame, clean: Callable[[object], object]) -> pd.DataFrame:
    """``frame`` with ``clean`` applied to its column names and to every cell of its text columns."""
    shown = frame.rename(columns=lambda c: clean(str(c)))
    text = [c for c, d in shown.dtypes.items() if pd.api.types.is_object_dtype(d) or pd.api.types.is_string_dtype(d)]
    for column in text:
        shown[column] = shown[column].map(clean)
    return shown


def render_frame(frame: pd.DataFrame, fmt: str) -> str:
    """A DataFrame as text: ``table`` (aligned columns), ``csv`` or ``json`` (a list of records)."""
    if fmt == "csv":
        # every cell quoted (OWASP): a bare carriage return in a value would otherwise start a new row
        return _text_cells(frame, spreadsheet_safe).to_csv(index=False, quoting=csv.QUOTE_ALL)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso", double_precision=15, indent=2)
    if fmt == "table":
        rows = f"({len(frame)} row{'s' if len(frame) != 1 else ''})"
        shown = _text_cells(frame, lambda v: v if not isinstance(v, str) else terminal_safe(v, one_line=True))
        if shown.empty:
            return "  ".join(map(str, shown.columns)) + "\n" + rows
        return shown.to_string(index=False, na_rep="NULL") + "\n" + rows
    raise UsageError(f"--format {fmt!r}: choose one of table, csv, json")


def scorecard_table(frame: pd.DataFrame) -> str:
    """The scorecard for a terminal: scores to one decimal, pass rate in percent, the date of each period."""
    if frame.empty:
        return "no scored calls match"
    shown = _text_cells(frame.drop(columns=["rubric_version", "first_call", "last_call"]),
                        lambda v: v if not isinstance(v, str) else terminal_safe(v, one_line=True))
    if not shown["reviewed_calls"].any():  # no human reviews yet: nothing to show beside the scores
        shown = shown.drop(columns=["reviewed_calls", "avg_reviewed_score", "reviewed_pass_rate"])
    for column in shown.columns:
        if column in ("pass_rate", "reviewed_pass_rate"):
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%")
        elif column == "avg_score" or column.startswith("avg_"):
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
        elif column == "period":
            shown[column] = shown[column].dt.strftime("%Y-%m-%d").fillna("no date")
    return shown.to_string(index=False)


def _xlsx_safe(value: object) -> object:
    """A cell openpyxl can write (XML has no control characters) and that never becomes a formula."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return spreadsheet_safe(ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)) if isinstance(value, str) else value


def _write_xlsx(store: Store, query: ScorecardQuery, frame: pd.DataFrame, path: Path) -> None:
    """Two sheets, scorecard and criteria; rates formatted as percentages, scores to one decimal."""
    criteria = criteria_frame(store, query)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for sheet, data in (("scorecard", frame), ("criteria", criteria)):
            data = _text_cells(data, _xlsx_safe)
            data.to_excel(writer, sheet_name=sheet, index=False)
            worksheet = writer.sheets[sheet]
            for col, name in enumerate(data.columns, start=1):
                number_format = ("0.0%" if name in ("pass_rate", "reviewed_pass_rate") else "0.0" if name.startswith("avg_")
                                 else "yyyy-mm-dd" if name == "period" else None)
                worksheet.column_dimensions[worksheet.cell(row=1, column=col).column_letter].width = len(name) + 4
                for row in range(2, len(data) + 2) if number_format else ():
                    worksheet.cell(row=row, column=col).number_format = number_format


def resolve_format(fmt: str | None, output: Path | None) -> str:
    """--format wins; else the output file's suffix decides; else a table on the terminal."""
    if fmt is None:
        if output is None:
            return "table"
        fmt = _SUFFIX_FORMATS.get(output.suffix.lower())
        if fmt is None:
            raise UsageError(f"cannot tell the format from {output.name!r}: add --format {'|'.join(FORMATS)}")
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt in FILE_ONLY_FORMATS and output is None:
        raise UsageError(f"--format {fmt} writes a binary file: give -o FILE")
    return fmt


def _refuse_database(store: Store, output: Path) -> None:
    """An export never replaces the database or its WAL, however the path is spelt (relative, via a symlink, a
    hard link)."""
    database = store.path.resolve()
    target = output.resolve()
    for protected in (database, database.with_name(database.name + ".wal")):
        same = target == protected or (target.exists() and protected.exists() and os.path.samefile(target, protected))
        if same:
            raise UsageError(f"refusing to write the export over {protected}: that is the callqa database"
                             f"{' WAL' if protected != database else ''}; choose another -o file")


def write_atomically(output: Path, write: Callable[[Path], object]) -> None:
    """Let ``write`` fill an owner-only temporary file beside ``output``, then rename it over ``output``."""
    folder = output.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {output}: folder {folder} does not exist")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=folder)  # mode 0600
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        os.replace(temporary, output)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}; the previous file is unchanged") from exc
    finally:
        temporary.unlink(missing_ok=True)


def write_scorecard(store: Store, query: ScorecardQuery, fmt: str | None = None,
                    output: Path | None = None) -> str | None:
    """Write the scorecard to ``output`` in ``fmt``; without ``output``, return it as text for the terminal."""
    fmt = resolve_format(fmt, output)
    if output is not None:
        _refuse_database(store, output)
    if fmt == "html":
        from .report import render_report

        text = render_report(report_data(store, query))
    else:
        frame = scorecard_frame(store, query)
        if fmt in FILE_ONLY_FORMATS:
            assert output is not None  # resolve_format refuses these formats without -o
            if fmt == "xlsx":
                write_atomically(output, lambda path: _write_xlsx(store, query, frame, path))
            else:
                write_atomically(output, lambda path: frame.to_parquet(path, index=False))
            log.info("wrote %s (%d rows)", output, len(frame))
            return None
        text = scorecard_table(frame) if fmt == "table" else render_frame(frame, fmt)
    if output is None:
        return text
    write_atomically(output, lambda path: path.write_text(text, encoding="utf-8"))
    log.info("wrote %s", output)
    return None
