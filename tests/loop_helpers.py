"""A real scored database for the QA-loop tests: Harper Valley conversations scored by the real Scorer (spaCy,
the bank test rubric), stored by the real Store, spread over three agents and four days."""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from callqa.records import CallRecord, CallSource
from callqa.scoring import Scorer
from callqa.store import Store
from rubric_helpers import RUBRICS, harper_valley

BANK_RUBRIC = RUBRICS / "bank_calls.yaml"
SIDS = ("3a20358e1bfc4a17", "a7ccc3379af44b9f", "ff0296d00e5e4184")
AGENTS = ("a.garcia", "b.chen", "c.okafor")
FORMULA_CALL = "=hv-11"  # a call id a spreadsheet would run as a formula


def call_id(n: int) -> str:
    return FORMULA_CALL if n == 11 else f"hv-{n:02d}"


def build_loop_db(path: Path, copies: int = 4) -> Path:
    scorer = Scorer.from_paths([BANK_RUBRIC], redact=False)
    with Store(path) as store:
        scorer.save_rubrics(store)
        for i in range(copies):
            for k, sid in enumerate(SIDS):
                n = i * len(SIDS) + k
                mode = "mono_fallback_dual" if n == 4 else "stereo"
                call = harper_valley(sid)._replace(call_id=call_id(n), speaker_mode=mode)
                analysed, evaluations = scorer.score(call)
                source = CallSource(f"/calls/{n}.wav", call.call_id, AGENTS[(i + k) % len(AGENTS)],
                                    datetime(2026, 11, 2 + i, 9 + k), f"sha{n}", 1, {}, "manifest")
                store.save_call(CallRecord(source, "ok", None, "bundled:tiny.en", True, call.duration_s,
                                           speaker_mode=mode, analysed=analysed, evaluations=evaluations), "run-1")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The scored database, built once per test module (import this fixture with ``db``)."""
    return build_loop_db(tmp_path_factory.mktemp("loop") / "built.duckdb")


@pytest.fixture
def db(built, tmp_path) -> Path:
    """A copy of it for one test."""
    path = tmp_path / "callqa.duckdb"
    shutil.copy(built, path)
    return path


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict], fields: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
