"""Patient data planted in calls is found nowhere: no text column of any table, no raw DB byte, no export."""

import io
import json
import stat
import zipfile
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.records import CallSource, Transcript, Utterance, Word
from callqa.scoring import Scorer
from callqa.store import CallRecord, Store

RUBRIC = """
id: phi-probe
version: 1
sections:
  - id: s
    criteria:
      - id: greeting
        speaker: agent
        match: {any: ["thank you for calling"]}
      - id: dob_quoted
        speaker: customer
        match:
          patterns: [[{LOWER: "born"}, {LOWER: "on"}, {IS_ALPHA: true, OP: "+"}]]
      - id: rude
        speaker: agent
        expect: absent
        match: {any: ["whatever"]}
"""

DIALOGUE = [
    ("agent", "Thank you for calling Riverside Clinic, this is Anna, how can I help?"),
    ("customer", "Hi, my name is Maria Gonzalez and I was born on March fourth nineteen eighty two."),
    ("customer", "My phone number is five five five, eight six seven, one two one two."),
    ("customer", "My member ID is W 9 8 7 6 5 4 3 2 1 and my social is 123-45-6789."),
    ("customer", "I live at 42 Elm Street, and my email is maria dot gonzalez at gmail dot com."),
    ("agent", "Whatever, Maria Gonzalez. Is your card number 4111 1111 1111 1111?"),
    ("customer", "That's G O N Z A L E Z."),
]
PLANTED = ["gonzalez", "nineteen eighty", "eight six seven", "9 8 7 6", "123-45-6789", "elm street",
           "gmail", "4111", "g o n z a l e z"]


def _transcript(call_id: str) -> Transcript:
    utterances, t = [], 0.0
    for seq, (speaker, text) in enumerate(DIALOGUE):
        words, start = [], t
        for token in text.split():
            words.append(Word(" " + token, t, t + 0.3, 0.9))
            t += 0.35
        utterances.append(Utterance(seq, speaker, start, t, text, 0.9, tuple(words)))
        t += 1.0
    return Transcript(call_id, t + 1.0, "stereo", tuple(utterances))


def _store_calls(db: Path, rubric: Path, redact: bool) -> None:
    scorer = Scorer.from_paths([rubric], redact=redact, allow_list=["Riverside Clinic", "Anna"])
    with Store(db) as store:
        scorer.save_rubrics(store)
        for i, agent in enumerate(["a.garcia", "b.chen"]):
            analysed, evaluations = scorer.score(_transcript(f"phi-{i}"))
            source = CallSource(f"/rec/{agent}.wav", f"phi-{i}", agent, datetime(2026, 11, 2 + i, 9), "ab" * 32, 1,
                                {}, "filename")
            store.save_call(CallRecord(source, "ok", None, "bundled:tiny.en", redact, duration_s=30.0, channels=2,
                                       sample_rate=8000, codec="pcm_mulaw", speaker_mode="stereo", analysed=analysed,
                                       evaluations=evaluations), "run-1")
        store.con.execute("CHECKPOINT")


def _text_in_tables(db: Path) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE data_type IN "
                              "('VARCHAR', 'JSON') AND table_name IN (SELECT table_name FROM duckdb_tables())"
                              " AND table_name <> 'rubrics'").fetchall()
        return "\n".join(str(v) for table, col in columns
                         for (v,) in con.execute(f'SELECT "{col}" FROM {table}').fetchall()).lower()
    finally:
        con.close()


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    d = tmp_path_factory.mktemp("phi")
    rubric = d / "probe.yaml"
    rubric.write_text(RUBRIC)
    _store_calls(d / "redacted.duckdb", rubric, redact=True)
    _store_calls(d / "raw.duckdb", rubric, redact=False)
    return d


def test_without_redaction_the_values_are_there(dbs):
    """The control: the probe finds every planted value when redaction is explicitly off."""
    text = _text_in_tables(dbs / "raw.duckdb")
    assert all(value in text for value in PLANTED)
    con = duckdb.connect(str(dbs / "raw.duckdb"), read_only=True)
    assert con.execute("SELECT DISTINCT redacted FROM calls").fetchall() == [(False,)]


def test_no_planted_value_in_any_text_column(dbs):
    text = _text_in_tables(dbs / "redacted.duckdb")
    leaked = [value for value in PLANTED if value in text]
    assert leaked == []
    for placeholder in ("[NAME]", "[DOB]", "[PHONE]", "[ID]", "[ADDRESS]", "[EMAIL]", "[CARD]"):
        assert placeholder.lower() in text
    assert "riverside clinic" in text and "anna" in text  # allow-listed


def test_evidence_quotes_are_redacted(dbs):
    con = duckdb.connect(str(dbs / "redacted.duckdb"), read_only=True)
    quotes = dict(con.execute("SELECT criterion_id, evidence_text FROM criterion_results WHERE call_id = 'phi-0'")
                  .fetchall())
    assert quotes["dob_quoted"].startswith("born on [DOB]")
    assert quotes["rude"] == "Whatever"


def test_no_planted_value_in_the_raw_database_bytes(dbs):
    db = dbs / "redacted.duckdb"
    raw = db.read_bytes().lower()
    assert [v for v in PLANTED if v.encode() in raw] == []
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx", "parquet", "html"])
def test_no_planted_value_in_any_export(dbs, tmp_path, fmt):
    out = tmp_path / f"scorecard.{fmt}"
    result = CliRunner().invoke(app, ["scorecard", "--db", str(dbs / "redacted.duckdb"), "--format", fmt,
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    if fmt == "xlsx":
        data = b"".join(zipfile.ZipFile(io.BytesIO(data)).read(n) for n in zipfile.ZipFile(io.BytesIO(data)).namelist())
    if fmt == "parquet":
        data = duckdb.sql(f"SELECT * FROM read_parquet('{out}')").df().to_csv().encode()
    assert [v for v in PLANTED if v.encode() in data.lower()] == []


@pytest.mark.parametrize("args", [["show", "phi-0", "--format", "json"], ["show", "phi-1"],
                                  ["sql", "SELECT * FROM utterances"], ["sql", "SELECT * FROM criterion_results"]])
def test_no_planted_value_in_show_or_sql_output(dbs, args):
    result = CliRunner().invoke(app, [args[0], "--db", str(dbs / "redacted.duckdb"), *args[1:]])
    assert result.exit_code == 0, result.output
    assert [v for v in PLANTED if v in result.stdout.lower()] == []
    if args[-1] == "json":
        assert json.loads(result.stdout)["call"]["call_id"] == "phi-0"
