"""`callqa rescore`: score stored calls again from their stored tokens, without touching audio or spaCy.

Stored role decisions made by an older role stage are made again from the stored words first (callqa.reattribute).

Evaluations are keyed by the rubric's content hash, so the rows of older rubric versions stay for comparison.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from pathlib import Path
from typing import NamedTuple, Sequence

from . import __version__
from .daterange import DateRange
from .reattribute import redecide
from .roles import ROLE_VERSION
from .scoring import Scorer
from .store import Store

log = logging.getLogger("callqa")


class RescoreSummary(NamedTuple):
    run_id: str
    calls: int
    rubrics: tuple[str, ...]
    wall_seconds: float


def select_calls(store: Store, dates: DateRange = DateRange(), agents: Sequence[str] = ()) -> list[str]:
    """Ids of successfully transcribed calls, optionally by the day they started and agent."""
    where, params = dates.where()
    sql = " AND ".join(["SELECT call_id FROM calls WHERE status = 'ok'", *where])
    if agents:
        sql += " AND agent_id IN (SELECT unnest(?))"
        params.append(list(agents))
    return [row[0] for row in store.con.execute(sql + " ORDER BY call_id", params).fetchall()]


def rescore_db(db: Path | None, rubrics: Sequence[Path] = (), dates: DateRange = DateRange(),
               agents: Sequence[str] = (), command: str = "") -> RescoreSummary:
    dates.check()
    started = time.perf_counter()
    scorer = Scorer.from_paths(rubrics, redact=False)  # stored text is already redacted; nothing new is quoted
    run_id = uuid.uuid4().hex[:12]
    with Store(db, must_exist=True) as store:  # a typo in --db must not create an empty database
        scorer.save_rubrics(store)
        store.start_run(run_id, command or " ".join(sys.argv), __version__)
        call_ids = select_calls(store, dates, agents)
        moved = redecide(store, call_ids, lambda _: "auto")  # detections by an older role stage, decided again
        if moved:
            log.info("%d calls changed speakers (role stage v%d)", len(moved), ROLE_VERSION)
        count = scorer.rescore(store, call_ids, run_id)
        wall = time.perf_counter() - started
        store.finish_run(run_id, {"files_seen": 0, "processed": count, "skipped": 0, "failed": 0,
                                  "audio_seconds": 0.0, "wall_seconds": wall, "interrupted": False})
    log.info("rescored %d calls in %.1f s", count, wall)
    return RescoreSummary(run_id, count, tuple(r.rubric.id for r in scorer.rubrics), wall)
