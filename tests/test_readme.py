"""README's console examples are real: every command in a ```console block runs as written, in a folder with the
sample corpus scored by README's own first command, and prints what README shows (run ids and timings masked;
a line `...` stands for any lines). Commands shown without output must succeed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
from typer.testing import CliRunner

from callqa.cli import app

ROOT = Path(__file__).resolve().parent.parent
# Files README's examples read that a user would have written (the sample corpus comes from the repository).
USER_FILES = Path(__file__).parent / "data" / "readme"
QUICKSTART = "callqa score sample_calls"
_MASKS = [
    (re.compile(r"\brun [0-9a-f]{12}\b"), "run RUN_ID"),
    (re.compile(r"in [\d.]+ s wall \([\d.]+x real time; ASR busy [\d.]+ s\)"), "in T s wall (Xx real time; ASR busy T s)"),
]


class Example(NamedTuple):
    line: int  # README line of the command
    command: str
    output: list[str]


def _examples() -> list[list[Example]]:
    """The console blocks of README, each a list of commands with the output shown under them."""
    blocks, block, inside = [], [], False
    for number, line in enumerate((ROOT / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if inside:
                blocks.append(block)
            inside, block = line == "```console", []
        elif inside and line.startswith("$ "):
            block.append(Example(number, line[2:], []))
        elif inside and block:
            block[-1].output.append(line.rstrip())
    return blocks


def _mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


def _matches(shown: list[str], printed: str) -> bool:
    def lines(text_lines: list[str]) -> list[str]:
        text_lines = [_mask(line).rstrip() for line in text_lines]
        while text_lines and not text_lines[-1]:
            text_lines.pop()
        return text_lines

    pattern = "".join(r"(?:.*\n)*?" if line.strip() == "..." else re.escape(line) + r"\n" for line in lines(shown))
    return re.fullmatch(pattern, "".join(line + "\n" for line in lines(printed.splitlines()))) is not None


def _run(command: str, cwd: Path) -> tuple[int, str]:
    words = shlex.split(command, comments=True)
    stdin = stdout = None
    if "<" in words:
        stdin = (cwd / words[words.index("<") + 1]).read_text(encoding="utf-8")
        del words[words.index("<"):words.index("<") + 2]
    if ">" in words:
        stdout = cwd / words[words.index(">") + 1]
        del words[words.index(">"):words.index(">") + 2]
    if words[0] == "callqa":
        result = CliRunner().invoke(app, words[1:], input=stdin, env={"CALLQA_DB": None})
        code, printed = result.exit_code, result.output
    else:  # the other tools README shows on the same file (duckdb CLI, python)
        done = subprocess.run([shutil.which(words[0]) or words[0], *words[1:]], cwd=cwd, input=stdin or "",
                              capture_output=True, text=True, timeout=120)
        code, printed = done.returncode, done.stdout + done.stderr
    if stdout is not None:
        stdout.write_text(printed, encoding="utf-8")
        printed = ""
    return code, printed


def _needs_the_database(block: list[Example]) -> bool:
    return not all(example.command.startswith("callqa rubric check") for example in block)


BLOCKS = _examples()


def test_readme_has_console_examples():
    commands = [example.command for block in BLOCKS for example in block]
    assert QUICKSTART in commands and any(c.startswith("callqa rubric check") for c in commands)
    assert sum(1 for block in BLOCKS for example in block if example.output) >= 5


def test_shown_output_is_compared_line_by_line_with_wildcards_and_masks():
    printed = "run 0123456789ab: 2 files seen\naudio 1.0 min in 3.2 s wall (18.8x real time; ASR busy 3.0 s)\nb\nc\n"
    shown = ["run 95841792e261: 2 files seen", "audio 1.0 min in 19.5 s wall (35.9x real time; ASR busy 19.3 s)", "..."]
    assert _matches(shown, printed)
    assert _matches(shown[:2] + ["b", "c", ""], printed)
    assert not _matches(shown[:2] + ["c"], printed)
    assert not _matches(["run 95841792e261: 3 files seen", "..."], printed)


@pytest.mark.parametrize("block", [
    pytest.param(block, id=f"README.md:{block[0].line}",
                 marks=[pytest.mark.slow] if _needs_the_database(block) else [])
    for block in BLOCKS
])
def test_readme_console_block(block, request, tmp_path, monkeypatch):
    if _needs_the_database(block):
        run = request.getfixturevalue("sample_run")
        cwd = run.cwd
        quickstart_output = run.output
    else:
        cwd, quickstart_output = tmp_path, ""
    for user_file in USER_FILES.iterdir():
        shutil.copy(user_file, cwd / user_file.name)
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("CALLQA_DB", raising=False)
    for i, example in enumerate(block):
        if example.command == QUICKSTART and quickstart_output:
            code, printed, quickstart_output = 0, quickstart_output, ""  # the session's own first run
        else:
            code, printed = _run(example.command, cwd)
        where = f"README.md:{example.line}: $ {example.command}"
        if any(example.output):
            assert _matches(example.output, printed), f"{where}\nREADME shows:\n" + "\n".join(example.output) + \
                f"\nprinted:\n{printed}"
        else:
            assert code == 0, f"{where}: exit {code}\n{printed}"
