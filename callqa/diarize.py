"""Speaker estimation for mono calls: who spoke when, before the role stage says who is the agent.

speech regions (callqa.vad) -> embeddings of WINDOW_S windows every STEP_S
(callqa.embeddings) -> k-means (scikit-learn) on the unit vectors for one, two or three speakers -> centroids
again from the clearly assigned windows (``refine``) -> each 10 ms speech frame takes the speaker its covering
windows are closest to -> turns shorter than MIN_TURN_S join a neighbour -> the silence at a quick change of
speaker opened between its turns (``open_pauses``) -> Turns. Words then take the speaker
of the turn that holds their middle (``attribute``), so one Whisper segment may hold both speakers.

How many speakers: a two-way split of the windows that is not clearly apart (cosine silhouette under
TWO_VOICES_SILHOUETTE, or a side of fewer than MIN_WINDOWS windows) is one speaker (a voicemail, a monologue);
a third speaker is found when one side of the two-way split passes the same test for two voices (and its
halves' centroids are distinct: cosine under the embedder's ``same_speaker``), each half holding a real share
of the windows and at least MIN_WINDOWS of them, as any speaker must (a transfer, a third party); the call is
then flagged.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from .embeddings import SAMPLE_RATE, WINDOW_S
from .records import Diarization, Turn, Utterance
from .transcribe import make_utterance
from .vad import speech_regions

log = logging.getLogger(__name__)

STEP_S = 0.6  # windows overlap by half: each frame is judged by two
FRAME_S = 0.01
MIN_TURN_S = 0.3  # a shorter run of one speaker inside another's speech is noise of the frame labels
MIN_SPEECH_S = 5.0  # less speech than this cannot show two voices: two halves of 3 s of one voice differ as much
MIN_WINDOWS = 4  # as two voices alike (the sample calls' one voice at two pitches); a cluster needs this many
THIRD_SPEAKER_SHARE = 0.12
TOO_SHORT_CONFIDENCE = 0.3
REVIEW_BELOW = 0.7  # estimated speakers less sure than this are used, and the call is flagged for review
# Centroids are re-estimated without the least clear share of windows (REFINE_LEAVE_OUT), twice. In
# benchmarks/diarization.py any share from 0.2 to 0.5 gives the same real-voice attribution (90.0-90.1 %, 89.5 %
# without); 0 is plain k-means again.
REFINE_LEAVE_OUT = 0.3
REFINE_ROUNDS = 2
# The VAD bridges pauses under 0.3 s, and most gaps between two speakers' turns are shorter, so a quick change of
# speaker reads as one stretch of speech, like a barge-in (callqa.metrics counts those). Frame energy still shows the
# silence: at an estimated change of speaker inside continuous speech, a run of frames PAUSE_BELOW_DB under the
# call's loud speech (its 90th percentile), at least MIN_PAUSE_S long (longer than a stop consonant's closure),
# within PAUSE_SEARCH_S of the change becomes a gap between the turns. benchmarks/diarization.py, 10 real-voice
# mixes: 24 interruptions in the clean channels, 37 counted on mono before, 22 with this (also 22 at 30 dB and
# 0.1 s, which finds "pauses" inside the sample call rc-1007's overlaps: 3 counted there of 7, against 5).
PAUSE_BELOW_DB = 35.0
MIN_PAUSE_S = 0.12
PAUSE_SEARCH_S = 0.4
CLEAR_MARGIN = 0.1  # a frame is clearly attributed when its speaker is this much closer than the next one
# Cosine similarity of two centroids at which they are one voice. Only Resemblyzer's vectors have an absolute
# scale (GE2E is trained so that one voice's windows are alike); the benchmark's other candidates are centred per
# call, so the speaker count is not estimated with them: they are run as two speakers.
SAME_SPEAKER: dict[str, float | None] = {"resemblyzer": 0.86, "mfcc": None, "whisper": None}
# Silhouette of a two-way split of one voice's windows stays under this (benchmarks/diarization.py: 0.11-0.18 on
# one-voice recordings, 0.23-0.49 on two-voice calls of real voices and of the sample calls' TTS voice at two
# pitches). The margin is thin: a voicemail can read as two voices, two alike voices as one.
TWO_VOICES_SILHOUETTE = 0.2

FLAG_TOO_SHORT = "too_little_speech"
FLAG_ONE_SPEAKER = "one_speaker"
FLAG_MORE_SPEAKERS = "more_than_two_speakers"


def window_starts(regions: list[tuple[float, float]]) -> np.ndarray:
    """Window starts covering each speech region; a region shorter than a window gets one window centred on it."""
    starts: list[float] = []
    for start, end in regions:
        if end - start <= WINDOW_S:
            starts.append(max(0.0, (start + end - WINDOW_S) / 2))
            continue
        n = int(np.ceil((end - start - WINDOW_S) / STEP_S)) + 1
        starts.extend(np.linspace(start, end - WINDOW_S, n))
    return np.asarray(starts, dtype=float)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)


def _kmeans(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=5, random_state=0).fit(x)
    return km.labels_, _unit(km.cluster_centers_)


def count_speakers(x: np.ndarray, same_speaker: float | None, speech_s: float
                   ) -> tuple[np.ndarray, tuple[str, ...], float]:
    """Unit centroids of the speakers found in the unit window embeddings ``x``, the flags that decision raises,
    and the cosine silhouette of a two-way split (0.0 when there is too little speech to split)."""
    one = _unit(x.mean(axis=0, keepdims=True))
    if len(x) < 2 * MIN_WINDOWS or speech_s < MIN_SPEECH_S:
        return one, (FLAG_TOO_SHORT, FLAG_ONE_SPEAKER), 0.0
    from sklearn.metrics import silhouette_score

    labels, two = _kmeans(x, 2)
    silhouette = float(silhouette_score(x, labels, metric="cosine"))
    if same_speaker is None:
        return two, (), silhouette
    if silhouette < TWO_VOICES_SILHOUETTE or np.bincount(labels, minlength=2).min() < MIN_WINDOWS:
        return one, (FLAG_ONE_SPEAKER,), silhouette
    # A third voice: one side of the split is itself two voices by the same test (a transfer, a third party).
    for side in (0, 1):
        part = x[labels == side]
        if len(part) < 2 * MIN_WINDOWS:
            continue
        sub_labels, sub = _kmeans(part, 2)
        if (np.bincount(sub_labels, minlength=2).min() >= max(THIRD_SPEAKER_SHARE * len(x), MIN_WINDOWS)
                and silhouette_score(part, sub_labels, metric="cosine") >= TWO_VOICES_SILHOUETTE
                and float(sub[0] @ sub[1]) < same_speaker):
            return np.vstack([two[1 - side], sub]), (FLAG_MORE_SPEAKERS,), silhouette
    return two, (), silhouette


def refine(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Centroids again from the windows clearly nearer one speaker than another: a window that straddles a change
    of speaker, or overlapping speech, holds both voices and pulls each centroid towards the other."""
    if len(centroids) < 2:
        return centroids
    for _ in range(REFINE_ROUNDS):
        sims = x @ centroids.T
        top = np.sort(sims, axis=1)
        margin = top[:, -1] - top[:, -2]
        labels = sims.argmax(axis=1)
        clear = margin >= np.quantile(margin, REFINE_LEAVE_OUT)
        kept = [clear & (labels == k) for k in range(len(centroids))]
        centroids = _unit(np.stack([x[m].mean(axis=0) if m.any() else c for m, c in zip(kept, centroids)]))
    return centroids


