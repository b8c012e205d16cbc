"""Find protected health information (PHI) in call text and replace it with typed placeholders.

Detection, per utterance, runs in Microsoft Presidio's analyzer on the already loaded spaCy pipeline, whose
registry holds:
- Presidio's recognizers: spaCy NER for person names, patterns for written e-mails, phone numbers, card
  numbers, SSNs and Medicare ids;
- callqa's recognizers for what people *say* on the phone and ASR writes as words: digit sequences
  ("five five five, one two one two", "oh", "double five"), dates, spelled names ("S M I T H",
  "S as in Sam"), street addresses, e-mails ("john at gmail dot com") and names after cues ("my name is").
Over the call, ``conversation`` finds the values given in pieces over several utterances after a cue in
another one, and read back; a name found once counts everywhere in the call. Organisations are not names
(``organisations``).

Policy decisions (issue 7):
- Every person name is PHI, staff and providers included, except what the allow-list keeps (the agent's
  own name, the clinic's name).
- A date with a day, a month and a year is [DOB]: HIPAA Safe Harbor removes all date elements but the year
  that relate to a person, and in clinic calls a full date is almost always a birth date. A date without a
  year ("Tuesday at 3", "March fourth") is kept so QA can read appointment talk, unless the utterance says
  it is a birthday / date of birth. There is no [DATE] placeholder.
- A state is kept; a street address is redacted with whatever city, state and ZIP follow it in the same
  utterance, and in an address window (see ``conversation``) the house number, street, city and ZIP said in
  separate utterances are redacted, the state kept. A ZIP code is redacted when announced as one.

Layout: ``redactor`` (the Redactor) runs ``presidio_engine`` with the spoken-form recognizers (``digits``,
``dates``, ``names``, ``addresses``, ``emails``, sharing ``vocabulary``) registered in it, then
``conversation`` over the call; ``organisations`` drops names that are organisations, ``merge`` keeps spans
(allow-list, overlaps) and ``replace`` writes placeholders; ``spans`` holds the span type all of them share.
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
