"""The `callqa` command line: each command parses options and calls one library function.

Exit codes: 0 all processed; 3 finished but some files failed; 2 usage or configuration error (bad rubric,
bad manifest, unusable DB path), caught before any work; 1 unexpected error; 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from . import __version__
from .errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_UNEXPECTED, CallQAError, RubricError
from .store import DEFAULT_DB, Store

EXIT_CODES_HELP = (
    "Exit codes: 0 all processed; 3 finished but some files failed; 2 usage or configuration error "
    "(bad rubric, manifest or DB path) caught before any work; 1 unexpected error; 130/143 interrupted."
)

app = typer.Typer(
    name="callqa",
    help=f"Offline quality assurance for recorded helpdesk calls.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rubric_app = typer.Typer(help="Work with rubric files.", no_args_is_help=True)
app.add_typer(rubric_app, name="rubric")

reviews_app = typer.Typer(help="Human reviews of scored calls.", no_args_is_help=True)
app.add_typer(reviews_app, name="reviews")

DbOption = typer.Option(
    None, "--db", envvar="CALLQA_DB", help=f"DuckDB file (default: {DEFAULT_DB}; env CALLQA_DB)", show_default=False
)


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _quiet() -> bool:
    from .console import is_quiet

    return is_quiet()


@contextmanager
def _run() -> Iterator[None]:
    """Turn library errors into one clear line on stderr (or one per problem) and a documented exit code."""
    try:
        yield
    except RubricError as exc:
        for problem in exc.problems:
            _err(problem)
        raise typer.Exit(exc.exit_code)
    except CallQAError as exc:
        _err(f"callqa: error: {exc}")
        raise typer.Exit(exc.exit_code)
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        _err("callqa: interrupted")
        raise typer.Exit(130)
    except Exception as exc:  # the last line of defence for cron: one line, exit 1, traceback with -v
        logging.getLogger("callqa").debug("unexpected error", exc_info=True)
        _err(f"callqa: unexpected error: {exc.__class__.__name__}: {exc} (rerun with -v for the traceback)")
        raise typer.Exit(EXIT_UNEXPECTED)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"callqa {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output on stderr (-vv: debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr; no progress bar."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    from .console import configure_logging

    configure_logging(level, quiet)


@app.command()
def score(
    paths: List[Path] = typer.Argument(..., help="Recordings, or folders searched recursively."),
    db: Optional[Path] = DbOption,
    rubric: List[Path] = typer.Option([], "--rubric", help="Rubric YAML (repeatable) (default: shipped clinic rubric)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="CSV: file, agent_id, started_at[, call_id, ...]."),
    name_pattern: Optional[str] = typer.Option(None, "--name-pattern", help="File-name pattern for metadata "
                                               "(default: {agent_id}_{started_at}_{call_id})."),
    agent_channel: Optional[str] = typer.Option(None, "--agent-channel", help="Channel of the agent on stereo: "
                                                "left|right (default: left)."),
    model: Optional[str] = typer.Option(None, "--model", help="CTranslate2 model folder or faster-whisper name "
                                        "(default: the bundled tiny.en)."),
    compute_type: Optional[str] = typer.Option(None, "--compute-type", help="int8, int8_float32, float32 (default: int8)."),
    beam_size: Optional[int] = typer.Option(None, "--beam-size", min=1, help="Beam size (default: 1, greedy)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=0,
                                             help="Batched decoding size, 0 for sequential (default: 0)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=0, help="CPU threads per ASR worker "
                                          "(0: the cores shared out between the workers)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="ASR worker processes, each with its "
                                          "own model (0: one per core; 1: a thread of this process)."),
    no_redact: bool = typer.Option(False, "--no-redact", help="Store transcripts WITHOUT removing patient data."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with defaults for these options."),
    log_file: Optional[Path] = typer.Option(None, "--log-file", help="Append one JSON line per call to this file."),
) -> None:
    """Transcribe, score and store recordings. Already stored recordings are not transcribed again."""
    from .config import load_config
    from .console import BatchReporter
    from .pipeline import score_paths

    with _run():
        options = load_config(config).score_options(
            db=db, rubrics=rubric, manifest=manifest, name_pattern=name_pattern, agent_channel=agent_channel,
            model=model, compute_type=compute_type, beam_size=beam_size, batch_size=batch_size, threads=threads,
            workers=workers,
            no_redact=no_redact,
        )
        stop = threading.Event()
        with _stop_on_signals(stop) as received, BatchReporter(log_file) as reporter:
            summary = score_paths(paths, options, reporter.outcome, stop, command=" ".join(sys.argv))
            reporter.summary(summary)
        if received:
            raise typer.Exit(128 + received[0])
        raise typer.Exit(EXIT_SOME_FAILED if summary.failed else EXIT_OK)


@app.command()
def rescore(
    db: Optional[Path] = DbOption,
    rubric: List[Path] = typer.Option([], "--rubric", help="Rubric YAML (repeatable) (default: shipped clinic rubric)."),
    since: Optional[datetime] = typer.Option(None, "--since", help="Only calls started on or after this date."),
    until: Optional[datetime] = typer.Option(None, "--until", help="Only calls started before this date."),
    agent: List[str] = typer.Option([], "--agent", help="Only this agent's calls (repeatable)."),
) -> None:
    """Score stored calls again from their stored transcripts (no audio, no ASR). Old evaluations are kept."""
    from .rescore import rescore_db

    with _run():
        summary = rescore_db(db, rubric, since, until, agent, command=" ".join(sys.argv))
        if not _quiet():
            typer.echo(f"run {summary.run_id}: rescored {summary.calls} calls against "
                       f"{', '.join(summary.rubrics)} in {summary.wall_seconds:.1f} s")


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """SIGINT/SIGTERM finish the calls in flight, then stop the batch; a second signal aborts at once."""
    received: list[int] = []

    def handler(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()
        _err(f"callqa: {signal.Signals(signum).name} received; finishing the calls in flight (again to abort)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@rubric_app.command("check")
def rubric_check(files: List[Path] = typer.Argument(..., help="Rubric YAML files.")) -> None:
    """Validate rubrics; print every problem as FILE:LINE: path: message (exit 2 if any)."""
    from .rubric import load_rubric

    problems: list[str] = []
    for file in files:
        try:
            rubric = load_rubric(file)
        except RubricError as exc:
            problems.extend(exc.problems)
            continue
        n = sum(len(s.criteria) for s in rubric.sections)
        typer.echo(f"{file}: ok ({rubric.id} v{rubric.version}: {len(rubric.sections)} sections, {n} criteria)")
    with _run():
        if problems:
            raise RubricError(problems)


def _echo(text: str) -> None:
    typer.echo(text, nl=not text.endswith("\n"))


@app.command()
def scorecard(
    agent: List[str] = typer.Option([], "--agent", help="Only this agent (repeatable) (default: all)."),
    since: Optional[datetime] = typer.Option(None, "--since", formats=["%Y-%m-%d"], help="First day, YYYY-MM-DD."),
    until: Optional[datetime] = typer.Option(None, "--until", formats=["%Y-%m-%d"],
                                             help="Last day (included), YYYY-MM-DD."),
    by: Optional[str] = typer.Option(None, "--by", help="One row per day|week|month (default: the whole range)."),
    rubric: Optional[str] = typer.Option(None, "--rubric", help="Rubric id (its latest version) or ID@VERSION "
                                         "(default: every rubric)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="table|csv|json|xlsx|parquet|html "
                                      "(default: from the -o suffix, else table)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE (default: the terminal)."),
    db: Optional[Path] = DbOption,
) -> None:
    """Per-agent scorecards: a table on the terminal, or files for trainers (the html report prints on A4)."""
    from .export import ScorecardQuery, write_scorecard

    with _run(), Store(db, read_only=True) as store:
        query = ScorecardQuery(tuple(agent), since and since.date(), until and until.date(), by, rubric)
        text = write_scorecard(store, query, fmt, output)
        if text is not None:
            _echo(text)


@app.command()
def show(
    call_id: str = typer.Argument(..., help="The call's id (calls.call_id)."),
    fmt: str = typer.Option("text", "--format", help="text|json."),
    db: Optional[Path] = DbOption,
) -> None:
    """One call: transcript with speakers and times, call metrics, every criterion's outcome and evidence."""
    from .query import render_call, show_call

    with _run(), Store(db, read_only=True) as store:
        _echo(render_call(show_call(store, call_id), fmt))


