"""Phone, card, SSN, member/record ids and ZIP codes, written as digits or spoken digit by digit."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .dates import DATE, has_year
from .spans import PhiSpan
from .vocabulary import COMMON_INITIALISMS, DIGIT_WORDS, NUMBER_WORD, TEENS, TENS, UNITS

# Context words, searched backwards from a number: the nearest one decides what the number is.
_CONTEXT_LABEL = {
    **dict.fromkeys("card visa mastercard amex credit debit".split(), "CARD"),
    **dict.fromkeys(
        "ssn social member membership id mrn record records chart policy insurance group account "
        "subscriber medicare medicaid license reference confirmation claim case identification "
        "identifier".split(),
        "ID",
    ),
    **dict.fromkeys("birth born dob birthday birthdate".split(), "DOB"),
    **dict.fromkeys("zip zipcode postal".split(), "ADDRESS"),
    **dict.fromkeys("phone cell mobile telephone call reach callback fax text landline".split(), "PHONE"),
}
_PAYMENT_WORDS = {"visa", "mastercard", "amex", "credit", "debit"}
_CONTEXT_WINDOW = 10  # word tokens looked back for a context word

# ---------------------------------------------------------------- a tiny tokenizer with offsets
# Codes written with inner hyphens or dots ("HMO-5547-2210", "555.214.9087") stay one token so that their
# letters go with their digits.
_TOKEN = re.compile(r"(?=[\w.-]*\d)[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)+|[A-Za-z0-9]+(?:'[A-Za-z]+)?|[^\sA-Za-z0-9]")


_DIGITS_AND_DASHES = re.compile(r"\d+(?:[-.]\d+)+")


class _Tok(NamedTuple):
    start: int
    end: int
    text: str
    low: str


def _tokens(text: str) -> list[_Tok]:
    return [_Tok(m.start(), m.end(), m.group(), m.group().lower()) for m in _TOKEN.finditer(text)]


def _context_label(toks: Sequence[_Tok], before: int) -> str | None:
    words = [t.low for t in toks[max(0, before - 3 * _CONTEXT_WINDOW) : before] if t.low[0].isalnum()]
    window = words[-_CONTEXT_WINDOW:]
    labels = [_CONTEXT_LABEL[w] for w in reversed(window) if w in _CONTEXT_LABEL]
    if not labels:
        return None
    # A bare "card" next to "insurance"/"member"/"id" is an insurance card, whose number is a member id.
    if labels[0] == "CARD" and "ID" in labels and not _PAYMENT_WORDS.intersection(window):
        return "ID"
    return labels[0]


# ---------------------------------------------------------------- spoken and written digit sequences
_RUN_SEPARATORS = {",", "-", ".", "(", ")", "/", "+", "#", "dash", "hyphen"}


def _is_code_prefix(word: str) -> bool:
    return word.lower() not in _CONTEXT_LABEL and word not in COMMON_INITIALISMS


def _number_element(toks: list[_Tok], i: int, in_run: bool) -> tuple[int, int, int] | None:
    """(tokens consumed, digits, letters) of the number element starting at toks[i], or None."""
    tok = toks[i]
    nxt = toks[i + 1].low if i + 1 < len(toks) else ""
    if tok.low == "<date>":
        return None
    if tok.text.isdigit():
        return 1, len(tok.text), 0
    if _DIGITS_AND_DASHES.fullmatch(tok.text):  # Whisper's "0-6", "421-1"
        return 1, sum(c.isdigit() for c in tok.text), 0
    if any(c.isdigit() for c in tok.text) and sum(c.isalnum() for c in tok.text) >= 4:
        return 1, sum(c.isdigit() for c in tok.text), sum(c.isalpha() for c in tok.text)
    if tok.low in DIGIT_WORDS:
        return 1, 1, 0
    if tok.low in TEENS:
        return 1, 2, 0
    if tok.low in TENS:
        if nxt in UNITS:
            return 2, 2, 0
        if nxt == "-" and i + 2 < len(toks) and toks[i + 2].low in UNITS:
            return 3, 2, 0
        return 1, 2, 0
    if in_run and tok.low in ("hundred", "thousand"):
        return 1, 2 if tok.low == "hundred" else 3, 0
    if tok.low in ("double", "triple") and (nxt in DIGIT_WORDS or nxt.isdigit()):
        return 2, 2 if tok.low == "double" else 3, 0
    if len(tok.text) == 1 and tok.text.isalpha():
        return 1, 0, 1
    if 2 <= len(tok.text) <= 4 and tok.text.isalpha() and tok.text.isupper() and _is_code_prefix(tok.text):
        return 1, 0, len(tok.text)  # the letters of an id: "ZQW 4418 2290", "CL dash nine nine"
    return None


class _Element(NamedTuple):
    first: int  # token indexes, inclusive
    last: int
    digits: int
    letters: int


def _number_runs(toks: list[_Tok]) -> Iterable[list[_Element]]:
    """Maximal runs of number elements, separated only by punctuation or "dash"."""
    i = 0
    while i < len(toks):
        run: list[_Element] = []
        j = i
        while j < len(toks):
            element = _number_element(toks, j, in_run=bool(run))
            if element is None:
                break
            used, digits, letters = element
            run.append(_Element(j, j + used - 1, digits, letters))
            j += used
            while j < len(toks) and toks[j].low in _RUN_SEPARATORS:
                j += 1
        if run:
            yield run
            i = run[-1].last + 1
        else:
            i += 1


def _is_interjection(toks: list[_Tok], i: int) -> bool:
    """"Oh" opening a sentence or followed by a comma is an interjection, not a zero."""
    if toks[i].low not in ("oh", "o"):
        return False
    opens = i == 0 or toks[i - 1].low in (".", "!", "?", ",")
    return opens or (i + 1 < len(toks) and toks[i + 1].low in (",", "."))


def _trim_run(toks: list[_Tok], run: list[_Element]) -> list[_Element]:
    # A lone "a"/"I" at either end is English, not part of an id.
    while run and (toks[run[0].first].low in ("a", "i") or _is_interjection(toks, run[0].first)):
        run = run[1:]
    while run and toks[run[-1].last].low in ("a", "i"):
        run = run[:-1]
    return run


def _label_for_digits(digits: int, context: str | None) -> str | None:
    if context is not None:
        return context if digits >= 4 else None
    if digits in (7, 10, 11):
        return "PHONE"
    if 13 <= digits <= 19:
        return "CARD"
    return "ID" if digits >= 7 else None


@functools.lru_cache(maxsize=4096)  # the per-utterance recognizer and the conversation pass read the same runs
def _runs(text: str) -> tuple[tuple[_Tok, ...], tuple[tuple[_Element, ...], ...]]:
    """The tokens of ``text`` and its number runs, trimmed. A full date ends a run: "10/14/1988, 555-301-7722"
    is a date and a phone, not an 18-digit card."""
    dates = [m.span() for m in DATE.finditer(text) if has_year(m)]
    toks = [t._replace(low="<date>") if any(a <= t.start < b for a, b in dates) else t for t in _tokens(text)]
    return tuple(toks), tuple(tuple(run) for run in (_trim_run(toks, r) for r in _number_runs(toks)) if run)


def forget_runs() -> None:
    """Drop the cached runs (and so the text) of the call just redacted."""
    _runs.cache_clear()


# What a number run is when it is not an identifier: money, clock times, durations, doses, counts.
_NOT_AN_ID_AFTER = re.compile(
    rf"(?:\s+and\s+(?:{NUMBER_WORD}|\d+)(?:[\s-]+(?:{NUMBER_WORD}))*)?\s*(?:dollars?|bucks|cents?|percent|%|"
    r"a\.?\s?m\b|p\.?\s?m\b|o'?clock|seconds?|minutes?|hours?|days?|business|weeks?|months?|years?|times?|"
    r"moments?|milligrams?|mg\b|pills?|tablets?|refills?|of\s+them)",
    re.IGNORECASE,
)


def is_quantity(text: str, start: int, end: int) -> bool:
    return _NOT_AN_ID_AFTER.match(text, end) is not None or text[:start].rstrip().endswith("$")


def number_runs_in(text: str) -> tuple[tuple[int, int, int], ...]:
    """(start, end, digits) of every run of digits or number words in ``text`` that is not a quantity."""
    toks, runs = _runs(text)
    spans = [(toks[r[0].first].start, toks[r[-1].last].end, sum(e.digits for e in r)) for r in runs]
    return tuple(s for s in spans if not is_quantity(text, s[0], s[1]))


def find_digit_sequences(text: str) -> list[PhiSpan]:
    """Phone, card, SSN, member/record ids and ZIP codes, written as digits or spoken as words."""
    toks, runs = _runs(text)
    spans = []
    for run in runs:
        label = _label_for_digits(sum(e.digits for e in run), _context_label(toks, run[0].first))
        start, end = toks[run[0].first].start, toks[run[-1].last].end
        if label is not None and not is_quantity(text, start, end):
            spans.append(PhiSpan(start, end, label, "spoken_digits"))
    return spans
