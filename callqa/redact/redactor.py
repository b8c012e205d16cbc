"""The Redactor: runs every recognizer on a call's utterances and replaces what they find."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import cast

from spacy.language import Language
from spacy.tokens import Doc

from ..records import AnalysedCall, Token, Transcript, Utterance
from .addresses import find_addresses
from .conversation import Turn, find_in_conversation
from .dates import find_dates
from .digits import find_digit_sequences, forget_runs
from .emails import find_spoken_emails
from .merge import allow_list_pattern, kept_spans
from .names import find_cued_names, find_names_after_a_cue_that_ended, find_spelled_names
from .organisations import not_organisations, org_ranges
from .presidio_engine import build_analyzer, presidio_spans
from .replace import redact_tokens, redact_utterance, replace_spans
from .spans import PhiSpan
from .vocabulary import NOT_NAMES

log = logging.getLogger("callqa")

NAME_CUE_CARRIES_S = 2.0  # a name cue ending one utterance names the start of the speaker's next within this


def turns_of(utterances: Sequence[Utterance]) -> list[Turn]:
    return [Turn(u.speaker, u.start, u.end, u.text) for u in utterances]


def _names_carried_over(turns: Sequence[Turn]) -> dict[int, list[PhiSpan]]:
    """Names opening a turn whose cue ended the same speaker's previous turn (the other speaker may have spoken
    in between: on two channels their utterances interleave)."""
    found: dict[int, list[PhiSpan]] = {}
    previous: dict[str, Turn] = {}
    for i, turn in enumerate(turns):
        before = previous.get(turn.speaker)
        if before is not None and turn.start - before.end <= NAME_CUE_CARRIES_S:
            spans = find_names_after_a_cue_that_ended(before.text, turn.text)
            if spans:
                found[i] = spans
        previous[turn.speaker] = turn
    return found

# Our own recognizers for what people say on the phone, registered in Presidio's registry beside its own.
OWN_RECOGNIZERS = (find_digit_sequences, find_dates, find_spelled_names, find_cued_names, find_addresses,
                   find_spoken_emails)  # fmt: skip
_OWN_LABELS = {find_digit_sequences: ("PHONE", "ID", "CARD", "ADDRESS", "DOB"), find_dates: ("DOB",),
               find_spelled_names: ("NAME",), find_cued_names: ("NAME",), find_addresses: ("ADDRESS",),
               find_spoken_emails: ("EMAIL",)}  # fmt: skip


class Redactor:
    """Finds and replaces PHI; build one per process (it wraps the loaded spaCy pipeline, no second load).

    ``allow_list``: exact phrases kept wherever they occur (case-insensitive, whole words), e.g. the
    agent's own name and the clinic's name from config. A PHI span is kept only when it lies entirely
    inside an allowed phrase, so "Maria Lopez" is still redacted when only "Maria" is allowed.
    """

    def __init__(self, nlp: Language, allow_list: Sequence[str] = ()):
        self.nlp = nlp
        self._analyzer = build_analyzer(nlp, [(f.__name__, f, _OWN_LABELS[f]) for f in OWN_RECOGNIZERS])
        self._allow = allow_list_pattern(allow_list)
        # The analysis stage parses with the full pipeline; our own parse only needs NER and lemmas.
        self._disable = [name for name in ("parser",) if name in nlp.pipe_names]

    # -- detection
    def _find_in_doc(self, doc: Doc, context: Sequence[str] = ()) -> list[PhiSpan]:
        text = doc.text
        found = presidio_spans(self._analyzer, doc, context)
        return kept_spans(text, not_organisations(text, found, org_ranges(doc)), self._allow)

    def find_call(self, texts: Sequence[str], docs: Sequence[Doc | None] | None = None,
                  turns: Sequence[Turn] | None = None) -> list[list[PhiSpan]]:
        """``find_many`` over the utterances of one call, plus what only the conversation shows.

        ``turns``: who spoke each text and when (``conversation.Turn``), for values given over several
        utterances and read back; without them the texts count as one speaker's consecutive turns.
        A name found once counts everywhere: "my name is michael brown" is caught by its cue, the agent's
        later "thanks, michael" has none.
        """
        if turns is None:
            turns = [Turn("unknown", float(i), float(i), text) for i, text in enumerate(texts)]
        if [t.text for t in turns] != list(texts):
            raise ValueError("turns do not hold the texts")
        docs = self._docs(texts, docs)
        conversation = find_in_conversation(turns)
        # A cue said in an earlier utterance is context for Presidio's recognizers in this one.
        per_text = [self._find_in_doc(doc, context) for doc, context in zip(docs, conversation.context)]
        for i, carried in _names_carried_over(turns).items():
            per_text[i] = kept_spans(turns[i].text, per_text[i] + carried, self._allow)
        in_call = conversation.spans
        names = {
            word.lower()
            for text, spans in zip(texts, per_text)
            for span in spans
            if span.label == "NAME"
            for word in re.findall(r"[A-Za-z][A-Za-z'-]+", text[span.start : span.end])
            if word.lower() not in NOT_NAMES
        }
        echo = re.compile(rf"(?<![\w'])(?:{'|'.join(map(re.escape, names))})(?![\w'])", re.IGNORECASE) if names else None
        out = []
        for text, doc, spans, extra in zip(texts, docs, per_text, in_call):
            if echo is not None:
                extra = extra + [PhiSpan(m.start(), m.end(), "NAME", "call_name") for m in echo.finditer(text)]
            out.append(kept_spans(text, [*spans, *not_organisations(text, extra, org_ranges(doc))], self._allow)
                       if extra else spans)
        forget_runs()
        return out

    def find_utterances(self, utterances: Sequence[Utterance],
                        docs: Sequence[Doc | None] | None = None) -> list[list[PhiSpan]]:
        """``find_call`` on a call's utterances, with their speakers and times."""
        return self.find_call([u.text for u in utterances], docs, turns_of(utterances))

    def find(self, text: str, doc: Doc | None = None) -> list[PhiSpan]:
        """PHI spans in ``text``, sorted and non-overlapping. ``doc``: a spaCy Doc of exactly this text."""
        return self.find_many([text], None if doc is None else [doc])[0]

    def find_many(self, texts: Sequence[str], docs: Sequence[Doc | None] | None = None) -> list[list[PhiSpan]]:
        """Batched ``find``: texts without a precomputed Doc are parsed together with ``nlp.pipe``."""
        return [self._find_in_doc(doc) for doc in self._docs(texts, docs)]

    def _docs(self, texts: Sequence[str], docs: Sequence[Doc | None] | None) -> list[Doc]:
        docs = list(docs) if docs is not None else [None] * len(texts)
        if len(docs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(docs)} docs")
        for doc, text in zip(docs, texts):
            if doc is not None and doc.text != text:
                raise ValueError(f"doc text {doc.text!r} differs from {text!r}")
        missing = [i for i, doc in enumerate(docs) if doc is None]
        for i, doc in zip(missing, self.nlp.pipe((texts[i] for i in missing), disable=self._disable)):
            docs[i] = doc
        return [cast(Doc, doc) for doc in docs]  # every None was parsed just above

    # -- replacement
    def redact_text(self, text: str, doc: Doc | None = None) -> str:
        return replace_spans(text, self.find(text, doc))

    def redact_transcript(self, transcript: Transcript, docs: Sequence[Doc | None] | None = None) -> Transcript:
        """Redacted copy: utterance text and words. A redacted run of words becomes one Word spanning their times.

        ``docs``: optional spaCy Docs parallel to ``transcript.utterances`` (of their text).
        """
        return transcript._replace(utterances=self._redact_utterances(transcript.utterances, docs))

    def redact_analysed(self, analysed: AnalysedCall, docs: Sequence[Doc | None] | None = None,
                        spans: Sequence[Sequence[PhiSpan]] | None = None) -> AnalysedCall:
        """Redacted copy whose tokens read exactly like the redacted utterance text.

        The tokens that overlap one PHI span are merged into one token (text, lemma and norm: the
        placeholder), the way spaCy's retokenizer merges, so no token count or digit leaks the value;
        ``idx``/``head`` are renumbered within the utterance. ``spans``: what ``find_utterances`` already
        found in this call (scoring needs them first, for its evidence quotes), else found here.
        """
        utterances = analysed.transcript.utterances
        all_spans = [list(s) for s in spans] if spans is not None else self.find_utterances(utterances, docs)
        spans_by_seq = {u.seq: s for u, s in zip(utterances, all_spans)}
        tokens_by_seq: dict[int, list[Token]] = {}
        for token in analysed.tokens:
            tokens_by_seq.setdefault(token.utterance_seq, []).append(token)
        texts_by_seq = {u.seq: u.text for u in utterances}
        tokens: list[Token] = []
        for seq, utterance_tokens in tokens_by_seq.items():
            found = spans_by_seq.get(seq, [])
            token_text = "".join(t.text + " " * t.whitespace for t in utterance_tokens).rstrip(" ")
            if token_text != texts_by_seq.get(seq):
                # Tokens that do not spell their utterance (not from analyse) are searched on their own.
                log.warning("utterance %d: tokens do not spell its text; redacting them separately", seq)
                found = self.find(token_text)
            tokens.extend(redact_tokens(utterance_tokens, found))
        transcript = analysed.transcript._replace(utterances=self._redact_utterances(utterances, docs, all_spans))
        return analysed._replace(transcript=transcript, tokens=tuple(tokens))

    def _redact_utterances(
        self,
        utterances: Sequence[Utterance],
        docs: Sequence[Doc | None] | None,
        all_spans: list[list[PhiSpan]] | None = None,
    ) -> tuple[Utterance, ...]:
        if all_spans is None:
            all_spans = self.find_utterances(utterances, docs)
        redacted = []
        for utterance, spans in zip(utterances, all_spans):
            word_spans = spans
            words_text = "".join(w.word for w in utterance.words).strip()
            if utterance.words and words_text != utterance.text:
                # Against the records contract; redact the words on their own rather than leak through them.
                log.warning("utterance %d: text and words disagree; redacting the words separately", utterance.seq)
                word_spans = self.find(words_text)
            redacted.append(redact_utterance(utterance, spans, word_spans))
        return tuple(redacted)
