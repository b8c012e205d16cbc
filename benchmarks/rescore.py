"""Rescoring benchmark: `callqa rescore` with a changed rubric over 10,000 stored calls.

    python benchmarks/rescore.py                   # 10,000 calls
    python benchmarks/rescore.py --calls-stored 2000

The database is built from real transcripts: the sample calls are scored once, then every stored row of every
per-call table is replicated under new call ids with SQL until the store holds the wanted number of calls.
The changed rubric is the shipped one with another pass mark and version, so every call needs a new evaluation.
``callqa rescore`` runs as a subprocess (start-up included). Prints a table; a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
PER_CALL_TABLES = ("calls", "call_paths", "utterances", "words", "tokens", "call_metrics", "evaluations",
                   "section_scores", "criterion_results")
UNIQUE_PER_CALL = {"calls": ("audio_sha256", "source_path"), "call_paths": ("audio_sha256", "source_path")}


def callqa(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "callqa", *args], capture_output=True, text=True, env=env)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"callqa {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def replicate(db: Path, wanted: int) -> int:
    """Copy the stored calls under new ids (``<id>~<n>``) until there are ``wanted``; returns the count."""
    con = duckdb.connect(str(db))
    try:
        seed = con.execute("SELECT count(*) FROM calls WHERE status = 'ok'").fetchone()[0]
        copies = -(-wanted // seed) - 1
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM calls WHERE status <> 'ok'")
        for table in PER_CALL_TABLES:
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table]
            ).fetchall()]
            renamed = {"call_id": "t.call_id || '~' || n"}
            renamed |= {c: f"t.{c} || '~' || n" for c in UNIQUE_PER_CALL.get(table, ())}
            select = ", ".join(renamed.get(c, f"t.{c}") for c in columns)
            con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} t "
                        f"JOIN calls c ON c.call_id = t.call_id AND c.status = 'ok', range(1, {copies + 1}) r(n)")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM calls").fetchone()[0]
    finally:
        con.close()


def print_table(table: list[tuple[str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def stored_calls_db(description: str, name: str) -> tuple[argparse.Namespace, Path, Path, int]:
    """The options every stored-calls benchmark takes, and a DB ``name`` in the work folder holding the wanted
    number of stored calls: (args, work folder, DB, calls stored)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--calls", type=Path, default=ROOT / "sample_calls", help="folder of sample calls")
    parser.add_argument("--calls-stored", type=int, default=10_000, help="calls in the store (default 10,000)")
    parser.add_argument("--work", type=Path, help="folder for the DBs [default: a temporary one]")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="callqa-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    seed_db, db = work / "seed.duckdb", work / name
    if not seed_db.exists():
        callqa("score", str(args.calls), "--db", str(seed_db))
    shutil.copy(seed_db, db)
    return args, work, db, replicate(db, args.calls_stored)


def main() -> None:
    args, work, db, stored = stored_calls_db(__doc__.split("\n\n")[0], "rescore.duckdb")
    shipped = (ROOT / "rubrics" / "clinic_helpdesk.yaml").read_text()
    changed = work / "clinic_changed.yaml"
    changed.write_text(shipped.replace("pass_mark: 80", "pass_mark: 70").replace("version: 1", "version: 2"))
    started = time.perf_counter()
    out = callqa("rescore", "--db", str(db), "--rubric", str(changed)).stdout.strip()
    wall = time.perf_counter() - started
    con = duckdb.connect(str(db), read_only=True)
    try:
        rescored = con.execute("SELECT count(*) FROM evaluations e JOIN rubrics r USING (rubric_sha256) "
                               "WHERE r.version = 2").fetchone()[0]
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("utterances", "tokens")}
    finally:
        con.close()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"callqa says: {out}")
    table = [
        ("stored calls", f"{stored:,} ({rows['utterances']:,} utterances, {rows['tokens']:,} tokens)", ""),
        ("evaluations against the changed rubric", f"{rescored:,}", "ok" if rescored == stored else "MISSING"),
        ("callqa rescore wall time", f"{wall:.1f} s ({stored / wall:,.0f} calls/s)",
         f"target <= 30 s: {'ok' if wall <= 30 else 'MISSED'}"),
    ]
    print_table(table)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
