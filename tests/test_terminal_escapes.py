"""Escape sequences in file names, manifest/sidecar values and transcripts never reach a terminal raw (issue 16,
item 12): tables, `show`, error lines and their hints, log lines, the progress bar and the summary."""

from __future__ import annotations

import io
import logging
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from callqa import console
from callqa.cli import app
from callqa.pipeline import CallOutcome, RunSummary
from callqa.text import terminal_safe
from db_helpers import CallSpec, build_db

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title; rich never writes it itself
CLEAR = "\x1b[2J\x9b2J\u202eevil"
NAME = f"agent{TITLE}{CLEAR}[/][bold]"  # [/] would also crash rich's markup parser
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def _assert_clean(text: str) -> None:
    assert not any(ch in text for ch in RAW), repr(text)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    call = CallSpec(f"call{TITLE}", NAME, datetime(2024, 5, 6, 9), {"greeting": "pass"},
                    utterances=(("agent", 0.5, 3.0, f"Hello {CLEAR} there"),))
    return build_db(tmp_path_factory.mktemp("escapes") / "calls.duckdb", [call])


@pytest.mark.parametrize("args", [
    ["scorecard"], ["scorecard", "--by", "day"], ["show", f"call{TITLE}"],
    ["sql", "SELECT agent_id, call_id FROM calls"], ["sql", "SELECT * FROM utterances"],
])
def test_tables_and_show_are_terminal_safe(db, args):
    result = CliRunner().invoke(app, [*args, "--db", str(db)])
    assert result.exit_code == 0, result.stderr
    _assert_clean(result.stdout)
    assert "?]0;pwned?" in result.stdout


def test_error_lines_and_their_hints_are_terminal_safe(db):
    result = CliRunner().invoke(app, ["show", "cal", "--db", str(db)])  # the hint lists the closest call ids
    assert result.exit_code == 2 and "closest: call?]0;pwned?" in result.stderr
    _assert_clean(result.stderr)
    result = CliRunner().invoke(app, ["scorecard", "--agent", f"x{TITLE}", "--db", str(db)])
    assert result.exit_code == 2
    _assert_clean(result.stderr)


def test_log_lines_progress_bar_and_summary_are_terminal_safe(monkeypatch, tmp_path, capsys):
    screen = io.StringIO()
    monkeypatch.setattr(console, "_stderr", Console(file=screen, force_terminal=True, width=200))
    console.configure_logging(logging.INFO, quiet=False)
    logging.getLogger("callqa.test").warning("skipped %s", f"/calls/{NAME}.wav")
    path = f"/calls/{NAME}.wav"
    with console.BatchReporter(None) as reporter:
        reporter.outcome(CallOutcome(path, "c1", "failed", 0.1, 1.0, {}, f"cannot decode {CLEAR}"))
        reporter.progress.refresh()
        reporter.summary(RunSummary("r1", 1, 0, 0, 0, 1, 0, (("failed", path, f"cannot decode {CLEAR}"),),
                                    1.0, 1.0, 0.5, False))
    shown = screen.getvalue() + capsys.readouterr().out
    assert TITLE not in shown and "\x9b" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert "?]0;pwned?" in shown and "[/][bold]" in shown  # shown, as text


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_terminal_safe_leaves_no_control_character(text):
    safe = terminal_safe(text, one_line=True)
    assert len(safe) == len(text)
    assert all(ch.isprintable() or ch == " " or not (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0) for ch in safe)
    assert not any(ch in safe for ch in "\n\t\x1b\x9b\u202e\u2066")
