"""Phrase matching on a speaker's stream of words, and rubrics compiled for it.

Phrase matching runs on each speaker's stream of words built from the stored Token records, not on a
PhraseMatcher: a stream skips punctuation ("thank you, for calling") and reads spoken numbers as digits
("twenty four" = "24", which is one token against two), neither of which a PhraseMatcher can do. A call word
matches a phrase word when their lowercase forms, lemmas or norms meet ("called" and "calling" share the
lemma "call"). Phrases are parsed once, in ``compile_rubric``. Token ``patterns`` run on spaCy's Matcher over
Docs rebuilt from the tokens (only when the rubric has patterns), so rescoring never runs the pipeline.
"""

from __future__ import annotations

import difflib
from typing import NamedTuple, Sequence

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .numbers import spoken_number
from .rubric import Condition, Criterion, PhraseCriterion, Rubric, Section, Window

_SPEAKERS = {"agent": ("agent", "unknown"), "customer": ("customer", "unknown"), "any": ("agent", "customer", "unknown")}

# ---------------------------------------------------------------- words

def is_word(text: str) -> bool:
    return text.isalnum() or any(ch.isalnum() for ch in text)


class Item(NamedTuple):
    """One word of a speaker's stream; a spoken number may span several tokens."""

    keys: frozenset[str]  # lowercase form, lemma, norm; digits for numbers
    surface: str  # what fuzzy matching compares
    first: int  # token index (into the call's tokens, or the phrase's)
    last: int


def _clean(lower: str) -> str:
    """Punctuation inside a word goes too: "p.m." = "pm", "1,000" = "1000", "e-mail" = "email"."""
    return lower if lower.isalnum() else "".join(ch for ch in lower if ch.isalnum() or ch == "'")


def _letter_run(lowers: Sequence[str], k: int) -> int:
    """Length of a run of single letters at k ("p m", "a t m"): said letter by letter, meant as one word."""
    j = k
    while j < len(lowers) and len(lowers[j]) == 1 and lowers[j].isalpha():
        j += 1
    return j - k if j - k >= 2 else 0


def word_items(words: Sequence[tuple[str, str, str]], refs: Sequence[int]) -> list[Item]:
    """Stream items of (text, lemma, norm) words; refs[i] is the token index of words[i]."""
    kept = [(w, r) for w, r in zip(words, refs) if is_word(w[0])]
    lowers = [_clean(w[0].lower()) for w, _ in kept]
    items, k = [], 0
    while k < len(kept):
        number = spoken_number(lowers, k)
        run = number[1] if number is not None and number[1] > 1 else _letter_run(lowers, k)
        if run:
            joined = str(number[0]) if number is not None and number[1] > 1 else "".join(lowers[k:k + run])
            items.append(Item(frozenset({joined}), joined, kept[k][1], kept[k + run - 1][1]))
            k += run
            continue
        (text, lemma, norm), ref = kept[k]
        surface = str(number[0]) if number is not None else lowers[k]
        keys = frozenset({text.lower(), lemma.lower(), norm.lower(), surface})
        items.append(Item(keys, surface, ref, ref))
        k += 1
    return items



# ---------------------------------------------------------------- compiled phrases


class Phrase(NamedTuple):
    text: str  # as written in the rubric
    keys: tuple[frozenset[str], ...]
    surface: str


class Hit(NamedTuple):
    first_item: int
    last_item: int


def _lengths(n: int) -> tuple[int, ...]:
    """Window lengths compared with an n-word phrase: ASR splits and merges words ("harper" -> "her provided")."""
    return tuple(sorted({max(n - 1, 1), n, n + 1}))


def _fuzzy_hits(phrase: Phrase, windows: dict[int, list[str]], threshold: float) -> list[Hit]:
    """Windows whose text is at least ``threshold`` similar to the phrase; ``windows[L][i]`` is the text of
    the L items starting at i."""
    target = len(phrase.surface)
    matcher = difflib.SequenceMatcher(None, "", phrase.surface, autojunk=False)
    lengths = _lengths(len(phrase.keys))
    positions = max(len(windows[length]) for length in lengths)

    def best_at(i: int) -> tuple[float, int] | None:
        best = None
        for length in lengths:
            if i >= len(windows[length]):
                continue
            text = windows[length][i]
            if 2 * min(len(text), target) / (len(text) + target) < threshold:
                continue  # the length alone rules it out (difflib's real_quick_ratio, without the call)
            matcher.set_seq1(text)
            if matcher.quick_ratio() >= threshold:
                ratio = matcher.ratio()
                if ratio >= threshold and (best is None or ratio > best[0]):
                    best = (ratio, length)
        return best

    hits, i = [], 0
    while i < positions:
        best = best_at(i)
        if best is None:
            i += 1
            continue
        # A window one word later may fit better ("is her provided" vs "her provided"): take the better one.
        shifted = best_at(i + 1)
        if shifted is not None and shifted[0] > best[0]:
            i, best = i + 1, shifted
        hits.append(Hit(i, i + best[1] - 1))
        i += best[1]
    return hits


def _rarest_word(phrase: Phrase, index: dict[str, list[int]]) -> int | None:
    """Position of the phrase's rarest word in this call ("anything" rather than "is" in "is there anything"),
    or None as soon as one of its words never occurs: most phrases of a rubric are absent from most calls."""
    anchor, fewest = None, 0
    for j, keys in enumerate(phrase.keys):
        count = 0
        for key in keys:
            positions = index.get(key)
            if positions:
                count += len(positions)
        if count == 0:
            return None
        if anchor is None or count < fewest:
            anchor, fewest = j, count
    return anchor


