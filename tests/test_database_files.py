"""Files that are not a usable callqa database (issue 16, items 7, 8, 10 and 12): a SQLite file, a corrupt or
truncated one, one held by another program, a typo in --db, a newer schema; and the modes of what callqa writes.
Each is one line on stderr and exit 2, never a traceback, never a network attempt or a new file."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import psutil
import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.errors import DatabaseError
from callqa.store import Store
from db_helpers import CallSpec, build_db

READ_COMMANDS = [["scorecard"], ["show", "c1"], ["sql", "SELECT count(*) FROM calls"]]
COMMANDS = [*READ_COMMANDS, ["rescore"]]
DUCKDB_CLI = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))


@pytest.fixture(scope="module")
def good_db(tmp_path_factory) -> Path:
    calls = [CallSpec(f"c{i}", "a1", datetime(2024, 5, 6, 9), {"greeting": "pass"}) for i in range(3)]
    return build_db(tmp_path_factory.mktemp("good") / "calls.duckdb", calls)


def callqa(*args: str, home: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m callqa`` as cron runs it, optionally with its own HOME (where DuckDB puts extensions)."""
    env = dict(os.environ, **({"HOME": str(home)} if home else {}))
    return subprocess.run([sys.executable, "-m", "callqa", *args], capture_output=True, text=True, env=env,
                          timeout=120, **kwargs)


def run(*args: str):
    """The command in this process (CliRunner), for the cases that need no process of their own."""
    return CliRunner().invoke(app, list(args))


def assert_one_line_exit_2(result, *expected: str) -> None:
    assert getattr(result, "returncode", getattr(result, "exit_code", None)) == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_sqlite_file_is_refused_offline_and_nothing_is_installed(tmp_path, command):
    db = tmp_path / "calls.duckdb"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE calls (call_id TEXT)")
    before = db.read_bytes()
    home = tmp_path / "home"
    home.mkdir()
    args = [*command, "--db", str(db)]
    result = callqa(*args, home=home) if command[0] == "scorecard" else run(*args)
    assert_one_line_exit_2(result, "is not a callqa database (a SQLite database)")
    assert list(home.iterdir()) == []  # no ~/.duckdb/extensions
    assert db.read_bytes() == before


def test_every_connection_has_extension_autoloading_off(good_db, tmp_path):
    for store in (Store(good_db, read_only=True), Store(tmp_path / "new.duckdb")):
        with store:
            settings = dict(store.con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('autoinstall_known_extensions', "
                "'autoload_known_extensions', 'allow_community_extensions')").fetchall())
        assert settings == dict.fromkeys(["autoinstall_known_extensions", "autoload_known_extensions",
                                          "allow_community_extensions"], "false")


