"""The DuckDB file: schema contract, migrations, owner-only mode, one writer, atomic per-call writes."""

import os
import stat
import subprocess
import sys

import duckdb
import pytest

from callqa.errors import DatabaseError
from callqa.records import CallSource
from callqa.schema import SCHEMA_VERSION, TABLES
from callqa.store import CallRecord, Store


def _failed_call(call_id="c1", sha="ab" * 32):
    source = CallSource("/x/c1.wav", call_id, "a.garcia", None, sha, 10, {"queue": "billing"}, "filename")
    return CallRecord(source=source, status="failed", error="not audio", model="bundled:tiny.en", redacted=True)


def test_new_database_has_every_table_and_column_commented(tmp_path):
    Store(tmp_path / "q.duckdb").close()
    con = duckdb.connect(str(tmp_path / "q.duckdb"), read_only=True)
    tables = dict(con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall())
    assert set(TABLES) <= set(tables)
    assert all(tables[t] for t in tables), "every table has a COMMENT"
    uncommented = con.execute(
        "SELECT table_name || '.' || column_name FROM duckdb_columns() WHERE comment IS NULL "
        "AND table_name IN (SELECT table_name FROM duckdb_tables())"
    ).fetchall()
    assert uncommented == []
    views = con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views and all(comment for _, comment in views)
    assert con.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_database_file_is_owner_only(tmp_path):
    Store(tmp_path / "q.duckdb").close()
    assert stat.S_IMODE((tmp_path / "q.duckdb").stat().st_mode) == 0o600


def test_reopening_migrates_nothing_and_keeps_rows(tmp_path):
    with Store(tmp_path / "q.duckdb") as store:
        store.save_call(_failed_call(), "r1")
    with Store(tmp_path / "q.duckdb") as store:
        assert store.con.execute("SELECT count(*) FROM calls").fetchone()[0] == 1


def test_file_from_a_newer_callqa_is_refused(tmp_path):
    Store(tmp_path / "q.duckdb").close()
    con = duckdb.connect(str(tmp_path / "q.duckdb"))
    con.execute("UPDATE schema_info SET value = '999' WHERE key = 'version'")
    con.close()
    with pytest.raises(DatabaseError, match="newer"):
        Store(tmp_path / "q.duckdb")


def test_saving_a_call_twice_replaces_it(tmp_path):
    with Store(tmp_path / "q.duckdb") as store:
        store.save_call(_failed_call(), "r1")
        store.save_call(_failed_call()._replace(error="still not audio"), "r2")
        rows = store.con.execute("SELECT call_id, error, run_id, extra->>'queue' FROM calls").fetchall()
    assert rows == [("c1", "still not audio", "r2", "billing")]


def test_second_writer_gets_a_clear_error_naming_the_holder(tmp_path):
    db = tmp_path / "q.duckdb"
    with Store(db):  # held by this Python process (pytest), not by callqa's CLI
        code = f"from callqa.store import Store\nStore({str(db)!r})"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert f"is in use by a Python process (pandas, a notebook or a script) (PID {os.getpid()}:" in result.stderr


def test_unusable_paths(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        Store(tmp_path / "no" / "such" / "dir" / "q.duckdb")
    with pytest.raises(DatabaseError, match="no callqa database"):
        Store(tmp_path / "absent.duckdb", read_only=True)
    (tmp_path / "junk.duckdb").write_text("not a database")
    with pytest.raises(DatabaseError, match="is not a callqa database"):
        Store(tmp_path / "junk.duckdb")
