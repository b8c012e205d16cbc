"""The DuckDB store: opening (one writer, owner-only file; see database.py), migrations, and bulk writes of whole calls.

Every call's rows are written in one transaction, so a crash at any moment leaves either all of a call or
none of it. Rows go in through registered Arrow tables (``INSERT INTO t BY NAME SELECT ...``), never row by row.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, NamedTuple, Sequence

import duckdb

from . import views
from .database import connect, explain
from .errors import DatabaseError
from .metrics import METRICS
from .records import MONO_ESTIMATED, AnalysedCall, CallRecord, CallSource, Evaluation, RoleDecision, Token, Transcript
from .schema import MIGRATIONS, SCHEMA_VERSION
from .tables import arrow_table, insert_frame

if TYPE_CHECKING:
    import pyarrow as pa

    from .rubric import Rubric

log = logging.getLogger("callqa")

DEFAULT_DB = "callqa.duckdb"
PER_CALL_TABLES = ("utterances", "words", "tokens", "call_metrics")
EVALUATION_TABLES = ("evaluations", "section_scores", "criterion_results")


class RubricRow(NamedTuple):
    rubric_sha256: str
    rubric_id: str
    version: int
    name: str
    pass_mark: float
    sections: list[dict]
    source: str


def rubric_row(rubric: Rubric) -> RubricRow:
    sections = [{"id": s.id, "name": s.name or s.id, "weight": s.weight} for s in rubric.sections]
    return RubricRow(rubric.sha256, rubric.id, rubric.version, rubric.name or rubric.id, rubric.pass_mark, sections,
                     rubric.text)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_info' AND schema_name = 'main'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    row = con.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection, current: int) -> None:
    """Bring the file from schema version ``current`` to SCHEMA_VERSION, one migration per transaction."""
    if current == 0:
        con.execute("CREATE TABLE IF NOT EXISTS schema_info (key VARCHAR PRIMARY KEY, value VARCHAR)")
        con.execute("COMMENT ON TABLE schema_info IS 'callqa bookkeeping: the schema version of this file.'")
        con.execute("COMMENT ON COLUMN schema_info.key IS 'Setting name; version holds the schema version.'")
        con.execute("COMMENT ON COLUMN schema_info.value IS 'Setting value.'")
    # Version numbers are reserved per branch as its work starts (v4: mono), so the list can have gaps.
    for version in sorted(v for v in MIGRATIONS if v > current):
        with transaction(con):
            for statement in MIGRATIONS[version]:
                con.execute(statement)
            con.execute("INSERT OR REPLACE INTO schema_info VALUES ('version', ?)", [str(version)])
        log.info("database schema migrated to v%d", version)
    views.create_views(con)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


class Store:
    """A connection to the callqa database; the writer holds DuckDB's file lock for its lifetime."""

    def __init__(self, path: Path | str | None = None, read_only: bool = False, must_exist: bool = False,
                 external_access: bool = True):
        """Open (a writer creates and migrates) the database; ``must_exist``: a writer that refuses to create one
        (`rescore --db typo.duckdb`); ``external_access=False``: no other file or network (`callqa sql`)."""
        self.path = Path(path or DEFAULT_DB)  # the CLI reads $CALLQA_DB (--db's envvar)
        self.read_only = read_only
        existing = read_only or must_exist
        if existing and not self.path.is_file():
            raise DatabaseError(f"no callqa database at {self.path} (run `callqa score` first, or pass --db)")
        if not self.path.parent.is_dir():
            raise DatabaseError(f"cannot create database {self.path}: folder {self.path.parent} does not exist")
        self.con = connect(self.path, read_only, external_access)
        try:
            self._check_schema(existing)
        except duckdb.Error as exc:
            self.con.close()
            raise explain(exc, self.path) from exc
        except DatabaseError:
            self.con.close()
            raise

    def _check_schema(self, existing: bool) -> None:
        version = schema_version(self.con)
        if version == 0:
            others = [row[0] for row in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() LIMIT 4").fetchall()]
            if existing or others:  # only an empty file becomes a callqa database, never someone else's
                held = f"; it holds {', '.join(others)}" if others else ""
                raise DatabaseError(f"{self.path} is not a callqa database (no callqa tables in it{held})")
        if version > SCHEMA_VERSION:
            raise DatabaseError(f"database {self.path} has schema v{version}, newer than this callqa "
                                f"(v{SCHEMA_VERSION}): upgrade callqa to read it")
        if not self.read_only:
            migrate(self.con, version)
        elif version < SCHEMA_VERSION:
            raise DatabaseError(f"database {self.path} has schema v{version}, older than this callqa "
                                f"(v{SCHEMA_VERSION}): run `callqa rescore --db {self.path}` once to upgrade it")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # runs ---------------------------------------------------------------------------------------------------
    def start_run(self, run_id: str, command: str, version: str, place: dict | None = None) -> None:
        """``place``: where the run's ASR runs (runs.executor, cluster_nodes, ...)."""
        columns = {"run_id": run_id, "command": command, "version": version, "started_at": datetime.now(),
                   **(place or {})}
        self.con.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         list(columns.values()))

    def finish_run(self, run_id: str, counts: dict[str, float | int | bool]) -> None:
        assignments = ", ".join(f"{key} = ?" for key in counts)
        self.con.execute(
            f"UPDATE runs SET finished_at = ?, {assignments} WHERE run_id = ?",
            [datetime.now(), *counts.values(), run_id],
        )

    # lookups ------------------------------------------------------------------------------------------------
    def stored_calls(self, redo_unestimated: bool = False) -> dict[tuple[str, str], tuple[str, str]]:
        """(audio_sha256, model) -> (call_id, status) of every call already stored; with ``redo_unestimated``
        (score --reattribute) without the mono calls whose speakers were not estimated (all ``unknown``), so that
        they are transcribed again."""
        unestimated = "status = 'ok' AND speaker_mode IN ('mono', 'mono_fallback_silent', 'mono_fallback_dual')"
        rows = self.con.execute("SELECT audio_sha256, model, call_id, status FROM calls"
                                + (f" WHERE NOT ({unestimated})" if redo_unestimated else "")).fetchall()
        return {(sha, model): (call_id, status) for sha, model, call_id, status in rows}

    def call_owner(self, call_id: str) -> tuple[str, str] | None:
        """(source_path, audio_sha256) of the stored call with this id, if any."""
        row = self.con.execute("SELECT source_path, audio_sha256 FROM calls WHERE call_id = ?", [call_id]).fetchone()
        return (row[0], row[1]) if row else None

    def note_path(self, source: CallSource, call_id: str) -> None:
        self.con.execute(
            "INSERT OR IGNORE INTO call_paths VALUES (?, ?, ?, ?)",
            [source.path, call_id, source.audio_sha256, datetime.now()],
        )

    # writes -------------------------------------------------------------------------------------------------
    def save_rubric(self, rubric: RubricRow) -> None:
        self.con.execute(
            "INSERT OR IGNORE INTO rubrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [rubric.rubric_sha256, rubric.rubric_id, rubric.version, rubric.name, rubric.pass_mark,
             json.dumps(rubric.sections), rubric.source, datetime.now()],
        )

    def save_rubrics(self, rubrics: Iterable[Rubric]) -> None:
        """Record each rubric version once, then rebuild the views: agent_scorecards has one column per section
        of the latest rubrics. One transaction: a rubric whose views cannot be built is not kept."""
        rubrics = list(rubrics)
        try:
            with transaction(self.con):
                for rubric in rubrics:
                    self.save_rubric(rubric_row(rubric))
                views.create_views(self.con)
        except duckdb.Error as exc:
            names = ", ".join(f"{r.id} v{r.version}" for r in rubrics)
            raise DatabaseError(f"rubric {names} not stored: the database views cannot be rebuilt with it "
                                f"({str(exc).splitlines()[0]})") from exc

    def missing_evaluations(self, call_ids: Sequence[str], rubric_sha256: str) -> list[str]:
        """The calls among ``call_ids`` with no evaluation against this rubric version, sorted."""
        done = {row[0] for row in self.con.execute(
            "SELECT call_id FROM evaluations WHERE rubric_sha256 = ? AND call_id IN (SELECT unnest(?))",
            [rubric_sha256, list(call_ids)]).fetchall()}
        return sorted(set(call_ids) - done)

    def save_call(self, record: CallRecord, run_id: str) -> None:
        """Replace everything stored for this call id with ``record``, atomically."""
        call_id = record.source.call_id
        with transaction(self.con):
            # Most calls are new: deleting only where the id is known keeps a big database from being scanned
            # once per table for every call.
            if self.con.execute("SELECT 1 FROM calls WHERE call_id = ?", [call_id]).fetchone():
                for table in ("calls", *PER_CALL_TABLES, *EVALUATION_TABLES):
                    self.con.execute(f"DELETE FROM {table} WHERE call_id = ?", [call_id])
            insert_frame(self.con, "calls", call_frame(record, run_id))
            if record.analysed is not None:
                for table, frame in transcript_frames(call_id, record.analysed).items():
                    insert_frame(self.con, table, frame)
            self.write_evaluations(record.evaluations, run_id, replace=False)
            self.note_path(record.source, call_id)

    def write_evaluations(self, evaluations: Iterable[Evaluation], run_id: str, replace: bool = True) -> None:
        """Insert evaluations (keyed by call and rubric hash); with ``replace``, drop earlier rows of those keys."""
        frames = evaluation_frames(list(evaluations), run_id)
        if frames["evaluations"].num_rows == 0:
            return
        if replace:
            keys = frames["evaluations"].select(["call_id", "rubric_sha256"])
            self.con.register("_callqa_keys", keys)
            try:
                for table in EVALUATION_TABLES:
                    self.con.execute(
                        f"DELETE FROM {table} t USING _callqa_keys k "
                        "WHERE t.call_id = k.call_id AND t.rubric_sha256 = k.rubric_sha256"
                    )
            finally:
                self.con.unregister("_callqa_keys")
        for table, frame in frames.items():
            insert_frame(self.con, table, frame)
        from .reviewed_scores import refresh_reviewed_scores

        refresh_reviewed_scores(self.con, sorted(set(frames["evaluations"]["call_id"].to_pylist())))


