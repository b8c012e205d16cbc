import os
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests' helper modules (audio_helpers, db_helpers, ...)

ROOT = Path(__file__).resolve().parent.parent


class SampleRun(NamedTuple):
    cwd: Path  # holds sample_calls (a link to the repository's) and callqa.duckdb
    db: Path
    output: str  # what `callqa score sample_calls` printed


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> SampleRun:
    """README's quickstart, once per session: `callqa score sample_calls` in a folder of its own."""
    from typer.testing import CliRunner

    from callqa.cli import app

    cwd = tmp_path_factory.mktemp("quickstart")
    (cwd / "sample_calls").symlink_to(ROOT / "sample_calls")
    before = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, ["score", "sample_calls"], env={"CALLQA_DB": None})
    finally:
        os.chdir(before)
    assert result.exit_code == 0, result.output
    return SampleRun(cwd, cwd / "callqa.duckdb", result.stdout)


@pytest.fixture(scope="session")
def transcriber():
    from callqa.transcribe import Transcriber

    return Transcriber()


@pytest.fixture(scope="session")
def nlp():
    from callqa.nlp import load_nlp

    return load_nlp()
