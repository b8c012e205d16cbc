"""Word error rate (jiwer) after Whisper-style text normalisation, for measuring ASR on reference transcripts."""

from __future__ import annotations

import re
from typing import Iterable

import jiwer

from callqa.numbers import number_words

_CONTRACTIONS = {
    "you're": "you are", "we're": "we are", "they're": "they are", "i'm": "i am", "it's": "it is",
    "that's": "that is", "there's": "there is", "can't": "can not", "cannot": "can not", "won't": "will not",
    "don't": "do not", "doesn't": "does not", "didn't": "did not", "isn't": "is not", "i've": "i have",
    "we've": "we have", "you've": "you have", "i'll": "i will", "we'll": "we will", "you'll": "you will",
    "let's": "let us", "i'd": "i would", "what's": "what is", "okay": "ok",
}


def normalise(text: str) -> str:
    """Lower case, digits as spoken words ("24" = "twenty four"), contractions spelled out, no punctuation."""
    text = text.lower().replace("-", " ").replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", text)
    text = re.sub(r"[^a-z' ]", " ", text)
    words = [_CONTRACTIONS.get(w, w) for w in text.split()]
    return " ".join(w.strip("'") for w in " ".join(words).split() if w.strip("'"))


def wer(references: Iterable[str], hypotheses: Iterable[str]) -> float:
    """Corpus WER: total word edits over total reference words, both sides normalised."""
    refs, hyps = [], []
    for ref, hyp in zip(references, hypotheses, strict=True):
        refs.append(normalise(ref))
        hyps.append(normalise(hyp))
    if not any(refs):
        return 0.0
    return float(jiwer.wer(refs, hyps))
