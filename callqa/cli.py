"""The `callqa` command line: each command parses options and calls one library function.

Exit codes: 0 all processed; 3 finished but some files failed; 2 usage or configuration error (bad rubric,
bad manifest, unusable DB path), caught before any work; 1 unexpected error; 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, List, Optional

import typer

from . import __version__
from .cli_app import DbOption, RubricFiles, Since, Until, _days, _echo, _err, _quiet, _run, app, rubric_app
from .errors import EXIT_OK, EXIT_SOME_FAILED, RubricError
from .executor import ExecutorName
from .formats import CallFormat, FrameFormat, ScorecardFormat
from .records import AgentChannel
from .store import Store
from .views import Period


def _version(value: bool) -> None:
    if value:
        typer.echo(f"callqa {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log output on stderr (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr; no progress bar.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version.")] = False,
) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    from .console import configure_logging

    configure_logging(level, quiet)


@app.command()
def score(
    paths: Annotated[List[Path], typer.Argument(help="Recordings, or folders searched recursively.")],
    db: DbOption = None,
    rubric: RubricFiles = [],
    manifest: Annotated[Optional[Path], typer.Option(
        "--manifest", help="CSV: file, agent_id, started_at[, call_id, ...].")] = None,
    name_pattern: Annotated[Optional[str], typer.Option(
        "--name-pattern", help="File-name pattern for metadata (default: {agent_id}_{started_at}_{call_id}).")] = None,
    agent_channel: Annotated[Optional[AgentChannel], typer.Option(
        "--agent-channel",
        help="Channel of the agent on stereo (default: auto, decided per call from what is said; a "
        "manifest/sidecar agent_channel column wins).")] = None,
    channels: Annotated[Optional[str], typer.Option(
        "--channels", help="The two speaker channels (left,right) of files with more than two, e.g. 0,2 "
        "(default: such files fail).")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="CTranslate2 model folder or faster-whisper name (default: the bundled tiny.en).")] = None,
    compute_type: Annotated[Optional[str], typer.Option(
        "--compute-type", help="int8, int8_float32, float32 (default: int8).")] = None,
    beam_size: Annotated[Optional[int], typer.Option(
        "--beam-size", min=1, help="Beam size (default: 1, greedy).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", min=0, help="Batched decoding size, 0 for sequential (default: 0).")] = None,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=0, help="CPU threads per ASR worker (0: the cores shared out between the workers).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", min=0, help="ASR worker processes, each with its own model (0: one per core; 1: a thread of "
        "this process).")] = None,
    executor: Annotated[Optional[ExecutorName], typer.Option(
        "--executor", help="Where decoding and ASR run (default: local; ray needs pip install 'callqa[ray]').")] = None,
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", help="Ray cluster to use, e.g. head-node:6379 (default: env RAY_ADDRESS, else a local "
        "Ray).")] = None,
    ray_cpus: Annotated[Optional[float], typer.Option(
        "--ray-cpus-per-actor", min=0, help="CPUs per Ray ASR actor, one Whisper model each (default: 1).")] = None,
    ray_gpus: Annotated[Optional[float], typer.Option(
        "--ray-gpus-per-actor", min=0, help="GPUs per Ray ASR actor; > 0 runs Whisper on CUDA (default: 0).")] = None,
    ray_actors: Annotated[Optional[int], typer.Option(
        "--ray-actors", min=0, help="Ray ASR actors (default: 0, as many as the cluster's CPUs or GPUs hold).")] = None,
    ray_shared_fs: Annotated[Optional[bool], typer.Option(
        "--ray-shared-fs", help="Recordings are readable under the same paths on every Ray node: send paths, not "
        "bytes.")] = None,
    no_redact: Annotated[bool, typer.Option(
        "--no-redact", help="Store transcripts WITHOUT removing patient data.")] = False,
    score_truncated: Annotated[bool, typer.Option(
        "--score-truncated", help="Score recordings that hold much less than their header states, with a note, "
        "instead of failing them.")] = False,
    reattribute: Annotated[bool, typer.Option(
        "--reattribute", help="Transcribe again the stored mono calls among PATHS whose speakers were not "
        "estimated (stored by an earlier callqa or without callqa[mono]), to estimate agent and customer.")] = False,
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML file with defaults for these options.")] = None,
    log_file: Annotated[Optional[Path], typer.Option(
        "--log-file", help="Append one JSON line per call to this file.")] = None,
) -> None:
    """Transcribe, score and store recordings. Already stored recordings are not transcribed again."""
    from .config import load_config
    from .console import BatchReporter
    from .pipeline import score_paths

    with _run():
        options = load_config(config).score_options(
            db=db, rubrics=rubric, manifest=manifest, name_pattern=name_pattern, agent_channel=agent_channel,
            model=model, compute_type=compute_type, beam_size=beam_size, batch_size=batch_size, threads=threads,
            workers=workers, channels=channels, executor=executor, ray_address=ray_address,
            ray_cpus_per_actor=ray_cpus, ray_gpus_per_actor=ray_gpus, ray_actors=ray_actors,
            ray_shared_fs=ray_shared_fs,
            no_redact=no_redact, score_truncated=score_truncated or None,
            reattribute=reattribute,
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
    db: DbOption = None,
    rubric: RubricFiles = [],
    since: Since = None,
    until: Until = None,
    agent: Annotated[List[str], typer.Option("--agent", help="Only this agent's calls (repeatable).")] = [],
) -> None:
    """Score stored calls again from their stored transcripts (no audio, no ASR). Old evaluations are kept."""
    from .rescore import rescore_db

    with _run():
        summary = rescore_db(db, rubric, _days(since, until), agent, command=" ".join(sys.argv))
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
def rubric_check(files: Annotated[List[Path], typer.Argument(help="Rubric YAML files.")]) -> None:
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


@app.command()
def scorecard(
    agent: Annotated[List[str], typer.Option("--agent", help="Only this agent (repeatable) (default: all).")] = [],
    since: Since = None,
    until: Until = None,
    by: Annotated[Optional[Period], typer.Option(
        "--by", help="One row per period (default: the whole range).")] = None,
    rubric: Annotated[Optional[str], typer.Option(
        "--rubric", help="Rubric id (its latest version) or ID@VERSION (default: every rubric).")] = None,
    fmt: Annotated[Optional[ScorecardFormat], typer.Option(
        "--format",
        help="Output format (default: from the -o suffix, else table).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write to FILE (default: the terminal).")] = None,
    db: DbOption = None,
) -> None:
    """Per-agent scorecards: a table on the terminal, or files for trainers (the html report prints on A4)."""
    from .export import write_scorecard
    from .scorecards import ScorecardQuery

    with _run(), Store(db, read_only=True) as store:
        dates = _days(since, until)
        query = ScorecardQuery(tuple(agent), dates.since, dates.until, by, rubric)
        text = write_scorecard(store, query, fmt, output)
        if text is not None:
            _echo(text)


@app.command()
def show(
    call_id: Annotated[str, typer.Argument(help="The call's id (calls.call_id).")],
    fmt: Annotated[CallFormat, typer.Option("--format")] = "text",
    db: DbOption = None,
) -> None:
    """One call: transcript with speakers and times, call metrics, every criterion's outcome and evidence."""
    from .query import render_call, show_call

    with _run(), Store(db, read_only=True) as store:
        _echo(render_call(show_call(store, call_id), fmt))


@app.command()
def sql(
    statement: Annotated[Optional[str], typer.Argument(help="SQL to run; '-' or none: read it from stdin.")] = None,
    fmt: Annotated[FrameFormat, typer.Option("--format")] = "table",
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", min=0.001,
        help="Stop the query after this many seconds (exit 2) (default: no limit; Ctrl-C stops it too, exit 130).")] = None,
    db: DbOption = None,
) -> None:
    """Run read-only SQL on the database (tables and views: see README); statements that write are refused."""
    from .export import render_frame
    from .sql_guard import run_sql

    with _run():
        rows = run_sql(db, sys.stdin.read() if statement in (None, "-") else statement, timeout)
        _echo(render_frame(rows, fmt))


from . import cli_loop  # noqa: E402,F401  (registers the QA-loop commands)


def main() -> None:
    os.umask(0o077)  # every file callqa writes (database, its WAL, DuckDB's temporary files, log, exports) holds PHI
    try:
        app(prog_name="callqa")
    finally:
        # spaCy's and Presidio's ~100k objects go with the process: spare the collector its last full pass over
        # them (0.2 s at every exit, 1 % of a 15-minute batch).
        gc.freeze()
