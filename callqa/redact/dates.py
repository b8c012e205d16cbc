"""Dates written or spoken in full ("March fourth, nineteen eighty-two", "10/14/1988")."""

from __future__ import annotations

import re

from .spans import PhiSpan
from .vocabulary import TEENS, TENS, UNITS

_ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth"
).split()
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan\.?|feb\.?|mar\.?|apr\.?|jun\.?|jul\.?|aug\.?|sept?\.?|oct\.?|nov\.?|dec\.?"
)

# A day and month without a year are only PHI where the utterance talks about a birth date.
_DOB_CONTEXT = re.compile(r"\b(?:birth|born|dob|d\.o\.b|birthday|birthdate)\b", re.IGNORECASE)

_DAY = (
    r"(?:\d{1,2}(?:st|nd|rd|th)?"
    rf"|(?:(?:twenty|thirty)[\s-]?)?(?:{'|'.join(sorted(_ORDINALS, key=len, reverse=True))})"
    rf"|(?:(?:twenty|thirty)[\s-]?)?(?:{'|'.join(sorted(UNITS, key=len, reverse=True))})"
    rf"|{'|'.join(TEENS)}|twenty|thirty)"
)
_SPOKEN_TENS_UNIT = rf"(?:(?:{'|'.join(TENS)})(?:[\s-]?(?:{'|'.join(UNITS)}))?|{'|'.join(TEENS)})"
_YEAR = (
    r"(?:\d{4}|'\d{2}"
    rf"|(?:nineteen|twenty)[\s-](?:(?:oh|o)[\s-](?:{'|'.join(UNITS)})|{_SPOKEN_TENS_UNIT})"
    rf"|two\sthousand(?:\s(?:and\s)?(?:{_SPOKEN_TENS_UNIT}|{'|'.join(UNITS)}))?"
    rf"|(?:oh|o)[\s-](?:{'|'.join(UNITS)})|{_SPOKEN_TENS_UNIT})"
)
_SEP = r"(?:\s*,\s*|\s+)"
DATE = re.compile(
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


def has_year(m: re.Match) -> bool:
    return any(m.group(g) is not None for g in ("y1", "y2", "y3", "y4"))


def find_dates(text: str) -> list[PhiSpan]:
    """Full dates ([DOB]); month/day without a year only where the utterance talks about birth."""
    dob_context = _DOB_CONTEXT.search(text) is not None
    spans = []
    for m in DATE.finditer(text):
        if has_year(m) or dob_context:
            spans.append(PhiSpan(m.start(), m.end(), "DOB", "spoken_date"))
    return spans
