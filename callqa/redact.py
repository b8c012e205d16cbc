"""Find protected health information (PHI) in call text and replace it with typed placeholders.

Detection is the union of three layers:
- Microsoft Presidio's analyzer on the already loaded spaCy pipeline: spaCy NER for person names, and
  Presidio's pattern recognizers for written e-mails, phone numbers, card numbers, SSNs and Medicare ids;
- recognizers of our own for what people *say* on the phone and ASR writes as words: digit sequences
  ("five five five, one two one two", "oh", "double five"), dates, spelled names ("S M I T H",
  "S as in Sam"), street addresses, e-mails ("john at gmail dot com") and names after cues ("my name is").

Policy decisions (issue 7):
- Every person name is PHI, staff and providers included, except what the allow-list keeps (the agent's
  own name, the clinic's name).
- A date with a day, a month and a year is [DOB]: HIPAA Safe Harbor removes all date elements but the year
  that relate to a person, and in clinic calls a full date is almost always a birth date. A date without a
  year ("Tuesday at 3", "March fourth") is kept so QA can read appointment talk, unless the utterance says
  it is a birthday / date of birth. There is no [DATE] placeholder.
- City or state names alone are kept; a street address is redacted with whatever city, state and ZIP
  follow it, and a ZIP code is redacted when announced as one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.tokens import Doc

from .records import AnalysedCall, Token, Transcript, Utterance, Word

log = logging.getLogger("callqa")

LABELS = ("NAME", "DOB", "PHONE", "ID", "ADDRESS", "CARD", "EMAIL")
# Breaks ties when spans of different labels cover the same text: the more specific reading wins.
_LABEL_PRIORITY = {"EMAIL": 6, "ADDRESS": 5, "DOB": 4, "CARD": 3, "ID": 2, "PHONE": 2, "NAME": 1}


class PhiSpan(NamedTuple):
    start: int
    end: int
    label: str  # one of LABELS
    source: str  # the recognizer that found it, e.g. "spoken_digits" or "presidio:CreditCardRecognizer"


def placeholder(label: str) -> str:
    return f"[{label}]"


# ---------------------------------------------------------------- vocabulary of spoken numbers
_DIGIT_WORDS = {
    "zero": 1, "oh": 1, "o": 1, "one": 1, "two": 1, "three": 1, "four": 1, "five": 1,
    "six": 1, "seven": 1, "eight": 1, "nine": 1,
}  # fmt: skip
_TEENS = ("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_UNITS = [w for w in _DIGIT_WORDS if w not in ("zero", "oh", "o")]
_ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth"
).split()
_NUMBER_WORD = "|".join(sorted([*_DIGIT_WORDS, *_TEENS, *_TENS, "hundred", "thousand"], key=len, reverse=True))
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan\.?|feb\.?|mar\.?|apr\.?|jun\.?|jul\.?|aug\.?|sept?\.?|oct\.?|nov\.?|dec\.?"
)
_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

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
_DOB_CONTEXT = re.compile(r"\b(?:birth|born|dob|d\.o\.b|birthday|birthdate)\b", re.IGNORECASE)

# ---------------------------------------------------------------- a tiny tokenizer with offsets
# Codes written with inner hyphens or dots ("HMO-5547-2210", "555.214.9087") stay one token so that their
# letters go with their digits.
_TOKEN = re.compile(r"(?=[\w.-]*\d)[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)+|[A-Za-z0-9]+(?:'[A-Za-z]+)?|[^\sA-Za-z0-9]")


class _Tok(NamedTuple):
    start: int
    end: int
    text: str
    low: str


def _tokens(text: str) -> list[_Tok]:
    return [_Tok(m.start(), m.end(), m.group(), m.group().lower()) for m in _TOKEN.finditer(text)]


def _context_label(toks: list[_Tok], before: int) -> str | None:
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
    return word.lower() not in _CONTEXT_LABEL and word not in _COMMON_INITIALISMS


def _number_element(toks: list[_Tok], i: int, in_run: bool) -> tuple[int, int, int] | None:
    """(tokens consumed, digits, letters) of the number element starting at toks[i], or None."""
    tok = toks[i]
    nxt = toks[i + 1].low if i + 1 < len(toks) else ""
    if tok.low == "<date>":
        return None
    if tok.text.isdigit():
        return 1, len(tok.text), 0
    if any(c.isdigit() for c in tok.text) and sum(c.isalnum() for c in tok.text) >= 4:
        return 1, sum(c.isdigit() for c in tok.text), sum(c.isalpha() for c in tok.text)
    if tok.low in _DIGIT_WORDS:
        return 1, 1, 0
    if tok.low in _TEENS:
        return 1, 2, 0
    if tok.low in _TENS:
        if nxt in _UNITS:
            return 2, 2, 0
        if nxt == "-" and i + 2 < len(toks) and toks[i + 2].low in _UNITS:
            return 3, 2, 0
        return 1, 2, 0
    if in_run and tok.low in ("hundred", "thousand"):
        return 1, 2 if tok.low == "hundred" else 3, 0
    if tok.low in ("double", "triple") and (nxt in _DIGIT_WORDS or nxt.isdigit()):
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


def find_digit_sequences(text: str) -> list[PhiSpan]:
    """Phone, card, SSN, member/record ids and ZIP codes, written as digits or spoken as words.

    A full date ends a run: "10/14/1988, 555-301-7722" is a date and a phone, not an 18-digit card.
    """
    dates = [m.span() for m in _DATE.finditer(text) if _has_year(m)]
    toks = [t._replace(low="<date>") if any(a <= t.start < b for a, b in dates) else t for t in _tokens(text)]
    spans = []
    for run in _number_runs(toks):
        run = _trim_run(toks, run)
        if not run:
            continue
        label = _label_for_digits(sum(e.digits for e in run), _context_label(toks, run[0].first))
        if label is not None:
            spans.append(PhiSpan(toks[run[0].first].start, toks[run[-1].last].end, label, "spoken_digits"))
    return spans


# ---------------------------------------------------------------- dates
_NUM_WORDS_RE = rf"(?:{_NUMBER_WORD})(?:[\s-]+(?:{_NUMBER_WORD}))*"
_DAY = (
    r"(?:\d{1,2}(?:st|nd|rd|th)?"
    rf"|(?:(?:twenty|thirty)[\s-]?)?(?:{'|'.join(sorted(_ORDINALS, key=len, reverse=True))})"
    rf"|(?:(?:twenty|thirty)[\s-]?)?(?:{'|'.join(sorted(_UNITS, key=len, reverse=True))})"
    rf"|{'|'.join(_TEENS)}|twenty|thirty)"
)
_SPOKEN_TENS_UNIT = rf"(?:(?:{'|'.join(_TENS)})(?:[\s-]?(?:{'|'.join(_UNITS)}))?|{'|'.join(_TEENS)})"
_YEAR = (
    r"(?:\d{4}|'\d{2}"
    rf"|(?:nineteen|twenty)[\s-](?:(?:oh|o)[\s-](?:{'|'.join(_UNITS)})|{_SPOKEN_TENS_UNIT})"
    rf"|two\sthousand(?:\s(?:and\s)?(?:{_SPOKEN_TENS_UNIT}|{'|'.join(_UNITS)}))?"
    rf"|(?:oh|o)[\s-](?:{'|'.join(_UNITS)})|{_SPOKEN_TENS_UNIT})"
)
_SEP = r"(?:\s*,\s*|\s+)"
_DATE = re.compile(
    rf"""\b(?:
        (?:{_MONTHS}){_SEP}(?:the\s+)?{_DAY}(?:{_SEP}(?:of\s+)?(?P<y1>{_YEAR}))?
      | (?:the\s+)?{_DAY}\s+of\s+(?:{_MONTHS})(?:{_SEP}(?P<y2>{_YEAR}))?
      | \d{{1,2}}[/.-]\d{{1,2}}[/.-](?P<y3>\d{{4}}|\d{{2}})
      | \d{{4}}-\d{{2}}-\d{{2}}(?P<y4>)
      | (?:{_MONTHS})(?:\s+of)?\s+(?:\d{{4}}|(?:nineteen|twenty)[\s-]{_SPOKEN_TENS_UNIT})
      | the\s+(?:\d{{1,2}}(?:st|nd|rd|th)|(?:(?:twenty|thirty)[\s-]?)?(?:{'|'.join(_ORDINALS)}))
    )\b""",
    re.IGNORECASE | re.VERBOSE,
)


def _has_year(m: re.Match) -> bool:
    return any(m.group(g) is not None for g in ("y1", "y2", "y3", "y4"))


def find_dates(text: str) -> list[PhiSpan]:
    """Full dates ([DOB]); month/day without a year only where the utterance talks about birth."""
    dob_context = _DOB_CONTEXT.search(text) is not None
    spans = []
    for m in _DATE.finditer(text):
        if _has_year(m) or dob_context:
            spans.append(PhiSpan(m.start(), m.end(), "DOB", "spoken_date"))
    return spans


# ---------------------------------------------------------------- spelled names
# Letter-by-letter spelling, "S as in Sam", "double L"; ASR writes "S M I T H", "S-M-I-T-H" or "S. M. I."
_EXAMPLE_WORD = r"\s+(?:as\s+in|like)\s+[A-Za-z]+"  # "S as in Sam"
_LETTER = rf"(?:double\s+)?[A-Za-z](?:{_EXAMPLE_WORD})?"
_SPELLED = re.compile(rf"(?<![\w'])({_LETTER}(?:(?:\s*[,.-]\s*|\s+)(?:and\s+)?{_LETTER})*)(?![\w'])\.?")
_SPELL_CONTEXT = re.compile(r"\b(?:spell|spelled|spelling|name|that's|thats|letters?)\b", re.IGNORECASE)
_COMMON_INITIALISMS = {
    "ICU", "MRI", "USA", "ER", "AM", "PM", "ENT", "CT", "EKG", "ECG", "PT", "OT", "ID", "DOB", "SSN", "MRN",
    "HMO", "PPO", "ATM", "ASAP", "TV", "OK", "IV", "CVS", "CBC", "UTI", "ADHD", "COPD", "ABC", "OBGYN", "GP",
    "PA", "NP", "RN", "MD", "DO", "OB", "GYN", "PCP", "UK", "US", "ET", "PST", "EST",
}  # fmt: skip
_SPELLED_LETTER = re.compile(rf"(?<![\w'])(double\s+)?([A-Za-z])(?:{_EXAMPLE_WORD})?(?![\w'])", re.IGNORECASE)


def find_spelled_names(text: str) -> list[PhiSpan]:
    """Spelled runs, and the word they spell wherever it also occurs ("Nguyen, N G U Y E N")."""
    spell_context = _SPELL_CONTEXT.search(text) is not None
    spans = []
    for m in _SPELLED.finditer(text):
        letters = _SPELLED_LETTER.findall(m.group(1))
        spelled = "".join(letter * (2 if double else 1) for double, letter in letters).upper()
        with_example = re.search(r"\b(?:as\s+in|like)\s", m.group(1), re.IGNORECASE) is not None
        if set(spelled) <= {"A", "I"} or spelled in _COMMON_INITIALISMS:
            continue
        if len(letters) >= 3 or with_example or (len(letters) == 2 and spell_context):
            spans.append(PhiSpan(m.start(1), m.end(1), "NAME", "spelled_name"))
            if len(spelled) >= 2:
                spans += [
                    PhiSpan(w.start(), w.end(), "NAME", "spelled_name")
                    for w in re.finditer(rf"(?<![\w']){spelled}(?![\w'])", text, re.IGNORECASE)
                ]
    return spans


# ---------------------------------------------------------------- names after cues
_NOT_NAMES = set(STOP_WORDS) | _WEEKDAYS | {
    "please", "spelled", "calling", "here", "sir", "ma'am", "maam", "again", "thanks", "thank", "correct",
    "right", "yes", "yeah", "okay", "ok", "sure", "um", "uh", "hi", "hello", "hey", "speaking", "actually",
    "just", "like", "gonna", "wanna", "sorry", "fine", "good", "great", "still", "looking", "trying", "having",
    "going", "doing", "feeling", "glad", "happy", "afraid", "new", "returning", "patient", "office", "clinic",
    "pharmacy", "doctor", "dr", "nurse", "front", "desk", "appointment", "spell", "spelling", "that's", "it's",
    "i'm", "you're", "we're", "they're", "there's", "what's", "first", "last", "full", "middle", "name", "wait",
    "hold", "let", "check", "see", "number", "date", "birth", "phone", "address", "email", "ready", "sorry",
    "calm", "listen", "look", "excuse", "whatever", "bye", "goodbye",  # imperatives the NER takes for names
}  # fmt: skip
_NAME_WORD = r"[A-Za-z][A-Za-z'-]*"
# After these cues the next one to three words that are not function words are a name, in any case
# (human and ASR transcripts are often all lower case: "my name is elizabeth rodriguez i would like").
_STRONG_NAME_CUE = re.compile(
    r"\b(?:(?:first|last|full|middle|maiden|sur)\s*name|name)(?:\s+is|'s)?\s*[,:]?\s+", re.IGNORECASE
)
# After these cues only Capitalised words count.
_WEAK_NAME_CUE = re.compile(
    r"\b(?:this\s+is|i'm|i\s+am|he's|she's|he\s+is|she\s+is"
    r"|speaking\s+with|speak\s+(?:to|with)|talking\s+to|calling\s+(?:for|about)"
    r"|patient|mr|mrs|ms|miss|dr|doctor|nurse"
    r"|my\s+(?:son|daughter|wife|husband|mother|father|mom|dad|child|kid|brother|sister|partner|grandson"
    r"|granddaughter|grandmother|grandfather))\.?\s*,?\s+",
    re.IGNORECASE,
)


_NEXT_NAME_WORD = re.compile(rf"[ \t]*({_NAME_WORD})")
_MAX_NAME_WORDS = 3


def _name_words_after(text: str, pos: int, capitalised_only: bool) -> tuple[int, int] | None:
    start = end = None
    for _ in range(_MAX_NAME_WORDS):
        m = _NEXT_NAME_WORD.match(text, pos)
        if m is None:
            break
        word = re.sub(r"'s$", "", m.group(1))
        if word.lower() in _NOT_NAMES or len(word) < 2 or (capitalised_only and not word[0].isupper()):
            break
        start = m.start(1) if start is None else start
        end, pos = m.start(1) + len(word), m.end()
        if word != m.group(1):  # a possessive ends the name
            break
    return None if start is None else (start, end)


def find_cued_names(text: str) -> list[PhiSpan]:
    spans = []
    for cue, capitalised_only in ((_STRONG_NAME_CUE, False), (_WEAK_NAME_CUE, True)):
        for m in cue.finditer(text):
            found = _name_words_after(text, m.end(), capitalised_only)
            if found is not None:
                spans.append(PhiSpan(found[0], found[1], "NAME", "name_cue"))
    return spans


# ---------------------------------------------------------------- street addresses
_STREET_SUFFIX = (
    r"street|st\.?|avenue|ave\.?|road|rd\.?|boulevard|blvd\.?|lane|ln\.?|drive|dr\.?|court|ct\.?|way|place|"
    r"pl\.?|terrace|circle|parkway|pkwy\.?|highway|hwy\.?|trail|square|loop|crescent|alley|pike|route"
)
_HOUSE_NUMBER = rf"(?:\d+[A-Za-z]?|{_NUM_WORDS_RE})"
_UNIT = (
    rf"(?:\s*,?\s*(?:apartment|apt\.?|unit|suite|ste\.?|number|\#)\s*(?:number\s+)?\#?\s*"
    rf"(?:\d+|{_NUM_WORDS_RE}|[A-Za-z]\b)(?:\s*[A-Za-z]\b)?)"
)
_STATES = (
    "alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|hawaii|idaho|"
    "illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|michigan|minnesota|"
    "mississippi|missouri|montana|nebraska|nevada|new hampshire|new jersey|new mexico|new york|"
    "north carolina|north dakota|ohio|oklahoma|oregon|pennsylvania|rhode island|south carolina|south dakota|"
    "tennessee|texas|utah|vermont|virginia|washington|west virginia|wisconsin|wyoming|[A-Z]{2}"
).replace(" ", r"\s+")  # the address pattern is verbose, where a bare space means nothing
_ADDRESS = re.compile(
    rf"""\b(?:
        {_HOUSE_NUMBER}\s+(?:(?:north|south|east|west|n|s|e|w)\.?\s+)?
        (?:(?:[A-Za-z][a-z']*|\d+(?:st|nd|rd|th))\s+){{1,3}}?(?:{_STREET_SUFFIX})\b
        (?:\s+(?:north|south|east|west|northeast|northwest|southeast|southwest))?
        {_UNIT}?
        (?:\s*,\s*(?-i:[A-Z][a-z]+(?:\s+[A-Z][a-z]+){{0,2}})           # city
           (?:\s*,?\s*(?:{_STATES}))?(?:\s*,?\s*\d{{5}}(?:-\d{{4}})?)?)?  # state, ZIP
      | p\.?\s?o\.?\s+box\s+{_HOUSE_NUMBER}
      | (?:apartment|apt\.?)\s*(?:number\s+)?\#?\s*(?:\d+[A-Za-z]?|{_NUM_WORDS_RE})(?:\s*[A-Za-z]\b)?
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def find_addresses(text: str) -> list[PhiSpan]:
    return [PhiSpan(m.start(), m.end(), "ADDRESS", "address") for m in _ADDRESS.finditer(text)]


# ---------------------------------------------------------------- spoken e-mail addresses
_TLD = r"com|org|net|edu|gov|us|io|co|info|biz|me|uk|ca"
_EMAIL_JOIN = r"(?:\s*(?:\.|_|-|dot|underscore|dash|hyphen)\s*)"
_SPOKEN_EMAIL = re.compile(
    rf"""(?:(?<![\w'])(?:[A-Za-z0-9]\s+){{1,12}})?   # a spelled local part: "j o h n"
        (?<![\w'])[A-Za-z0-9]+(?:{_EMAIL_JOIN}[A-Za-z0-9]+|\s+(?:{_NUMBER_WORD})\b)*
        \s*(?:@|\bat\b|\bat\s+sign\b)\s*
        [A-Za-z0-9-]+(?:{_EMAIL_JOIN}[A-Za-z0-9-]+)*?(?:\s*(?:\.|dot)\s*)(?:{_TLD})\b""",
    re.IGNORECASE | re.VERBOSE,
)


_WORD_BEFORE = re.compile(r"(?<![\w'])([A-Za-z][A-Za-z']*)\s+$")


def find_spoken_emails(text: str) -> list[PhiSpan]:
    spans = []
    for m in _SPOKEN_EMAIL.finditer(text):
        start = m.start()
        # "hector ochoa at gmail dot com": a spoken local part may be two words without a "dot".
        before = _WORD_BEFORE.search(text, 0, start)
        if before is not None and before.group(1).lower() not in _NOT_NAMES:
            start = before.start(1)
        spans.append(PhiSpan(start, m.end(), "EMAIL", "spoken_email"))
    return spans


OWN_RECOGNIZERS = (find_digit_sequences, find_dates, find_spelled_names, find_cued_names, find_addresses,
                   find_spoken_emails)  # fmt: skip


# ---------------------------------------------------------------- Presidio on the loaded spaCy pipeline
_PRESIDIO_LABEL = {
    "PERSON": "NAME", "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD",
    "US_SSN": "ID", "US_MBI": "ID",
}  # fmt: skip
_PRESIDIO_MIN_SCORE = 0.3  # Presidio's own floor for a bare pattern match without context words


def _offline_email_recognizer():
    """Presidio's e-mail recognizer, validating domains against tldextract's bundled suffix snapshot.

    Stock tldextract downloads the public suffix list on first use; a QA box for clinic calls must not.
    """
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    offline = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return offline(pattern_text).fqdn != ""

    return OfflineEmailRecognizer()


def _build_analyzer(nlp: Language):
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UsMbiRecognizer,
        UsSsnRecognizer,
    )

    ner_labels = nlp.get_pipe("ner").labels if "ner" in nlp.pipe_names else ()
    engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": nlp.meta.get("name", "callqa")}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping={"PERSON": "PERSON"},
            labels_to_ignore=[label for label in ner_labels if label != "PERSON"],
        ),
    )
    engine.nlp = {"en": nlp}  # already loaded, so AnalyzerEngine does not call engine.load() (spacy.load)
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        SpacyRecognizer(supported_entities=["PERSON"]),
        _offline_email_recognizer(),
        PhoneRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        UsMbiRecognizer(),
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _unlikely_person(span_text: str) -> bool:
    """spaCy's small model calls many lower-case or ordinary words PERSON ("zip code", "Email").

    Lower-case names are left to the cue recognizer, which knows when a name is coming.
    """
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", span_text)
    return not any(w[0].isupper() for w in words) or all(w.lower() in _NOT_NAMES for w in words)


# ---------------------------------------------------------------- merging and the allow-list
def _merge(spans: Iterable[PhiSpan]) -> list[PhiSpan]:
    """Union of overlapping spans; the label of the longest member wins, then the more specific label."""
    merged: list[PhiSpan] = []
    groups: list[list[PhiSpan]] = []
    for span in sorted(spans):
        if groups and span.start < max(s.end for s in groups[-1]):
            groups[-1].append(span)
        else:
            groups.append([span])
    for group in groups:
        best = max(group, key=lambda s: (s.end - s.start, _LABEL_PRIORITY[s.label]))
        sources = "+".join(sorted({s.source for s in group}))
        merged.append(PhiSpan(group[0].start, max(s.end for s in group), best.label, sources))
    return merged


def _allowed_ranges(text: str, allow: re.Pattern | None) -> list[tuple[int, int]]:
    return [] if allow is None else [m.span() for m in allow.finditer(text)]


def _strip_edges(text: str, span: PhiSpan) -> PhiSpan | None:
    """Trim spaces and punctuation a recognizer took in at the edges (NER likes a trailing comma)."""
    start, end = span.start, span.end
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not (text[end - 1].isalnum() or text[end - 1] in ".)"):
        end -= 1
    return span._replace(start=start, end=end) if start < end else None


# ---------------------------------------------------------------- the redactor
class Redactor:
    """Finds and replaces PHI; build one per process (it wraps the loaded spaCy pipeline, no second load).

    ``allow_list``: exact phrases kept wherever they occur (case-insensitive, whole words), e.g. the
    agent's own name and the clinic's name from config. A PHI span is kept only when it lies entirely
    inside an allowed phrase, so "Maria Lopez" is still redacted when only "Maria" is allowed.
    """

    def __init__(self, nlp: Language, allow_list: Sequence[str] = ()):
        self.nlp = nlp
        self._analyzer = _build_analyzer(nlp)
        phrases = sorted({p.strip() for p in allow_list if p.strip()}, key=len, reverse=True)
        self._allow = (
            re.compile("|".join(rf"(?<!\w){re.escape(p)}(?!\w)" for p in phrases), re.IGNORECASE)
            if phrases
            else None
        )
        # The analysis stage parses with the full pipeline; our own parse only needs NER and lemmas.
        self._disable = [name for name in ("parser",) if name in nlp.pipe_names]

    # -- detection
    def _presidio_spans(self, doc: Doc) -> list[PhiSpan]:
        # _doc_to_nlp_artifact is Presidio's own Doc -> NlpArtifacts step; calling it lets a Doc the
        # analysis stage already parsed be reused instead of running spaCy a second time.
        artifacts = self._analyzer.nlp_engine._doc_to_nlp_artifact(doc, "en")
        results = self._analyzer.analyze(
            doc.text, language="en", nlp_artifacts=artifacts, score_threshold=_PRESIDIO_MIN_SCORE
        )
        spans = []
        for r in results:
            if r.entity_type not in _PRESIDIO_LABEL or (
                r.entity_type == "PERSON" and _unlikely_person(doc.text[r.start : r.end])
            ):
                continue
            source = f"presidio:{r.recognition_metadata.get('recognizer_name', '')}"
            spans.append(PhiSpan(r.start, r.end, _PRESIDIO_LABEL[r.entity_type], source))
        return spans

    def _find_in_doc(self, doc: Doc) -> list[PhiSpan]:
        text = doc.text
        return self._kept(text, self._presidio_spans(doc) + [s for find in OWN_RECOGNIZERS for s in find(text)])

    def _kept(self, text: str, found: Iterable[PhiSpan]) -> list[PhiSpan]:
        """Merged spans, less edge punctuation and what the allow-list keeps."""
        allowed = _allowed_ranges(text, self._allow)
        kept = []
        for span in found:
            span = _strip_edges(text, span)
            if span is not None and not any(a <= span.start and span.end <= b for a, b in allowed):
                kept.append(span)
        return _merge(kept)

    def find_call(self, texts: Sequence[str], docs: Sequence[Doc | None] | None = None) -> list[list[PhiSpan]]:
        """``find_many`` over the utterances of one call, plus every other mention of a name found once.

        "my name is michael brown" is caught by its cue; the agent's later "thanks, michael" has none.
        """
        all_spans = self.find_many(texts, docs)
        names = {
            word.lower()
            for text, spans in zip(texts, all_spans)
            for span in spans
            if span.label == "NAME"
            for word in re.findall(r"[A-Za-z][A-Za-z'-]+", text[span.start : span.end])
            if word.lower() not in _NOT_NAMES
        }
        if not names:
            return all_spans
        echo = re.compile(rf"(?<![\w'])(?:{'|'.join(map(re.escape, names))})(?![\w'])", re.IGNORECASE)
        return [
            self._kept(text, [*spans, *(PhiSpan(m.start(), m.end(), "NAME", "call_name") for m in echo.finditer(text))])
            for text, spans in zip(texts, all_spans)
        ]

    def find(self, text: str, doc: Doc | None = None) -> list[PhiSpan]:
        """PHI spans in ``text``, sorted and non-overlapping. ``doc``: a spaCy Doc of exactly this text."""
        return self.find_many([text], None if doc is None else [doc])[0]

    def find_many(self, texts: Sequence[str], docs: Sequence[Doc | None] | None = None) -> list[list[PhiSpan]]:
        """Batched ``find``: texts without a precomputed Doc are parsed together with ``nlp.pipe``."""
        docs = list(docs) if docs is not None else [None] * len(texts)
        if len(docs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(docs)} docs")
        for doc, text in zip(docs, texts):
            if doc is not None and doc.text != text:
                raise ValueError(f"doc text {doc.text!r} differs from {text!r}")
        missing = [i for i, doc in enumerate(docs) if doc is None]
        for i, doc in zip(missing, self.nlp.pipe((texts[i] for i in missing), disable=self._disable)):
            docs[i] = doc
        return [self._find_in_doc(doc) for doc in docs]

    # -- replacement
    def redact_text(self, text: str, doc: Doc | None = None) -> str:
        return replace_spans(text, self.find(text, doc))

    def redact_transcript(self, transcript: Transcript, docs: Sequence[Doc | None] | None = None) -> Transcript:
        """Redacted copy: utterance text and words. A redacted run of words becomes one Word spanning their times.

        ``docs``: optional spaCy Docs parallel to ``transcript.utterances`` (of their text).
        """
        return transcript._replace(utterances=self._redact_utterances(transcript.utterances, docs))

    def redact_analysed(self, analysed: AnalysedCall, docs: Sequence[Doc | None] | None = None) -> AnalysedCall:
        """Redacted copy whose tokens read exactly like the redacted utterance text.

        The tokens that overlap one PHI span are merged into one token (text, lemma and norm: the
        placeholder), the way spaCy's retokenizer merges, so no token count or digit leaks the value;
        ``idx``/``head`` are renumbered within the utterance.
        """
        utterances = analysed.transcript.utterances
        all_spans = self.find_call([u.text for u in utterances], docs)
        spans_by_seq = {u.seq: s for u, s in zip(utterances, all_spans)}
        tokens_by_seq: dict[int, list[Token]] = {}
        for token in analysed.tokens:
            tokens_by_seq.setdefault(token.utterance_seq, []).append(token)
        texts_by_seq = {u.seq: u.text for u in utterances}
        tokens: list[Token] = []
        for seq, utterance_tokens in tokens_by_seq.items():
            spans = spans_by_seq.get(seq, [])
            token_text = "".join(t.text + " " * t.whitespace for t in utterance_tokens).rstrip(" ")
            if token_text != texts_by_seq.get(seq):
                # Tokens that do not spell their utterance (not from analyse) are searched on their own.
                log.warning("utterance %d: tokens do not spell its text; redacting them separately", seq)
                spans = self.find(token_text)
            tokens.extend(_redact_tokens(utterance_tokens, spans))
        transcript = analysed.transcript._replace(utterances=self._redact_utterances(utterances, docs, all_spans))
        return analysed._replace(transcript=transcript, tokens=tuple(tokens))

    def _redact_utterances(
        self,
        utterances: Sequence[Utterance],
        docs: Sequence[Doc | None] | None,
        all_spans: list[list[PhiSpan]] | None = None,
    ) -> tuple[Utterance, ...]:
        if all_spans is None:
            all_spans = self.find_call([u.text for u in utterances], docs)
        redacted = []
        for utterance, spans in zip(utterances, all_spans):
            word_spans = spans
            words_text = "".join(w.word for w in utterance.words).strip()
            if utterance.words and words_text != utterance.text:
                # Against the records contract; redact the words on their own rather than leak through them.
                log.warning("utterance %d: text and words disagree; redacting the words separately", utterance.seq)
                word_spans = self.find(words_text)
            redacted.append(_redact_utterance(utterance, spans, word_spans))
        return tuple(redacted)


def replace_spans(text: str, spans: Sequence[PhiSpan], offset: int = 0) -> str:
    """``text`` with each span (sorted, disjoint; ``span.start - offset`` indexes ``text``) replaced by its
    placeholder. Offsets let a quote cut from an utterance be redacted with the utterance's own spans."""
    out, pos = [], 0
    for span in spans:
        start, end = span.start - offset, span.end - offset
        out.append(text[pos:start])
        out.append(placeholder(span.label))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _overlapping_groups(starts: Sequence[int], ends: Sequence[int], spans: Sequence[PhiSpan]):
    """Yield (first item, last item, spans) for runs of items (words/tokens) that PHI spans overlap."""
    group_first = group_last = None
    group_spans: list[PhiSpan] = []
    for span in spans:
        hit = [i for i in range(len(starts)) if starts[i] < span.end and span.start < ends[i]]
        if not hit:
            continue
        if group_first is not None and hit[0] <= group_last:
            group_last = max(group_last, hit[-1])
            group_spans.append(span)
            continue
        if group_first is not None:
            yield group_first, group_last, group_spans
        group_first, group_last, group_spans = hit[0], hit[-1], [span]
    if group_first is not None:
        yield group_first, group_last, group_spans


def _char_ranges(pieces: Sequence[str], first_offset: int) -> tuple[list[int], list[int]]:
    starts, ends, pos = [], [], first_offset
    for piece in pieces:
        starts.append(pos)
        pos += len(piece)
        ends.append(pos)
    return starts, ends


def _redact_utterance(utterance: Utterance, spans: Sequence[PhiSpan], word_spans: Sequence[PhiSpan]) -> Utterance:
    """``word_spans``: spans in ``"".join(words).strip()``, which is ``text`` by the records contract."""
    text = replace_spans(utterance.text, spans)
    if not utterance.words or not word_spans:
        return utterance._replace(text=text)
    joined = "".join(w.word for w in utterance.words)
    starts, ends = _char_ranges([w.word for w in utterance.words], len(joined.lstrip()) - len(joined))
    words = list(utterance.words)
    for first, last, group_spans in reversed(list(_overlapping_groups(starts, ends, word_spans))):
        run = words[first : last + 1]
        merged = replace_spans("".join(w.word for w in run), group_spans, offset=starts[first])
        # The run's confidence is that of its least certain word.
        words[first : last + 1] = [Word(merged, run[0].start, run[-1].end, min(w.probability for w in run))]
    return utterance._replace(text=text, words=tuple(words))


def _redact_tokens(tokens: Sequence[Token], spans: Sequence[PhiSpan]) -> list[Token]:
    """One utterance's tokens, each run of tokens under PHI merged into one placeholder token."""
    if not spans:
        return list(tokens)
    # A Doc's text is its tokens' text, each followed by one space where ``whitespace`` says so.
    starts, ends = [], []
    pos = 0
    for t in tokens:
        starts.append(pos)
        ends.append(pos + len(t.text))
        pos += len(t.text) + t.whitespace
    groups = list(_overlapping_groups(starts, ends, spans))
    group_of = {i: g for g, (first, last, _) in enumerate(groups) for i in range(first, last + 1)}
    new_index, count = [], 0
    for i in range(len(tokens)):
        new_index.append(count)
        if i not in group_of or i == groups[group_of[i]][1]:
            count += 1
    position = {t.idx: i for i, t in enumerate(tokens)}

    def renumbered(token: Token) -> Token:
        return token._replace(
            idx=new_index[position[token.idx]], head=new_index[position.get(token.head, position[token.idx])]
        )

    out: list[Token] = []
    for i, token in enumerate(tokens):
        if i not in group_of:
            out.append(renumbered(token))
            continue
        first, last, group_spans = groups[group_of[i]]
        if i != first:
            continue
        run = tokens[first : last + 1]
        # Like spaCy's retokenizer: the merged token keeps the syntax of the run's head (the token whose
        # head lies outside the run).
        root = next((t for t in run if not first <= position.get(t.head, -1) <= last), run[0])
        source = "".join(t.text + " " * t.whitespace for t in run[:-1]) + run[-1].text
        text = replace_spans(source, group_spans, offset=starts[first])
        out.append(
            renumbered(root)._replace(
                idx=new_index[first], text=text, lemma=text, norm=text, whitespace=run[-1].whitespace,
                negated=any(t.negated for t in run), start_s=min(t.start_s for t in run),
                end_s=max(t.end_s for t in run),
            )  # fmt: skip
        )
    return out
