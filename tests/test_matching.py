"""Phrase matching semantics of rubric criteria on constructed calls with word timings."""

from __future__ import annotations

import pytest

from callqa.analyse import analyse, analyse_many, analysed_from_tokens, docs_from_tokens
from callqa.numbers import spoken_number
from callqa.phrases import compile_rubric
from callqa.score import evaluate
from rubric_helpers import harper_valley, one_criterion, outcomes, result, rubric, transcript

HELP = {"speaker": "agent", "match": {"any": ["help you"]}}


@pytest.mark.parametrize("said, outcome", [
    ("How can I help you today?", "pass"),
    ("I can't help you with that.", "fail"),
    ("I'm not able to help you today.", "fail"),
    ("I'm sorry, we don't have that, but I can help you with a new card.", "pass"),  # negation stays in its clause
])
def test_negated_clause_does_not_count_for_present(nlp, said, outcome):
    call = transcript([("agent", 1, said)])
    assert result(one_criterion(HELP), call, nlp).outcome == outcome


def test_negation_ignore_counts_negated_matches(nlp):
    call = transcript([("agent", 1, "I can't help you with that.")])
    assert result(one_criterion({**HELP, "negation": "ignore"}), call, nlp).outcome == "pass"


def test_absent_counts_every_occurrence_and_quotes_the_offence(nlp):
    rude = one_criterion({"speaker": "agent", "expect": "absent", "match": {"any": ["not my problem", "calm down"]}})
    call = transcript([("customer", 0, "My bill is wrong again."), ("agent", 3, "Well, that's not my problem, sir.")])
    r = result(rude, call, nlp)
    assert r.outcome == "fail"
    assert (r.evidence.speaker, r.evidence.text) == ("agent", "not my problem")
    assert r.evidence.start_s == pytest.approx(3.8) and r.evidence.end_s == pytest.approx(5.0)
    polite = transcript([("agent", 0, "Please don't worry, we will fix it.")])
    assert result(rude, polite, nlp)._replace(section_id="").outcome == "pass"


def test_case_punctuation_lemmas_and_numbers(nlp):
    crit = one_criterion({"match": {"any": ["thank you for call", "your appointment is at 10 30",
                                             "the 5 pm slot", "24 hours"]}})
    for said in ["THANK you, for calling!", "Your appointment was at ten thirty.", "the five p.m. slot",
                 "within twenty-four hours", "in 24 hours"]:
        assert result(crit, transcript([("agent", 0, said)]), nlp).outcome == "pass", said
    assert result(crit, transcript([("agent", 0, "thanks a lot for the call")]), nlp).outcome == "fail"


@pytest.mark.parametrize("words, value", [
    ("ten", (10, 1)), ("twenty four", (24, 2)), ("two hundred fifty", (250, 3)),
    ("one thousand two hundred", (1200, 4)), ("nine thirty", (9, 1)), ("hello", None),
])
def test_spoken_numbers(words, value):
    assert spoken_number(words.split(), 0) == value


def test_speaker_restriction(nlp):
    crit = one_criterion({"speaker": "agent", "match": {"any": ["thank you"]}})
    assert result(crit, transcript([("customer", 0, "Thank you.")]), nlp).outcome == "fail"
    assert result(crit, transcript([("agent", 0, "Thank you.")]), nlp).outcome == "pass"
    # Mono: the words of an unknown speaker may be the agent's.
    mono = transcript([("unknown", 0, "Thank you.")], speaker_mode="mono")
    assert result(crit, mono, nlp).evidence.speaker == "unknown"


def test_window_in_seconds_uses_word_timestamps(nlp):
    crit = one_criterion({"speaker": "agent", "window": {"first": "20s"}, "match": {"any": ["good morning"]}})
    # One utterance: "good" starts at 18 s inside the window, "morning" at 19.5 s.
    early = transcript([("agent", 15, "well hello and good morning", 20)], duration=120)
    late = transcript([("agent", 15, "well hello there and a very good morning", 24)], duration=120)
    r = result(crit, early, nlp)
    assert r.outcome == "pass" and r.evidence.start_s == pytest.approx(18.0)
    assert result(crit, late, nlp).outcome == "fail"  # "good" starts at 21 s


def test_window_in_percent_is_relative_to_duration(nlp):
    crit = one_criterion({"speaker": "customer", "window": {"last": "25%"}, "match": {"any": ["sounds good"]}})
    call = [("customer", 60, "sounds good")]
    assert result(crit, transcript(call, duration=70), nlp).outcome == "pass"  # last 17.5 s start at 52.5 s
    assert result(crit, transcript(call, duration=100), nlp).outcome == "fail"  # last 25 s start at 75 s


BEFORE = """
id: t
sections:
  - id: s
    criteria:
      - id: verify
        speaker: agent
        match: {all: [["date of birth"], ["full name", "your name"]]}
        before: disclose
      - id: disclose
        speaker: agent
        scored: false
        match: {any: ["your results"]}
"""


