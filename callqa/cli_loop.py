"""The QA team's loop on the command line: sample a review queue, import reviews, calibrate, backtest a rubric."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .cli_app import DbOption, Since, Until, _echo, _err, _quiet, _run, app, reviews_app, rubric_app
from .errors import EXIT_SOME_FAILED
from .formats import FrameFormat

RubricVersion = Annotated[Optional[str], typer.Option(
    "--rubric", help="Rubric id (its latest version) or ID@VERSION (default: all).")]
Agents = Annotated[List[str], typer.Option("--agent", help="Only this agent (repeatable) (default: all).")]
Format = Annotated[FrameFormat, typer.Option("--format", help="Output format.")]


@app.command()
def sample(
    output: Annotated[Path, typer.Option("--output", "-o", help="The review form: FILE.csv or FILE.xlsx.")],
    per_agent: Annotated[int, typer.Option("--per-agent", min=1, help="Calls per agent.")] = 5,
    since: Since = None, until: Until = None,
    agent: Agents = [],
    rubric: RubricVersion = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random share (same seed, same queue).")] = 0,
    db: DbOption = None,
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
    file: Annotated[Path, typer.Argument(help="Filled-in review form, .csv or .xlsx.")],
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", help="Reviewer of rows without one.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML config (its allow_list for redaction).")] = None,
    db: DbOption = None,
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
    rubric: RubricVersion = None, since: Since = None, until: Until = None,
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", help="Only this reviewer's reviews.")] = None,
    fmt: Format = "table",
    db: DbOption = None,
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
    old: Annotated[str, typer.Argument(help="Rubric file or stored version ID@VERSION.")],
    new: Annotated[str, typer.Argument(help="Rubric file or stored version ID@VERSION.")],
    since: Since = None, until: Until = None,
    agent: Agents = [],
    fmt: Format = "table",
    db: DbOption = None,
) -> None:
    """Backtest a rubric change on stored calls: calls whose score or verdict changes, pass rates per agent.
    Writes nothing."""
    from .backtest import DiffQuery, render_diff
    from .backtest import rubric_diff as run_diff

    with _run():
        query = DiffQuery(old, new, since and since.date(), until and until.date(), tuple(agent))
        _echo(render_diff(run_diff(db, query), fmt))
