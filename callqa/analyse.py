"""spaCy analysis of a transcript: one Doc per utterance, turned into Token records aligned to word timestamps.

The Token records hold everything the rubric engine needs (lemma, norm, parse, negation, times, speaker), so a
rescoring run rebuilds Docs with ``docs_from_tokens`` instead of running the pipeline again.

``analyse_many`` yields ``Analysis(call, docs)``: the Docs are the pipeline's own (NER included unless
``ner=False``) and can be handed to PHI redaction, which needs the entities; callers that only score ignore them.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from typing import Iterable, Iterator, NamedTuple, Sequence

from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .metrics import compute_metrics
from .records import AnalysedCall, MetricValue, Token, Transcript, Utterance

log = logging.getLogger("callqa")

# Components the rubric engine reads (lemmas need the tagger's POS via attribute_ruler; negation needs the parser).
_NEEDED = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer")
# Negation does not cross into another clause: in "we don't have that, but I can help" the help is not negated.
# An interjection ("Hello, I can't help") is not part of the clause it hangs on.
_CLAUSE_BOUNDARY = frozenset({"conj", "advcl", "relcl", "ccomp", "parataxis", "intj"})
_CALLS_PER_CHUNK = 16


class Analysis(NamedTuple):
    call: AnalysedCall
    docs: tuple[Doc, ...]  # one per utterance, ``doc.text == utterance.text``; user_data["utterance_seq"] set


def _disabled(nlp: Language, ner: bool) -> list[str]:
    keep = (*_NEEDED, "ner") if ner else _NEEDED
    return [name for name in nlp.pipe_names if name not in keep]


def _negated(doc: Doc) -> list[bool]:
    """A token is negated when it or a head above it, within the same clause, has a ``neg`` child."""
    has_neg = [any(child.dep_ == "neg" for child in token.children) for token in doc]
    out = []
    for token in doc:
        node, negated = token, False
        while not negated:
            negated = has_neg[node.i]
            if node.dep_ in _CLAUSE_BOUNDARY or node.head.i == node.i:
                break
            node = node.head
        out.append(negated)
    return out


def _token_times(utterance: Utterance, doc: Doc) -> list[tuple[float, float]]:
    """(start_s, end_s) per token from the words covering its characters."""
    joined = "".join(w.word for w in utterance.words)
    if not utterance.words or joined.strip() != utterance.text:
        if utterance.words:
            log.debug("utterance %s: text does not match its words; times interpolated", utterance.seq)
        span, n = utterance.end - utterance.start, max(len(utterance.text), 1)
        return [(utterance.start + span * t.idx / n, utterance.start + span * (t.idx + len(t)) / n) for t in doc]
    lead = len(joined) - len(joined.lstrip())
    offsets = list(itertools.accumulate((len(w.word) for w in utterance.words[:-1]), initial=-lead))
    words = utterance.words

    def word_at(char: int):
        return words[max(bisect.bisect_right(offsets, char) - 1, 0)]

    return [(word_at(t.idx).start, word_at(t.idx + len(t) - 1).end) for t in doc]


def tokens_of(utterance: Utterance, doc: Doc) -> list[Token]:
    times = _token_times(utterance, doc)
    negated = _negated(doc)
    return [
        Token(utterance.seq, t.i, t.text, bool(t.whitespace_), t.lemma_, t.norm_, t.pos_, t.tag_, t.dep_,
              t.head.i, negated[t.i], times[t.i][0], times[t.i][1], utterance.speaker)
        for t in doc
    ]


def analyse_many(
    transcripts: Iterable[Transcript], nlp: Language, batch_size: int = 64, ner: bool = True
) -> Iterator[Analysis]:
    """Analyse calls in order, batching utterances of several calls through ``nlp.pipe``."""
    disable = _disabled(nlp, ner)
    iterator = iter(transcripts)
    while chunk := list(itertools.islice(iterator, _CALLS_PER_CHUNK)):
        texts = [u.text for t in chunk for u in t.utterances]
        docs = iter(nlp.pipe(texts, batch_size=batch_size, disable=disable))
        for transcript in chunk:
            call_docs = tuple(itertools.islice(docs, len(transcript.utterances)))
            tokens: list[Token] = []
            for utterance, doc in zip(transcript.utterances, call_docs):
                doc.user_data["utterance_seq"] = utterance.seq
                tokens += tokens_of(utterance, doc)
            yield Analysis(AnalysedCall(transcript, tuple(tokens), compute_metrics(transcript)), call_docs)


def analyse(transcript: Transcript, nlp: Language) -> AnalysedCall:
    return next(analyse_many([transcript], nlp, ner=False)).call


def docs_from_tokens(tokens: Sequence[Token], vocab: Vocab) -> list[Doc]:
    """One Doc per utterance from stored tokens, with lemmas, tags and the parse, without running a pipeline."""
    docs = []
    for seq, grouped in itertools.groupby(tokens, key=lambda t: t.utterance_seq):
        group = list(grouped)
        has_parse = all(t.dep for t in group)
        doc = Doc(
            vocab,
            words=[t.text for t in group],
            spaces=[t.whitespace for t in group],
            lemmas=[t.lemma for t in group],
            pos=[t.pos for t in group] if all(t.pos for t in group) else None,
            tags=[t.tag for t in group] if all(t.tag for t in group) else None,
            deps=[t.dep for t in group] if has_parse else None,
            heads=[t.head for t in group] if has_parse else None,
        )
        for token, stored in zip(doc, group):
            if stored.norm != token.norm_:
                token.norm_ = stored.norm
        doc.user_data["utterance_seq"] = seq
        docs.append(doc)
    return docs


def analysed_from_tokens(
    transcript: Transcript, tokens: Sequence[Token], metrics: dict[str, MetricValue] | None = None
) -> AnalysedCall:
    """The rescoring path: an AnalysedCall from stored tokens (and stored metrics, else recomputed; no spaCy)."""
    return AnalysedCall(transcript, tuple(tokens), metrics if metrics is not None else compute_metrics(transcript))
