"""The DuckDB schema: a public contract for analysts' SQL. Every table and key column carries a COMMENT.

Each entry of MIGRATIONS upgrades the file by one version; never edit a released entry, append a new one.
"""

from __future__ import annotations

TABLES: dict[str, tuple[str, str, dict[str, str]]] = {
    # name: (columns DDL, table comment, {column: comment})
    "runs": (
        """run_id VARCHAR PRIMARY KEY, command VARCHAR, version VARCHAR, started_at TIMESTAMP,
        finished_at TIMESTAMP, files_seen INTEGER, processed INTEGER, skipped INTEGER, failed INTEGER,
        audio_seconds DOUBLE, wall_seconds DOUBLE, interrupted BOOLEAN""",
        "One row per callqa score/rescore invocation; finished_at is NULL while running or after a crash.",
        {
            "run_id": "Unique id of the run (referenced by calls.run_id and evaluations.run_id).",
            "command": "The command line that started the run.",
            "files_seen": "Recordings found under the given paths.",
            "processed": "Recordings transcribed and scored in this run.",
            "skipped": "Recordings already in the database with the same audio hash and model.",
            "failed": "Recordings stored with status 'failed'.",
            "interrupted": "True when SIGINT/SIGTERM stopped the run before all files were done.",
        },
    ),
    "calls": (
        """call_id VARCHAR PRIMARY KEY, source_path VARCHAR, audio_sha256 VARCHAR, agent_id VARCHAR,
        started_at TIMESTAMP, duration_s DOUBLE, channels INTEGER, sample_rate INTEGER, codec VARCHAR,
        speaker_mode VARCHAR, model VARCHAR, status VARCHAR, error VARCHAR, run_id VARCHAR,
        ingested_at TIMESTAMP, extra JSON, redacted BOOLEAN, size_bytes BIGINT, metadata_from VARCHAR""",
        "One row per recording (identity: audio content hash + ASR model), including recordings that failed.",
        {
            "call_id": "Call id from the manifest, sidecar or file name; else the first 16 hex digits of audio_sha256.",
            "source_path": "Path the recording was read from (see call_paths for every path it was seen under).",
            "audio_sha256": "SHA-256 of the recording's bytes; with model, decides whether it is transcribed again.",
            "agent_id": "Agent who took the call; 'unknown' when no metadata names one.",
            "started_at": "When the call started (local time as given by the metadata).",
            "duration_s": "Duration of the decoded audio in seconds.",
            "channels": "Channels in the source file.",
            "sample_rate": "Sample rate of the source file in Hz.",
            "codec": "Audio codec of the source file (e.g. pcm_mulaw, mp3, flac).",
            "speaker_mode": "stereo (one speaker per channel), mono, mono_fallback_silent or mono_fallback_dual.",
            "model": "ASR model that produced the transcript.",
            "status": "ok, or failed (see error).",
            "error": "One-line reason why the recording failed; NULL when status is ok.",
            "run_id": "Run that last wrote this call.",
            "extra": "Further metadata fields from the manifest, sidecar or file name, as JSON.",
            "redacted": "True when PHI was redacted before storing; False only after an explicit --no-redact.",
            "metadata_from": "Where the metadata came from: manifest, sidecar, filename or none.",
        },
    ),
    "call_paths": (
        "source_path VARCHAR PRIMARY KEY, call_id VARCHAR, audio_sha256 VARCHAR, first_seen_at TIMESTAMP",
        "Every path a recording was seen under: the same audio under two names is stored once, both paths noted.",
        {"source_path": "A path a recording was read from.", "call_id": "The call stored for that audio."},
    ),
    "utterances": (
        """call_id VARCHAR, seq INTEGER, speaker VARCHAR, start_s DOUBLE, end_s DOUBLE, text VARCHAR,
        confidence DOUBLE, PRIMARY KEY (call_id, seq)""",
        "The transcript: one row per stretch of speech by one speaker, in time order (PHI redacted).",
        {
            "seq": "Position of the utterance in the call's timeline, from 0.",
            "speaker": "agent, customer, or unknown (mono recordings).",
            "start_s": "Start, seconds from the beginning of the call.",
            "end_s": "End, seconds from the beginning of the call.",
            "text": "What was said, PHI replaced by typed placeholders such as [NAME] or [DOB].",
            "confidence": "Mean word probability from the ASR, 0-1.",
        },
    ),
    "words": (
        """call_id VARCHAR, utterance_seq INTEGER, idx INTEGER, word VARCHAR, start_s DOUBLE, end_s DOUBLE,
        probability DOUBLE, PRIMARY KEY (call_id, utterance_seq, idx)""",
        "Words of each utterance with ASR timestamps and probabilities (PHI redacted).",
        {
            "utterance_seq": "utterances.seq of the utterance the word belongs to.",
            "idx": "Position of the word in its utterance, from 0.",
            "word": "The word as recognised, with its leading space.",
            "probability": "ASR probability of the word, 0-1.",
        },
    ),
    "tokens": (
        """call_id VARCHAR, utterance_seq INTEGER, idx INTEGER, text VARCHAR, whitespace BOOLEAN, lemma VARCHAR,
        norm VARCHAR, pos VARCHAR, tag VARCHAR, dep VARCHAR, head INTEGER, negated BOOLEAN, start_s DOUBLE,
        end_s DOUBLE, speaker VARCHAR, PRIMARY KEY (call_id, utterance_seq, idx)""",
        "spaCy analysis of each utterance, stored so that rescoring never reruns the NLP pipeline (PHI redacted).",
        {
            "idx": "Position of the token in its utterance, from 0.",
            "head": "idx of the token's syntactic head in the same utterance.",
            "negated": "True when the token lies in a negated clause (dependency parse).",
        },
    ),
    "call_metrics": (
        "call_id VARCHAR, metric VARCHAR, value DOUBLE, start_s DOUBLE, end_s DOUBLE, PRIMARY KEY (call_id, metric)",
        "Per-call metrics (interruptions, silences, holds, talk ratio, pace, customer sentiment).",
        {
            "metric": "Metric name, e.g. agent_interruptions, longest_silence_s, customer_sentiment_change.",
            "value": "The metric's value; NULL when it cannot be computed for the call (e.g. interruptions on mono).",
            "start_s": "Where in the call the value was observed (e.g. the longest silence), if it has a place.",
        },
    ),
    "rubrics": (
        """rubric_sha256 VARCHAR PRIMARY KEY, rubric_id VARCHAR, version INTEGER, name VARCHAR,
        pass_mark DOUBLE, sections JSON, source VARCHAR, first_used_at TIMESTAMP""",
        "Every rubric version calls were scored against, keyed by the hash of its YAML.",
        {
            "rubric_sha256": "SHA-256 of the rubric file's bytes.",
            "sections": "JSON list of the rubric's sections: id, name, weight.",
            "source": "The rubric's YAML text.",
        },
    ),
    "evaluations": (
        """call_id VARCHAR, rubric_id VARCHAR, rubric_version INTEGER, rubric_sha256 VARCHAR, score DOUBLE,
        passed BOOLEAN, auto_failed BOOLEAN, evaluated_at TIMESTAMP, run_id VARCHAR,
        PRIMARY KEY (call_id, rubric_sha256)""",
        "One row per call and rubric version: the overall score. Older rubric versions' rows are kept.",
        {
            "score": "Overall score 0-100 (section-weighted); NULL when no criterion applies to the call.",
            "passed": "score >= the rubric's pass_mark.",
            "auto_failed": "An auto_fail criterion failed, which sets the score to 0.",
        },
    ),
    "section_scores": (
        """call_id VARCHAR, rubric_id VARCHAR, rubric_sha256 VARCHAR, section_id VARCHAR, score DOUBLE,
        PRIMARY KEY (call_id, rubric_sha256, section_id)""",
        "Score of each rubric section per call: passed weight / applicable weight x 100.",
        {"score": "0-100; NULL when no criterion of the section applies."},
    ),
    "criterion_results": (
        """call_id VARCHAR, rubric_id VARCHAR, rubric_sha256 VARCHAR, section_id VARCHAR, criterion_id VARCHAR,
        outcome VARCHAR, weight DOUBLE, value DOUBLE, evidence_speaker VARCHAR, evidence_start_s DOUBLE,
        evidence_end_s DOUBLE, evidence_text VARCHAR, PRIMARY KEY (call_id, rubric_sha256, criterion_id)""",
        "Outcome of every rubric criterion for every call, with the evidence (PHI redacted).",
        {
            "outcome": "pass, fail or na (not applicable: its weight drops out).",
            "value": "The metric's value for metric criteria.",
            "evidence_speaker": "Who said the quoted words.",
            "evidence_start_s": "Where the evidence starts, seconds from the beginning of the call.",
            "evidence_text": "The quoted words (offending words for a failed 'absent' criterion).",
        },
    ),
}