def _frame_scores(starts: np.ndarray, sims: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per 10 ms frame: the summed similarity to each speaker of the windows covering it, and how many do."""
    scores = np.zeros((n_frames, sims.shape[1]))
    cover = np.zeros(n_frames)
    width = int(round(WINDOW_S / FRAME_S))
    for start, sim in zip(starts, sims):
        a = int(round(start / FRAME_S))
        scores[a : a + width] += sim
        cover[a : a + width] += 1
    return scores, cover


def _runs(labels: np.ndarray, speech: np.ndarray) -> list[list[int]]:
    """[first frame, last frame + 1, label] of each run of one label inside speech."""
    runs: list[list[int]] = []
    for i in np.flatnonzero(speech):
        if runs and runs[-1][1] == i and runs[-1][2] == labels[i]:
            runs[-1][1] = int(i) + 1
        else:
            runs.append([int(i), int(i) + 1, int(labels[i])])
    return runs


def _smooth(runs: list[list[int]]) -> list[list[int]]:
    """Give each run shorter than MIN_TURN_S to the adjoining speech of a neighbour, shortest first."""
    min_frames = int(round(MIN_TURN_S / FRAME_S))
    runs = [r[:] for r in runs]
    while True:
        short = [i for i, r in enumerate(runs) if r[1] - r[0] < min_frames and len(runs) > 1]
        neighbours = [(i, j) for i in short for j in (i - 1, i + 1)
                      if 0 <= j < len(runs) and runs[j][2] != runs[i][2] and
                      (runs[j][1] == runs[i][0] or runs[j][0] == runs[i][1])]
        if not neighbours:
            break
        i, j = min(neighbours, key=lambda p: (runs[p[0]][1] - runs[p[0]][0], -(runs[p[1]][1] - runs[p[1]][0])))
        runs[i][2] = runs[j][2]
        merged: list[list[int]] = []
        for r in runs:
            if merged and merged[-1][1] == r[0] and merged[-1][2] == r[2]:
                merged[-1][1] = r[1]
            else:
                merged.append(r)
        runs = merged
    return runs


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """(first, last + 1) of the longest run of True in ``mask``; (0, 0) without one."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2]
    if not len(starts):
        return 0, 0
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])


