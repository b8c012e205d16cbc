"""Names spelled out letter by letter, and names said after a cue ("my name is", "this is")."""

from __future__ import annotations

import re

from .spans import PhiSpan
from .vocabulary import COMMON_INITIALISMS, NOT_NAMES

# ---------------------------------------------------------------- spelled names
# Letter-by-letter spelling, "S as in Sam", "double L"; ASR writes "S M I T H", "S-M-I-T-H" or "S. M. I."
_EXAMPLE_WORD = r"\s+(?:as\s+in|like)\s+[A-Za-z]+"  # "S as in Sam"
_LETTER = rf"(?:double\s+)?[A-Za-z](?:{_EXAMPLE_WORD})?"
_SPELLED = re.compile(rf"(?<![\w'])({_LETTER}(?:(?:\s*[,.-]\s*|\s+)(?:and\s+)?{_LETTER})*)(?![\w'])\.?")
_SPELL_CONTEXT = re.compile(r"\b(?:spell|spelled|spelling|name|that's|thats|letters?)\b", re.IGNORECASE)
_SPELLED_LETTER = re.compile(rf"(?<![\w'])(double\s+)?([A-Za-z])(?:{_EXAMPLE_WORD})?(?![\w'])", re.IGNORECASE)


def find_spelled_names(text: str) -> list[PhiSpan]:
    """Spelled runs, and the word they spell wherever it also occurs ("Nguyen, N G U Y E N")."""
    spell_context = _SPELL_CONTEXT.search(text) is not None
    spans = []
    for m in _SPELLED.finditer(text):
        letters = _SPELLED_LETTER.findall(m.group(1))
        spelled = "".join(letter * (2 if double else 1) for double, letter in letters).upper()
        with_example = re.search(r"\b(?:as\s+in|like)\s", m.group(1), re.IGNORECASE) is not None
        if set(spelled) <= {"A", "I"} or spelled in COMMON_INITIALISMS:
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
_NAME_WORD = r"[A-Za-z][A-Za-z'-]*"
# After these cues the next one to three words that are not function words are a name, in any case
# (human and ASR transcripts are often all lower case: "my name is elizabeth rodriguez i would like").
_STRONG_NAME_CUE = re.compile(
    r"\b(?:(?:first|last|full|middle|maiden|sur)\s*name|(?<!company\s)(?<!business\s)(?<!bank\s)(?<!store\s)"
    r"(?<!street\s)(?<!payee\s)(?<!biller\s)name)(?:\s+is|'s)?\s*[,:]?\s+",
    re.IGNORECASE,
)  # "the company name is ..." names an organisation
# A self-introduction opening the utterance ("hi this is patricia johns and ...") names the speaker in any case.
# So does "this is maria how may i help you" / "this is maria from ...", wherever it stands.
_INTRO_CUE = re.compile(
    r"(?:(?:^|(?<![\w'])(?:hi|hello|hey|yes|yeah|morning|afternoon|evening)[\s,.!]+)(?:(?:um|uh)[\s,]+)?this\s+is\s+"
    r"|(?<![\w'])this\s+is\s+(?=[a-z'-]+(?:\s+[a-z'-]+)?[\s,]+(?:how\s+(?:can|may|could)|speaking|from|here)\b))",
    re.IGNORECASE,
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
        if word.lower() in NOT_NAMES or len(word) < 2 or (capitalised_only and not word[0].isupper()):
            break
        start = m.start(1) if start is None else start
        end, pos = m.start(1) + len(word), m.end()
        if word != m.group(1):  # a possessive ends the name
            break
    return None if start is None or end is None else (start, end)


_CUES = ((_STRONG_NAME_CUE, False), (_INTRO_CUE, False), (_WEAK_NAME_CUE, True))


def find_cued_names(text: str) -> list[PhiSpan]:
    spans = []
    for cue, capitalised_only in _CUES:
        for m in cue.finditer(text):
            found = _name_words_after(text, m.end(), capitalised_only)
            if found is not None:
                spans.append(PhiSpan(found[0], found[1], "NAME", "name_cue"))
    return spans


def find_names_after_a_cue_that_ended(previous: str, text: str) -> list[PhiSpan]:
    """The name opening ``text`` when the same speaker's previous utterance ended on its cue: ASR ends segments
    mid-sentence ("... with Dr." | "Nguyen for my knee", "my name is" | "Ethan Brooks")."""
    ended = previous.rstrip() + " "
    for cue, capitalised_only in _CUES:
        if any(m.end() == len(ended) for m in cue.finditer(ended)):
            found = _name_words_after(text, 0, capitalised_only)
            if found is not None:
                return [PhiSpan(found[0], found[1], "NAME", "name_cue")]
    return []