def call_frame(record: CallRecord, run_id: str) -> pa.Table:
    s = record.source
    row = {
        "call_id": s.call_id, "source_path": s.path, "audio_sha256": s.audio_sha256, "agent_id": s.agent_id,
        "started_at": s.started_at, "duration_s": record.duration_s, "channels": record.channels,
        "sample_rate": record.sample_rate, "codec": record.codec, "speaker_mode": record.speaker_mode,
        "model": record.model, "status": record.status, "error": record.error, "run_id": run_id,
        "ingested_at": datetime.now(), "extra": json.dumps(s.extra, default=str), "redacted": record.redacted,
        "size_bytes": s.size_bytes, "metadata_from": s.metadata_from, **role_columns(record.roles, record.status == "ok"),
        **diarization_columns(record),
    }
    return arrow_table([tuple(row.values())], list(row))


def role_columns(roles: RoleDecision | None, ok: bool) -> dict:
    """The calls columns of a role decision (schema.ROLE_COLUMNS)."""
    from .roles import ROLE_VERSION

    if roles is None:
        return {"review_reasons": [] if ok else None}
    return {"agent_channel": roles.agent_channel, "role_source": roles.source, "role_confidence": roles.confidence,
            "role_cues": list(roles.cues), "role_version": ROLE_VERSION if roles.source else None,
            "review_reasons": list(roles.review_reasons)}


