"""Word error rate after Whisper-style text normalisation, for measuring ASR on reference transcripts."""

from __future__ import annotations

import re
from typing import Iterable

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_CONTRACTIONS = {
    "you're": "you are", "we're": "we are", "they're": "they are", "i'm": "i am", "it's": "it is",
    "that's": "that is", "there's": "there is", "can't": "can not", "cannot": "can not", "won't": "will not",
    "don't": "do not", "doesn't": "does not", "didn't": "did not", "isn't": "is not", "i've": "i have",
    "we've": "we have", "you've": "you have", "i'll": "i will", "we'll": "we will", "you'll": "you will",
    "let's": "let us", "i'd": "i would", "what's": "what is", "okay": "ok",
}


def number_words(n: int) -> str:
    """Spoken English for 0..999999 (digits beyond that are read one by one)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if n < 1_000_000:
        rest = n % 1000
        return number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))
    return " ".join(_ONES[int(d)] for d in str(n))


def normalise(text: str) -> str:
    text = text.lower().replace("-", " ").replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", text)
    text = re.sub(r"[^a-z' ]", " ", text)
    words = [_CONTRACTIONS.get(w, w) for w in text.split()]
    return " ".join(w.strip("'") for w in " ".join(words).split() if w.strip("'"))


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(references: Iterable[str], hypotheses: Iterable[str]) -> float:
    """Corpus WER: total word edits over total reference words, both sides normalised."""
    errors = words = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        r, h = normalise(ref).split(), normalise(hyp).split()
        errors += edit_distance(r, h)
        words += len(r)
    return errors / words if words else 0.0
