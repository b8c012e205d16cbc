"""The role stage: which speaker is the agent, decided from what each one says, before analysis.

Per-channel ASR output (``executor.ChannelText``, utterances labelled ``left``/``right``) becomes one Transcript
with ``agent``/``customer`` speakers. ``build_transcript`` is the seam: stereo calls are decided here; a mono
call's single channel stays ``unknown`` until speaker estimation (diarization) splits it into groups, which
``detect`` can then name the same way (it takes any labelled groups of utterances, not only channels).

The decision weighs evidence from several families of cues, none decisive alone: how the agent opens (thanks for
calling, welcome to, how can I help), identity questions (can I have your date of birth), holds (one moment,
let me check, thanks for holding), service and closing formulas (anything else, you're all set, have a great
day), what callers say (I'm calling about, I need to, my card, you too, that's all), who speaks first, and how
much each side says "you" against "I". Each speaker gets a score (agent cues add, customer cues subtract); the
agent is the speaker with the higher score, and the confidence is a logistic of the difference: 0.5 with no
evidence either way, 0.9 at a difference of about 4.4 (two strong cues).

A confident decision is applied; a low one is applied as the best guess and the call carries a review reason.
A forced channel (``--agent-channel left|right``, or a manifest/sidecar ``agent_channel``) is always applied;
when what is said confidently says otherwise, the call carries a review reason too.
"""

from __future__ import annotations

import math
import re
from typing import Mapping, NamedTuple, Sequence, cast

from .diarize import attribute, review_reasons
from .executor import CHANNEL_LABELS, CallAsr, ChannelText
from .records import (
    MONO_ESTIMATED,
    STEREO_MODES,
    AgentChannel,
    CallSource,
    Diarization,
    RoleDecision,
    Speaker,
    SpeakerMode,
    Transcript,
    Utterance,
)
from .transcribe import merge_timeline

ROLE_VERSION = 1  # raise when the decision can change for the same words: stored detections are then redone
AGENT_CHANNEL_CHOICES = ("auto", "left", "right")
CONFIDENCE_SCALE = 2.0  # score difference per logistic unit
REVIEW_BELOW = 0.8  # a detection less sure than this is applied but flagged for a human look
OPENING_S = 20.0  # "who speaks first" looks at the first speech within this many seconds
PRONOUN_WEIGHT = 2.0  # at most this much from "you" against "I" (the agent talks about the caller's things)
PRONOUN_PRIOR = 6  # pronoun counts are shrunk towards even by this many, so short calls say little
MAX_REPEATS = 2  # a cue counts at most this many times per speaker: one phrase repeated is one habit
MAX_CUES_SHOWN = 8


class Cue(NamedTuple):
    family: str
    weight: float  # > 0: the agent says it; < 0: the customer does
    pattern: re.Pattern[str]


def _cues(family: str, weight: float, *patterns: str) -> list[Cue]:
    return [Cue(family, weight, re.compile(rf"\b(?:{p})\b")) for p in patterns]


