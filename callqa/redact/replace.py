"""Replacing PHI spans with placeholders in text, in an utterance's timed words and in spaCy tokens."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import Token, Utterance, Word
from .spans import PhiSpan, placeholder


def replace_spans(text: str, spans: Sequence[PhiSpan], offset: int = 0) -> str:
    """``text`` with each span (sorted, disjoint; ``span.start - offset`` indexes ``text``) replaced by its
    placeholder. Offsets let a quote cut from an utterance be redacted with the utterance's own spans."""
    out, pos = [], 0
    for span in spans:
        start, end = span.start - offset, span.end - offset
        out.append(text[pos:start])
        out.append(placeholder(span.label))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _overlapping_groups(starts: Sequence[int], ends: Sequence[int], spans: Sequence[PhiSpan]):
    """Yield (first item, last item, spans) for runs of items (words/tokens) that PHI spans overlap."""
    group_first = group_last = None
    group_spans: list[PhiSpan] = []
    for span in spans:
        hit = [i for i in range(len(starts)) if starts[i] < span.end and span.start < ends[i]]
        if not hit:
            continue
        if group_first is not None and group_last is not None and hit[0] <= group_last:
            group_last = max(group_last, hit[-1])
            group_spans.append(span)
            continue
        if group_first is not None:
            yield group_first, group_last, group_spans
        group_first, group_last, group_spans = hit[0], hit[-1], [span]
    if group_first is not None:
        yield group_first, group_last, group_spans


def _char_ranges(pieces: Sequence[str], first_offset: int) -> tuple[list[int], list[int]]:
    starts, ends, pos = [], [], first_offset
    for piece in pieces:
        starts.append(pos)
        pos += len(piece)
        ends.append(pos)
    return starts, ends


def redact_utterance(utterance: Utterance, spans: Sequence[PhiSpan], word_spans: Sequence[PhiSpan]) -> Utterance:
    """``word_spans``: spans in ``"".join(words).strip()``, which is ``text`` by the records contract."""
    text = replace_spans(utterance.text, spans)
    if not utterance.words or not word_spans:
        return utterance._replace(text=text)
    joined = "".join(w.word for w in utterance.words)
    starts, ends = _char_ranges([w.word for w in utterance.words], len(joined.lstrip()) - len(joined))
    words = list(utterance.words)
    for first, last, group_spans in reversed(list(_overlapping_groups(starts, ends, word_spans))):
        run = words[first : last + 1]
        merged = replace_spans("".join(w.word for w in run), group_spans, offset=starts[first])
        # The run's confidence is that of its least certain word.
        words[first : last + 1] = [Word(merged, run[0].start, run[-1].end, min(w.probability for w in run))]
    return utterance._replace(text=text, words=tuple(words))


def redact_tokens(tokens: Sequence[Token], spans: Sequence[PhiSpan]) -> list[Token]:
    """One utterance's tokens, each run of tokens under PHI merged into one placeholder token."""
    if not spans:
        return list(tokens)
    # A Doc's text is its tokens' text, each followed by one space where ``whitespace`` says so.
    starts, ends = [], []
    pos = 0
    for t in tokens:
        starts.append(pos)
        ends.append(pos + len(t.text))
        pos += len(t.text) + t.whitespace
    groups = list(_overlapping_groups(starts, ends, spans))
    group_of = {i: g for g, (first, last, _) in enumerate(groups) for i in range(first, last + 1)}
    new_index, count = [], 0
    for i in range(len(tokens)):
        new_index.append(count)
        if i not in group_of or i == groups[group_of[i]][1]:
            count += 1
    position = {t.idx: i for i, t in enumerate(tokens)}

    def renumbered(token: Token) -> Token:
        return token._replace(
            idx=new_index[position[token.idx]], head=new_index[position.get(token.head, position[token.idx])]
        )

    out: list[Token] = []
    for i, token in enumerate(tokens):
        if i not in group_of:
            out.append(renumbered(token))
            continue
        first, last, group_spans = groups[group_of[i]]
        if i != first:
            continue
        run = tokens[first : last + 1]
        # Like spaCy's retokenizer: the merged token keeps the syntax of the run's head (the token whose
        # head lies outside the run).
        root = next((t for t in run if not first <= position.get(t.head, -1) <= last), run[0])
        source = "".join(t.text + " " * t.whitespace for t in run[:-1]) + run[-1].text
        text = replace_spans(source, group_spans, offset=starts[first])
        out.append(
            renumbered(root)._replace(
                idx=new_index[first], text=text, lemma=text, norm=text, whitespace=run[-1].whitespace,
                negated=any(t.negated for t in run), start_s=min(t.start_s for t in run),
                end_s=max(t.end_s for t in run),
            )  # fmt: skip
        )
    return out
