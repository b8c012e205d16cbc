"""PHI that only the conversation shows: values given in pieces over several utterances, after a question in
another utterance ("what's your phone number?" ... "seven one five" ... "one three nine"), and read back by the
other speaker.

A cue ("phone number", "zip code", "address", "account number", "date of birth") opens a window of the given
kind. The window takes in the rest of the cue's utterance and the utterances that follow while they come within
``GAP_S`` of each other and keep to the value: pieces of it, short acknowledgements ("okay", "sorry?"), a
request to repeat it, or its read-back. The first utterance that says something else, or a cue of another kind,
closes it. Inside a window, number runs (digits or number words, however ASR writes them: "421-1", "0-6, 8",
"3-8-8-3-2", "seven eight three eleven") are PHI of the window's kind, except amounts, times and durations; in
an address window, street names, and the city said after the street (the state is kept), are too.

Without a cue, a speaker's consecutive utterances that each consist of a number run are joined: together they
make a phone number (7, 10 or 11 digits) or an id (more).

Spans stay per utterance (offsets in its text), so every piece maps onto its own words, tokens and quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from .addresses import STATE_NAMES, STREET_SUFFIX
from .dates import DATE
from .digits import number_runs_in
from .spans import PhiSpan

GAP_S = 8.0  # the longest pause inside one exchange of a value
MAX_WINDOW_S = 45.0  # a window closes this long after its cue, whatever follows

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
    ("ADDRESS", r"address|where\s+do\s+you\s+live|\blive\s+at\b|mailing|\breside"),
)
_CUE = re.compile("|".join(f"(?P<{kind}{i}>{pattern})" for i, (kind, pattern) in enumerate(_CUES)), re.IGNORECASE)

_CLOCK_TIME = re.compile(r"\b(?:at|by|until|till|around)\s*$", re.IGNORECASE)  # "Monday at nine fifteen"

# An utterance that keeps a window open although it holds no value.
_FILLER = re.compile(
    r"^(?:(?:okay|ok|yes|yeah|yep|uh|um|uhm|hmm|mm|mhm|hmm|right|alright|sure|sorry|pardon|great|perfect|"
    r"thanks|thank\s+you|got\s+it|one\s+(?:second|moment)|and|so|that's|it's|its|it\s+is|is|the|my|our|"
    r"correct|again|please|say|that|repeat|can|could|you|for|me|what|was|come|again|hold\s+on)[\s,.!?-]*)*$",
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
_PLACE_WORD = r"(?!(?:the|a|an|my|on|at|is|and|of|to|in|it|its|it's|that|this|okay|yes|no|uh|um|so)\b)[A-Za-z][a-z'A-Z]*"
# A city: one to three words, then a state, a ZIP or the end of the utterance.
_CITY = re.compile(rf"(?<![\w'])((?:{_PLACE_WORD}[\s,]+){{0,2}}{_PLACE_WORD})(?=[\s,.]*(?:$|{STATE_NAMES}\b|\d|"
                   r"(?:zero|one|two|three|four|five|six|seven|eight|nine|oh)\b))", re.IGNORECASE)


class Turn(NamedTuple):
    speaker: str
    start: float
    end: float
    text: str


class _Window(NamedTuple):
    kind: str
    opened: float
    turn: int
    offset: int  # where the window starts in the cue's utterance


def _cues(text: str) -> list[tuple[int, str]]:
    """(end offset, kind) of every cue in ``text``."""
    found = []
    for m in _CUE.finditer(text):
        kind = re.sub(r"\d+$", "", m.lastgroup or "")
        found.append((m.end(), kind))
    return found


def _value_runs(text: str, start: int = 0) -> list[tuple[int, int, int]]:
    """Number runs in ``text[start:]`` that may be a value's piece: not a quantity ("one hundred dollars",
    "three to five business days"), and two digits or more unless the run is all the utterance says."""
    runs = [r for r in number_runs_in(text) if r[0] >= start]
    alone = len(runs) == 1 and not _words_besides(text, runs[0])
    return [r for r in runs if r[2] >= 2 or (alone and r[2] >= 1)]


def _words_besides(text: str, run: tuple[int, int, int]) -> bool:
    return bool(re.sub(r"[\W_]+", "", text[: run[0]] + text[run[1]:]))


def _address_parts(text: str, start: int, after_street: bool) -> tuple[list[tuple[int, int]], bool]:
    """House numbers, ZIPs, streets and the city after a street in ``text[start:]``; and whether a street ended
    the utterance (its city may come in the next one)."""
    parts = [(a, b) for a, b, _ in _value_runs(text, start)]
    streets = [m.span() for m in _STREET.finditer(text, start)]
    parts += streets
    city_from = [b for _, b in streets]
    if after_street:
        city_from.append(start)
    for pos in city_from:
        m = _CITY.match(text, pos + len(text[pos:]) - len(text[pos:].lstrip(" ,.")))
        if m and not _STATE.fullmatch(m.group(1)) and not _FILLER.match(m.group(1)):
            end = m.end(1)
            state = _STATE.search(m.group(1))  # "harper valley california": the state stays
            parts.append((m.start(1), m.start(1) + state.start() if state and state.start() else end))
    ends_with_street = bool(streets) and not text[streets[-1][1]:].strip(" ,.")
    return [(a, b) for a, b in parts if b > a], ends_with_street


def _holds_value(kind: str, text: str, start: int) -> bool:
    if _value_runs(text, start) or kind == "DOB" and DATE.search(text, start):
        return True
    return kind == "ADDRESS" and (bool(_STREET.search(text, start)) or bool(_STATE.search(text, start))
                                  or bool(_CITY.fullmatch(text[start:].strip(" ,.?!"))))


def find_in_conversation(turns: Sequence[Turn]) -> list[list[PhiSpan]]:
    """Spans per turn for the values cues announce and for digit groups split over a speaker's turns."""
    out: list[list[PhiSpan]] = [[] for _ in turns]
    window: _Window | None = None
    last_time = 0.0
    street_open = False
    for i, turn in enumerate(turns):
        text = turn.text
        cues = _cues(text)
        if window is not None and (turn.start - last_time > GAP_S or turn.start - window.opened > MAX_WINDOW_S):
            window, street_open = None, False
        if window is not None and not cues:
            rest = text.strip()
            if not (_holds_value(window.kind, text, 0) or _FILLER.match(rest) or _REPEAT.search(rest)):
                window, street_open = None, False
        segments = []  # (kind, start offset) stretches of this turn inside a window
        if window is not None:
            segments.append((window.kind, 0))
        for end, kind in cues:
            segments.append((kind, end))
            window = _Window(kind, turn.start, i, end)
            street_open = False
        for n, (kind, start) in enumerate(segments):
            stop = segments[n + 1][1] if n + 1 < len(segments) else len(text)
            piece = text[:stop]
            if kind == "ADDRESS":
                parts, ends_with_street = _address_parts(piece, start, street_open)
                street_open = ends_with_street or (street_open and not parts)
            elif kind == "DOB":  # "march fourth" / "nineteen eighty two": any date, or year, said in the window
                parts = [m.span() for m in DATE.finditer(piece, start)]
                parts += [(a, b) for a, b, _ in _value_runs(piece, start) if not _CLOCK_TIME.search(piece, 0, a)]
            else:
                parts = [(a, b) for a, b, _ in _value_runs(piece, start)]
            out[i] += [PhiSpan(a, b, kind, "conversation") for a, b in parts]
        if window is not None and (segments or cues):
            last_time = turn.end
    _join_split_numbers(turns, out)
    return out


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
        only_number = len(runs) == 1 and not _words_besides(turn.text, runs[0])
        if only_number:
            same = group and turns[group[-1][0]].speaker == turn.speaker and turn.start - turns[group[-1][0]].end <= GAP_S
            if not same:
                flush()
            group.append((i, runs[0][:2], runs[0][2]))
        elif group and (turn.speaker == turns[group[-1][0]].speaker or not _FILLER.match(turn.text.strip())):
            flush()  # the speaker moved on, or the other one said more than "mm-hmm"
    flush()
