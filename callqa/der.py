"""Diarization error rate and word attribution, to measure speaker estimation against channel truth.

DER = (missed speech + false alarm + speaker confusion) / reference speech, on 10 ms frames, with the usual
forgiveness collar around every reference boundary, after the best one-to-one mapping of estimated speakers onto
reference speakers (Hungarian assignment on overlap time). Overlapping reference speech counts once per speaker.
"""

from __future__ import annotations

from typing import Hashable, NamedTuple, Sequence

import numpy as np

FRAME_S = 0.01

Segment = tuple[float, float, Hashable]  # start, end, speaker


class DerResult(NamedTuple):
    der: float
    missed: float  # seconds
    false_alarm: float
    confusion: float
    reference_s: float
    mapping: dict  # estimated speaker -> reference speaker


def _frames(t: float) -> int:
    return int(round(t / FRAME_S))


def _matrix(segments: Sequence[Segment], n: int) -> tuple[np.ndarray, list]:
    names = sorted({s[2] for s in segments}, key=str)
    m = np.zeros((n, len(names)), bool)
    for start, end, spk in segments:
        m[_frames(start) : _frames(end), names.index(spk)] = True
    return m, names


def best_mapping(reference: Sequence[Segment], estimated: Sequence[Segment]) -> dict:
    """Estimated speaker -> reference speaker maximising their common time."""
    from scipy.optimize import linear_sum_assignment

    n = _frames(max([s[1] for s in list(reference) + list(estimated)], default=0.0)) + 1
    ref, ref_names = _matrix(reference, n)
    hyp, hyp_names = _matrix(estimated, n)
    overlap = hyp.T.astype(float) @ ref.astype(float)
    rows, cols = linear_sum_assignment(-overlap) if overlap.size else ((), ())
    return {hyp_names[r]: ref_names[c] for r, c in zip(rows, cols)}


def diarization_error_rate(reference: Sequence[Segment], estimated: Sequence[Segment],
                           collar: float = 0.25) -> DerResult:
    n = _frames(max([s[1] for s in list(reference) + list(estimated)], default=0.0)) + 1
    mapping = best_mapping(reference, estimated)
    ref, ref_names = _matrix(reference, n)
    hyp = np.zeros_like(ref)
    for start, end, spk in estimated:
        if spk in mapping:
            hyp[_frames(start) : _frames(end), ref_names.index(mapping[spk])] = True
    unmapped = np.zeros(n, int)  # estimated speech of a speaker with no reference partner
    for start, end, spk in estimated:
        if spk not in mapping:
            unmapped[_frames(start) : _frames(end)] = 1
    scored = np.ones(n, bool)
    c = _frames(collar)
    for start, end, _ in reference:
        for edge in (_frames(start), _frames(end)):
            scored[max(0, edge - c) : edge + c] = False
    n_ref = ref.sum(axis=1)
    n_hyp = hyp.sum(axis=1) + unmapped
    correct = (ref & hyp).sum(axis=1)
    missed = np.maximum(n_ref - n_hyp, 0)
    false_alarm = np.maximum(n_hyp - n_ref, 0)
    confusion = np.minimum(n_ref, n_hyp) - correct
    total = float(n_ref[scored].sum())
    missed_s, false_alarm_s, confusion_s = (float(e[scored].sum()) * FRAME_S for e in (missed, false_alarm, confusion))
    der = (missed_s + false_alarm_s + confusion_s) / (total * FRAME_S) if total else 0.0
    return DerResult(der, missed_s, false_alarm_s, confusion_s, total * FRAME_S, mapping)


def word_attribution(words: Sequence[tuple[float, Hashable]], estimated_speaker: Sequence[Hashable],
                     mapping: dict) -> float:
    """Share of words (mid time, true speaker) whose estimated speaker maps onto the true one."""
    if not words:
        return 1.0
    right = sum(mapping.get(est) == truth for (_, truth), est in zip(words, estimated_speaker))
    return right / len(words)
