"""PHI redaction (issue 7): recall/precision on tests/data/phi, each recognizer on spoken forms, the
allow-list, the Transcript/AnalysedCall invariants, and that nothing goes to the network."""

from __future__ import annotations

import re
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import phi_eval
from callqa.analyse import analyse_many, docs_from_tokens
from callqa.records import Transcript, Utterance, Word
from callqa.redact import (
    LABELS,
    Redactor,
    find_addresses,
    find_cued_names,
    find_dates,
    find_digit_sequences,
    find_spelled_names,
    find_spoken_emails,
    replace_spans,
)

# Mentions of the test set the redactor misses today (each leaks); the leak test fails if this list grows
# and asks for it to shrink when one gets fixed.
KNOWN_MISSES = {
    "Linda Park",  # spaCy's small model does not tag it, and "for" is too common to cue a name
    "goldberg",  # a lower-case surname after a spelled first name, with no cue
}


@pytest.fixture(scope="module")
def redactor(nlp):
    return Redactor(nlp, allow_list=["Riverside Clinic", "Keisha"])


@pytest.fixture(scope="module")
def cases():
    return phi_eval.load_cases()


@pytest.fixture(scope="module")
def predicted(nlp, cases):
    """Spans the redactor finds in the test set, with the allow-list the sample calls' clinic would configure."""
    return phi_eval.predict(Redactor(nlp, allow_list=phi_eval.allow_list()), cases)


def test_recall_and_precision_meet_targets(cases, predicted):
    scores = phi_eval.score(cases, predicted)
    print("\n" + phi_eval.report(scores))
    assert sum(scores.gold.values()) >= 100
    assert scores.recall >= phi_eval.RECALL_TARGET, scores.misses
    assert scores.precision >= phi_eval.PRECISION_TARGET, scores.false_positives


def _survives(value: str, redacted: str) -> bool:
    if re.search(rf"(?<!\w){re.escape(value)}(?!\w)", redacted, re.IGNORECASE):
        return True
    digits = re.sub(r"\D", "", value)
    return len(digits) >= 4 and digits in re.sub(r"\D", "", redacted)


def test_no_phi_value_of_the_test_set_survives_redaction(cases, predicted):
    leaked = {
        case.text[g.start : g.end]
        for case, spans in zip(cases, predicted)
        for g in case.gold
        if _survives(case.text[g.start : g.end], replace_spans(case.text, spans))
    }
    assert leaked == KNOWN_MISSES


SPOKEN = [
    (find_digit_sequences, "you can reach me at [[five five five, one two one two|PHONE]]"),
    (find_digit_sequences, "it's [[double five five, two one four, nine oh eight seven|PHONE]]"),
    (find_digit_sequences, "[[eight hundred five five five twelve twelve|PHONE]]"),
    (find_digit_sequences, "my social is [[one two three, four five, six seven eight nine|ID]]"),
    (find_digit_sequences, "the medical record number is [[oh oh four eight two nine one three|ID]]"),
    (find_digit_sequences, "member id [[W one two three four five six seven|ID]]"),
    (find_digit_sequences, "Policy number [[HMO-5547-2210|ID]]."),
    (find_digit_sequences, "my visa is [[four one one one one one one one one one one one one one one one|CARD]]"),
    (find_digit_sequences, "zip code is [[nine oh two one oh|ADDRESS]]"),
    (find_digit_sequences, "insurance card number is [[seven seven three four one oh two two|ID]]"),
    (find_dates, "my date of birth is [[March fourth, nineteen eighty-two|DOB]]"),
    (find_dates, "born [[the fourth of March eighty two|DOB]]"),
    (find_dates, "DOB [[03/04/1982|DOB]]"),
    (find_dates, "it's [[october the second, two thousand and five|DOB]]"),
    (find_dates, "my birthday is [[the seventh|DOB]]"),
    (find_spelled_names, "that's [[S M I T H|NAME]]"),
    (find_spelled_names, "it's [[S-M-I-T-H|NAME]]"),
    (find_spelled_names, "[[S as in Sam, M as in Mary|NAME]]"),
    (find_spelled_names, "it's [[M I double L E R|NAME]]"),
    (find_spelled_names, "[[Nguyen|NAME]], N G U Y E N"),
    (find_cued_names, "hi my name is [[elizabeth rodriguez|NAME]] i would like to"),
    (find_cued_names, "I'm calling for my mother, [[Jane Doe|NAME]]."),
    (find_cued_names, "Last name [[O'Brien|NAME]], first name Kathleen."),
    (find_addresses, "I live at [[12 Oak Street|ADDRESS]]"),
    (find_addresses, "[[twelve oak street apartment four|ADDRESS]]"),
    (find_addresses, "[[1420 North Maple Avenue, Springfield, Illinois 62704|ADDRESS]]"),
    (find_addresses, "mail goes to [[P.O. Box 1187|ADDRESS]]"),
    (find_spoken_emails, "my email is [[john at gmail dot com|EMAIL]]"),
    (find_spoken_emails, "it's [[j o h n dot smith at yahoo dot com|EMAIL]]"),
    (find_spoken_emails, "[[peterson underscore r at comcast dot net|EMAIL]]"),
]  # fmt: skip


