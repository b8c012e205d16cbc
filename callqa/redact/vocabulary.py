"""Words that several spoken-form recognizers share: how numbers and weekdays are said, and the
words that are never a name or never an id."""

from __future__ import annotations

from spacy.lang.en.stop_words import STOP_WORDS

from ..numbers import DIGITS, SCALES, TEENS, TENS

# ---------------------------------------------------------------- spoken numbers and weekdays
DIGIT_WORDS = dict.fromkeys([DIGITS[0], "oh", "o", *DIGITS[1:]], 1)  # "oh" and "o" are zeros read in an id
UNITS = list(DIGITS[1:])
NUMBER_WORD = "|".join(sorted([*DIGIT_WORDS, *TEENS, *TENS, *SCALES], key=len, reverse=True))
_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

# ---------------------------------------------------------------- words that are not PHI
# Initialisms that read like spelled letters or an id's letters but are ordinary clinic talk.
COMMON_INITIALISMS = {
    "ICU", "MRI", "USA", "ER", "AM", "PM", "ENT", "CT", "EKG", "ECG", "PT", "OT", "ID", "DOB", "SSN", "MRN",
    "HMO", "PPO", "ATM", "ASAP", "TV", "OK", "IV", "CVS", "CBC", "UTI", "ADHD", "COPD", "ABC", "OBGYN", "GP",
    "PA", "NP", "RN", "MD", "DO", "OB", "GYN", "PCP", "UK", "US", "ET", "PST", "EST",
}  # fmt: skip
# Words after a name cue (or before "at gmail dot com") that are not a name.
NOT_NAMES = set(STOP_WORDS) | _WEEKDAYS | {
    "please", "spelled", "calling", "here", "sir", "ma'am", "maam", "again", "thanks", "thank", "correct",
    "right", "yes", "yeah", "okay", "ok", "sure", "um", "uh", "hi", "hello", "hey", "speaking", "actually",
    "just", "like", "gonna", "wanna", "sorry", "fine", "good", "great", "still", "looking", "trying", "having",
    "going", "doing", "feeling", "glad", "happy", "afraid", "new", "returning", "patient", "office", "clinic",
    "pharmacy", "doctor", "dr", "nurse", "front", "desk", "appointment", "spell", "spelling", "that's", "it's",
    "i'm", "you're", "we're", "they're", "there's", "what's", "first", "last", "full", "middle", "name", "wait",
    "hold", "let", "check", "see", "number", "date", "birth", "phone", "address", "email", "ready", "sorry",
    "calm", "listen", "look", "excuse", "whatever", "bye", "goodbye",  # imperatives the NER takes for names
}  # fmt: skip
