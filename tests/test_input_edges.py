"""Issue 16, item 12: skipped files and manifest rows are counted, sidecar values keep their JSON, a bad
--name-pattern exits 2, a rubric id with @ can be selected."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime

import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.errors import UsageError
from callqa.ingest import DEFAULT_NAME_PATTERN, compile_name_pattern, discover, read_manifest, resolve_metadata
from db_helpers import CallSpec, build_db, rubric_row

runner = CliRunner()


def test_skipped_files_and_manifest_rows_are_counted_in_a_warning(tmp_path, caplog):
    (tmp_path / "a_20240101T000000_c1.wav").write_bytes(b"x")
    (tmp_path / "a_20240101T000000_c1.json").write_text("{}")  # a recording's sidecar: expected, not skipped
    for name in ("notes.txt", "b.docx", "c.xlsx", "d.pdf"):
        (tmp_path / name).write_text("x")
    os.mkfifo(tmp_path / "e_20240101T000000_c2.wav")  # a FIFO would hang the hashing
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere.wav"
    elsewhere.write_bytes(b"x")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,agent_id,started_at\n"
                        "a_20240101T000000_c1.wav,a,2024-01-01\n"
                        f"{elsewhere},b,2024-01-01\n"
                        "a_20240101T000000_c1.wav,a2,2024-01-01\n")
    with caplog.at_level(logging.WARNING, logger="callqa"):
        rows = read_manifest(manifest)
        found = discover([tmp_path], rows)
    assert [c.path.name for c in found] == ["a_20240101T000000_c1.wav"]
    assert found[0].manifest_row["agent_id"] == "a2"
    warnings = [r.getMessage() for r in caplog.records]
    assert any("1 manifest row(s) skipped, naming a file that a later row names again: line 2 (again on line 4)"
               in w for w in warnings), warnings
    assert any(w.startswith("4 file(s) skipped, not audio by their name: ") and "b.docx" in w for w in warnings)
    assert any(w.startswith("1 path(s) skipped, not regular files: ") for w in warnings)
    assert any(w.startswith("1 manifest row(s) skipped, their files are not under the given paths: ")
               and elsewhere.name in w for w in warnings), warnings


@pytest.mark.parametrize("value", [["a", "b"], {"id": 7}, True, 1.5, None])
def test_sidecar_ids_that_are_not_text_are_ignored_never_stored_as_reprs(tmp_path, caplog, value):
    recording = tmp_path / "a.garcia_20261102T091500_c1.wav"
    recording.write_bytes(b"x")
    recording.with_suffix(".json").write_text(json.dumps(
        {"agent_id": value, "call_id": value, "started_at": value, "tags": ["vip", {"n": 1}], "score": 1.5}))
    (candidate,) = discover([recording])
    with caplog.at_level(logging.WARNING, logger="callqa"):
        source = resolve_metadata(candidate, "f" * 64, 1, compile_name_pattern(DEFAULT_NAME_PATTERN))
    assert (source.agent_id, source.call_id, source.started_at) == ("a.garcia", "c1", datetime(2026, 11, 2, 9, 15))
    assert source.extra == {"tags": ["vip", {"n": 1}], "score": 1.5}
    if value is not None:
        assert any("agent_id" in r.getMessage() and "is not text; ignored" in r.getMessage() for r in caplog.records)


def test_sidecar_integer_ids_are_their_digits_and_nan_is_not_json(tmp_path, caplog):
    recording = tmp_path / "x.wav"
    recording.write_bytes(b"x")
    recording.with_suffix(".json").write_text('{"agent_id": 4711, "call_id": 99}')
    (candidate,) = discover([recording])
    source = resolve_metadata(candidate, "f" * 64, 1, compile_name_pattern(DEFAULT_NAME_PATTERN))
    assert (source.agent_id, source.call_id) == ("4711", "99")
    recording.with_suffix(".json").write_text('{"agent_id": "a", "level": NaN}')
    with caplog.at_level(logging.WARNING, logger="callqa"):
        source = resolve_metadata(candidate, "f" * 64, 1, compile_name_pattern(DEFAULT_NAME_PATTERN))
    assert source.agent_id == "unknown" and "NaN is not JSON" in caplog.text
    recording.with_suffix(".json").write_text("[" * 100_000 + "]" * 100_000)  # json's recursion limit
    assert resolve_metadata(candidate, "f" * 64, 1, compile_name_pattern(DEFAULT_NAME_PATTERN)).agent_id == "unknown"


@pytest.mark.parametrize("pattern", ["{1st}_{call_id}", "{agent_id}_{ä}", "{x}" * 200 + "{agent_id}", "nothing"])
def test_a_bad_name_pattern_is_a_usage_error(pattern):
    with pytest.raises(UsageError):
        compile_name_pattern(pattern)


def test_a_bad_name_pattern_exits_2(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    result = runner.invoke(app, ["score", str(tmp_path), "--name-pattern", "{1st}_{call_id}",
                                 "--db", str(tmp_path / "q.duckdb")])
    assert result.exit_code == 2
    assert result.stderr.startswith("callqa: error: --name-pattern '{1st}_{call_id}': field {1st} is not a name")


def test_a_rubric_id_with_an_at_sign_can_be_selected(tmp_path):
    east = rubric_row("billing@east")
    east2 = rubric_row("billing@east", version=2)
    db = build_db(tmp_path / "q.duckdb", [CallSpec("c1", "a1", datetime(2024, 5, 6), {"greeting": "pass"})],
                  rubrics=(east, east2, rubric_row()))

    def rows(*args):
        result = runner.invoke(app, ["scorecard", "--db", str(db), "--format", "json", *args])
        assert result.exit_code == 0, result.output
        return [(r["rubric_id"], r["rubric_version"]) for r in json.loads(result.stdout)]

    assert rows("--rubric", "billing@east") == [("billing@east", 2)]
    assert rows("--rubric", "billing@east@1") == [("billing@east", 1)]
    assert rows("--rubric", "clinic-helpdesk@1") == [("clinic-helpdesk", 1)]
    missing = runner.invoke(app, ["scorecard", "--db", str(db), "--rubric", "billing@west"])
    assert missing.exit_code == 2 and "no rubric 'billing@west'" in missing.stderr
