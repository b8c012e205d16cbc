"""E-mail addresses as ASR writes them when spoken: "john dot smith at gmail dot com"."""

from __future__ import annotations

import re

from .spans import PhiSpan
from .vocabulary import NOT_NAMES, NUMBER_WORD

_TLD = r"com|org|net|edu|gov|us|io|co|info|biz|me|uk|ca"
_EMAIL_JOIN = r"(?:\s*(?:\.|_|-|dot|underscore|dash|hyphen)\s*)"
_SPOKEN_EMAIL = re.compile(
    rf"""(?:(?<![\w'])(?:[A-Za-z0-9]\s+){{1,12}})?   # a spelled local part: "j o h n"
        (?<![\w'])[A-Za-z0-9]+(?:{_EMAIL_JOIN}[A-Za-z0-9]+|\s+(?:{NUMBER_WORD})\b)*
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
        if before is not None and before.group(1).lower() not in NOT_NAMES:
            start = before.start(1)
        spans.append(PhiSpan(start, m.end(), "EMAIL", "spoken_email"))
    return spans
