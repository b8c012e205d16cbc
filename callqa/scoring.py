"""From a transcript to stored rows: analyse with spaCy, score against every rubric, redact PHI.

Scoring runs on the unredacted text in memory; only redacted text and evidence leave this module.
Rescoring works from the stored (redacted) tokens and never reruns the spaCy pipeline.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import logging
import math
import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Iterable, Iterator, NamedTuple, Sequence

from .analyse import analyse_many, analysed_from_tokens
from .nlp import load_nlp
from .phrases import CompiledRubric, compile_rubric
from .records import AnalysedCall, Evaluation, MetricValue, Token, Transcript, Utterance
from .redact import PhiSpan, Redactor, placeholder
from .redact.organisations import names_organisation
from .rubric import Rubric, load_rubrics
from .rubric_models import PhraseCriterion
from .score import evaluate_all
from .store import Store, transaction

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("callqa")


class LoadedRubric(NamedTuple):
    rubric: Rubric
    compiled: CompiledRubric


def phi_display(tokens: Sequence[Token], utterances: Sequence[Utterance],
                spans: Sequence[Sequence[PhiSpan]]) -> list[str]:
    """What each token shows in an evidence quote: its text, a placeholder for the first token of a PHI span,
    or nothing for the rest of that span."""
    spans_by_seq = {u.seq: list(s) for u, s in zip(utterances, spans)}
    display: list[str] = []
    for seq, grouped in itertools.groupby(tokens, key=lambda t: t.utterance_seq):
        group = list(grouped)
        utterance_spans = spans_by_seq.get(seq, [])
        starts = [s.start for s in utterance_spans]
        offsets = itertools.accumulate((len(t.text) + t.whitespace for t in group), initial=0)
        shown: set[int] = set()
        for token, start in zip(group, offsets):
            end = start + len(token.text)
            k = bisect.bisect_right(starts, end - 1) - 1
            if k >= 0 and utterance_spans[k].end > start:
                display.append("" if k in shown else placeholder(utterance_spans[k].label))
                shown.add(k)
            else:
                display.append(token.text)
    return display


def rubric_phrases(rubrics: Iterable[Rubric]) -> list[str]:
    """The rubrics' phrases that name an organisation ("thank you for calling Riverside Clinic"): kept readable
    where they are said. Other phrases are not: a rubric may quote what a caller says, PHI included."""
    phrases = []
    for rubric in rubrics:
        for _, criterion in rubric.criteria():
            own = criterion.match if isinstance(criterion, PhraseCriterion) else None
            for match in (own, criterion.na_unless.match if criterion.na_unless else None):
                if match is not None:
                    phrases += [p for p in match.phrases() if names_organisation(p)]
    return phrases


class Scorer:
    """Holds the spaCy pipeline, the compiled rubrics and the redactor, each loaded once per process."""

    def __init__(self, rubrics: Sequence[LoadedRubric], redactor: Redactor | None):
        self.rubrics = tuple(rubrics)
        self.compiled = tuple(r.compiled for r in self.rubrics)
        self.redactor = redactor
        self.nlp = load_nlp()

    @classmethod
    def from_paths(cls, paths: Iterable[Path], redact: bool = True, allow_list: Sequence[str] = ()) -> "Scorer":
        return cls.from_rubrics(load_rubrics(paths), redact, allow_list)

    @classmethod
    def from_rubrics(cls, rubrics: Iterable[Rubric], redact: bool = True, allow_list: Sequence[str] = ()) -> "Scorer":
        nlp = load_nlp()
        loaded = [LoadedRubric(rubric, compile_rubric(rubric, nlp)) for rubric in rubrics]
        if not redact:
            return cls(loaded, None)
        return cls(loaded, Redactor(nlp, allow_list=(*allow_list, *rubric_phrases(r.rubric for r in loaded))))

    def save_rubrics(self, store: Store) -> None:
        store.save_rubrics(loaded.rubric for loaded in self.rubrics)

    def score(self, transcript: Transcript) -> tuple[AnalysedCall, tuple[Evaluation, ...]]:
        """(the analysed call to store, its evaluations), both redacted unless redaction is off."""
        analysis = next(analyse_many([transcript], self.nlp, ner=self.redactor is not None))
        call, docs = analysis.call, analysis.docs
        if self.redactor is None:
            return call, evaluate_all(call, self.compiled, docs)
        spans = self.redactor.find_utterances(transcript.utterances, docs)
        display = phi_display(call.tokens, transcript.utterances, spans)
        evaluations = evaluate_all(call, self.compiled, docs, display)
        return self.redactor.redact_analysed(call, docs, spans), evaluations

    def evaluate_stored(self, store: Store, call_ids: Sequence[str],
                        only: Collection[str] | None = None) -> Iterator[tuple[int, list[Evaluation]]]:
        """(calls in the chunk, their evaluations) of stored calls, evaluated in memory from their stored tokens
        against this scorer's rubrics, or ``only`` those with these hashes; nothing is written."""
        rubrics = [r for r in self.rubrics if only is None or r.rubric.sha256 in only]
        workers = (os.cpu_count() or 1) if len(call_ids) > RESCORE_CHUNK and _FORK is not None else 0
        with ChunkEvaluator(rubrics, workers) as evaluator:
            yield from evaluator.evaluated(stored_rows(store, call_ids, RESCORE_CHUNK))

    def rescore(self, store: Store, call_ids: Sequence[str], run_id: str,
                only: Collection[str] | None = None) -> int:
        """``evaluate_stored`` and write the evaluations, one transaction per chunk."""
        count = 0
        for calls, evaluations in self.evaluate_stored(store, call_ids, only):
            with transaction(store.con):
                store.write_evaluations(evaluations, run_id)
            count += calls
        return count