@app.command()
def sql(
    statement: Optional[str] = typer.Argument(None, help="SQL to run; '-' or none: read it from stdin."),
    fmt: str = typer.Option("table", "--format", help="table|csv|json."),
    db: Optional[Path] = DbOption,
) -> None:
    """Run read-only SQL on the database (tables and views: see README); statements that write are refused."""
    from .export import render_frame
    from .query import run_sql

    with _run():
        _echo(render_frame(run_sql(db, sys.stdin.read() if statement in (None, "-") else statement), fmt))


SinceDay = typer.Option(None, "--since", formats=["%Y-%m-%d"], help="First day, YYYY-MM-DD.")
UntilDay = typer.Option(None, "--until", formats=["%Y-%m-%d"], help="Last day (included), YYYY-MM-DD.")
RubricVersion = typer.Option(None, "--rubric", help="Rubric id (its latest version) or ID@VERSION (default: all).")


@app.command()
def sample(
    output: Path = typer.Option(..., "--output", "-o", help="The review form: FILE.csv or FILE.xlsx."),
    per_agent: int = typer.Option(5, "--per-agent", min=1, help="Calls per agent."),
    since: Optional[datetime] = SinceDay, until: Optional[datetime] = UntilDay,
    agent: List[str] = typer.Option([], "--agent", help="Only this agent (repeatable) (default: all)."),
    rubric: Optional[str] = RubricVersion,
    seed: int = typer.Option(0, "--seed", help="Seed of the random share (same seed, same queue)."),
    db: Optional[Path] = DbOption,
) -> None:
    """A review queue: per agent, failed, borderline, uncertain and random calls, as a review form."""
    from .review_queue import SampleQuery, write_sample

    with _run():
        query = SampleQuery(per_agent, since and since.date(), until and until.date(), tuple(agent), rubric, seed)
        summary = write_sample(db, query, output)
        if not _quiet():
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.reasons.items()))
            typer.echo(f"wrote {output}: {summary.calls} calls of {summary.agents} agents, {summary.rows} rows "
                       f"to review ({reasons or 'no calls'})")


