"""Spoken numbers, the one home of English number words: reading them as values ("twenty four" = 24) and
writing values as words (24 = "twenty four")."""

from __future__ import annotations

from typing import Sequence

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")  # value: the position
TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen")  # value: 10 + the position
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")  # value: 20 + 10 x the position
SCALES = {"hundred": 100, "thousand": 1000}

_UNITS = {w: i for i, w in enumerate(DIGITS)}
_TEENS = {w: i + 10 for i, w in enumerate(TEENS)}
_TENS = {w: (i + 2) * 10 for i, w in enumerate(TENS)}
_BELOW_TWENTY = DIGITS + TEENS


def _small_number(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(value, next index) of a number below 100 spoken at words[i]: "seven", "fifteen", "twenty four"."""
    word = words[i] if i < len(words) else ""
    if word in _UNITS or word in _TEENS:
        return _UNITS[word] if word in _UNITS else _TEENS[word], i + 1
    if word in _TENS:
        if i + 1 < len(words) and words[i + 1] in _UNITS and words[i + 1] != "zero":
            return _TENS[word] + _UNITS[words[i + 1]], i + 2
        return _TENS[word], i + 1
    return None


def spoken_number(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(value, words used) of the number spoken at words[i] ("two hundred fifty" -> 250, 3). Times such as
    "nine thirty" stay two numbers (9, 30)."""
    small = _small_number(words, i)
    if small is None:
        return None
    total, (current, j) = 0, small
    while j < len(words) and words[j] in SCALES:
        if SCALES[words[j]] == 100:
            current *= 100
        else:
            total, current = total + current * 1000, 0
        j += 1
        if (more := _small_number(words, j)) is not None:
            current, j = current + more[0], more[1]
    return total + current, j - i


def number_words(n: int) -> str:
    """Spoken English for 0..999999 (digits beyond that are read one by one)."""
    if n < 20:
        return _BELOW_TWENTY[n]
    if n < 100:
        return TENS[n // 10 - 2] + ("" if n % 10 == 0 else " " + DIGITS[n % 10])
    if n < 1000:
        rest = n % 100
        return DIGITS[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if n < 1_000_000:
        rest = n % 1000
        return number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))
    return " ".join(DIGITS[int(d)] for d in str(n))
