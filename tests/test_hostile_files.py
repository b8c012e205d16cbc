"""Rubric, config and manifest files as an attack: alias bombs, deep nesting, huge files, devices, FIFOs.

Each is refused with one located line and exit 2, before any work, without a traceback or a hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.config import load_config
from callqa.errors import ConfigError, ManifestError, RubricError
from callqa.ingest import read_manifest
from callqa.rubric import load_rubric, parse_rubric

runner = CliRunner()

GOOD_TAIL = "sections:\n  - id: s\n    criteria:\n      - id: c\n        match: {any: [hello]}\n"


def alias_bomb(levels: int = 12) -> str:
    """A few hundred bytes naming 10**levels strings."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\nid: t\nname: *a{levels - 1}\n" + GOOD_TAIL


HOSTILE_YAML = {
    "alias_bomb": (alias_bomb(), "expands to more than 100000 values"),
    "deep_nesting": ("id: t\nname: " + "[" * 5000 + "]" * 5000 + "\n" + GOOD_TAIL, "nested deeper than 64 levels"),
    "deep_mappings": ("id: t\nname: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n" + GOOD_TAIL, "nested deeper than"),
    "deep_via_aliases": ("a: &a " + "[" * 40 + "]" * 40 + "\nb: &b [" + ", ".join(["*a"] * 2) + "]\n"
                         "c: " + "[" * 30 + "*b" + "]" * 30 + "\n", "once aliases are expanded"),
    "recursive_alias": ("id: &x [*x]\n" + GOOD_TAIL, "an alias is used inside the node it names"),
    "nul_character": ("id: t\nname: a\x00b\n" + GOOD_TAIL, "is not allowed in YAML"),
    "huge_integer": ("id: t\nversion: " + "9" * 5000 + "\n" + GOOD_TAIL, None),
    "impossible_date": ("id: t\nname: 2024-02-30\n" + GOOD_TAIL, "a value cannot be read"),
    "empty_timestamp": ("id: t\nname: !!timestamp ''\n" + GOOD_TAIL, "a value cannot be read"),
}


@pytest.mark.parametrize("name", list(HOSTILE_YAML))
def test_hostile_rubric_yaml_is_one_located_error(name):
    text, what = HOSTILE_YAML[name]
    with pytest.raises(RubricError) as caught:
        parse_rubric(text, "r.yaml")
    assert all(p.startswith("r.yaml:") and "\n" not in p for p in caught.value.problems)
    if what:
        assert any(what in p for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("name", list(HOSTILE_YAML))
def test_hostile_config_yaml_is_one_located_error(tmp_path, name):
    text, what = HOSTILE_YAML[name]
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("id: t\n", "workers: 1\n").replace(GOOD_TAIL, ""))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(p.startswith(f"{path}:") and "\n" not in p for p in caught.value.problems)
    if what:
        assert any(what in p for p in caught.value.problems), caught.value.problems


@pytest.fixture()
def special_files(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.yaml"
    huge.write_text("id: t\n" + "# padding\n" * 220_000 + GOOD_TAIL)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    return {"/dev/zero": "not a regular file", str(fifo): "not a regular file", str(folder): "a folder",
            str(huge): "the file is 2.1 MiB; the limit is 1 MiB"}


def test_rubric_files_that_are_no_rubric_files(special_files):
    for path, what in special_files.items():
        with pytest.raises(RubricError) as caught:
            load_rubric(path)
        [problem] = caught.value.problems
        assert problem.startswith(f"{path}:1: (rubric): ") and what in problem, problem


def test_config_files_that_are_no_config_files(special_files):
    for path, what in special_files.items():
        with pytest.raises(ConfigError, match=what):
            load_config(Path(path))


def test_manifests_that_are_no_manifests(special_files, tmp_path, monkeypatch):
    monkeypatch.setattr("callqa.ingest.MAX_MANIFEST_BYTES", 1 << 20)
    for path, what in special_files.items():
        with pytest.raises(ManifestError, match=what):
            read_manifest(Path(path))
    deep = tmp_path / "m.csv"
    deep.write_text("file,agent_id,started_at\n" + '"' + "x" * 200_000 + '",a,b\n')  # a field over csv's limit
    with pytest.raises(ManifestError, match="not a readable CSV manifest"):
        read_manifest(deep)


def test_rubric_check_cli_lists_every_hostile_file_and_exits_2(tmp_path, special_files):
    files = []
    for name, (text, _) in HOSTILE_YAML.items():
        files.append(tmp_path / f"{name}.yaml")
        files[-1].write_text(text)
    result = subprocess.run([sys.executable, "-m", "callqa", "rubric", "check", *map(str, files), *special_files],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for path in [*map(str, files), *special_files]:
        assert any(line.startswith(f"{path}:") for line in result.stderr.splitlines()), path


def test_score_with_a_hostile_config_exits_2_with_the_line(tmp_path):
    config = tmp_path / "callqa.yaml"
    config.write_text("workers: 1\nthreads: -1\nmax_duration_s: forever\ncolour: blue\n")
    result = runner.invoke(app, ["score", str(tmp_path), "--config", str(config), "--db", str(tmp_path / "q.duckdb")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{config}:2: threads: Input should be greater than or equal to 0",
        f"{config}:3: max_duration_s: Input should be a valid number, unable to parse string as a number",
        f"{config}:4: colour: unknown key",
    ]
    assert not (tmp_path / "q.duckdb").exists()
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb().replace("id: t\n", "").replace(GOOD_TAIL, ""))
    result = runner.invoke(app, ["score", str(tmp_path), "--config", str(bomb)])
    assert result.exit_code == 2 and "expands to more than" in result.stderr