def open_pauses(turns: tuple[Turn, ...], audio: np.ndarray) -> tuple[Turn, ...]:
    """The turns with the silence at each quick change of speaker made a gap between them (see PAUSE_BELOW_DB)."""
    hop = int(FRAME_S * SAMPLE_RATE)
    n = len(audio) // hop
    rms = np.sqrt(np.mean(np.square(audio[: n * hop].reshape(n, hop), dtype=np.float64), axis=1)) + 1e-9
    speech = np.zeros(n, bool)
    for t in turns:
        speech[int(t.start / FRAME_S) : int(t.end / FRAME_S)] = True
    if not speech.any():
        return turns
    quiet = 20 * np.log10(rms / np.percentile(rms[speech], 90)) < -PAUSE_BELOW_DB
    out = list(turns)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        if a.speaker == b.speaker or b.start > a.end:
            continue
        lo = max(int((a.end - PAUSE_SEARCH_S) / FRAME_S), int(a.start / FRAME_S) + 1)
        hi = min(int((a.end + PAUSE_SEARCH_S) / FRAME_S), int(b.end / FRAME_S) - 1, n)
        first, last = _longest_run(quiet[lo:hi]) if hi > lo else (0, 0)
        if (last - first) * FRAME_S >= MIN_PAUSE_S - 1e-9:
            out[i] = a._replace(end=round((lo + first) * FRAME_S, 2))
            out[i + 1] = b._replace(start=round((lo + last) * FRAME_S, 2))
    return tuple(out)


def _confidence(scores: np.ndarray, speech: np.ndarray, n_speakers: int, silhouette: float) -> float:
    """Two or more speakers: the share of speech frames whose speaker leads the next one by CLEAR_MARGIN.
    One speaker: 0.5 at the two-voice silhouette, rising to 1 as a two-way split stops being apart at all."""
    if n_speakers <= 1:
        return 0.5 + 0.5 * float(np.clip(1 - silhouette / TWO_VOICES_SILHOUETTE, 0, 1))
    top = np.sort(scores[speech], axis=1)
    return float(np.mean(top[:, -1] - top[:, -2] >= CLEAR_MARGIN)) if len(top) else 0.0