# Columns that mean the same in every table that has them; a table's own comment wins.
COMMON_COLUMNS = {
    "call_id": "The call (calls.call_id).",
    "rubric_id": "Rubric id from the rubric file.",
    "rubric_version": "Rubric version from the rubric file.",
    "rubric_sha256": "SHA-256 of the rubric file's bytes (rubrics.rubric_sha256): identifies the exact rubric text.",
    "section_id": "Rubric section id.",
    "criterion_id": "Rubric criterion id.",
    "weight": "Weight of the criterion within its section.",
    "utterance_seq": "utterances.seq of the utterance this row belongs to.",
    "speaker": "agent, customer, or unknown (mono recordings).",
    "text": "Token text as recognised (PHI redacted).",
    "start_s": "Start, seconds from the beginning of the call.",
    "end_s": "End, seconds from the beginning of the call.",
    "run_id": "Run that wrote the row (runs.run_id).",
    "audio_sha256": "SHA-256 of the recording's bytes.",
    "evidence_end_s": "Where the evidence ends, seconds from the beginning of the call.",
    "evaluated_at": "When the call was scored against this rubric.",
    "ingested_at": "When the call was stored.",
    "first_seen_at": "When callqa first saw the recording under this path.",
    "first_used_at": "When a call was first scored against this rubric version.",
    "size_bytes": "Size of the recording in bytes.",
    "version": "callqa version that ran (runs) or the rubric's version number (rubrics).",
    "started_at": "When the run or call started.",
    "finished_at": "When the run finished; NULL while running or after a crash.",
    "audio_seconds": "Audio transcribed in the run, in seconds.",
    "wall_seconds": "Wall-clock duration of the run, in seconds.",
    "name": "Human-readable rubric name.",
    "pass_mark": "Overall score needed to pass, 0-100.",
    "whitespace": "True when a space follows the token.",
    "lemma": "spaCy lemma of the token.",
    "norm": "spaCy norm (normalised form) of the token.",
    "pos": "Universal part-of-speech tag.",
    "tag": "Fine-grained part-of-speech tag.",
    "dep": "Dependency label.",
}


