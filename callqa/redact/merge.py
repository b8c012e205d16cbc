"""From raw recognizer findings to the spans that get redacted: edges trimmed, the allow-list applied,
overlaps merged."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .spans import LABEL_PRIORITY, PhiSpan


def _merge(spans: Iterable[PhiSpan]) -> list[PhiSpan]:
    """Union of overlapping spans; the label of the longest member wins, then the more specific label."""
    merged: list[PhiSpan] = []
    groups: list[list[PhiSpan]] = []
    for span in sorted(spans):
        if groups and span.start < max(s.end for s in groups[-1]):
            groups[-1].append(span)
        else:
            groups.append([span])
    for group in groups:
        best = max(group, key=lambda s: (s.end - s.start, LABEL_PRIORITY[s.label]))
        sources = "+".join(sorted({s.source for s in group}))
        merged.append(PhiSpan(group[0].start, max(s.end for s in group), best.label, sources))
    return merged


def _allowed_ranges(text: str, allow: re.Pattern | None) -> list[tuple[int, int]]:
    return [] if allow is None else [m.span() for m in allow.finditer(text)]


def _strip_edges(text: str, span: PhiSpan) -> PhiSpan | None:
    """Trim spaces and punctuation a recognizer took in at the edges (NER likes a trailing comma)."""
    start, end = span.start, span.end
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not (text[end - 1].isalnum() or text[end - 1] in ".)"):
        end -= 1
    return span._replace(start=start, end=end) if start < end else None


def allow_list_pattern(allow_list: Sequence[str]) -> re.Pattern | None:
    """One pattern for the allowed phrases, longest first so a longer phrase wins over its prefix."""
    phrases = sorted({p.strip() for p in allow_list if p.strip()}, key=len, reverse=True)
    return (
        re.compile("|".join(rf"(?<!\w){re.escape(p)}(?!\w)" for p in phrases), re.IGNORECASE)
        if phrases
        else None
    )


def kept_spans(text: str, found: Iterable[PhiSpan], allow: re.Pattern | None) -> list[PhiSpan]:
    """Merged spans, less edge punctuation and what the allow-list keeps."""
    allowed = _allowed_ranges(text, allow)
    kept = []
    for candidate in found:
        span = _strip_edges(text, candidate)
        if span is not None and not any(a <= span.start and span.end <= b for a, b in allowed):
            kept.append(span)
    return _merge(kept)
