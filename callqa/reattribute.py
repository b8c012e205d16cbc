"""Re-attribution: name a stored call's speakers again from its stored words, without audio or ASR.

A stored stereo call keeps which channel each utterance came from (its speaker and ``calls.agent_channel``), so
its role decision can be made again whenever it may have changed: a forced channel that differs from the stored
one (a later manifest or sidecar ``agent_channel``, or ``--agent-channel``), or a detection by an older role stage
(``calls.role_version``; calls stored before the role stage count as decided by the old default, agent on the
left). When the agent moves to the other channel, every row that names a speaker is rewritten in one transaction
(utterances, tokens, the call metrics recomputed, the calls row) and the call's evaluations are dropped: they
judged the wrong speaker. The caller then rescores the moved calls from their stored tokens.
"""

from __future__ import annotations

import logging
from typing import Callable, NamedTuple, Sequence, cast

from . import roles
from .executor import CHANNEL_LABELS, ChannelText
from .metrics import compute_metrics
from .records import STEREO_MODES, RoleDecision, Speaker, SpeakerMode, Transcript, Utterance, Word
from .store import EVALUATION_TABLES, Store, role_columns, transaction
from .tables import arrow_table, insert_frame

log = logging.getLogger("callqa")

LEGACY_AGENT_CHANNEL = "left"  # what a call stored before the role stage had: the old default


class StoredRoles(NamedTuple):
    call_id: str
    agent_channel: str | None
    role_source: str | None
    role_version: int | None
    speaker_mode: str
    duration_s: float | None


def stored_roles(store: Store, call_ids: Sequence[str]) -> list[StoredRoles]:
    rows = store.con.execute(
        "SELECT call_id, agent_channel, role_source, role_version, speaker_mode, duration_s FROM calls "
        "WHERE status = 'ok' AND call_id IN (SELECT unnest(?)) ORDER BY call_id", [list(call_ids)]).fetchall()
    return [StoredRoles(*row) for row in rows]


def stale(stored: StoredRoles, forced: str) -> bool:
    """Whether the stored decision may no longer be the one this callqa makes with this forcing."""
    if stored.speaker_mode not in STEREO_MODES:
        return False
    if forced != "auto":
        return (stored.agent_channel, stored.role_source) != (forced, "forced")
    return stored.role_source is None or (stored.role_source == "detected"
                                          and (stored.role_version or 0) < roles.ROLE_VERSION)


def stored_utterances(store: Store, call_id: str) -> list[Utterance]:
    """A stored call's utterances with their words (redacted text), in timeline order."""
    words: dict[int, list[Word]] = {}
    for seq, word, start, end, probability in store.con.execute(
            "SELECT utterance_seq, word, start_s, end_s, probability FROM words WHERE call_id = ? "
            "ORDER BY utterance_seq, idx", [call_id]).fetchall():
        words.setdefault(seq, []).append(Word(word, start, end, probability))
    return [Utterance(seq, speaker, start, end, text, confidence, tuple(words.get(seq, ())))
            for seq, speaker, start, end, text, confidence in store.con.execute(
                "SELECT seq, speaker, start_s, end_s, text, confidence FROM utterances WHERE call_id = ? "
                "ORDER BY seq", [call_id]).fetchall()]


def channels_of(utterances: Sequence[Utterance], agent_channel: str) -> tuple[ChannelText, ...]:
    """The per-channel view the role stage decides on, from speakers named with ``agent_channel``."""
    side = {"agent": agent_channel, "customer": next(c for c in CHANNEL_LABELS if c != agent_channel)}
    return tuple(ChannelText(label, tuple(u for u in utterances if side.get(u.speaker) == label))
                 for label in CHANNEL_LABELS)


_SWAP = "CASE speaker WHEN 'agent' THEN 'customer' WHEN 'customer' THEN 'agent' ELSE speaker END"


def _move_agent(store: Store, call_id: str, utterances: Sequence[Utterance], duration_s: float, mode: str) -> None:
    """Swap agent and customer in every stored row of the call (seq numbers kept); drop its evaluations."""
    for table in ("utterances", "tokens"):
        store.con.execute(f"UPDATE {table} SET speaker = {_SWAP} WHERE call_id = ?", [call_id])
    swapped: dict[str, Speaker] = {"agent": "customer", "customer": "agent"}
    transcript = Transcript(call_id, duration_s, cast(SpeakerMode, mode),
                            tuple(u._replace(speaker=swapped.get(u.speaker, u.speaker)) for u in utterances))
    metrics = compute_metrics(transcript)
    store.con.execute("DELETE FROM call_metrics WHERE call_id = ?", [call_id])
    insert_frame(store.con, "call_metrics", arrow_table(
        [(call_id, name, m.value, m.start_s, m.end_s) for name, m in metrics.items()],
        ["call_id", "metric", "value", "start_s", "end_s"]))
    for table in EVALUATION_TABLES:
        store.con.execute(f"DELETE FROM {table} WHERE call_id = ?", [call_id])


def _write_roles(store: Store, call_id: str, decision: RoleDecision, mode: str) -> None:
    columns = {**role_columns(decision, ok=True), "speaker_mode": mode}
    assignments = ", ".join(f"{name} = ?" for name in columns)
    store.con.execute(f"UPDATE calls SET {assignments} WHERE call_id = ?", [*columns.values(), call_id])


def redecide(store: Store, call_ids: Sequence[str], forced_for: Callable[[str], str]) -> list[str]:
    """Make the role decision again for the stored calls whose decision is stale (see ``stale``); returns the
    ids whose agent moved to the other channel, which need rescoring."""
    moved = []
    for stored in stored_roles(store, call_ids):
        forced = forced_for(stored.call_id)
        if not stale(stored, forced):
            continue
        current = stored.agent_channel or LEGACY_AGENT_CHANNEL
        utterances = stored_utterances(store, stored.call_id)
        decision = roles.decide(channels_of(utterances, current), forced)
        mode = roles.speaker_mode(stored.speaker_mode, decision)

        with transaction(store.con):
            if decision.agent_channel != current:
                _move_agent(store, stored.call_id, utterances, stored.duration_s or 0.0, mode)
                moved.append(stored.call_id)
            _write_roles(store, stored.call_id, decision, mode)
        if decision.agent_channel != current:
            log.info("%s: agent moved from the %s to the %s channel (%s, confidence %.2f); rescoring",
                     stored.call_id, current, decision.agent_channel, decision.source, decision.confidence or 0)
    return moved