def _column_names(columns: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in columns:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.split()[0] for p in parts if p.split() and p.split()[0].upper() != "PRIMARY"]


def _table_ddl(name: str, tables: dict = TABLES) -> list[str]:
    columns, comment, column_comments = tables[name]
    statements = [f"CREATE TABLE {name} ({columns})", f"COMMENT ON TABLE {name} IS {_quote(comment)}"]
    for col in _column_names(columns):
        text = column_comments.get(col) or COMMON_COLUMNS[col]
        statements.append(f"COMMENT ON COLUMN {name}.{col} IS {_quote(text)}")
    return statements


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# v2 (issue 13): the role decision of each call: which channel the agent is on, how it was decided, how sure.
ROLE_COLUMNS = {
    "agent_channel": ("VARCHAR", "Channel the agent is on: left or right (the first or second speaker channel: "
                                 "source channels 0 and 1 unless named with --channels); NULL on mono."),
    "role_source": ("VARCHAR", "How agent_channel was set: forced (--agent-channel left|right, or the manifest/sidecar "
                               "agent_channel) or detected (from what each side says); NULL on mono."),
    "role_confidence": ("DOUBLE", "How sure the detection is that the agent is on agent_channel, 0.5 (a guess) to 1; "
                                  "below 0.5 when forced against what is said."),
    "role_cues": ("VARCHAR[]", "The strongest evidence of the role decision, e.g. 'left +3.0 opening: thank you for "
                               "calling' (channel, weight towards agent, cue family, the words)."),
    "role_version": ("INTEGER", "Version of the role stage that decided; stored calls of an older one are decided "
                                "again from their stored words (and rescored if that changes their speakers)."),
    "review_reasons": ("VARCHAR[]", "Why a person should check the call (e.g. roles uncertain); an empty list "
                                    "when nothing needs a look, NULL on failed calls."),
}

