"""Find protected health information (PHI) in call text and replace it with typed placeholders.

Detection is the union of three layers:
- Microsoft Presidio's analyzer on the already loaded spaCy pipeline: spaCy NER for person names, and
  Presidio's pattern recognizers for written e-mails, phone numbers, card numbers, SSNs and Medicare ids;
- recognizers of our own for what people *say* on the phone and ASR writes as words: digit sequences
  ("five five five, one two one two", "oh", "double five"), dates, spelled names ("S M I T H",
  "S as in Sam"), street addresses, e-mails ("john at gmail dot com") and names after cues ("my name is").

Policy decisions (issue 7):
- Every person name is PHI, staff and providers included, except what the allow-list keeps (the agent's
  own name, the clinic's name).
- A date with a day, a month and a year is [DOB]: HIPAA Safe Harbor removes all date elements but the year
  that relate to a person, and in clinic calls a full date is almost always a birth date. A date without a
  year ("Tuesday at 3", "March fourth") is kept so QA can read appointment talk, unless the utterance says
  it is a birthday / date of birth. There is no [DATE] placeholder.
- City or state names alone are kept; a street address is redacted with whatever city, state and ZIP
  follow it, and a ZIP code is redacted when announced as one.

Layout: ``redactor`` (the Redactor) runs ``presidio_engine`` and the spoken-form recognizers (``digits``,
``dates``, ``names``, ``addresses``, ``emails``, sharing ``vocabulary``), keeps spans through ``merge`` and
writes placeholders with ``replace``; ``spans`` holds the span type all of them share.
"""

from .addresses import find_addresses
from .dates import find_dates
from .digits import find_digit_sequences
from .emails import find_spoken_emails
from .names import find_cued_names, find_spelled_names
from .redactor import OWN_RECOGNIZERS, Redactor
from .replace import replace_spans
from .spans import LABELS, PhiSpan, placeholder

__all__ = [
    "LABELS",
    "OWN_RECOGNIZERS",
    "PhiSpan",
    "Redactor",
    "find_addresses",
    "find_cued_names",
    "find_dates",
    "find_digit_sequences",
    "find_spelled_names",
    "find_spoken_emails",
    "placeholder",
    "replace_spans",
]