RESCORE_CHUNK = 500
_FORK = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
_RUBRICS: Sequence[LoadedRubric] = ()  # the compiled rubrics of a rescoring worker, inherited at the fork

StoredRows = tuple[list[tuple], "pa.Table", "pa.Table"]  # calls; tokens and metrics, call_id first


def stored_rows(store: Store, call_ids: Sequence[str], chunk: int = RESCORE_CHUNK) -> Iterator[StoredRows]:
    """What scoring needs of stored calls, in chunks: tokens, metrics and duration (redacted text).

    The rubric engine reads tokens, metrics and the call's duration only, so utterances and words stay in the
    database. Tokens and metrics come as Arrow tables: fetching them as Python rows here, and pickling those to
    the workers, cost five times what converting the columns in the worker does.
    """
    token_columns = ", ".join(Token._fields)
    tokens_sql = (f"SELECT call_id, {token_columns} FROM tokens WHERE call_id IN (SELECT unnest(?)) "
                  "ORDER BY call_id, utterance_seq, idx")
    metrics_sql = "SELECT call_id, metric, value, start_s, end_s FROM call_metrics WHERE call_id IN (SELECT unnest(?))"
    for i in range(0, len(call_ids), chunk):
        ids = list(call_ids[i:i + chunk])
        calls = store.con.execute(
            "SELECT call_id, duration_s, speaker_mode FROM calls WHERE call_id IN (SELECT unnest(?))", [ids]
        ).fetchall()
        yield calls, store.con.execute(tokens_sql, [ids]).to_arrow_table(), \
            store.con.execute(metrics_sql, [ids]).to_arrow_table()


def evaluate_rows(rows: StoredRows, rubrics: Sequence[LoadedRubric]) -> list[Evaluation]:
    calls, token_table, metric_table = rows
    tokens, metrics = _by_call(token_table), _by_call(metric_table)
    analysed = (_rebuild(call, tokens.get(call[0], []), metrics.get(call[0], [])) for call in calls)
    compiled = [r.compiled for r in rubrics]
    return [e for call in analysed for e in evaluate_all(call, compiled)]


def _evaluate_in_worker(rows: StoredRows) -> list[Evaluation]:
    return evaluate_rows(rows, _RUBRICS)


class ChunkEvaluator:
    """Rebuilds and evaluates chunks of stored rows: here, or in ``workers`` forked processes.

    The rubric engine is pure Python: on 2 cores, two workers nearly halve a 10,000-call rescore while this
    process reads the next chunks and writes the finished ones. The workers fork at the first chunk and inherit
    the compiled rubrics; plain rows go to them and evaluations come back.
    """

    def __init__(self, rubrics: Sequence[LoadedRubric], workers: int):
        global _RUBRICS
        self.rubrics, self.workers, self.pool = rubrics, workers, None
        if workers:
            _RUBRICS = rubrics
            # gc.freeze: a worker's collector would otherwise walk, and so copy, every inherited object
            self.pool = ProcessPoolExecutor(workers, mp_context=_FORK, initializer=gc.freeze)

    def __enter__(self) -> "ChunkEvaluator":
        return self

    def __exit__(self, *exc) -> None:
        global _RUBRICS
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            _RUBRICS = ()

    def evaluated(self, chunks: Iterable[StoredRows]) -> Iterator[tuple[int, list[Evaluation]]]:
        """(calls in the chunk, their evaluations), in order."""
        if self.pool is None:
            for rows in chunks:
                yield len(rows[0]), evaluate_rows(rows, self.rubrics)
            return
        in_flight: deque[tuple[int, Future]] = deque()
        for rows in chunks:
            in_flight.append((len(rows[0]), self.pool.submit(_evaluate_in_worker, rows)))
            if len(in_flight) > self.workers:
                count, future = in_flight.popleft()
                yield count, future.result()
        while in_flight:
            count, future = in_flight.popleft()
            yield count, future.result()


def _by_call(table: pa.Table) -> dict[str, list[tuple]]:
    """Rows of a table whose first column is the call_id, grouped by call, each row without its call_id."""
    call_ids, *columns = (column.to_pylist() for column in table.columns)
    grouped: dict[str, list[tuple]] = {}
    start = 0
    for call_id, size in ((key, sum(1 for _ in group)) for key, group in itertools.groupby(call_ids)):
        grouped.setdefault(call_id, []).extend(zip(*(column[start:start + size] for column in columns)))
        start += size
    return grouped


def _rebuild(call: tuple, token_rows: list[tuple], metric_rows: list[tuple]) -> AnalysedCall:
    call_id, duration_s, speaker_mode = call
    metrics = {metric: MetricValue(_nan_none(value), _nan_none(start), _nan_none(end))
               for metric, value, start, end in metric_rows}
    tokens = [Token._make(row) for row in token_rows]
    return analysed_from_tokens(Transcript(call_id, duration_s, speaker_mode, ()), tokens, metrics)


def _nan_none(value):
    return None if value is None or math.isnan(value) else float(value)
