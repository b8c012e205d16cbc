"""The role stage: which channel is the agent, decided from what each side says."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callqa import roles
from callqa.executor import AudioFacts, CallAsr, ChannelText
from callqa.records import CallSource
from rubric_helpers import CONVERSATIONS, utterance


def _channels(left, right) -> tuple[ChannelText, ChannelText]:
    return ChannelText("left", tuple(left)), ChannelText("right", tuple(right))


def _side(lines):
    """(start_s, text) lines as utterances of one channel."""
    return [utterance(-1, "x", start, text) for start, text in lines]


def _harper_valley(field: str):
    """Every real conversation as (sid, agent's utterances, caller's utterances)."""
    for path in sorted(CONVERSATIONS.glob("*.json")):
        data = json.loads(path.read_text())
        sides = {"agent": [], "caller": []}
        for seg in data["segments"]:
            if (seg.get(field) or "").strip():
                sides[seg["speaker_role"]].append(
                    utterance(-1, "x", seg["start_ms"] / 1000, seg[field], (seg["start_ms"] + seg["duration_ms"]) / 1000))
        yield data["sid"], sides["agent"], sides["caller"]


@pytest.mark.parametrize("field", ["human_transcript", "transcript"])  # reference, then the corpus' own ASR
def test_real_conversations_get_the_agent_right_on_either_channel(field):
    decisions = []
    for sid, agent, caller in _harper_valley(field):
        for side in ("left", "right"):
            left, right = (agent, caller) if side == "left" else (caller, agent)
            decision = roles.decide(_channels(left, right))
            decisions.append((sid, side, decision))
    assert len(decisions) == 60
    wrong = [(sid, side, d.agent_channel, d.cues) for sid, side, d in decisions if d.agent_channel != side]
    confidences = sorted(d.confidence for _, _, d in decisions)
    print(f"\n{field}: {60 - len(wrong)}/60 right; confidence min {confidences[0]:.3f}, "
          f"median {confidences[30]:.3f}; below {roles.REVIEW_BELOW}: "
          f"{sum(c < roles.REVIEW_BELOW for c in confidences)}")
    assert wrong == []
    assert all(d.source == "detected" and not d.review_reasons for _, _, d in decisions)


def test_the_customer_speaking_first_does_not_make_them_the_agent():
    caller = _side([(0.0, "hello?"), (4.5, "yes speaking"), (9.0, "oh right, I forgot about that, thanks")])
    agent = _side([(1.5, "Hi, this is Dana calling from Northside Dental, am I speaking with Mr Jones?"),
                   (6.0, "I'm calling to remind you of your appointment tomorrow at nine. Can I confirm your date of "
                         "birth?"), (12.0, "You're all set then. Have a great day.")])
    for left, right, want in ((caller, agent, "right"), (agent, caller, "left")):
        decision = roles.decide(_channels(left, right))
        assert decision.agent_channel == want and decision.confidence >= roles.REVIEW_BELOW, decision


def test_a_call_without_cues_is_a_flagged_guess_never_a_silent_one():
    a, b = _side([(0.0, "okay"), (5.0, "sure")]), _side([(2.0, "right"), (7.0, "fine")])
    decision = roles.decide(_channels(a, b))
    assert decision.agent_channel in ("left", "right") and decision.source == "detected"
    assert decision.confidence < roles.REVIEW_BELOW
    assert decision.review_reasons and "roles uncertain" in decision.review_reasons[0]


def test_one_silent_speaker_still_gets_a_decision():
    agent = _side([(0.0, "Thank you for calling Riverside clinic, how can I help you today?")])
    decision = roles.decide(_channels((), agent))
    assert decision.agent_channel == "right"


def test_a_forced_channel_wins_and_says_when_the_words_disagree():
    agent = _side([(0.0, "Thank you for calling, how may I help you?"), (9.0, "Is there anything else I can do?")])
    caller = _side([(3.0, "Hi, I'm calling about my bill"), (11.0, "no that's all, thanks")])
    agreeing = roles.decide(_channels(agent, caller), forced="left")
    assert (agreeing.agent_channel, agreeing.source, agreeing.review_reasons) == ("left", "forced", ())
    against = roles.decide(_channels(agent, caller), forced="right")
    assert (against.agent_channel, against.source) == ("right", "forced")
    assert against.confidence < 0.5 and "points to left" in against.review_reasons[0]


def test_the_transcript_names_speakers_and_says_when_the_agent_was_on_the_right():
    agent = _side([(0.5, "Good morning, thank you for calling, how can I help?")])
    caller = _side([(0.0, "hello"), (3.0, "I need to cancel my appointment")])
    facts = AudioFacts(10.0, 2, 8000, "pcm_mulaw", "stereo", "")
    transcript, decision = roles.build_transcript("c1", CallAsr(facts, _channels(caller, agent), ()))
    assert decision.agent_channel == "right" and transcript.speaker_mode == "stereo_swapped"
    assert [(u.seq, u.speaker) for u in transcript.utterances] == [(0, "customer"), (1, "agent"), (2, "customer")]
    mono = CallAsr(facts._replace(speaker_mode="mono_fallback_silent"), (ChannelText("unknown", tuple(agent)),), ())
    transcript, decision = roles.build_transcript("c2", mono)
    assert decision == roles.NO_ROLES and transcript.speaker_mode == "mono_fallback_silent"
    assert {u.speaker for u in transcript.utterances} == {"unknown"}


def test_per_call_settings_come_from_the_metadata_and_leave_extra():
    source = CallSource("a.wav", "c", "ag", None, "sha", 1, {"agent_channel": "Right", "channels": "0, 2", "q": 1},
                        "manifest")
    source, agent_channel, channels = roles.call_settings(source, "auto", None)
    assert (agent_channel, channels, source.extra) == ("right", (0, 2), {"q": 1})
    assert roles.call_settings(source._replace(extra={"agent_channel": "auto"}), "left", (1, 0))[1:] == ("auto", (1, 0))
    assert roles.call_settings(source._replace(extra={"agent_channel": ""}), "left", None)[1:] == ("left", None)
    for bad in ({"agent_channel": "middle"}, {"channels": "0"}, {"channels": "1,1"}, {"channels": "a,b"}):
        with pytest.raises(ValueError):
            roles.call_settings(source._replace(extra=bad), "auto", None)


PHRASES = ["thank you for calling", "how can I help", "I'm calling about my bill", "can I have your date of birth",
           "one moment please", "you too", "is there anything else", "okay", "yes", "my card", "have a great day",
           "I need to cancel", "sure", "that's all"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 120), st.sampled_from(PHRASES)), max_size=12))
def test_swapping_the_channels_swaps_the_decision_and_keeps_its_confidence(lines):
    a = _side([(start, text) for left, start, text in lines if left])
    b = _side([(start, text) for left, start, text in lines if not left])
    one, other = roles.decide(_channels(a, b)), roles.decide(_channels(b, a))
    assert 0.5 <= one.confidence <= 1
    if one.confidence > 0.5:  # a real tie keeps the left channel either way
        assert {one.agent_channel, other.agent_channel} == {"left", "right"}
        assert one.confidence == other.confidence
