"""A call prepared for matching: per-speaker word streams, occurrences of a rubric's phrases, evidence."""

from __future__ import annotations

import bisect
from typing import Iterable, NamedTuple, Sequence

from spacy.tokens import Doc

from .analyse import docs_from_tokens
from .phrases import CompiledRubric, Group, Hit, PhraseSet, Search, is_word, word_items
from .records import AnalysedCall, Evidence, Token

NO_EVIDENCE = Evidence(None, None, None, None)
NEGATORS = frozenset({"not", "n't", "never", "no", "nt"})


class Occurrence(NamedTuple):
    speaker: str
    first: int  # token indices into the call's tokens
    last: int
    start_s: float
    end_s: float
    negated: bool


class Found(NamedTuple):
    groups: tuple[tuple[Occurrence, ...], ...]  # per group, in time order

    @property
    def found(self) -> bool:
        return all(self.groups)

    @property
    def completed_at(self) -> float:
        """When the last required group first occurred: the moment the criterion is satisfied."""
        return max(group[0].start_s for group in self.groups)

    @property
    def total(self) -> int:
        """All occurrences of every group."""
        return sum(len(group) for group in self.groups)

    def firsts(self) -> list[Occurrence]:
        return sorted((group[0] for group in self.groups if group), key=lambda o: o.start_s)


def _without_overlaps(occurrences: Iterable[Occurrence]) -> tuple[Occurrence, ...]:
    """Alternatives can hit the same words ("thank you" in "thank you for calling"): keep the longest."""
    kept: list[Occurrence] = []
    for occ in sorted(occurrences, key=lambda o: (o.first, -o.last)):
        if not kept or occ.first > kept[-1].last or occ.speaker != kept[-1].speaker:
            kept.append(occ)
    return tuple(sorted(kept, key=lambda o: o.start_s))


class CallWords:
    """What matching needs of a call whatever the rubric: per-speaker word streams and their key index, built
    once per call and shared by every rubric it is scored against."""

    def __init__(self, tokens: Sequence[Token]):
        by_speaker: dict[str, list[int]] = {}
        for i, token in enumerate(tokens):
            by_speaker.setdefault(token.speaker, []).append(i)
        self.streams = {
            speaker: word_items([(tokens[i].text, tokens[i].lemma, tokens[i].norm) for i in idx], idx)
            for speaker, idx in by_speaker.items()
        }
        self.item_starts = {speaker: [tokens[item.first].start_s for item in stream]
                            for speaker, stream in self.streams.items()}
        self.key_index: dict[str, dict[str, list[int]]] = {}
        for speaker, stream in self.streams.items():
            index = self.key_index[speaker] = {}
            for i, item in enumerate(stream):
                for key in item.keys:
                    index.setdefault(key, []).append(i)
        # Rubric versions mostly share their phrases: a phrase set is looked up once per call, not per rubric.
        self._hits: dict[tuple, list[Hit]] = {}

    def find(self, speaker: str, phrases: PhraseSet) -> list[Hit]:
        """Exact matches of a phrase set in a speaker's stream."""
        key = (speaker, phrases.key)
        if key not in self._hits:
            self._hits[key] = phrases.find(self.streams[speaker], self.key_index[speaker])
        return self._hits[key]

    def find_fuzzy(self, speaker: str, phrases: PhraseSet, lo: float, hi: float) -> list[Hit]:
        """Near matches of a phrase set among the speaker's words starting in [lo, hi): near matches are costly,
        so only that part of the stream is compared."""
        starts = self.item_starts[speaker]
        a, b = bisect.bisect_left(starts, lo), bisect.bisect_left(starts, hi)
        key = (speaker, phrases.key, a, b)
        if key not in self._hits:
            self._hits[key] = phrases.find_fuzzy(self.streams[speaker][a:b], a)
        return self._hits[key]


