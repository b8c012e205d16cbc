"""Backtest benchmark: `callqa rubric diff` over 10,000 stored calls, against `callqa rescore` in the same run.

    python benchmarks/rubric_diff.py                   # 10,000 calls
    python benchmarks/rubric_diff.py --calls-stored 2000 --work /tmp/bench   # keeps the DBs for the next run

The stored calls are built as in benchmarks/rescore.py (the sample calls scored once, then replicated with SQL).
NEW is the shipped rubric with a stricter greeting window (the first 5 s, not 20 s), another pass mark and version.
Three runs, each a subprocess (start-up included): the diff with OLD the stored version (`clinic-helpdesk@1`,
read from the stored evaluations), the diff with OLD a rubric file that is not stored (both sides evaluated), and
a real `callqa rescore` with NEW into a copy of the database, the baseline, against which the diff's calls are
checked one by one. Prints a table; a measurement, not a test.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rescore import ROOT, callqa, print_table, stored_calls_db  # noqa: E402  (the same builder of 10,000 stored calls)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def timed(*args: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process and its workers, stdout): on a shared machine the CPU time is
    what the command itself costs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = callqa(*args).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, out


def mismatches(diff: list[dict], db: Path) -> tuple[int, int]:
    """(calls where the diff and the rescored copy disagree, calls that change per the rescored copy)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            """SELECT o.call_id, o.score, n.score, o.passed, n.passed
               FROM evaluations o JOIN rubrics ro ON ro.rubric_sha256 = o.rubric_sha256 AND ro.version = 1
               JOIN evaluations n USING (call_id) JOIN rubrics rn ON rn.rubric_sha256 = n.rubric_sha256
               AND rn.version = 2""").fetchall()
    finally:
        con.close()
    reported = {d["call_id"]: d for d in diff}
    changed = wrong = 0
    for call_id, old, new, old_passed, new_passed in rows:
        changes = (old is None) != (new is None) or (old is not None and abs(old - new) > 1e-9) \
            or old_passed != new_passed
        changed += changes
        got = reported.get(call_id)
        if changes != (got is not None) or (got is not None and (
                got["new_passed"] != new_passed or (new is not None and abs(got["new_score"] - new) > 1e-9))):
            wrong += 1
    return wrong, changed


def main() -> None:
    args, work, db, stored = stored_calls_db(__doc__.split("\n\n")[0], "diff.duckdb")
    copy = work / "rescored.duckdb"
    callqa("sql", "--db", str(db), "SELECT 1")  # a seed from an older callqa is upgraded here, not in the timing
    shipped = (ROOT / "rubrics" / "clinic_helpdesk.yaml").read_text()
    new = work / "clinic_v2.yaml"
    new.write_text(shipped.replace("pass_mark: 80", "pass_mark: 75").replace("version: 1", "version: 2")
                   .replace("window: {first: 20s}", "window: {first: 5s}", 1))
    old_file = work / "clinic_v1_unstored.yaml"
    old_file.write_text(shipped + "\n# a copy that is not stored: its hash differs\n")

    before = digest(db)
    stored_wall, stored_cpu, stored_out = timed("rubric", "diff", "clinic-helpdesk@1", str(new), "--db", str(db), "--format", "json")
    files_wall, files_cpu, files_out = timed("rubric", "diff", str(old_file), str(new), "--db", str(db), "--format", "json")
    unchanged = digest(db) == before
    shutil.copy(db, copy)
    rescore_wall, rescore_cpu, _ = timed("rescore", "--db", str(copy), "--rubric", str(new))
    wrong, changed = mismatches(json.loads(stored_out), copy)
    wrong_files, _ = mismatches(json.loads(files_out), copy)

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    table = [
        ("stored calls", f"{stored:,}", ""),
        ("calls whose score or verdict changes", f"{changed:,} (per the rescored copy)", ""),
        ("callqa rescore NEW into a copy (baseline)", f"{rescore_wall:.1f} s wall, {rescore_cpu:.1f} s CPU", ""),
        ("rubric diff clinic-helpdesk@1 NEW", f"{stored_wall:.1f} s wall ({stored_wall / rescore_wall:.2f}x rescore), "
         f"{stored_cpu:.1f} s CPU ({stored_cpu / rescore_cpu:.2f}x)",
         f"target <= 30 s: {'ok' if stored_wall <= 30 else 'MISSED'}"),
        ("rubric diff OLD.yaml NEW (both evaluated)", f"{files_wall:.1f} s wall ({files_wall / rescore_wall:.2f}x "
         f"rescore), {files_cpu:.1f} s CPU ({files_cpu / rescore_cpu:.2f}x)",
         f"target <= 30 s: {'ok' if files_wall <= 30 else 'MISSED'}"),
        ("calls where diff and rescore disagree", f"{wrong} / {wrong_files}", "ok" if wrong == wrong_files == 0
         else "MISMATCH"),
        ("database after both diffs", "byte-identical" if unchanged else "CHANGED", "ok" if unchanged else "BAD"),
    ]
    print_table(table)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