@reviews_app.command("import")
def reviews_import(
    file: Path = typer.Argument(..., help="Filled-in review form, .csv or .xlsx."),
    reviewer: Optional[str] = typer.Option(None, "--reviewer", help="Reviewer of rows without one."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (its allow_list for redaction)."),
    db: Optional[Path] = DbOption,
) -> None:
    """Import human reviews; unknown calls or criteria are listed and skipped (exit 3), a bad file imports nothing
    (exit 2)."""
    from .config import load_config
    from .reviews import import_reviews

    with _run():
        summary = import_reviews(db, file, reviewer, load_config(config).allow_list)
        for reason in summary.skipped:
            _err(f"callqa: skipped {file}: {reason}")
        if not _quiet():
            typer.echo(f"imported {summary.imported} reviews from {file} ({summary.replaced} replaced earlier ones, "
                       f"{summary.blank} rows without an outcome, {len(summary.skipped)} skipped)")
        if summary.skipped:
            raise typer.Exit(EXIT_SOME_FAILED)


@app.command()
def calibrate(
    rubric: Optional[str] = RubricVersion, since: Optional[datetime] = SinceDay, until: Optional[datetime] = UntilDay,
    reviewer: Optional[str] = typer.Option(None, "--reviewer", help="Only this reviewer's reviews."),
    fmt: str = typer.Option("table", "--format", help="table|csv|json."),
    db: Optional[Path] = DbOption,
) -> None:
    """Agreement and Cohen's kappa per criterion: automatic outcomes against reviewers, reviewers against each other."""
    from .calibration import CalibrationQuery, calibration_frame, calibration_table
    from .export import render_frame

    with _run():
        frame = calibration_frame(db, CalibrationQuery(rubric, since and since.date(), until and until.date(),
                                                       reviewer))
        _echo(calibration_table(frame) if fmt == "table" else render_frame(frame, fmt))


@rubric_app.command("diff")
def rubric_diff(
    old: str = typer.Argument(..., help="Rubric file or stored version ID@VERSION."),
    new: str = typer.Argument(..., help="Rubric file or stored version ID@VERSION."),
    since: Optional[datetime] = SinceDay, until: Optional[datetime] = UntilDay,
    agent: List[str] = typer.Option([], "--agent", help="Only this agent's calls (repeatable)."),
    fmt: str = typer.Option("table", "--format", help="table|csv|json."),
    db: Optional[Path] = DbOption,
) -> None:
    """Backtest a rubric change on stored calls: calls whose score or verdict changes, pass rates per agent.
    Writes nothing."""
    from .backtest import DiffQuery, render_diff
    from .backtest import rubric_diff as run_diff

    with _run():
        query = DiffQuery(old, new, since and since.date(), until and until.date(), tuple(agent))
        _echo(render_diff(run_diff(db, query), fmt))


def main() -> None:
    try:
        app(prog_name="callqa")
    finally:
        # spaCy's and Presidio's ~100k objects go with the process: spare the collector its last full pass over
        # them (0.2 s at every exit, 1 % of a 15-minute batch).
        gc.freeze()