def test_before(nlp):
    r = rubric(BEFORE)
    good = transcript([("agent", 0, "Can I have your full name and date of birth?"),
                       ("agent", 10, "Thanks. Your results came back normal.")])
    bad = transcript([("agent", 0, "Your results came back normal."),
                      ("agent", 10, "Oh, can I have your full name and date of birth?")])
    assert outcomes(r, good, nlp) == {"verify": "pass", "disclose": "na"}
    verdict = result(r, bad, nlp, "verify")
    assert verdict.outcome == "fail"
    assert (verdict.evidence.text, verdict.evidence.start_s) == ("Your results", 0.0)  # the early disclosure
    # Verification is complete only when both identifiers were asked for.
    half = transcript([("agent", 0, "What's your date of birth?"), ("agent", 5, "Your results are fine."),
                       ("agent", 9, "And your full name?")])
    assert result(r, half, nlp, "verify").outcome == "fail"
    # Nothing disclosed: verification alone passes.
    assert result(r, transcript([("agent", 0, "Your name and date of birth please")]), nlp, "verify").outcome == "pass"


def test_fuzzy_matches_the_garbled_bank_name(nlp):
    bank = {"speaker": "agent", "window": {"first": "10s"}, "match": {"any": ["harper valley national bank"]}}
    asr = harper_valley("3a20358e1bfc4a17", "transcript")  # ASR heard "her provided national bank"
    assert result(one_criterion(bank), asr, nlp).outcome == "fail"
    r = result(one_criterion({**bank, "fuzzy": 0.7}), asr, nlp)
    assert r.outcome == "pass"
    assert r.evidence.text == "her provided national bank"
    # Too strict a threshold, or unrelated words, do not match.
    assert result(one_criterion({**bank, "fuzzy": 0.9}), asr, nlp).outcome == "fail"
    other = one_criterion({**bank, "fuzzy": 0.7, "match": {"any": ["riverside medical clinic"]}})
    assert result(other, asr, nlp).outcome == "fail"


def test_token_patterns_and_rescoring_from_stored_tokens(nlp):
    crit = one_criterion({"speaker": "agent", "match": {"patterns": [[{"LEMMA": "book"}, {"LOWER": "you"}]]}})
    call = transcript([("customer", 0, "Can I come Tuesday?"), ("agent", 3, "Sure, I'm booking you in now.")])
    compiled = compile_rubric(crit, nlp)
    analysis = next(analyse_many([call], nlp))
    live = evaluate(analysis.call, compiled, analysis.docs)
    stored = analysed_from_tokens(call, analysis.call.tokens)  # no pipeline: Docs rebuilt from the tokens
    rescored = evaluate(stored, compiled)
    assert live == rescored
    assert live.results[0].outcome == "pass" and live.results[0].evidence.text == "booking you"


def test_docs_from_tokens_rebuild_the_parse(nlp):
    call = transcript([("agent", 0, "I can't help you, sorry."), ("customer", 3, "That's fine. Thanks!")])
    analysis = next(analyse_many([call], nlp))
    rebuilt = docs_from_tokens(analysis.call.tokens, nlp.vocab)
    assert len(rebuilt) == len(analysis.docs) == 2
    for original, again in zip(analysis.docs, rebuilt):
        assert again.text == original.text
        assert [(t.lemma_, t.pos_, t.tag_, t.dep_, t.head.i, t.norm_) for t in again] == \
               [(t.lemma_, t.pos_, t.tag_, t.dep_, t.head.i, t.norm_) for t in original]
    assert all(doc.has_annotation("ENT_IOB") for doc in analysis.docs)  # NER ran for redaction (ner=True default)


def test_tokens_carry_word_times_and_negation(nlp):
    call = transcript([("agent", 2, "Hello, I can't help.", 4)])  # 4 words of 0.5 s each
    tokens = analyse(call, nlp).tokens
    by_text = {t.text: t for t in tokens}
    assert (by_text["Hello"].start_s, by_text[","].end_s) == pytest.approx((2.0, 2.5))
    assert (by_text["ca"].start_s, by_text["n't"].end_s) == pytest.approx((3.0, 3.5))  # both from "can't"
    assert by_text["help"].negated and not by_text["Hello"].negated
    assert all(t.speaker == "agent" and t.utterance_seq == 0 for t in tokens)


def test_evidence_can_be_quoted_from_a_display_text(nlp):
    crit = one_criterion({"speaker": "agent", "match": {"any": ["my name is"]}})
    call = analyse(transcript([("agent", 0, "Hi, my name is Anna Lee.")]), nlp)
    compiled = compile_rubric(crit, nlp)
    display = [{"Anna": "[NAME]", "Lee": ""}.get(t.text, t.text) for t in call.tokens]
    crit_wide = compile_rubric(one_criterion({"speaker": "agent", "match": {"any": ["my name is anna lee"]}}), nlp)
    assert evaluate(call, compiled, display=display).results[0].evidence.text == "my name is"
    assert evaluate(call, crit_wide, display=display).results[0].evidence.text == "my name is [NAME]"