def diarize(audio: np.ndarray, embedder) -> Diarization:
    """Speaker turns of one mono call (16 kHz float32)."""
    regions = speech_regions(audio)
    if not regions:
        return Diarization((), 0, 0.0, (FLAG_TOO_SHORT,), embedder.name, 0.0)
    starts = window_starts(regions)
    same = SAME_SPEAKER[embedder.name]
    x = _unit(embedder.embed(audio, starts))
    centroids, flags, silhouette = count_speakers(x, same, sum(end - start for start, end in regions))
    centroids = refine(x, centroids)
    sims = x @ centroids.T
    n_frames = int(np.ceil(len(audio) / SAMPLE_RATE / FRAME_S)) + 1
    scores, cover = _frame_scores(starts, sims, n_frames)
    speech = np.zeros(n_frames, bool)
    for start, end in regions:
        speech[int(start / FRAME_S) : int(np.ceil(end / FRAME_S))] = True
    speech &= cover > 0
    scores /= np.maximum(cover, 1)[:, None]
    runs = _smooth(_runs(scores.argmax(axis=1), speech))
    order: dict[int, int] = {}  # speakers numbered by who speaks first
    for r in runs:
        order.setdefault(r[2], len(order))
    turns = open_pauses(tuple(Turn(round(a * FRAME_S, 2), round(b * FRAME_S, 2), order[lab]) for a, b, lab in runs),
                        audio)
    n = len(order)
    confidence = _confidence(scores, speech, n, silhouette)
    if FLAG_TOO_SHORT in flags:
        confidence = min(confidence, TOO_SHORT_CONFIDENCE)
    return Diarization(turns, n, round(confidence, 3), flags, embedder.name, round(silhouette, 3))


def speaker_at(turns: tuple[Turn, ...], t: float) -> int:
    """The speaker of the turn holding time t, else of the nearest turn (a word at the edge of speech)."""
    if not turns:
        return 0
    best = min(turns, key=lambda tr: 0.0 if tr.start <= t <= tr.end else min(abs(t - tr.start), abs(t - tr.end)))
    return best.speaker


def attribute(utterances: tuple[Utterance, ...], turns: tuple[Turn, ...]) -> dict[str, list[Utterance]]:
    """The utterances of a mono channel split where the speaker changes, grouped as speaker_1, speaker_2, ...

    Each word takes the speaker of the turn holding its middle; an utterance without word timings takes the
    speaker of its middle.
    """
    groups: dict[str, list[Utterance]] = {}
    for u in utterances:
        if not u.words:
            groups.setdefault(f"speaker_{speaker_at(turns, (u.start + u.end) / 2) + 1}", []).append(u)
            continue
        runs: list[tuple[int, list]] = []
        for w in u.words:
            spk = speaker_at(turns, (w.start + w.end) / 2)
            if runs and runs[-1][0] == spk:
                runs[-1][1].append(w)
            else:
                runs.append((spk, [w]))
        for spk, words in runs:
            if "".join(w.word for w in words).strip():
                groups.setdefault(f"speaker_{spk + 1}", []).append(make_utterance(words, "unknown"))
    return groups


@functools.lru_cache(maxsize=1)
def _embedder():
    """Resemblyzer, loaded once per process; None (said once) without the mono extra."""
    from .embeddings import ResemblyzerEmbedder
    from .errors import ModelError

    try:
        return ResemblyzerEmbedder()
    except ModelError as exc:
        log.warning("mono calls keep speaker 'unknown': %s", exc)
        return None


def estimate_speakers(audio: np.ndarray) -> Diarization | None:
    """Who spoke when on one mono channel; None when speaker estimation is not installed."""
    embedder = _embedder()
    return diarize(audio, embedder) if embedder is not None else None


def review_reasons(diarization: Diarization) -> tuple[str, ...]:
    """Why a person should check a mono call's estimated speakers."""
    reasons = []
    if FLAG_TOO_SHORT in diarization.flags:
        reasons.append("too little speech to tell voices apart: all of it given to one speaker")
    elif FLAG_ONE_SPEAKER in diarization.flags:
        reasons.append("one voice found on the mono recording (a voicemail or a monologue?)")
    if FLAG_MORE_SPEAKERS in diarization.flags:
        reasons.append(f"{diarization.speakers} voices found on the mono recording (a transfer or a third party?): "
                       "all but the agent counted as the customer")
    if diarization.speakers > 1 and diarization.confidence < REVIEW_BELOW:
        reasons.append(f"speakers of the mono recording uncertain (confidence {diarization.confidence:.2f})")
    return tuple(reasons)
