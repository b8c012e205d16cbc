"""Finding recordings and resolving their metadata: manifest, then sidecar, then file name."""

import json
import logging
import os
from datetime import datetime

import pytest

from callqa.errors import ManifestError, UsageError
from callqa.ingest import (
    DEFAULT_NAME_PATTERN,
    compile_name_pattern,
    discover,
    missing_manifest_files,
    parse_timestamp,
    read_manifest,
    resolve_metadata,
    sha256_file,
)

PATTERN = compile_name_pattern(DEFAULT_NAME_PATTERN)


def _source(path, manifest=None, pattern=PATTERN):
    (candidate,) = discover([path], manifest)
    sha, size = sha256_file(candidate.path)
    return resolve_metadata(candidate, sha, size, pattern)


def test_default_pattern_reads_agent_time_and_call_id(tmp_path):
    f = tmp_path / "a.garcia_20261102T091500_call-0001.wav"
    f.write_bytes(b"x")
    s = _source(f)
    assert (s.agent_id, s.started_at, s.call_id, s.metadata_from) == (
        "a.garcia", datetime(2026, 11, 2, 9, 15), "call-0001", "filename")


def test_custom_pattern(tmp_path):
    f = tmp_path / "Q3-7781-b.chen.mp3"
    f.write_bytes(b"x")
    s = _source(f, pattern=compile_name_pattern("Q3-{call_id}-{agent_id}"))
    assert (s.agent_id, s.call_id) == ("b.chen", "7781")


def test_sidecar_wins_over_file_name_and_extra_fields_are_kept(tmp_path):
    f = tmp_path / "a.garcia_20261102T091500_c1.wav"
    f.write_bytes(b"x")
    f.with_suffix(".json").write_text(json.dumps({"agent_id": "z.ruiz", "queue": "billing"}))
    s = _source(f)
    assert (s.agent_id, s.call_id, s.extra, s.metadata_from) == ("z.ruiz", "c1", {"queue": "billing"}, "sidecar")


def test_manifest_wins_over_sidecar(tmp_path):
    f = tmp_path / "rec.wav"
    f.write_bytes(b"x")
    f.with_suffix(".json").write_text(json.dumps({"agent_id": "z.ruiz"}))
    m = tmp_path / "manifest.csv"
    m.write_text("file,agent_id,started_at,call_id,direction\nrec.wav,b.chen,2026-11-03T10:00:00,C9,inbound\n")
    s = _source(f, read_manifest(m))
    assert (s.agent_id, s.call_id, s.started_at, s.extra["direction"]) == (
        "b.chen", "C9", datetime(2026, 11, 3, 10), "inbound")


def test_call_without_agent_is_unknown_with_a_warning(tmp_path, caplog):
    f = tmp_path / "recording.wav"
    f.write_bytes(b"abc")
    with caplog.at_level(logging.WARNING, logger="callqa"):
        s = _source(f)
    assert s.agent_id == "unknown" and "no agent id" in caplog.text
    assert s.call_id == sha256_file(f)[0][:16]


def test_folders_are_searched_recursively_for_audio_only(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.wav", "a/b/y.MP3", "a/b/z.flac", "a/notes.txt", "c.m4a", "d.opus"):
        (tmp_path / name).write_bytes(b"x")
    found = sorted(c.path.name for c in discover([tmp_path]))
    assert found == ["c.m4a", "d.opus", "x.wav", "y.MP3", "z.flac"]


def test_manifest_missing_columns_is_a_usage_error(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("file,agent\nx.wav,a\n")
    with pytest.raises(ManifestError, match="agent_id, started_at"):
        read_manifest(m)


def test_manifest_rows_naming_missing_files_are_listed(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("file,agent_id,started_at\ngone.wav,a,2026-01-01\n")
    assert [p.name for p in missing_manifest_files(read_manifest(m))] == ["gone.wav"]


def test_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        discover([tmp_path / "nope"])


def test_non_utf8_file_name_is_kept_as_escaped_text(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9_20261102T091500_c7.wav"
    with open(raw, "wb") as fh:
        fh.write(b"x")
    s = _source(tmp_path)
    assert s.path.endswith("caf\\xe9_20261102T091500_c7.wav") and s.call_id == "c7"
    s.path.encode("utf-8")  # storable as text


@pytest.mark.parametrize("text, expected", [
    ("2026-11-02T09:15:00", datetime(2026, 11, 2, 9, 15)),
    ("20261102T091500", datetime(2026, 11, 2, 9, 15)),
    ("20261102-091500", datetime(2026, 11, 2, 9, 15)),
    ("2026-11-02", datetime(2026, 11, 2)),
    ("yesterday", None),
])
def test_timestamps(text, expected):
    assert parse_timestamp(text) == expected