# On normalised text: lower case, only letters, digits, apostrophes and single spaces. Contractions are
# matched with and without the apostrophe and spelt out ("i'm", "im", "i am"), as ASR and transcribers vary.
_I_M, _YOU_RE, _THAT_S, _WHAT_S = r"i(?:'| a)?m", r"you(?:'| a)?re", r"that(?:'| i)?s", r"what(?:'| i)?s"
_THANKS = r"thank(?:s| you)"
CUES: tuple[Cue, ...] = tuple(
    _cues("opening", 3.0, rf"{_THANKS} for (?:calling|contacting|choosing)",
          r"(?:how|what) (?:can|may|could|might) (?:i|we) (?:help|assist|do for)",
          r"how (?:can|may) i direct your call")
    + _cues("opening", 2.5, r"welcome to", r"you(?:'| ha)?ve reached")
    + _cues("opening", 1.5, r"\w+ speaking", r"calling from", r"(?:may|can|could) i (?:speak|talk) (?:to|with)",
            r"am i (?:speaking|talking) (?:to|with)", r"is this (?:mr|mrs|ms|miss|mister|dr|doctor)")
    + _cues("identity", 2.0, r"(?:can|could|may) i (?:have|get|take|grab|ask for|confirm|verify) (?:your|the)",
            rf"{_WHAT_S} (?:your|the) (?:full |first |last |home |mailing |email )?"
            r"(?:name|date|birthday|account|address|phone|number|zip|postcode|email|member|policy|reference)",
            r"(?:can|could|would) you (?:please )?(?:confirm|verify|spell|give me|tell me|provide) (?:your|the|that)",
            r"for (?:security|verification)(?: purposes)?", r"verify (?:your|the caller's) (?:identity|account)")
    + _cues("hold", 2.5, r"(?:put|place|placing|putting) you on (?:a )?(?:brief |short |quick )?hold",
            rf"{_THANKS} (?:so much |very much )?for (?:holding|waiting|your patience|bearing with me)")
    + _cues("hold", 1.5, r"bear with me", r"let me (?:just )?(?:check|look|see|pull|find|bring)",
            r"(?:one|a|just a) (?:moment|second|sec|minute) (?:please|while i)")
    + _cues("service", 3.0, r"is there anything else|anything else (?:i|we) can")
    + _cues("service", 1.5, rf"{_YOU_RE} (?:all )?set", r"i can (?:help|do that|certainly|definitely|absolutely)",
            r"i(?:'| ha)?ve (?:booked|scheduled|sent|issued|cancell?ed|updated|processed|ordered|put|added|noted)",
            r"i(?:'| wi)?ll (?:go ahead|send|book|schedule|get that|put|have|transfer|make sure)",
            r"(?:on|in) (?:your|the|our) (?:account|file|record|records|system|chart)",
            rf"{_I_M} (?:showing|seeing)", r"i see (?:that|here)",
            r"sorry (?:to hear|for the (?:inconvenience|wait|trouble))", r"(?:sir|ma'?am)")
    + _cues("closing", 1.5, r"have a (?:great|good|nice|wonderful|lovely|fantastic) (?:day|one|afternoon|evening|"
                            r"weekend|night)", rf"{_YOU_RE} (?:very |most )?welcome", r"my pleasure",
            r"glad (?:i|we) could help")
    + _cues("caller", -2.5, rf"{_I_M} calling (?:about|because|to|regarding|for|in regards?|with)")
    + _cues("caller", -2.0, r"i have (?:a|some|an) (?:question|problem|issue|query|concern)",
            r"i (?:need|want|would like|'?d like|wanna) to (?:make|book|schedule|cancel|change|order|get|know|"
            r"find out|report|pay|refill|speak|talk|ask|open|close|replace|transfer|reschedule|see)",
            r"i (?:lost|forgot|misplaced|can'?t find|got a (?:letter|bill|call|message|text|statement))",
            r"(?:can|could) you (?:please )?(?:help me|tell me|check (?:my|if|on)|look (?:into|up) my)",
            rf"{_THAT_S} (?:all|it|everything)(?: for (?:now|today))?", r"you(?:'| ha)?ve been (?:very |so )?helpful",
            r"i was (?:just )?(?:wondering|hoping|trying to)")
    + _cues("caller", -1.5, r"(?:you too|you as well|same to you)",
            r"(?:can|could|may) i (?:make|book|schedule|get|have) (?:an?|some)",
            r"(?:what time|when) (?:do|does|are|is) (?:you|the|your)", r"are you (?:open|guys open)",
            rf"{_THANKS} (?:so much |very much )?for (?:your|all your|the) help")
    + _cues("caller", -1.0, r"my (?:card|account|appointment|prescription|bill|balance|order|medication|results|"
                            r"password|insurance|doctor|husband|wife|son|daughter|mother|father|mom|dad)")
)
_YOU = frozenset("you your yours yourself you're youre you've you'll".split())
_I = frozenset("i me my mine myself i'm im i've i'll i'd".split())
_NOT_TEXT = re.compile(r"[^a-z0-9' ]+")


class Detection(NamedTuple):
    agent: str | None  # the label of the group judged to be the agent; None when there are no groups
    confidence: float  # how sure, 0.5 (a coin toss) to 1
    cues: tuple[str, ...]  # the strongest evidence, e.g. "left +3.0 opening: thank you for calling"


NO_ROLES = RoleDecision(None, None, None, (), ())


def normalise(text: str) -> str:
    return " ".join(_NOT_TEXT.sub(" ", text.lower().replace("\u2019", "'")).split())


