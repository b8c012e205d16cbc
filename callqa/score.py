"""Scoring an analysed call against a rubric, with evidence for every verdict.

Phrase matching runs on each speaker's stream of words built from the stored Token records, not on a
PhraseMatcher: a stream skips punctuation ("thank you, for calling") and reads spoken numbers as digits
("twenty four" = "24", which is one token against two), neither of which a PhraseMatcher can do. A call word
matches a phrase word when their lowercase forms, lemmas or norms meet ("called" and "calling" share the
lemma "call"). Phrases are parsed once, in ``compile_rubric``. Token ``patterns`` run on spaCy's Matcher over
Docs rebuilt from the tokens (only when the rubric has patterns), so rescoring never runs the pipeline.
"""

from __future__ import annotations

import bisect
import difflib
from typing import Iterable, NamedTuple, Sequence

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc

from .analyse import docs_from_tokens
from .metrics import METRICS
from .records import AnalysedCall, CriterionResult, Evaluation, Evidence, Token
from .rubric import Condition, Criterion, Rubric, Section, Window

NO_EVIDENCE = Evidence(None, None, None, None)
NEGATORS = frozenset({"not", "n't", "never", "no", "nt"})
_SPEAKERS = {"agent": ("agent", "unknown"), "customer": ("customer", "unknown"), "any": ("agent", "customer", "unknown")}

# ---------------------------------------------------------------- words and spoken numbers

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_TEENS = {w: i + 10 for i, w in enumerate("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen "
                                          "nineteen".split())}
_TENS = {w: (i + 2) * 10 for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1000}


