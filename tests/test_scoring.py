"""Scoring: arithmetic, na handling, auto-fail, Hypothesis invariants, and the shipped clinic rubric on
constructed clinic calls."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from callqa.analyse import analyse
from callqa.metrics import compute_metrics
from callqa.phrases import compile_rubric
from callqa.records import AnalysedCall
from callqa.rubric import Rubric, load_rubric
from callqa.score import evaluate
from rubric_helpers import SHIPPED, one_criterion, result, score, transcript

# A call whose metrics decide outcomes: agent_talk_ratio is 1.0; customer sentiment is None (customer silent).
METRIC_CALL = transcript([("agent", 0, "hello this is the clinic", 2), ("agent", 5, "are you there", 6)])
METRIC_ANALYSED = AnalysedCall(METRIC_CALL, (), compute_metrics(METRIC_CALL))
OUTCOME_SPEC = {
    "pass": {"metric": "agent_talk_ratio", "max": 1},
    "fail": {"metric": "agent_talk_ratio", "max": 0.5},
    "na": {"metric": "customer_sentiment_start", "min": 0},  # not computable on this call
}


def metric_rubric(sections, pass_mark=80) -> Rubric:
    """sections: [(section weight, [(criterion weight, auto_fail, outcome), ...]), ...]"""
    return Rubric.model_validate({
        "id": "h", "pass_mark": pass_mark,
        "sections": [{"id": f"s{i}", "weight": sw, "criteria": [
            {"id": f"s{i}c{j}", "weight": w, "auto_fail": af, **OUTCOME_SPEC[o]} for j, (w, af, o) in enumerate(crits)
        ]} for i, (sw, crits) in enumerate(sections)],
    })


def evaluated(sections, nlp, pass_mark=80):
    return evaluate(METRIC_ANALYSED, compile_rubric(metric_rubric(sections, pass_mark), nlp))


criteria_st = st.lists(st.tuples(st.floats(0.5, 50), st.booleans(), st.sampled_from(["pass", "fail", "na"])),
                       min_size=1, max_size=4)
sections_st = st.lists(st.tuples(st.integers(1, 100), criteria_st), min_size=1, max_size=3)
HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_outcome_spec_gives_the_intended_outcomes(nlp):
    ev = evaluated([(1, [(1, False, "pass"), (1, False, "fail"), (1, False, "na")])], nlp)
    assert [r.outcome for r in ev.results] == ["pass", "fail", "na"]


def test_section_and_overall_arithmetic(nlp):
    ev = evaluated([(3, [(2, False, "pass"), (1, False, "fail")]), (1, [(5, False, "pass")]),
                    (7, [(1, False, "na")])], nlp)
    assert ev.section_scores["s2"] is None
    assert (ev.section_scores["s0"], ev.section_scores["s1"]) == pytest.approx((200 / 3, 100.0))
    assert ev.score == pytest.approx((3 * 200 / 3 + 100) / 4)  # s2 has nothing applicable and drops out
    assert ev.passed is False and ev.auto_failed is False


@HYPO
@given(sections=sections_st)
def test_score_bounds_auto_fail_and_pass_mark(nlp, sections):
    ev = evaluated(sections, nlp)
    all_na = all(o == "na" for _, crits in sections for _, _, o in crits)
    auto_failed = any(af and o == "fail" for _, crits in sections for _, af, o in crits)
    if all_na:
        assert (ev.score, ev.passed) == (None, None)
        return
    assert 0 <= ev.score <= 100
    assert ev.auto_failed == auto_failed
    if auto_failed:
        assert ev.score == 0 and ev.passed is False
    assert ev.passed == (ev.score >= 80)


@HYPO
@given(sections=sections_st, data=st.data())
def test_passing_one_more_criterion_never_lowers_the_score(nlp, sections, data):
    flippable = [(i, j) for i, (_, crits) in enumerate(sections) for j, c in enumerate(crits) if c[2] != "pass"]
    assume(flippable)
    i, j = data.draw(st.sampled_from(flippable))
    better = [(sw, [(w, af, "pass" if (si, cj) == (i, j) else o) for cj, (w, af, o) in enumerate(crits)])
              for si, (sw, crits) in enumerate(sections)]
    before, after = evaluated(sections, nlp).score, evaluated(better, nlp).score
    assert after is not None
    assert before is None or after >= before - 1e-9


@HYPO
@given(sections=sections_st, data=st.data())
def test_na_criteria_never_change_the_score(nlp, sections, data):
    where = data.draw(st.integers(0, len(sections)))  # len(sections): a new section of na criteria only
    na = (data.draw(st.floats(0.5, 50)), data.draw(st.booleans()), "na")
    if where == len(sections):
        more = [*sections, (data.draw(st.integers(1, 100)), [na])]
    else:
        more = [(sw, [*crits, na] if i == where else crits) for i, (sw, crits) in enumerate(sections)]
    plain, with_na = evaluated(sections, nlp), evaluated(more, nlp)
    assert (with_na.score, with_na.passed, with_na.auto_failed) == (plain.score, plain.passed, plain.auto_failed)
    assert {k: v for k, v in with_na.section_scores.items() if k in plain.section_scores} == plain.section_scores


def test_uncomputable_metric_is_na_never_a_silent_pass(nlp):
    mono = transcript([("unknown", 0, "hello how can I help", 2), ("unknown", 2.1, "hi I need help", 4)],
                      speaker_mode="mono")
    r = result(one_criterion({"metric": "agent_interruptions", "max": 2}), mono, nlp)
    assert (r.outcome, r.value, r.evidence.text) == ("na", None, None)


def test_metric_evidence_says_value_and_where(nlp):
    call = transcript([("agent", 0, "one moment", 1), ("agent", 31, "back", 32)])
    r = result(one_criterion({"metric": "longest_silence_s", "max": 20}), call, nlp)
    assert r.outcome == "fail" and r.value == 30
    assert r.evidence == (None, 1, 31, "longest_silence_s = 30")  # silence belongs to no speaker


def test_na_if_duration_under(nlp):
    crit = one_criterion({"match": {"any": ["hello"]}, "na_if": {"duration_under": "20s"}})
    assert result(crit, transcript([("agent", 0, "hi")], duration=10), nlp).outcome == "na"
    assert result(crit, transcript([("agent", 0, "hi")], duration=25), nlp).outcome == "fail"


def test_no_applicable_criterion_scores_none(nlp):
    crit = one_criterion({"speaker": "agent", "expect": "absent", "match": {"any": ["whatever"]}})
    ev = score(crit, transcript([], duration=5), nlp)  # nothing said: nothing to judge
    assert (ev.score, ev.passed, ev.results[0].outcome) == (None, None, "na")


# ---------------------------------------------------------------- the shipped clinic rubric

GOOD_CALL = [
    ("agent", 0, "Good morning, thank you for calling Riverside Clinic, my name is Anna. How can I help you today?", 6),
    ("customer", 6.5, "Hi, I need to move my appointment. I'm a bit frustrated, nobody called me back.", 11.5),
    ("agent", 12, "I'm sorry to hear that. Can I have your full name and date of birth, please?", 16.5),
    ("customer", 17, "Maria Lopez, March third, nineteen eighty.", 20),
    ("agent", 21, "Thank you. Your appointment is on Friday. May I place you on hold while I check the calendar?", 27),
    ("customer", 27.5, "Sure.", 28),
    ("agent", 42, "Thank you for holding. I've booked you for Tuesday at ten a.m. with Doctor Chen.", 47.5),
    ("customer", 48, "That works, thank you.", 50),
    ("agent", 51, "Is there anything else I can help you with?", 53.5),
    ("customer", 54, "No, that's all.", 55.5),
    ("agent", 56, "Thank you for calling, have a great day.", 58.5),
    ("customer", 59, "Perfect, thanks, bye.", 60.5),
]


@pytest.fixture(scope="module")
def clinic(nlp):
    return compile_rubric(load_rubric(SHIPPED / "clinic_helpdesk.yaml"), nlp)


def scored_lines(compiled, nlp, lines, duration=62.0):
    ev = evaluate(analyse(transcript(lines, duration=duration), nlp), compiled)
    return ev, {r.criterion_id: r.outcome for r in ev.results}


def test_clinic_rubric_good_call_scores_100(clinic, nlp):
    ev, got = scored_lines(clinic, nlp, GOOD_CALL)
    assert got == {c: "pass" for c in got} | {"discloses_details": "na"}, got
    assert (ev.score, ev.passed, ev.auto_failed) == (100.0, True, False)


def test_clinic_rubric_details_before_verification_auto_fails(clinic, nlp):
    lines = list(GOOD_CALL)
    lines[2] = ("agent", 12, "I'm sorry to hear that. Your appointment is on Friday at nine.", 16.5)
    lines[4] = ("agent", 21, "Can I have your full name and date of birth? May I place you on hold?", 27)
    ev, got = scored_lines(clinic, nlp, lines)
    assert got["verify_identity"] == "fail"
    assert (ev.score, ev.passed, ev.auto_failed) == (0.0, False, True)
    evidence = next(r.evidence for r in ev.results if r.criterion_id == "verify_identity")
    assert evidence.text.startswith("Your appointment is") and evidence.start_s == pytest.approx(13.75, abs=0.5)


def test_clinic_rubric_conditional_criteria_na_when_not_triggered(clinic, nlp):
    plain = [
        ("agent", 0, "Thank you for calling Riverside Clinic, this is Anna, how can I help?", 5),
        ("customer", 5.5, "What time do you open on Saturdays?", 8),
        ("agent", 8.5, "We open at nine. The next step is just to walk in. Anything else?", 13),
        ("customer", 15.6, "No, that's great, thanks.", 17),
        ("agent", 17.5, "Thanks for calling, take care.", 19.5),
    ]
    ev, got = scored_lines(clinic, nlp, plain, duration=22)
    assert (got["empathy"], got["hold_etiquette"], got["verify_identity"]) == ("na", "na", "na")
    assert ev.score == 100.0


def test_clinic_rubric_rude_agent_auto_fails_even_on_a_dropped_call(clinic, nlp):
    ev, got = scored_lines(clinic, nlp, [("agent", 0, "Riverside Clinic. Calm down, I can't hear you.", 4)],
                              duration=6)
    assert got["no_rude_language"] == "fail" and all(o == "na" for c, o in got.items() if c != "no_rude_language")
    assert (ev.score, ev.auto_failed) == (0.0, True)


def test_clinic_rubric_unscored_helper_is_reported_with_evidence(clinic, nlp):
    ev, _ = scored_lines(clinic, nlp, GOOD_CALL)
    helper = next(r for r in ev.results if r.criterion_id == "discloses_details")
    assert (helper.outcome, helper.weight, helper.evidence.text) == ("na", 0.0, "Your appointment is")


def test_two_rubrics_on_the_same_call(nlp):
    it = compile_rubric(load_rubric(SHIPPED / "it_helpdesk.yaml"), nlp)
    lines = [
        ("agent", 0, "Thank you for calling the IT service desk, my name is Sam. How can I help?", 5),
        ("customer", 5.5, "My laptop can't connect to the VPN again, it's really frustrating.", 10),
        ("agent", 10.5, "I'm sorry about that. What's your username please?", 13),
        ("customer", 13.5, "jdoe.", 14),
        ("agent", 15, "I've reset your token. Can you try again now?", 18),
        ("customer", 19, "It still fails.", 20),
        ("agent", 21, "Okay, I'll escalate this to the network team. They will contact you within four hours. "
                      "Your ticket number is INC one two three four.", 30),
        ("agent", 31, "Is there anything else? Thank you for calling.", 34),
    ]
    ev, got = scored_lines(it, nlp, lines, duration=36)
    assert got == {c: "pass" for c in got}, got
    assert ev.rubric_id == "it-helpdesk" and ev.score == 100.0