def _group_score(label: str, utterances: Sequence[Utterance]) -> tuple[float, list[tuple[float, str]]]:
    """(agent evidence of one speaker, its parts as (contribution, description))."""
    texts = [normalise(u.text) for u in utterances]
    parts: list[tuple[float, str]] = []
    for cue in CUES:
        hits = [m.group(0) for t in texts for m in [cue.pattern.search(t)] if m]
        if hits:
            weight = cue.weight * min(len(hits), MAX_REPEATS)
            parts.append((weight, f"{label} {weight:+.1f} {cue.family}: {hits[0]}"))
    words = " ".join(texts).split()
    you, me = sum(w in _YOU for w in words), sum(w in _I for w in words)
    if you + me:
        lean = PRONOUN_WEIGHT * (you - me) / (you + me + PRONOUN_PRIOR)
        parts.append((lean, f"{label} {lean:+.1f} pronouns: {you} you / {me} I"))
    return sum(p for p, _ in parts), parts


def detect(groups: Mapping[str, Sequence[Utterance]]) -> Detection:
    """Which of two (or more) labelled speakers is the agent, from what each says."""
    if not groups:
        return Detection(None, 0.5, ())
    scored = {label: _group_score(label, utts) for label, utts in groups.items()}
    starts = sorted((min(u.start for u in utts), lb) for lb, utts in groups.items() if utts)
    # Who speaks first within the opening, if anyone does clearly (two starting together say nothing).
    if len(groups) > 1 and starts and starts[0][0] <= OPENING_S and (len(starts) == 1 or starts[1][0] > starts[0][0]):
        label = starts[0][1]
        total, parts = scored[label]
        scored[label] = (total + 0.75, [*parts, (0.75, f"{label} +0.8 opening: speaks first")])
    # Ties keep the given order: the first group (the left channel) stays the agent, as before this stage.
    order = list(groups)
    ranked = sorted(order, key=lambda lb: (-round(scored[lb][0], 6), order.index(lb)))
    margin = scored[ranked[0]][0] - (scored[ranked[1]][0] if len(ranked) > 1 else 0.0)
    confidence = 1 / (1 + math.exp(-margin / CONFIDENCE_SCALE))
    # The strongest evidence of each side: why one is the agent, and what the other said against it.
    per_side = MAX_CUES_SHOWN // len(scored)
    shown = [text for label in ranked for _, text in sorted(scored[label][1], key=lambda p: -abs(p[0]))[:per_side]]
    return Detection(ranked[0], round(confidence, 3), tuple(shown))


def parse_agent_channel(value: object, where: str = "agent_channel") -> AgentChannel:
    text = str(value).strip().lower() if value is not None else "auto"
    if text in ("", "auto"):
        return "auto"
    if text not in AGENT_CHANNEL_CHOICES:
        raise ValueError(f"{where} {value!r}: expected auto, left or right")
    return cast(AgentChannel, text)


def parse_channels(value: object, where: str = "channels") -> tuple[int, int] | None:
    """``"0,2"`` (or a list of two numbers from a sidecar) as the two speaker channels, left then right."""
    if value is None or value == "":
        return None
    items = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
    try:
        picked = tuple(int(item) for item in items)
    except (TypeError, ValueError):
        picked = ()
    if len(picked) != 2 or picked[0] == picked[1] or min(picked) < 0:
        raise ValueError(f"{where} {value!r}: expected two different channel numbers from 0, e.g. 0,2")
    return picked[0], picked[1]


def call_settings(source: CallSource, agent_channel: AgentChannel, channels: tuple[int, int] | None
                  ) -> tuple[CallSource, AgentChannel, tuple[int, int] | None]:
    """A manifest or sidecar's ``agent_channel`` and ``channels`` for this call over the batch's; they leave
    ``extra`` (agent_channel has its own column). Raises ValueError with a one-line reason for a bad value."""
    extra = dict(source.extra)
    own_agent, own_channels = extra.pop("agent_channel", None), extra.pop("channels", None)
    if own_agent not in (None, ""):  # the call's own value wins, auto included
        agent_channel = parse_agent_channel(own_agent)
    channels = parse_channels(own_channels) or channels
    return source._replace(extra=extra), agent_channel, channels


