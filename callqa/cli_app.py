"""What every `callqa` command shares: the typer apps, common options, and the edge where library errors become
one line on stderr and a documented exit code."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Iterator, List, Optional

import duckdb
import typer

from .database import diagnosis
from .daterange import DateRange
from .errors import EXIT_UNEXPECTED, CallQAError, LocatedError
from .store import DEFAULT_DB
from .text import terminal_safe

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

DbOption = Annotated[Optional[Path], typer.Option(
    "--db", envvar="CALLQA_DB", help=f"DuckDB file (default: {DEFAULT_DB}; env CALLQA_DB)", show_default=False
)]
Since = Annotated[Optional[datetime], typer.Option(
    "--since", formats=["%Y-%m-%d"], help="First day, YYYY-MM-DD.")]
Until = Annotated[Optional[datetime], typer.Option(
    "--until", formats=["%Y-%m-%d"], help="Last day (included), YYYY-MM-DD.")]
RubricFiles = Annotated[List[Path], typer.Option(
    "--rubric", help="Rubric YAML (repeatable) (default: shipped clinic rubric).")]
# Options with a closed set of values are typed with a Literal: `--help` lists the values and typer refuses any
# other with exit 2.


def _err(message: str) -> None:
    typer.echo(terminal_safe(message), err=True)


def _quiet() -> bool:
    from .console import is_quiet

    return is_quiet()


@contextmanager
def _run() -> Iterator[None]:
    """Turn library errors into one clear line on stderr (or one per problem) and a documented exit code."""
    try:
        yield
    except LocatedError as exc:
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
    except Exception as exc:  # the last line of defence for cron: one line, exit 1, traceback with -vv
        known = diagnosis(exc) if isinstance(exc, duckdb.Error) else None  # e.g. a query met a corrupt block
        if known is not None:
            _err(f"callqa: error: {known}")
            raise typer.Exit(known.exit_code)
        logging.getLogger("callqa").debug("unexpected error", exc_info=True)
        _err(f"callqa: unexpected error: {exc.__class__.__name__}: {exc} (rerun with -vv for the traceback)")
        raise typer.Exit(EXIT_UNEXPECTED)


def _days(since: datetime | None, until: datetime | None) -> DateRange:
    return DateRange(since and since.date(), until and until.date())


def _echo(text: str) -> None:
    if sys.stdout.isatty():  # CSV and JSON keep their exact values in files and pipes, not on a terminal
        text = terminal_safe(text)
    typer.echo(text, nl=not text.endswith("\n"))
