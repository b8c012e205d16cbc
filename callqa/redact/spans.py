"""The PHI span every recognizer returns, its labels and their placeholders."""

from __future__ import annotations

from typing import NamedTuple

LABELS = ("NAME", "DOB", "PHONE", "ID", "ADDRESS", "CARD", "EMAIL")
# Breaks ties when spans of different labels cover the same text: the more specific reading wins.
LABEL_PRIORITY = {"EMAIL": 6, "ADDRESS": 5, "DOB": 4, "CARD": 3, "ID": 2, "PHONE": 2, "NAME": 1}


class PhiSpan(NamedTuple):
    start: int
    end: int
    label: str  # one of LABELS
    source: str  # the recognizer that found it, e.g. "spoken_digits" or "presidio:CreditCardRecognizer"


def placeholder(label: str) -> str:
    return f"[{label}]"