def _small_number(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(value, next index) of a number below 100 spoken at words[i]: "seven", "fifteen", "twenty four"."""
    word = words[i] if i < len(words) else None
    if word in _UNITS or word in _TEENS:
        return _UNITS.get(word, _TEENS.get(word)), i + 1
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
    while j < len(words) and words[j] in _SCALES:
        if _SCALES[words[j]] == 100:
            current *= 100
        else:
            total, current = total + current * 1000, 0
        j += 1
        if (more := _small_number(words, j)) is not None:
            current, j = current + more[0], more[1]
    return total + current, j - i


def _is_word(text: str) -> bool:
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
    kept = [(w, r) for w, r in zip(words, refs) if _is_word(w[0])]
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
        lengths = {length for phrase in self.phrases for length in _lengths(len(phrase.keys))}
        surfaces = [item.surface for item in stream]
        windows = {n: [" ".join(surfaces[i:i + n]) for i in range(len(surfaces) - n + 1)] for n in lengths}
        hits = {hit for phrase in self.phrases for hit in _fuzzy_hits(phrase, windows, self.fuzzy)}
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
    vocab: object

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
        if criterion.match is not None:
            counted = criterion.expect == "absent" or criterion.negation == "ignore"
            search = _search(criterion, criterion.id, phrases, matcher, counted)
        if criterion.na_unless is not None and criterion.na_unless.match is not None:
            cond = criterion.na_unless
            condition = _search(cond, f"{criterion.id}/na_unless", phrases, matcher, cond.negation == "ignore")
        compiled.append(CompiledCriterion(section, criterion, search, condition))
    return CompiledRubric(rubric, tuple(compiled), matcher if len(matcher) else None, nlp.vocab)


def _matches(criterion: Criterion) -> list:
    out = [criterion.match] if criterion.match else []
    if criterion.na_unless is not None and criterion.na_unless.match is not None:
        out.append(criterion.na_unless.match)
    return out


def _search(spec: Criterion | Condition, key: str, phrases: dict[str, Phrase], matcher: Matcher,
            count_negated: bool) -> Search:
    match = spec.match
    groups = []
    if match.any or match.patterns:
        pattern_key = None
        if match.patterns:
            pattern_key = f"{key}#patterns"
            matcher.add(pattern_key, [list(p) for p in match.patterns])
        groups.append(Group(PhraseSet([phrases[p] for p in match.any], spec.fuzzy), pattern_key))
    groups += [Group(PhraseSet([phrases[p] for p in alternatives], spec.fuzzy), None) for alternatives in match.all]
    return Search(_SPEAKERS[spec.speaker], spec.window, tuple(groups), count_negated)


# ---------------------------------------------------------------- one call


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
    def count(self) -> int:
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


class CallView:
    """A call prepared for matching: per-speaker word streams, token patterns run once per rubric."""

    def __init__(self, call: AnalysedCall, compiled: CompiledRubric, docs: Sequence[Doc] | None = None,
                 display: Sequence[str] | None = None):
        self.call = call
        self.tokens: tuple[Token, ...] = call.tokens
        self._display = display
        self._compiled = compiled
        self._docs = docs
        self._pattern_hits: dict[str, list[tuple[int, int]]] | None = None
        by_speaker: dict[str, list[int]] = {}
        for i, token in enumerate(self.tokens):
            by_speaker.setdefault(token.speaker, []).append(i)
        self.streams = {
            speaker: word_items([(self.tokens[i].text, self.tokens[i].lemma, self.tokens[i].norm) for i in idx], idx)
            for speaker, idx in by_speaker.items()
        }
        self._item_starts = {speaker: [self.tokens[item.first].start_s for item in stream]
                             for speaker, stream in self.streams.items()}
        self._key_index: dict[str, dict[str, list[int]]] = {}
        for speaker, stream in self.streams.items():
            index = self._key_index[speaker] = {}
            for i, item in enumerate(stream):
                for key in item.keys:
                    index.setdefault(key, []).append(i)
        self.found_by_criterion: dict[str, Found] = {}

    def _patterns(self, key: str) -> list[tuple[int, int]]:
        if self._pattern_hits is None:
            self._pattern_hits = {}
            offsets: dict[int, int] = {}
            for i, token in enumerate(self.tokens):
                offsets.setdefault(token.utterance_seq, i)
            docs = self._docs if self._docs is not None else docs_from_tokens(self.tokens, self._compiled.vocab)
            strings = self._compiled.vocab.strings
            for doc in docs:
                offset = offsets.get(doc.user_data.get("utterance_seq"))
                if offset is None:
                    continue
                for match_id, start, end in self._compiled.matcher(doc):
                    self._pattern_hits.setdefault(strings[match_id], []).append((offset + start, offset + end - 1))
        return self._pattern_hits.get(key, [])

    def occurrence(self, speaker: str, first: int, last: int) -> Occurrence:
        words = [t for t in self.tokens[first:last + 1] if t.speaker == speaker and _is_word(t.text)]
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
            stream = self.streams.get(speaker, ())
            if fuzzy:
                # Near matches are costly: only the part of the stream inside the window is compared.
                starts = self._item_starts.get(speaker, [])
                a, b = bisect.bisect_left(starts, lo), bisect.bisect_left(starts, hi)
                hits = group.phrases.find_fuzzy(stream[a:b], a)
            else:
                hits = group.phrases.find(stream, self._key_index.get(speaker, {}))
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
        return any(lo <= start < hi for speaker in search.speakers for start in self._item_starts.get(speaker, ()))

    def run(self, search: Search) -> Found:
        lo, hi = self._bounds(search)
        groups = []
        for group in search.groups:
            found = self._occurrences(search, group, lo, hi, fuzzy=False)
            if not found and group.phrases.fuzzy is not None:
                found = self._occurrences(search, group, lo, hi, fuzzy=True)
            groups.append(found)
        return Found(tuple(groups))


# ---------------------------------------------------------------- verdicts and scores


def _metric_result(cc: CompiledCriterion, view: CallView) -> tuple[str, float | None, Evidence]:
    criterion = cc.criterion
    metric = view.call.metrics.get(criterion.metric)
    if metric is None or metric.value is None:
        return "na", None, NO_EVIDENCE
    value = metric.value
    ok = (criterion.min is None or value >= criterion.min) and (criterion.max is None or value <= criterion.max)
    evidence = Evidence(METRICS[criterion.metric].speaker, metric.start_s, metric.end_s, f"{criterion.metric} = {value:g}")
    return ("pass" if ok else "fail"), value, evidence


def _phrase_result(cc: CompiledCriterion, view: CallView, by_id: dict[str, CompiledCriterion]) -> tuple[str, float | None, Evidence]:
    criterion = cc.criterion
    found = _found(cc, view)
    if criterion.expect == "absent":
        if not view.has_words(cc.search):
            return "na", None, NO_EVIDENCE  # nothing said: no verdict on what was not said
        return ("fail", found.count, view.evidence(found.firsts())) if found.found else ("pass", 0, NO_EVIDENCE)
    if not found.found:
        return "fail", found.count, NO_EVIDENCE
    if criterion.before is not None:
        later = _found(by_id[criterion.before], view)
        if later.found and later.completed_at < found.completed_at:
            # The offending evidence: what came first although it had to wait.
            return "fail", found.count, view.evidence(later.firsts())
    return "pass", found.count, view.evidence(found.firsts())


def _found(cc: CompiledCriterion, view: CallView) -> Found:
    cached = view.found_by_criterion.get(cc.criterion.id)
    if cached is None:
        cached = view.found_by_criterion[cc.criterion.id] = view.run(cc.search)
    return cached


def _applicable(cc: CompiledCriterion, view: CallView, by_id: dict[str, CompiledCriterion]) -> bool:
    criterion = cc.criterion
    na_if = criterion.na_if
    if na_if is not None and na_if.duration_under is not None and view.call.transcript.duration_s < na_if.duration_under:
        return False
    condition = criterion.na_unless
    if condition is None:
        return True
    found = view.run(cc.condition) if condition.found is None else _found(by_id[condition.found], view)
    return found.found


def judge(cc: CompiledCriterion, view: CallView, by_id: dict[str, CompiledCriterion]) -> CriterionResult:
    criterion = cc.criterion
    weight = criterion.weight if criterion.scored else 0.0
    if not _applicable(cc, view, by_id):
        outcome, value, evidence = "na", None, NO_EVIDENCE
    elif criterion.metric is not None:
        outcome, value, evidence = _metric_result(cc, view)
    else:
        outcome, value, evidence = _phrase_result(cc, view, by_id)
    if not criterion.scored:
        outcome = "na"  # a helper: reported with its evidence, never scored
    return CriterionResult(cc.section.id, criterion.id, outcome, weight, None if value is None else float(value), evidence)


class Totals(NamedTuple):
    section_scores: dict[str, float | None]
    score: float | None
    auto_failed: bool
    passed: bool | None


def totals(rubric: Rubric, results: Sequence[CriterionResult]) -> Totals:
    """Section score = passed weight / applicable weight x 100; overall = section-weighted mean over sections
    with applicable criteria; a failed auto_fail criterion makes it 0; no score when only `absent` criteria apply."""
    auto = {c.id for _, c in rubric.criteria() if c.auto_fail}
    section_scores: dict[str, float | None] = {}
    for section in rubric.sections:
        scored = [r for r in results if r.section_id == section.id and r.outcome != "na"]
        applicable = sum(r.weight for r in scored)
        passed = sum(r.weight for r in scored if r.outcome == "pass")
        section_scores[section.id] = 100.0 * passed / applicable if applicable > 0 else None
    counted = [(s.weight, section_scores[s.id]) for s in rubric.sections if section_scores[s.id] is not None]
    score = sum(w * s for w, s in counted) / sum(w for w, _ in counted) if counted else None
    # Having said nothing rude is no performance to score: a call where only `absent` criteria apply (a
    # dropped call) gets no score, or it would inflate the agent's average with a 100.
    absent_only = {c.id for _, c in rubric.criteria() if c.expect == "absent" and c.metric is None}
    if all(r.criterion_id in absent_only for r in results if r.outcome != "na"):
        score = None
        section_scores = dict.fromkeys(section_scores)
    auto_failed = any(r.outcome == "fail" and r.criterion_id in auto for r in results)
    if auto_failed:
        score = 0.0
    if score is not None:
        score = round(score, 6)  # float noise must not decide a pass at the mark
    return Totals(section_scores, score, auto_failed, None if score is None else score >= rubric.pass_mark)


def evaluate(call: AnalysedCall, compiled: CompiledRubric, docs: Sequence[Doc] | None = None,
             display: Sequence[str] | None = None) -> Evaluation:
    """Score one call. ``docs`` (the pipeline's own, one per utterance) saves rebuilding them for token patterns;
    ``display`` (parallel to ``call.tokens``) is the text quoted in evidence instead of each token's own, e.g. PHI
    placeholders, with "" for tokens to leave out. Matching always uses the real words."""
    view = CallView(call, compiled, docs, display)
    by_id = {cc.criterion.id: cc for cc in compiled.criteria}
    results = tuple(judge(cc, view, by_id) for cc in compiled.criteria)
    t = totals(compiled.rubric, results)
    rubric = compiled.rubric
    return Evaluation(call.transcript.call_id, rubric.id, rubric.version, rubric.sha256, t.score, t.passed,
                      t.auto_failed, t.section_scores, results)
