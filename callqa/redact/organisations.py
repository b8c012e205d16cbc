"""Organisations are not names: the clinic's or bank's own name in every greeting, and the companies callers
pay, stay readable.

A NAME span is dropped when it lies inside an ORG entity of spaCy's NER, or when the words right after it (or
its own last word) say it names an organisation ("Harper Valley National Bank", "Fossil Gas", "Riverside
Clinic"). The organisation's own names from config, and the rubrics' phrases, go to the allow-list instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from spacy.tokens import Doc

from .spans import PhiSpan

_ORG_WORDS = (
    "bank|banking|credit\\s+union|national|federal|savings|trust|financial|insurance|clinic|hospital|pharmacy|"
    "medical|health|healthcare|dental|center|centre|practice|labs?|laboratory|gas|electric|electricity|energy|"
    "power|water|utilities|utility|telecom|wireless|mobile|cable|company|inc|llc|ltd|corp|corporation|group|"
    "services|associates|partners|store|stores|market|motors|airlines?"
)
_ORG_AFTER = re.compile(rf"[\s,]*(?:{_ORG_WORDS})(?![\w'])", re.IGNORECASE)
_ORG_LAST_WORD = re.compile(rf"(?<![\w'])(?:{_ORG_WORDS})$", re.IGNORECASE)


_ORG_WORD = re.compile(rf"(?<![\w'])(?:{_ORG_WORDS})(?![\w'])", re.IGNORECASE)


def names_organisation(phrase: str) -> bool:
    return _ORG_WORD.search(phrase) is not None


def org_ranges(doc: Doc | None) -> list[tuple[int, int]]:
    return [] if doc is None else [(e.start_char, e.end_char) for e in doc.ents if e.label_ == "ORG"]


def _inside_org(text: str, span: PhiSpan, orgs: list[tuple[int, int]]) -> bool:
    """Inside an ORG entity larger than the name: a name that is all of an "ORG" is NER taking a person for a
    company, which the small model often does; a cue or a spelling knows better."""
    return any(a <= span.start and span.end <= b and (a, b) != (span.start, span.end)
               and names_organisation(text[a:b]) for a, b in orgs)  # an ORG with no organisation word is a guess


def not_organisations(text: str, spans: Iterable[PhiSpan], orgs: list[tuple[int, int]]) -> list[PhiSpan]:
    kept = []
    for span in spans:
        if span.label == "NAME" and (
            _inside_org(text, span, orgs)
            or _ORG_AFTER.match(text, span.end)
            or _ORG_LAST_WORD.search(text, span.start, span.end)
        ):
            continue
        kept.append(span)
    return kept