@pytest.mark.parametrize(("recognizer", "marked"), SPOKEN)
def test_recognizer_finds_spoken_form(recognizer, marked):
    case = phi_eval.parse_marked(marked, "test")
    found = {(s.start, s.end, s.label) for s in recognizer(case.text)}
    assert set(case.gold) <= found


NOT_PHI = [
    "The doctor said ten milligrams twice a day.",
    "Your appointment is on Tuesday at 3.",
    "We have an opening on March fourth at two thirty.",
    "Your total comes to one hundred and forty two fifty.",
    "Press one for appointments, press two for billing.",
    "Go to the ER if the pain gets worse, the MRI is on the 21st.",
    "I'll see you at 3 p.m. on May 5th.",
    "Oh, okay, one two three, that works.",
    "Could you spell your last name for me?",
    "He takes five hundred milligrams of metformin.",
]


@pytest.mark.parametrize("recognizer", [find_digit_sequences, find_dates, find_spelled_names, find_cued_names,
                                        find_addresses, find_spoken_emails])  # fmt: skip
def test_recognizers_leave_clinic_talk_alone(recognizer):
    assert [(text, recognizer(text)) for text in NOT_PHI if recognizer(text)] == []


def test_allow_list_keeps_agent_and_clinic_names_but_not_longer_names(nlp, redactor):
    greeting = "Thank you for calling Riverside Clinic, this is Keisha, how can I help?"
    assert redactor.redact_text(greeting) == greeting
    assert "[NAME]" in Redactor(nlp).redact_text(greeting)
    assert redactor.redact_text("The patient is Keisha Lopez.") == "The patient is [NAME]."


def test_spans_are_sorted_disjoint_and_typed(cases, predicted):
    for case, spans in zip(cases, predicted):
        assert all(s.label in LABELS for s in spans)
        assert all(a.end <= b.start for a, b in zip(spans, spans[1:])), case.text


def test_reused_doc_gives_the_same_spans_and_is_left_unchanged(nlp, redactor):
    text = "My name is John Smith and my number is 555-867-5309."
    doc = nlp(text)
    ents_before = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
    assert redactor.find(text, doc) == redactor.find(text)
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == ents_before
    with pytest.raises(ValueError):
        redactor.find("another text", doc)