def test_sql_cannot_reach_an_extension_or_another_file(good_db, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for statement in ["SELECT * FROM sqlite_scan('x.db', 't')", "SELECT * FROM read_parquet('https://e.example/x')",
                      "SELECT st_point(1, 2)"]:
        result = callqa("sql", "--db", str(good_db), statement, home=home)
        assert_one_line_exit_2(result)
    assert list(home.iterdir()) == []


def _corrupt(source: Path, target: Path, how: str) -> Path:
    data = source.read_bytes()
    if how == "zeroed block":
        data = data[:12288] + bytes(4096) + data[16384:]
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "zeroed after the header":
        data = data[:16] + bytes(len(data) - 16)
    target.write_bytes(data)
    return target


@pytest.mark.parametrize("how", ["zeroed block", "truncated", "zeroed after the header"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_corrupt_database_is_reported_as_corrupt(good_db, tmp_path, how, command):
    db = _corrupt(good_db, tmp_path / "calls.duckdb", how)
    result = run(*command, "--db", str(db))
    assert_one_line_exit_2(result, "is corrupt")
    assert "in use" not in result.stderr


def test_a_database_without_duckdb_header_is_not_a_callqa_database(good_db, tmp_path):
    db = tmp_path / "calls.duckdb"
    db.write_bytes(os.urandom(8192) + good_db.read_bytes()[8192:])
    assert_one_line_exit_2(run("scorecard", "--db", str(db)), "is not a callqa database")


# ---------------------------------------------------------------- who holds the file


def _hold(args: list[str], db: Path) -> subprocess.Popen:
    """Start a program that opens ``db`` and keeps it open; return once it (or a child) has the file open."""
    holder = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            family = [psutil.Process(holder.pid), *psutil.Process(holder.pid).children(recursive=True)]
            if any(Path(f.path) == db.resolve() for p in family for f in p.open_files()):
                return holder
        except psutil.Error:
            pass
        assert holder.poll() is None, holder.communicate()
        time.sleep(0.1)
    holder.kill()
    raise AssertionError("the holder never opened the database")


def _release(holder: subprocess.Popen) -> None:
    holder.kill()
    holder.communicate(timeout=30)


@pytest.mark.skipif(not Path(DUCKDB_CLI).exists(), reason="the duckdb CLI (pip package duckdb-cli) is not installed")
def test_score_names_the_duckdb_cli_holding_the_file(good_db, tmp_path):
    db = Path(shutil.copy(good_db, tmp_path / "calls.duckdb"))
    holder = _hold([DUCKDB_CLI, str(db)], db)  # an analyst's interactive session: it waits on stdin
    try:
        result = callqa("rescore", "--db", str(db))
    finally:
        _release(holder)
    assert_one_line_exit_2(result, "is in use by the duckdb CLI (PID ")  # pip's duckdb is a wrapper: a child holds it
    assert "another callqa process" not in result.stderr


def test_score_names_a_python_process_holding_the_file(good_db, tmp_path):
    db = Path(shutil.copy(good_db, tmp_path / "calls.duckdb"))
    script = f"import duckdb, pandas, sys; con = duckdb.connect({str(db)!r}); sys.stdin.read()"
    holder = _hold([sys.executable, "-c", script], db)
    try:
        result = callqa("rescore", "--db", str(db))
    finally:
        _release(holder)
    assert_one_line_exit_2(result, f"is in use by a Python process (pandas, a notebook or a script) (PID {holder.pid}:")


def test_callqa_sql_holding_the_file_is_named_and_stops_on_ctrl_c(good_db, tmp_path):
    db = Path(shutil.copy(good_db, tmp_path / "calls.duckdb"))
    runaway = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b"
    holder = _hold([sys.executable, "-m", "callqa", "sql", "--db", str(db), runaway], db)
    result = callqa("rescore", "--db", str(db))
    assert_one_line_exit_2(result, f"is in use by another callqa process (PID {holder.pid}:", "callqa sql")
    holder.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = holder.communicate(timeout=30)
    assert holder.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    assert time.monotonic() - started < 10


def test_sql_timeout_stops_a_runaway_query(good_db):
    runaway = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["sql", "--db", str(good_db), "--timeout", "0.5", runaway])
    assert result.exit_code == 2 and "--timeout 0.5 s" in result.stderr
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------- --db mistakes and schema versions


def test_rescore_of_a_missing_database_creates_nothing(tmp_path):
    result = run("rescore", "--db", str(tmp_path / "typo.duckdb"))
    assert_one_line_exit_2(result, "no callqa database at")
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_duckdb_file_is_left_alone_by_readers_and_writers(tmp_path):
    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE mine AS SELECT 1 AS a")
    for command in ["rescore"], ["scorecard"]:
        result = run(*command, "--db", str(db))
        assert_one_line_exit_2(result, "is not a callqa database (no callqa tables in it; it holds mine)")
    with pytest.raises(DatabaseError, match="it holds mine"):
        Store(db)  # what `callqa score` opens: it creates a database, but only in an empty or new file
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("mine",)]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_read_commands_on_a_newer_schema_say_so(good_db, tmp_path, command):
    db = Path(shutil.copy(good_db, tmp_path / "calls.duckdb"))
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE schema_info SET value = '999' WHERE key = 'version'")
        con.execute("ALTER TABLE calls RENAME COLUMN agent_id TO agent")  # what a newer callqa might do
    result = run(*command, "--db", str(db))
    assert_one_line_exit_2(result)
    assert "schema v999, newer than this callqa" in result.stderr and "Binder" not in result.stderr


# ---------------------------------------------------------------- errors and file modes


def test_unexpected_errors_promise_what_they_give(good_db, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("callqa.export.write_scorecard", broken)
    quiet = CliRunner().invoke(app, ["scorecard", "--db", str(good_db)])
    assert quiet.exit_code == 1 and "rerun with -vv for the traceback" in quiet.stderr
    assert "Traceback" not in quiet.stderr
    for flag in ("-v", "-vv"):
        verbose = CliRunner().invoke(app, [flag, "scorecard", "--db", str(good_db)])
        assert verbose.exit_code == 1 and ("Traceback" in verbose.stderr) == (flag == "-vv")


def test_wal_log_file_and_database_are_owner_only(good_db, tmp_path):
    db = Path(shutil.copy(good_db, tmp_path / "calls.duckdb"))
    log = tmp_path / "night.jsonl"
    script = f"""
import os, stat, sys
from pathlib import Path
sys.argv = ["callqa", "scorecard", "--db", {str(db)!r}]
from callqa.cli import main
try:
    main()
except SystemExit:
    pass
from callqa.console import BatchReporter
from callqa.errors import DatabaseError
from callqa.store import Store
with BatchReporter(Path({str(log)!r})):
    pass
with Store({str(db)!r}) as store:
    store.con.execute("INSERT INTO runs (run_id) VALUES ('x')")
    wal = Path({str(db)!r} + ".wal")
    print(oct(stat.S_IMODE(wal.stat().st_mode)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "0o600"  # the WAL holds transcript text until the checkpoint
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_log_file_is_owner_only_without_the_cli(tmp_path):
    from callqa.console import BatchReporter

    log = tmp_path / "night.jsonl"
    log.write_text("")
    os.chmod(log, 0o644)
    with BatchReporter(log):
        pass
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


@pytest.mark.parametrize("error, code, message", [
    (duckdb.IOException("IO Error: Corrupt database file: computed checksum 1 does not match stored checksum 2 in "
                        "block at location 12288"), 2, "the database is corrupt"),
    (duckdb.BinderException("Binder Error: column nope not found"), 1, "unexpected error: BinderException"),
])
def test_a_corrupt_block_met_by_a_query_is_corrupt_but_other_duckdb_errors_stay_unexpected(
        good_db, monkeypatch, error, code, message):
    def query_meets(*args, **kwargs):  # a block read only by this query (a big database), or a bug of callqa's
        raise error

    monkeypatch.setattr("callqa.query.show_call", query_meets)
    result = run("show", "c1", "--db", str(good_db))
    assert result.exit_code == code and message in result.stderr and "in use" not in result.stderr