def decide(channels: Sequence[ChannelText], forced: str = "auto") -> RoleDecision:
    """The role decision of a stereo call's two channels (``forced``: auto, left or right)."""
    if [c.label for c in channels] != list(CHANNEL_LABELS):
        return NO_ROLES
    found = detect({c.label: c.utterances for c in channels})
    agent = found.agent or CHANNEL_LABELS[0]
    reasons: tuple[str, ...] = ()
    if forced != "auto":
        if found.agent != forced and found.confidence >= REVIEW_BELOW:
            reasons = (f"agent channel forced to {forced}, but what is said points to {found.agent} "
                       f"(confidence {found.confidence:.2f})",)
        return RoleDecision(forced, "forced", found.confidence if found.agent == forced else
                            round(1 - found.confidence, 3), found.cues, reasons)
    if found.confidence < REVIEW_BELOW:
        reasons = (f"roles uncertain (confidence {found.confidence:.2f}): agent taken to be on the {agent} channel",)
    return RoleDecision(agent, "detected", found.confidence, found.cues, reasons)


def assign(channels: Sequence[ChannelText], agent_channel: str | None) -> tuple[Utterance, ...]:
    """One timeline with the channels' utterances named agent/customer (kept as labelled without a decision)."""
    names: dict[str, Speaker] = {agent_channel: "agent", **{c: "customer" for c in CHANNEL_LABELS
                                                             if c != agent_channel}} if agent_channel else {}
    return merge_timeline([u._replace(speaker=names.get(c.label, cast(Speaker, c.label))) for u in c.utterances]
                          for c in channels)


def speaker_mode(mode: str, decision: RoleDecision) -> SpeakerMode:
    """stereo or stereo_swapped after the decision (either one before it); other modes as they are."""
    if mode not in STEREO_MODES:
        return cast(SpeakerMode, mode)
    return "stereo_swapped" if decision.agent_channel == "right" else "stereo"


def decide_estimated(groups: Mapping[str, Sequence[Utterance]], diarization: Diarization
                     ) -> tuple[dict[str, Speaker], RoleDecision]:
    """Names of a mono call's estimated speakers: the agent by ``detect``, every other one the customer.

    A lone voice is the agent when what it says leans agent (a monologue, a message left by the clinic), else
    the customer (a voicemail left by a caller).
    """
    found = detect(groups)
    agent, confidence = found.agent, found.confidence
    if len(groups) == 1:
        ((label, utterances),) = groups.items()
        score = _group_score(label, utterances)[0]
        agent = label if score > 0 else None
        confidence = round(1 / (1 + math.exp(-abs(score) / CONFIDENCE_SCALE)), 3)
    names: dict[str, Speaker] = {label: "agent" if label == agent else "customer" for label in groups}
    reasons = review_reasons(diarization)
    if len(groups) > 1 and confidence < REVIEW_BELOW:
        reasons += (f"roles uncertain (confidence {confidence:.2f}): agent taken to be {agent}",)
    return names, RoleDecision(None, "detected", confidence, found.cues, reasons)


def build_transcript(call_id: str, asr: CallAsr, forced: str = "auto") -> tuple[Transcript, RoleDecision]:
    """Where the transcript is built: the role decision of a stereo call, then one timeline of named speakers.

    A mono call with estimated speaker turns (``asr.diarization``) has its words split between the estimated
    speakers (``callqa.diarize.attribute``), which are then named like channels; without turns it passes through
    unnamed (``unknown``).
    """
    if asr.diarization is not None and asr.facts.speaker_mode not in STEREO_MODES and len(asr.channels) == 1:
        groups = attribute(asr.channels[0].utterances, asr.diarization.turns)
        names, decision = decide_estimated(groups, asr.diarization)
        utterances = merge_timeline([u._replace(speaker=names[label]) for u in utts] for label, utts in groups.items())
        turns = tuple((t.start, t.end, names.get(f"speaker_{t.speaker + 1}", "customer"))
                      for t in asr.diarization.turns)
        return Transcript(call_id, asr.facts.duration_s, MONO_ESTIMATED, utterances, turns), decision
    decision = decide(asr.channels, forced) if asr.facts.speaker_mode in STEREO_MODES else NO_ROLES
    utterances = assign(asr.channels, decision.agent_channel)
    return Transcript(call_id, asr.facts.duration_s, speaker_mode(asr.facts.speaker_mode, decision), utterances), \
        decision