def test_no_network_is_touched(nlp, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = Redactor(nlp)
    assert fresh.redact_text("Email jsmith@example.org or h.ochoa@protonmail.co.uk") == "Email [EMAIL] or [EMAIL]"


def test_a_name_found_once_is_redacted_everywhere_in_the_call(redactor):
    transcript = _transcript(["hi my name is michael brown", "thank you michael, one moment", "Keisha here"])
    texts = [u.text for u in redactor.redact_transcript(transcript).utterances]
    assert texts == ["hi my name is [NAME]", "thank you [NAME], one moment", "Keisha here"]


# ------------------------------------------------------------------ transcripts and tokens
def _words(text: str, t0: float = 0.0) -> tuple[Word, ...]:
    pieces = re.findall(r"\s*\S+", text)
    return tuple(Word(p if i else " " + p.lstrip(), t0 + i, t0 + i + 0.8, 0.9) for i, p in enumerate(pieces))


def _transcript(texts: list[str]) -> Transcript:
    utterances = tuple(
        Utterance(i, "customer", 10.0 * i, 10.0 * i + 9, t, 0.9, _words(t, 10.0 * i)) for i, t in enumerate(texts)
    )
    return Transcript("call-1", 30.0, "stereo", utterances)


PHI_PIECES = [
    "five five five, one two one two", "John Smith", "S M I T H", "March fourth, nineteen eighty-two",
    "12 Oak Street", "john at gmail dot com", "4111 1111 1111 1111", "555-867-5309",
]  # fmt: skip
FILLER = ["okay", "my", "number", "is", "thanks,", "and", "the", "date", "of", "birth", "name", "is", "uh", "yes."]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(FILLER + PHI_PIECES), min_size=1, max_size=12))
def test_redact_transcript_keeps_the_word_invariant_and_timestamps(redactor, pieces):
    text = " ".join(pieces)
    original = _transcript([text])
    redacted = redactor.redact_transcript(original).utterances[0]
    words = redacted.words
    assert redacted.text == "".join(w.word for w in words).strip()
    assert words[0].start == original.utterances[0].words[0].start
    assert words[-1].end == original.utterances[0].words[-1].end
    assert all(a.end <= b.start for a, b in zip(words, words[1:]))
    assert {w.start for w in words} <= {w.start for w in original.utterances[0].words}
    for piece in PHI_PIECES:
        if piece in pieces:
            assert piece not in redacted.text and piece not in "".join(w.word for w in words)


def test_redact_analysed_tokens_read_like_the_redacted_text(nlp, redactor):
    transcript = _transcript(["My number is five five five, one two one two, thanks.", "I'd like to book a visit."])
    analysis = next(analyse_many([transcript], nlp))
    analysed = analysis.call
    redacted = redactor.redact_analysed(analysed, analysis.docs)
    assert redacted == redactor.redact_analysed(analysed)  # the reused Docs change nothing but the cost
    assert redacted.transcript.utterances[0].text == "My number is [PHONE], thanks."
    assert redacted.transcript.utterances[1] == analysed.transcript.utterances[1]
    rebuilt = docs_from_tokens(redacted.tokens, nlp.vocab)  # the rescoring path must accept redacted tokens
    assert [d.text for d in rebuilt] == [u.text for u in redacted.transcript.utterances]
    for utterance in redacted.transcript.utterances:
        tokens = [t for t in redacted.tokens if t.utterance_seq == utterance.seq]
        assert [t.idx for t in tokens] == list(range(len(tokens)))
    phone = next(t for t in redacted.tokens if t.text == "[PHONE]")
    assert phone.lemma == phone.norm == "[PHONE]"
    phone_words = redacted.transcript.utterances[0].words[3]
    assert (phone.start_s, phone.end_s) == (phone_words.start, phone_words.end) == (3.0, 9.8)
    second = tuple(t for t in analysed.tokens if t.utterance_seq == 1)
    assert redacted.tokens[-len(second) :] == second


def test_sample_call_scripts_that_list_their_phi_join_the_test_set(tmp_path):
    (tmp_path / "call1.yaml").write_text(
        "call_id: c1\nphi: {Dana Ruiz: NAME, five five five one two one two: PHONE}\n"
        "turns:\n- agent: Thanks for calling, may I have your name?\n"
        "- customer: It's Dana Ruiz, call me at five five five one two one two.\n- hold: 3\n"
    )
    (tmp_path / "call2.yaml").write_text("call_id: c2\nturns:\n- customer: It's Sam Lee.\n")
    cases = phi_eval.load_script_cases(tmp_path)
    assert [c.text for c in cases] == ["Thanks for calling, may I have your name?",
                                       "It's Dana Ruiz, call me at five five five one two one two."]  # fmt: skip
    assert [(cases[1].text[g.start : g.end], g.label) for g in cases[1].gold] == [
        ("Dana Ruiz", "NAME"), ("five five five one two one two", "PHONE")]  # fmt: skip
