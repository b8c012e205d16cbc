"""Verdicts and scores: each criterion of a compiled rubric judged on a call, with evidence, and the call's totals."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from spacy.tokens import Doc

from .callview import NO_EVIDENCE, CallView, CallWords, Found
from .metrics import METRICS
from .phrases import CompiledCriterion, CompiledRubric
from .records import AnalysedCall, CriterionResult, Evaluation, Evidence, Outcome
from .rubric import MetricCriterion, PhraseCriterion, Rubric


def _metric_result(cc: CompiledCriterion, view: CallView) -> tuple[Outcome, float | None, Evidence]:
    criterion = cc.criterion
    assert isinstance(criterion, MetricCriterion), "judged as a metric criterion"
    metric = view.call.metrics.get(criterion.metric)
    if metric is None or metric.value is None:
        return "na", None, NO_EVIDENCE
    value = metric.value
    ok = (criterion.min is None or value >= criterion.min) and (criterion.max is None or value <= criterion.max)
    evidence = Evidence(METRICS[criterion.metric].speaker, metric.start_s, metric.end_s, f"{criterion.metric} = {value:g}")
    return ("pass" if ok else "fail"), value, evidence


def _phrase_result(cc: CompiledCriterion, view: CallView,
                   by_id: dict[str, CompiledCriterion]) -> tuple[Outcome, float | None, Evidence]:
    criterion = cc.criterion
    assert isinstance(criterion, PhraseCriterion), "judged as a phrase criterion"
    found = _found(cc, view)
    if criterion.expect == "absent":
        assert cc.search is not None
        if not view.has_words(cc.search):
            return "na", None, NO_EVIDENCE  # nothing said: no verdict on what was not said
        return ("fail", found.total, view.evidence(found.firsts())) if found.found else ("pass", 0, NO_EVIDENCE)
    if not found.found:
        return "fail", found.total, NO_EVIDENCE
    if criterion.before is not None:
        later = _found(by_id[criterion.before], view)
        if later.found and later.completed_at < found.completed_at:
            # The offending evidence: what came first although it had to wait.
            return "fail", found.total, view.evidence(later.firsts())
    return "pass", found.total, view.evidence(found.firsts())


def _found(cc: CompiledCriterion, view: CallView) -> Found:
    cached = view.found_by_criterion.get(cc.criterion.id)
    if cached is None:
        assert cc.search is not None, "only phrase criteria are searched"
        cached = view.found_by_criterion[cc.criterion.id] = view.run(cc.search)
    return cached


def _applicable(cc: CompiledCriterion, view: CallView, by_id: dict[str, CompiledCriterion]) -> bool:
    criterion = cc.criterion
    na_if = criterion.na_if
    if na_if is not None and na_if.duration_under is not None and view.call.transcript.duration_s < na_if.duration_under:
        return False
    condition = criterion.na_unless
    if condition is None:
        return True
    if condition.found is not None:
        return _found(by_id[condition.found], view).found
    assert cc.condition is not None, "an inline na_unless is compiled to a search"
    found = view.run(cc.condition)
    return found.found


def judge(cc: CompiledCriterion, view: CallView, by_id: dict[str, CompiledCriterion]) -> CriterionResult:
    criterion = cc.criterion
    weight = criterion.weight if criterion.scored else 0.0
    if not _applicable(cc, view, by_id):
        outcome: Outcome
        outcome, value, evidence = "na", None, NO_EVIDENCE
    elif isinstance(criterion, MetricCriterion):
        outcome, value, evidence = _metric_result(cc, view)
    else:
        outcome, value, evidence = _phrase_result(cc, view, by_id)
    if not criterion.scored:
        outcome = "na"  # a helper: reported with its evidence, never scored
    return CriterionResult(cc.section.id, criterion.id, outcome, weight, None if value is None else float(value), evidence)


class Totals(NamedTuple):
    section_scores: dict[str, float | None]
    score: float | None
    auto_failed: bool
    passed: bool | None


def totals(rubric: Rubric, results: Sequence[CriterionResult]) -> Totals:
    """Section score = passed weight / applicable weight x 100; overall = section-weighted mean over sections
    with applicable criteria; a failed auto_fail criterion makes it 0; no score when only `absent` criteria apply."""
    auto = {c.id for _, c in rubric.criteria() if c.auto_fail}
    section_scores: dict[str, float | None] = {}
    for section in rubric.sections:
        scored = [r for r in results if r.section_id == section.id and r.outcome != "na"]
        applicable = sum(r.weight for r in scored)
        passed = sum(r.weight for r in scored if r.outcome == "pass")
        section_scores[section.id] = 100.0 * passed / applicable if applicable > 0 else None
    counted = [(s.weight, value) for s in rubric.sections if (value := section_scores[s.id]) is not None]
    score = sum(w * v for w, v in counted) / sum(w for w, _ in counted) if counted else None
    # Having said nothing rude is no performance to score: a call where only `absent` criteria apply (a
    # dropped call) gets no score, or it would inflate the agent's average with a 100.
    absent_only = {c.id for _, c in rubric.criteria() if isinstance(c, PhraseCriterion) and c.expect == "absent"}
    if all(r.criterion_id in absent_only for r in results if r.outcome != "na"):
        score = None
        section_scores = dict.fromkeys(section_scores)
    auto_failed = any(r.outcome == "fail" and r.criterion_id in auto for r in results)
    if auto_failed:
        score = 0.0
    if score is not None:
        score = round(score, 6)  # float noise must not decide a pass at the mark
    return Totals(section_scores, score, auto_failed, None if score is None else score >= rubric.pass_mark)


def evaluate(call: AnalysedCall, compiled: CompiledRubric, docs: Sequence[Doc] | None = None,
             display: Sequence[str] | None = None, words: CallWords | None = None) -> Evaluation:
    """Score one call. ``docs`` (the pipeline's own, one per utterance) saves rebuilding them for token patterns;
    ``display`` (parallel to ``call.tokens``) is the text quoted in evidence instead of each token's own, e.g. PHI
    placeholders, with "" for tokens to leave out. Matching always uses the real words. ``words`` (from
    ``call.tokens``) is shared when one call is scored against several rubrics."""
    view = CallView(call, compiled, docs, display, words)
    by_id = {cc.criterion.id: cc for cc in compiled.criteria}
    results = tuple(judge(cc, view, by_id) for cc in compiled.criteria)
    t = totals(compiled.rubric, results)
    rubric = compiled.rubric
    return Evaluation(call.transcript.call_id, rubric.id, rubric.version, rubric.sha256, t.score, t.passed,
                      t.auto_failed, t.section_scores, results)


def evaluate_all(call: AnalysedCall, rubrics: Sequence[CompiledRubric], docs: Sequence[Doc] | None = None,
                 display: Sequence[str] | None = None) -> tuple[Evaluation, ...]:
    """``evaluate`` against each rubric, the call's word streams built once."""
    words = CallWords(call.tokens)
    return tuple(evaluate(call, compiled, docs, display, words) for compiled in rubrics)
