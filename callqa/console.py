"""Terminal output, configured only by the CLI: logging, progress on stderr (TTY only), summary, JSON log lines."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from .errors import UsageError
from .pipeline import CallOutcome, RunSummary
from .text import terminal_safe

_stderr = Console(stderr=True)
_state = {"quiet": False}


def is_quiet() -> bool:
    return _state["quiet"]


class _TerminalSafe(logging.Formatter):
    """Log lines quote file names and metadata: no escape sequence of theirs reaches the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


def configure_logging(level: int, quiet: bool) -> None:
    _state["quiet"] = quiet
    logger = logging.getLogger("callqa")
    logger.handlers.clear()
    handler = RichHandler(console=_stderr, show_time=False, show_path=False, markup=False)
    handler.setFormatter(_TerminalSafe("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class BatchReporter:
    """Shows progress while a batch runs, appends JSON lines for cron, and prints the summary."""

    def __init__(self, log_file: Path | None):
        self.log_path = log_file
        self.log: TextIO | None = None
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> "BatchReporter":
        if self.log_path is not None:
            try:  # the lines name calls and their errors: owner-only, like the database
                descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                os.fchmod(descriptor, 0o600)
                self.log = os.fdopen(descriptor, "a", encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write --log-file {self.log_path}: {exc.strerror or exc}") from exc
        if _stderr.is_terminal and not is_quiet():
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.completed} calls"), BarColumn(),
                                     TextColumn("{task.description}"), TimeElapsedColumn(), console=_stderr,
                                     transient=True)
            self.progress.start()
            self.task = self.progress.add_task("starting", total=None)
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.log is not None:
            self.log.close()

    def outcome(self, outcome: CallOutcome) -> None:
        if self.progress is not None and self.task is not None:
            name = escape(terminal_safe(Path(outcome.path).name, one_line=True))  # neither escapes nor rich markup
            self.progress.update(self.task, advance=1, description=f"{outcome.status}: {name}")
        if self.log is not None:
            line = {
                "time": datetime.now().isoformat(timespec="seconds"), "path": outcome.path,
                "call_id": outcome.call_id, "status": outcome.status, "seconds": round(outcome.seconds, 3),
                "audio_seconds": round(outcome.audio_seconds, 3), "scores": outcome.scores, "error": outcome.error,
            }
            self.log.write(json.dumps(line) + "\n")
            self.log.flush()

    def summary(self, s: RunSummary) -> None:
        if is_quiet():
            return
        lines = [
            f"run {s.run_id}{' (interrupted)' if s.interrupted else ''}: {s.files_seen} files seen, "
            f"{s.processed} transcribed, {s.rescored} rescored, {s.skipped} skipped, {s.failed} failed"
            + (f", {s.in_progress} still being written" if s.in_progress else ""),
            f"audio {s.audio_seconds / 60:.1f} min in {s.wall_seconds:.1f} s wall "
            f"({s.realtime_factor:.1f}x real time; ASR busy {s.asr_seconds:.1f} s)",
        ]
        labels = {"failed": "FAILED", "missing": "MISSING", "in_progress": "WAITING"}
        lines += [f"  {labels[status]} {terminal_safe(path, one_line=True)}: {terminal_safe(reason, one_line=True)}"
                  for status, path, reason in s.problems]
        typer.echo("\n".join(lines), file=sys.stdout)
