"""Street addresses (with the city, state and ZIP that follow them), PO boxes and apartments."""

from __future__ import annotations

import re

from .spans import PhiSpan
from .vocabulary import NUMBER_WORD

# A number said in words, as in house and apartment numbers: "twelve forty-five".
_NUM_WORDS_RE = rf"(?:{NUMBER_WORD})(?:[\s-]+(?:{NUMBER_WORD}))*"
STREET_SUFFIX = (
    r"street|st\.?|avenue|ave\.?|road|rd\.?|boulevard|blvd\.?|lane|ln\.?|drive|dr\.?|court|ct\.?|way|place|"
    r"pl\.?|terrace|circle|parkway|pkwy\.?|highway|hwy\.?|trail|square|loop|crescent|alley|pike|route"
)
_HOUSE_NUMBER = rf"(?:\d+[A-Za-z]?|{_NUM_WORDS_RE})"
_UNIT = (
    rf"(?:\s*,?\s*(?:apartment|apt\.?|unit|suite|ste\.?|number|\#)\s*(?:number\s+)?\#?\s*"
    rf"(?:\d+|{_NUM_WORDS_RE}|[A-Za-z]\b)(?:\s*[A-Za-z]\b)?)"
)
STATE_NAMES = (
    "alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|hawaii|idaho|"
    "illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|michigan|minnesota|"
    "mississippi|missouri|montana|nebraska|nevada|new hampshire|new jersey|new mexico|new york|"
    "north carolina|north dakota|ohio|oklahoma|oregon|pennsylvania|rhode island|south carolina|south dakota|"
    "tennessee|texas|utah|vermont|virginia|washington|west virginia|wisconsin|wyoming"
).replace(" ", r"\s+")  # the address pattern is verbose, where a bare space means nothing
STATES = STATE_NAMES + "|[A-Z]{2}"
_ADDRESS = re.compile(
    rf"""\b(?:
        {_HOUSE_NUMBER}\s+(?:(?:north|south|east|west|n|s|e|w)\.?\s+)?
        (?:(?:[A-Za-z][a-z']*|\d+(?:st|nd|rd|th))\s+){{1,3}}?(?:{STREET_SUFFIX})\b
        (?:\s+(?:north|south|east|west|northeast|northwest|southeast|southwest))?
        {_UNIT}?
        (?:\s*,\s*(?-i:[A-Z][a-z]+(?:\s+[A-Z][a-z]+){{0,2}})           # city
           (?:\s*,?\s*(?:{STATES}))?(?:\s*,?\s*\d{{5}}(?:-\d{{4}})?)?)?  # state, ZIP
      | p\.?\s?o\.?\s+box\s+{_HOUSE_NUMBER}
      | (?:apartment|apt\.?)\s*(?:number\s+)?\#?\s*(?:\d+[A-Za-z]?|{_NUM_WORDS_RE})(?:\s*[A-Za-z]\b)?
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def find_addresses(text: str) -> list[PhiSpan]:
    return [PhiSpan(m.start(), m.end(), "ADDRESS", "address") for m in _ADDRESS.finditer(text)]
