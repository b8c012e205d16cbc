"""PHI that only the conversation shows: values given in pieces over several utterances, after a question in
another utterance ("what's your phone number?" ... "seven one five" ... "one three nine"), and read back by the
other speaker.

A cue ("phone number", "zip code", "address", "account number", "date of birth") opens a window of the given
kind. The window takes in the rest of the cue's utterance and the utterances that follow while they come within
``GAP_S`` of each other and keep to the value: pieces of it, short acknowledgements ("okay", "sorry?"), a
request to repeat it, or its read-back. The first utterance that says something else, or a cue of another kind,
closes it (a date-of-birth window also closes once a full date was given). Inside a window, number runs (digits
or number words, however ASR writes them: "421-1", "0-6, 8", "3-8-8-3-2", "seven eight three eleven") are PHI of
the window's kind, except amounts, times and durations; in an address window, street names and the city (said
after the street, before the state, or on its own) are too, and the state is kept.

Without a cue, a speaker's consecutive utterances that each consist of a number run are joined: together they
make a phone number (7, 10 or 11 digits) or an id (more).

Spans stay per utterance (offsets in its text), so every piece maps onto its own words, tokens and quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from spacy.lang.en.stop_words import STOP_WORDS

from .addresses import STATE_NAMES, STREET_SUFFIX
from .dates import DATE, has_year
from .digits import number_runs_in
from .spans import PhiSpan

GAP_S = 8.0  # the longest pause inside one exchange of a value
MAX_WINDOW_S = 45.0  # a window closes this long after its cue, whatever follows
_SHORT_WORDS = 3  # an utterance this short keeps a window open: a piece of the value, or "sorry, what?"

_CUES = (
    ("DOB", r"date\s+of\s+birth|birth\s*date|birthday|\bborn\b|\bd\.?\s?o\.?\s?b\b"),
    ("ADDRESS", r"zip(?:\s*code)?|postal\s+code|post\s*code"),
    ("CARD", r"card\s+number|card\s+ending|credit\s+card\s+is|debit\s+card\s+is|expiration|expiry|"
             r"security\s+code|\bcvv\b|\bcvc\b"),
    ("ID", r"account\s+number|acct|routing|member(?:ship)?\s*(?:id|number)?|\bid\s+number|\bpolicy|"
           r"group\s+number|record\s+number|\bmrn\b|chart\s+number|\bsocial\b|\bssn\b|last\s+four|medicare|"
           r"medicaid|subscriber|confirmation\s+number|claim\s+number|case\s+number|reference\s+number|"
           r"license|\bpin\b|insurance\s+(?:id|number)"),
    ("PHONE", r"phone|telephone|cell(?:\s+number)?|mobile|call\s*back\s+number|contact\s+number|best\s+number|"
              r"number\s+to\s+reach|reach\s+(?:you|me)\s+at|home\s+number|work\s+number|\bfax\b"),
    ("ADDRESS", r"address(?:es)?\b|where\s+do\s+you\s+live|\blive\s+at\b|mailing|\breside"),
)
_CUE = re.compile(r"(?<![\w'])(?:" + "|".join(f"(?P<{kind}{i}>{pattern})" for i, (kind, pattern) in enumerate(_CUES)) + ")",
                  re.IGNORECASE)

_ORDINAL_ONLY = re.compile(r"the\s+\S+", re.IGNORECASE)
_CLOCK_TIME = re.compile(r"\b(?:at|by|until|till|around)\s*$", re.IGNORECASE)  # "Monday at nine fifteen"

# An utterance that keeps a window open although it holds no value.
_FILLER = re.compile(
    r"^(?:(?:okay|ok|yes|yeah|yep|uh|um|uhm|hmm|mm|mhm|right|alright|sure|sorry|pardon|great|perfect|"
    r"thanks|thank\s+you|got\s+it|one\s+(?:second|moment)|and|so|that's|it's|its|it\s+is|is|the|my|our|"
    r"correct|again|please|say|that|repeat|can|could|you|for|me|what|was|come|hold\s+on)[\s,.!?-]*)*$",
    re.IGNORECASE,
)
_REPEAT = re.compile(r"\b(?:repeat|say\s+(?:that|it)\s+again|come\s+again|one\s+more\s+time|sorry\?|"
                     r"didn't\s+(?:catch|get)|read\s+(?:that|it)\s+back|confirm)", re.IGNORECASE)

_STREET = re.compile(
    rf"(?<![\w'])(?:(?:north|south|east|west|n|s|e|w)\.?\s+)?(?:(?!(?:the|a|an|my|on|at|is|and|of|to|in|its|it's)\b)"
    rf"[A-Za-z0-9][A-Za-z0-9']*\s+){{1,3}}(?:{STREET_SUFFIX})(?![\w'])",
    re.IGNORECASE,
)
_STATE = re.compile(rf"(?<![\w'])(?:{STATE_NAMES})(?![\w'])", re.IGNORECASE)
# Words that are not part of a place name (any other word in an address window may be): English function
# words, less the ones street and place names are made of ("first", "third", "back", "front", "top", ...).
_NOT_PLACE = (frozenset(STOP_WORDS) - {"first", "third", "back", "front", "top", "bottom", "side", "east", "west",
                                       "hill", "park", "well"}) | frozenset("""
