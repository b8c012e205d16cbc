"""Call metrics on constructed timelines (utterance times are exact, so the expected values are too)."""

from __future__ import annotations

import pytest

from callqa.metrics import METRICS, compute_metrics
from rubric_helpers import transcript

CALL = [
    ("agent", 0, "Thank you for calling, how can I help?", 4),
    ("customer", 4.5, "I am really upset and angry, my results never arrived", 10),
    ("agent", 8, "I see", 9),  # starts while the customer speaks
    ("agent", 10.5, "Can I put you on hold for a moment?", 13),
    ("customer", 13.2, "Sure.", 13.6),
    # 30 s on hold
    ("agent", 43.6, "Thank you for holding, your results are ready.", 46),
    ("customer", 46.5, "That is wonderful, thank you so much!", 49),
    # 3 s of silence, not announced as a hold
    ("agent", 52, "Goodbye.", 53),
]


@pytest.fixture(scope="module")
def metrics():
    return compute_metrics(transcript(CALL, duration=60))


def test_every_registered_metric_is_computed(metrics):
    assert metrics.keys() == METRICS.keys()


def test_interruptions(metrics):
    assert metrics["agent_interruptions"] == (1.0, 8, 10)


def test_agent_taking_the_turn_at_the_end_is_not_an_interruption():
    call = transcript([("customer", 0, "my card was stolen", 2), ("agent", 1.9, "oh no I'm sorry", 3)])
    assert compute_metrics(call)["agent_interruptions"].value == 0


def test_silence(metrics):
    assert metrics["longest_silence_s"] == pytest.approx((30.0, 13.6, 43.6))
    assert metrics["total_silence_s"].value == pytest.approx(33.0)


def test_short_gaps_and_lead_in_are_not_silence():
    call = transcript([("agent", 10, "hello", 11), ("customer", 12.9, "hi", 13.5)], duration=40)
    assert compute_metrics(call)["longest_silence_s"].value == 0.0
    assert compute_metrics(call)["total_silence_s"].value == 0.0


def test_holds(metrics):
    assert metrics["hold_count"] == (1.0, 10.5, 43.6)
    assert metrics["longest_hold_s"] == pytest.approx((30.0, 13.6, 43.6))


def test_silence_without_announcement_is_no_hold():
    call = transcript([("agent", 0, "let me look that up", 2), ("agent", 30, "okay found it", 31)])
    m = compute_metrics(call)
    assert (m["hold_count"].value, m["longest_hold_s"].value, m["longest_silence_s"].value) == (0, 0, 28)


def test_talk_ratio_and_words_per_minute(metrics):
    agent_s, customer_s = 4 + 1 + 2.5 + 2.4 + 1, 5.5 + 0.4 + 2.5
    assert metrics["agent_talk_ratio"].value == pytest.approx(agent_s / (agent_s + customer_s), abs=1e-4)
    assert metrics["agent_words_per_minute"].value == pytest.approx(28 / (agent_s / 60), abs=0.1)


def test_customer_sentiment_first_vs_last_third(metrics):
    start, end, change = (metrics[f"customer_sentiment_{k}"] for k in ("start", "end", "change"))
    assert start.value < -0.3 and end.value > 0.5
    assert change.value == pytest.approx(end.value - start.value, abs=1e-4)
    # 18 customer words: the first six are "I am really upset and angry," (4.5 s to 4.5 + 6 x 0.55 s).
    assert (start.start_s, start.end_s) == pytest.approx((4.5, 7.8))
    assert end.end_s == pytest.approx(49)


def test_mono_speaker_metrics_are_none_not_zero():
    mono = transcript([(s if s == "unknown" else "unknown", *rest) for s, *rest in CALL], duration=60, speaker_mode="mono")
    m = compute_metrics(mono)
    for name in ("agent_interruptions", "agent_talk_ratio", "agent_words_per_minute", "customer_sentiment_start",
                 "customer_sentiment_end", "customer_sentiment_change"):
        assert m[name].value is None, name
    assert m["longest_silence_s"].value == pytest.approx(30.0)
    assert m["hold_count"].value == 1  # the hold phrase says who announced it


def test_no_speech_and_too_few_customer_words():
    empty = compute_metrics(transcript([], duration=30))
    assert empty["longest_silence_s"].value is None and empty["agent_talk_ratio"].value is None
    assert empty["agent_interruptions"].value == 0
    short = compute_metrics(transcript([("agent", 0, "hello there", 1), ("customer", 1.5, "hi", 2)]))
    assert short["customer_sentiment_start"].value is None