class CallView:
    """A call prepared for matching against one rubric: its words, and token patterns run once."""

    def __init__(self, call: AnalysedCall, compiled: CompiledRubric, docs: Sequence[Doc] | None = None,
                 display: Sequence[str] | None = None, words: CallWords | None = None):
        self.call = call
        self.tokens: tuple[Token, ...] = call.tokens
        self._display = display
        self._compiled = compiled
        self._docs = docs
        self._pattern_hits: dict[str, list[tuple[int, int]]] | None = None
        self.words = words if words is not None else CallWords(self.tokens)
        self.found_by_criterion: dict[str, Found] = {}

    def _patterns(self, key: str) -> list[tuple[int, int]]:
        if self._pattern_hits is None:
            self._pattern_hits = {}
            matcher = self._compiled.matcher
            assert matcher is not None, "pattern keys exist only when the rubric has patterns"
            offsets: dict[int, int] = {}
            for i, token in enumerate(self.tokens):
                offsets.setdefault(token.utterance_seq, i)
            docs = self._docs if self._docs is not None else docs_from_tokens(self.tokens, self._compiled.vocab)
            strings = self._compiled.vocab.strings
            for doc in docs:
                seq = doc.user_data.get("utterance_seq")
                offset = None if seq is None else offsets.get(seq)
                if offset is None:
                    continue
                for match_id, start, end in matcher(doc):
                    self._pattern_hits.setdefault(strings[match_id], []).append((offset + start, offset + end - 1))
        return self._pattern_hits.get(key, [])

    def occurrence(self, speaker: str, first: int, last: int) -> Occurrence:
        words = [t for t in self.tokens[first:last + 1] if t.speaker == speaker and is_word(t.text)]
        # A phrase that carries its own negation ("not my problem") is not negated by it.
        own_negation = any(t.text.lower() in NEGATORS or t.norm.lower() in NEGATORS for t in words)
        negated = not own_negation and any(t.negated for t in words)
        return Occurrence(speaker, first, last, self.tokens[first].start_s, self.tokens[last].end_s, negated)

    def quote(self, occ: Occurrence) -> str:
        parts: list[str] = []
        previous = None
        for i in range(occ.first, occ.last + 1):
            token = self.tokens[i]
            text = token.text if self._display is None else self._display[i]
            if token.speaker != occ.speaker or not text:
                continue
            if previous is not None and token.utterance_seq != previous and not parts[-1].endswith(" "):
                parts.append(" ")
            parts.append(text + (" " if token.whitespace else ""))
            previous = token.utterance_seq
        return "".join(parts).strip()

    def evidence(self, occurrences: Sequence[Occurrence]) -> Evidence:
        if not occurrences:
            return NO_EVIDENCE
        speakers = sorted({o.speaker for o in occurrences})
        return Evidence(
            speakers[0] if len(speakers) == 1 else "/".join(speakers),
            min(o.start_s for o in occurrences),
            max(o.end_s for o in occurrences),
            " … ".join(self.quote(o) for o in occurrences),
        )

    def _occurrences(self, search: Search, group: Group, lo: float, hi: float, fuzzy: bool) -> tuple[Occurrence, ...]:
        occurrences = []
        for speaker in search.speakers:
            stream = self.words.streams.get(speaker)
            if not stream:
                continue  # most calls have no `unknown` speaker, which every search also reads
            hits = (self.words.find_fuzzy(speaker, group.phrases, lo, hi) if fuzzy
                    else self.words.find(speaker, group.phrases))
            occurrences += [self.occurrence(speaker, stream[h.first_item].first, stream[h.last_item].last) for h in hits]
        if group.pattern_key is not None and not fuzzy:
            occurrences += [self.occurrence(self.tokens[a].speaker, a, b) for a, b in self._patterns(group.pattern_key)
                            if self.tokens[a].speaker in search.speakers]
        return _without_overlaps(
            o for o in occurrences
            if lo <= o.start_s and self.tokens[o.last].start_s < hi and (search.count_negated or not o.negated)
        )

    def _bounds(self, search: Search) -> tuple[float, float]:
        return search.window.bounds(self.call.transcript.duration_s) if search.window else (float("-inf"), float("inf"))

    def has_words(self, search: Search) -> bool:
        lo, hi = self._bounds(search)
        return any(lo <= start < hi for speaker in search.speakers for start in self.words.item_starts.get(speaker, ()))

    def run(self, search: Search) -> Found:
        lo, hi = self._bounds(search)
        groups = []
        for group in search.groups:
            found = self._occurrences(search, group, lo, hi, fuzzy=False)
            if not found and group.phrases.fuzzy is not None:
                found = self._occurrences(search, group, lo, hi, fuzzy=True)
            groups.append(found)
        return Found(tuple(groups))