okay ok alright yeah yes sure sorry please thank thanks uh um uhm hmm mm mhm oh repeat great perfect good fine
bye hello hi address addresses zip code number amount bill company account card phone that's it's what's
there's here's let's i'm you're we're they're he's she's don't can't won't isn't didn't i'll you'll""".split())
_PLACE_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


class _Place(NamedTuple):
    start: int
    end: int


class Turn(NamedTuple):
    speaker: str
    start: float
    end: float
    text: str


class _Window(NamedTuple):
    kind: str
    opened: float  # when its cue was said
    cue: str


class Conversation(NamedTuple):
    spans: list[list[PhiSpan]]  # per turn
    context: list[list[str]]  # per turn: the words of the cue an earlier turn opened its window with


def _cues(text: str) -> list[tuple[int, str, str]]:
    """(end offset, kind, words) of every cue in ``text``."""
    return [(m.end(), re.sub(r"\d+$", "", m.lastgroup or ""), m.group()) for m in _CUE.finditer(text)]


def _value_runs(text: str, start: int = 0) -> list[tuple[int, int, int]]:
    """Number runs in ``text[start:]`` that may be a value's piece: not a quantity ("one hundred dollars",
    "three to five business days"), and two digits or more unless numbers are all the utterance says."""
    runs = [r for r in number_runs_in(text) if r[0] >= start]
    only_numbers = bool(runs) and not _words_besides(text, runs)
    return [r for r in runs if r[2] >= 2 or (only_numbers and r[2] >= 1)]


def _words_besides(text: str, runs: Sequence[tuple[int, int, int]]) -> bool:
    rest, pos = [], 0
    for a, b, _ in runs:
        rest.append(text[pos:a])
        pos = b
    rest.append(text[pos:])
    return bool(re.sub(r"[\W_]+", "", "".join(rest)))


def _places(text: str, start: int, taken: list[tuple[int, int]]) -> list[_Place]:
    """Stretches of up to three place words (not function words, not numbers, not a state) in ``text[start:]``,
    between whatever else is there."""
    places: list[_Place] = []
    states = [m.span() for m in _STATE.finditer(text, start)]
    for m in _PLACE_WORD.finditer(text, start):
        if m.group().lower() in _NOT_PLACE or any(a <= m.start() < b for a, b in taken + states):
            continue
        prev = places[-1] if places else None
        if prev and not text[prev.end:m.start()].strip() and len(text[prev.start:m.end()].split()) <= 3:
            places[-1] = _Place(prev.start, m.end())
        else:
            places.append(_Place(m.start(), m.end()))
    return places


def _address_parts(text: str, start: int, after_street: bool) -> tuple[list[tuple[int, int]], bool]:
    """House numbers, ZIPs, streets and city in ``text[start:]``, and whether a street ended the utterance (its
    city may come in the next one). A city is the place after a street or before a state; an utterance that is
    nothing but a place ("forest ranch", "harper valley, california") is one, or a piece ASR made of the street."""
    parts = [(a, b) for a, b, _ in _value_runs(text, start)]
    streets = [m.span() for m in _STREET.finditer(text, start)]
    parts += streets
    places = _places(text, start, parts)
    short = len(re.findall(r"[\w'-]+", text[start:])) <= 5
    for place in places:
        after = text[place.end:]
        follows_street = any(0 <= place.start - b <= 2 for _, b in streets) or (
            after_street and not text[start:place.start].strip(" ,."))
        precedes_state = _STATE.match(after.lstrip(" ,")) is not None
        if follows_street or precedes_state or (short and _only_place_and_state(text, start, place, parts)):
            parts.append((place.start, place.end))
    ends_with_street = bool(streets) and not text[streets[-1][1]:].strip(" ,.")
    return [(a, b) for a, b in parts if b > a], ends_with_street


def _only_place_and_state(text: str, start: int, place: _Place, parts: list[tuple[int, int]]) -> bool:
    """Nothing but this place, the state and values already found: "harper valley california", "first-re"."""
    rest = text[start:place.start] + " " + text[place.end:]
    for a, b in parts:
        if a >= place.end:
            rest = rest.replace(text[a:b], " ")
    rest = _STATE.sub(" ", rest)
    return not [w for w in re.findall(r"[A-Za-z][A-Za-z'-]*", rest) if w.lower() not in _NOT_PLACE]


def _dob_parts(text: str, start: int) -> tuple[list[tuple[int, int]], bool]:
    """Dates and years in ``text[start:]``, and whether a year was among them. "the first" alone is a date only
    in a short answer, and a number after "at" is a clock time."""
    short = len(re.findall(r"[\w'-]+", text[start:])) <= 4
    dates = [m for m in DATE.finditer(text, start) if short or not _ORDINAL_ONLY.fullmatch(m.group())]
    runs = [r for r in _value_runs(text, start) if not _CLOCK_TIME.search(text, 0, r[0])]
    parts = [m.span() for m in dates] + [(a, b) for a, b, _ in runs]
    year = any(has_year(m) for m in dates) or any(digits >= 4 for _, _, digits in runs)
    return parts, year


def _holds_value(kind: str, text: str, start: int) -> bool:
    if _value_runs(text, start) or kind == "DOB" and DATE.search(text, start):
        return True
    return kind == "ADDRESS" and (bool(_STREET.search(text, start)) or bool(_STATE.search(text, start)))


def find_in_conversation(turns: Sequence[Turn]) -> Conversation:
    """Spans per turn for the values cues announce and for digit groups split over a speaker's turns, and the
    cue words each turn's window carries over (Presidio's context enhancement takes them as external context)."""
    out: list[list[PhiSpan]] = [[] for _ in turns]
    context: list[list[str]] = [[] for _ in turns]
    window: _Window | None = None
    last_time = 0.0
    street_open = dob_given = False
    for i, turn in enumerate(turns):
        text = turn.text
        cues = _cues(text)
        if window is not None and (turn.start - last_time > GAP_S or turn.start - window.opened > MAX_WINDOW_S):
            window, street_open = None, False
        if window is not None and not cues and dob_given and not _REPEAT.search(text):
            window = None  # a full date of birth was given: what follows is other dates (appointments)
        if window is not None and not cues:
            rest = text.strip()
            short = len(re.findall(r"[\w'-]+", rest)) <= _SHORT_WORDS  # "first-re": a piece ASR garbled
            if not (short or _holds_value(window.kind, text, 0) or _FILLER.match(rest) or _REPEAT.search(rest)):
                window, street_open = None, False
        segments = []  # (kind, start offset) stretches of this turn inside a window
        if window is not None:
            segments.append((window.kind, 0))
            context[i] = window.cue.lower().split()
        for end, kind, cue in cues:
            segments.append((kind, end))
            window = _Window(kind, turn.start, cue)
            street_open = dob_given = False
        for n, (kind, start) in enumerate(segments):
            stop = segments[n + 1][1] if n + 1 < len(segments) else len(text)
            piece = text[:stop]
            if kind == "ADDRESS":
                parts, ends_with_street = _address_parts(piece, start, street_open)
                street_open = ends_with_street or (street_open and not parts)
            elif kind == "DOB":  # "march fourth" / "nineteen eighty two": any date, or year, said in the window
                parts, year = _dob_parts(piece, start)
                dob_given = dob_given or year
            else:
                parts = [(a, b) for a, b, _ in _value_runs(piece, start)]
            out[i] += [PhiSpan(a, b, kind, "conversation") for a, b in parts]
        if window is not None and (segments or cues):
            last_time = turn.end
    _join_split_numbers(turns, out)
    return Conversation(out, context)


def _join_split_numbers(turns: Sequence[Turn], out: list[list[PhiSpan]]) -> None:
    """A speaker's consecutive turns that are each just a number run: one phone number or id together."""
    group: list[tuple[int, tuple[int, int], int]] = []  # (turn, run, digits)

    def flush():
        digits = sum(d for _, _, d in group)
        if len(group) >= 2 and digits >= 7:
            label = "PHONE" if digits in (7, 10, 11) else "ID"
            for k, (a, b), _ in group:
                out[k].append(PhiSpan(a, b, label, "conversation"))
        group.clear()

    for i, turn in enumerate(turns):
        runs = _value_runs(turn.text)
        only_number = len(runs) == 1 and not _words_besides(turn.text, runs)
        if only_number:
            same = group and turns[group[-1][0]].speaker == turn.speaker and turn.start - turns[group[-1][0]].end <= GAP_S
            if not same:
                flush()
            group.append((i, runs[0][:2], runs[0][2]))
        elif group and (turn.speaker == turns[group[-1][0]].speaker or not _FILLER.match(turn.text.strip())):
            flush()  # the speaker moved on, or the other one said more than "mm-hmm"
    flush()