def diarization_columns(record: CallRecord) -> dict:
    d = record.diarization if record.speaker_mode == MONO_ESTIMATED else None
    return {"diarization_confidence": d.confidence if d else None, "estimated_speakers": d.speakers if d else None}


def transcript_frames(call_id: str, analysed: AnalysedCall) -> dict[str, pa.Table]:
    transcript: Transcript = analysed.transcript
    utterances = arrow_table(
        [(call_id, u.seq, u.speaker, u.start, u.end, u.text, u.confidence) for u in transcript.utterances],
        ["call_id", "seq", "speaker", "start_s", "end_s", "text", "confidence"],
    )
    words = arrow_table(
        [(call_id, u.seq, i, w.word, w.start, w.end, w.probability)
         for u in transcript.utterances for i, w in enumerate(u.words)],
        ["call_id", "utterance_seq", "idx", "word", "start_s", "end_s", "probability"],
    )
    tokens = arrow_table([(call_id, *t) for t in analysed.tokens], ["call_id", *Token._fields])
    estimated = transcript.speaker_mode == MONO_ESTIMATED
    metrics = arrow_table(
        [(call_id, name, m.value, m.start_s, m.end_s, estimated and METRICS[name].speaker is not None)
         for name, m in analysed.metrics.items()],
        ["call_id", "metric", "value", "start_s", "end_s", "estimated"],
    )
    return {"utterances": utterances, "words": words, "tokens": tokens, "call_metrics": metrics}


def evaluation_frames(evaluations: list[Evaluation], run_id: str) -> dict[str, pa.Table]:
    now = datetime.now()
    evals = arrow_table(
        [(e.call_id, e.rubric_id, e.rubric_version, e.rubric_sha256, e.score, e.passed, e.auto_failed, now, run_id)
         for e in evaluations],
        ["call_id", "rubric_id", "rubric_version", "rubric_sha256", "score", "passed", "auto_failed",
         "evaluated_at", "run_id"],
    )
    sections = arrow_table(
        [(e.call_id, e.rubric_id, e.rubric_sha256, sid, score) for e in evaluations
         for sid, score in e.section_scores.items()],
        ["call_id", "rubric_id", "rubric_sha256", "section_id", "score"],
    )
    results = arrow_table(
        [(e.call_id, e.rubric_id, e.rubric_sha256, r.section_id, r.criterion_id, r.outcome, r.weight, r.value,
          r.evidence.speaker, r.evidence.start_s, r.evidence.end_s, r.evidence.text)
         for e in evaluations for r in e.results],
        ["call_id", "rubric_id", "rubric_sha256", "section_id", "criterion_id", "outcome", "weight", "value",
         "evidence_speaker", "evidence_start_s", "evidence_end_s", "evidence_text"],
    )
    return {"evaluations": evals, "section_scores": sections, "criterion_results": results}