class PhraseSet:
    """Alternative phrases of one group."""

    def __init__(self, phrases: Sequence[Phrase], fuzzy: float | None):
        self.phrases = tuple(phrases)
        self.fuzzy = fuzzy if fuzzy is not None and fuzzy < 1.0 else None
        self.key = (tuple(p.text for p in self.phrases), self.fuzzy)  # equal sets find the same hits

    def find(self, stream: Sequence[Item], index: dict[str, list[int]]) -> list[Hit]:
        """Exact (lemma- and number-aware) matches; ``index`` maps each key to its positions in ``stream``."""
        hits: set[Hit] = set()
        for phrase in self.phrases:
            n = len(phrase.keys)
            anchor = _rarest_word(phrase, index)
            if anchor is None:
                continue
            starts = {i - anchor for key in phrase.keys[anchor] for i in index.get(key, ())}
            for i in starts:
                if 0 <= i and i + n <= len(stream) and all(
                    not stream[i + j].keys.isdisjoint(phrase.keys[j]) for j in range(n) if j != anchor
                ):
                    hits.add(Hit(i, i + n - 1))
        return sorted(hits)

    def find_fuzzy(self, stream: Sequence[Item], offset: int = 0) -> list[Hit]:
        """Near matches in ``stream``, a slice of a speaker's stream starting at ``offset``."""
        if self.fuzzy is None:
            return []
        lengths = {length for phrase in self.phrases for length in _lengths(len(phrase.keys))}
        surfaces = [item.surface for item in stream]
        windows = {n: [" ".join(surfaces[i:i + n]) for i in range(len(surfaces) - n + 1)] for n in lengths}
        threshold = self.fuzzy
        hits = {hit for phrase in self.phrases for hit in _fuzzy_hits(phrase, windows, threshold)}
        return sorted(Hit(h.first_item + offset, h.last_item + offset) for h in hits)


class Group(NamedTuple):
    """One requirement of a match: any of these phrases (or token patterns) must occur."""

    phrases: PhraseSet
    pattern_key: str | None  # Matcher key of the group's token patterns


class Search(NamedTuple):
    """Where and how a criterion (or an ``na_unless`` condition) looks for its phrases."""

    speakers: tuple[str, ...]
    window: Window | None
    groups: tuple[Group, ...]
    count_negated: bool  # absent criteria and negation: ignore count matches inside a negated clause


class CompiledCriterion(NamedTuple):
    section: Section
    criterion: Criterion
    search: Search | None  # None for metric criteria
    condition: Search | None  # inline na_unless


class CompiledRubric(NamedTuple):
    rubric: Rubric
    criteria: tuple[CompiledCriterion, ...]
    matcher: Matcher | None  # token patterns of the whole rubric, None when it has none
    vocab: Vocab

    @property
    def sha256(self) -> str:
        return self.rubric.sha256


def _phrase_from_doc(text: str, doc: Doc) -> Phrase:
    items = word_items([(t.text, t.lemma_, t.norm_) for t in doc], range(len(doc)))
    return Phrase(text, tuple(item.keys for item in items), " ".join(item.surface for item in items))


def compile_rubric(rubric: Rubric, nlp: Language) -> CompiledRubric:
    """Parse every phrase once and build one Matcher for all token patterns of the rubric."""
    texts = sorted({p for _, c in rubric.criteria() for m in _matches(c) for p in m.phrases()})
    # Phrases need lemmas only; lowercased because a phrase is not a sentence and capitals make the tagger
    # guess proper nouns.
    disable = [name for name in nlp.pipe_names if name not in ("tok2vec", "tagger", "attribute_ruler", "lemmatizer")]
    docs = nlp.pipe((t.lower() for t in texts), disable=disable)
    phrases = {text: _phrase_from_doc(text, doc) for text, doc in zip(texts, docs)}
    matcher = Matcher(nlp.vocab, validate=True)
    compiled = []
    for section, criterion in rubric.criteria():
        search = condition = None
        if isinstance(criterion, PhraseCriterion):
            counted = criterion.expect == "absent" or criterion.negation == "ignore"
            search = _search(criterion, criterion.id, phrases, matcher, counted)
        if criterion.na_unless is not None and criterion.na_unless.match is not None:
            cond = criterion.na_unless
            condition = _search(cond, f"{criterion.id}/na_unless", phrases, matcher, cond.negation == "ignore")
        compiled.append(CompiledCriterion(section, criterion, search, condition))
    return CompiledRubric(rubric, tuple(compiled), matcher if len(matcher) else None, nlp.vocab)


def _matches(criterion: Criterion) -> list:
    out = [criterion.match] if isinstance(criterion, PhraseCriterion) else []
    if criterion.na_unless is not None and criterion.na_unless.match is not None:
        out.append(criterion.na_unless.match)
    return out


def _search(spec: PhraseCriterion | Condition, key: str, phrases: dict[str, Phrase], matcher: Matcher,
            count_negated: bool) -> Search:
    match = spec.match
    assert match is not None, "only criteria and conditions with a match are searched"
    groups = []
    if match.any or match.patterns:
        pattern_key = None
        if match.patterns:
            pattern_key = f"{key}#patterns"
            matcher.add(pattern_key, [list(p) for p in match.patterns])
        groups.append(Group(PhraseSet([phrases[p] for p in match.any], spec.fuzzy), pattern_key))
    groups += [Group(PhraseSet([phrases[p] for p in alternatives], spec.fuzzy), None) for alternatives in match.all]
    return Search(_SPEAKERS[spec.speaker], spec.window, tuple(groups), count_negated)