# v3 (issue 17): human reviews of criteria, and each evaluation's score recomputed with them.
REVIEW_TABLES = {
    "human_reviews": (
        """call_id VARCHAR, rubric_id VARCHAR, criterion_id VARCHAR, reviewer VARCHAR, outcome VARCHAR,
        reviewed_at TIMESTAMP, comment VARCHAR, imported_at TIMESTAMP, source_file VARCHAR,
        PRIMARY KEY (call_id, rubric_id, criterion_id, reviewer)""",
        "A reviewer's own outcome for one criterion of one call (callqa reviews import); importing the same "
        "reviewer, call and criterion again replaces the row.",
        {
            "rubric_id": "Rubric the criterion belongs to; a review applies to every version of it with that criterion.",
            "reviewer": "Who reviewed the call (the file's reviewer column, or --reviewer).",
            "outcome": "The reviewer's outcome: pass, fail or na.",
            "reviewed_at": "When the review was made (the file's reviewed_at, else the import time).",
            "comment": "The reviewer's comment (PHI redacted like transcripts).",
            "imported_at": "When the row was imported.",
            "source_file": "File the row was imported from.",
        },
    ),
}
REVIEWED_COLUMNS = {
    "reviewed_score": ("DOUBLE", "The score recomputed with human outcomes (human_reviews, the latest review per "
                                 "criterion) in place of the automatic ones; NULL when the call has no review."),
    "reviewed_passed": ("BOOLEAN", "reviewed_score >= the rubric's pass_mark; NULL without a review or a score."),
}
# v4 (issue 14): speakers estimated on mono recordings.
DIARIZATION_COLUMNS = {
    "diarization_confidence": ("DOUBLE", "speaker_mode mono_estimated: how sure the estimate of who spoke when is, "
                                         "0-1 (the share of speech given to a speaker with a clear margin; for one "
                                         "voice, how alike its halves are); NULL on stereo and unestimated mono."),
    "estimated_speakers": ("INTEGER", "speaker_mode mono_estimated: voices found (1: a voicemail or monologue; "
                                      "3: a transfer or third party, flagged in review_reasons); NULL otherwise."),
}

# v5 (issue 18): where each run's decoding and ASR ran.
RUN_PLACE_COLUMNS = {
    "executor": ("VARCHAR", "Where decoding and ASR ran: local (this machine) or ray (a Ray cluster); NULL for "
                            "rescore runs and runs of older versions."),
    "cluster_nodes": ("INTEGER", "Nodes of the Ray cluster when the run started (1 for local)."),
    "cluster_cpus": ("DOUBLE", "CPUs of the cluster when the run started (this machine's cores for local)."),
    "cluster_gpus": ("DOUBLE", "GPUs of the Ray cluster when the run started (0 for local)."),
    "asr_workers": ("INTEGER", "Whisper models transcribing at once: local worker processes or Ray actors."),
}

MIGRATIONS: dict[int, list[str]] = {
    1: [stmt for name in TABLES for stmt in _table_ddl(name)],
    2: [stmt for col, (kind, text) in ROLE_COLUMNS.items()
        for stmt in (f"ALTER TABLE calls ADD COLUMN IF NOT EXISTS {col} {kind}",
                     f"COMMENT ON COLUMN calls.{col} IS {_quote(text)}")]
    + ["COMMENT ON COLUMN calls.speaker_mode IS "
       + _quote("stereo (one speaker per channel, the agent on the left), stereo_swapped (the agent on the right), "
                "mono, mono_fallback_silent or mono_fallback_dual.")],
    3: [*_table_ddl("human_reviews", REVIEW_TABLES),
        *(stmt for col, (kind, text) in REVIEWED_COLUMNS.items()
          for stmt in (f"ALTER TABLE evaluations ADD COLUMN IF NOT EXISTS {col} {kind}",
                       f"COMMENT ON COLUMN evaluations.{col} IS {_quote(text)}"))],
    4: [*(stmt for col, (kind, text) in DIARIZATION_COLUMNS.items()
          for stmt in (f"ALTER TABLE calls ADD COLUMN IF NOT EXISTS {col} {kind}",
                       f"COMMENT ON COLUMN calls.{col} IS {_quote(text)}")),
        "ALTER TABLE call_metrics ADD COLUMN IF NOT EXISTS estimated BOOLEAN",
        "COMMENT ON COLUMN call_metrics.estimated IS " + _quote(
            "true when the metric rests on estimated speakers (speaker_mode mono_estimated): talk ratio, pace, "
            "sentiment and interruptions (on mono: the agent starting with no pause after the customer) are then "
            "estimates; false for stereo and for metrics that need no speakers."),
        "COMMENT ON COLUMN calls.speaker_mode IS " + _quote(
            "stereo (one speaker per channel, the agent on the left), stereo_swapped (the agent on the right), "
            "mono_estimated (one channel, speakers estimated and named), mono (speakers not estimated), "
            "mono_fallback_silent or mono_fallback_dual (a silent or duplicated channel, speakers not estimated).")],
    5: [stmt for col, (kind, text) in RUN_PLACE_COLUMNS.items()
        for stmt in (f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {col} {kind}",
                     f"COMMENT ON COLUMN runs.{col} IS {_quote(text)}")],
}
SCHEMA_VERSION = max(MIGRATIONS)
