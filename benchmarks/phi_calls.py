"""The Harper Valley PHI set: 30 real call transcripts, their PHI labelled by hand, rendered to audio and
recognised by the bundled Whisper, so that redaction is measured on the utterances ASR really makes.

Labels: tests/data/conversations/phi_labels.yaml (per call, per segment index: VALUE: LABEL, values as they
appear in the cleaned human transcript). Audio and ASR output are cached outside git (``CACHE``, or
``$CALLQA_PHI_CACHE``): rendering 30 calls and transcribing them takes minutes of CPU, so it runs once and the
benchmark reuses it; a cached transcript is reused only for the same audio bytes, ASR model and VAD threshold.

``python benchmarks/phi_calls.py`` renders and transcribes what is not cached; ``--test-call`` renders the short
call tests/test_redact_conversation.py transcribes (tests/data/phi/split_values.wav, from its .yaml).

Rendering uses the sample corpus' tooling (sample_calls/generate.py: the Piper voice as two speakers, the
telephone line, u-law stereo WAV, agent left): each segment is placed at its own start time, later when the
synthetic voice runs longer than the person did, so Whisper's segmentation, not the corpus', splits values.

Gold on ASR output: per speaker, the words of the cleaned reference and of the ASR transcript are aligned
(difflib); an ASR word aligned to (or substituted for) a labelled reference word carries its label.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = ROOT.parent / "shared" / "testdata" / "conversations"
LABELS = ROOT / "tests" / "data" / "conversations" / "phi_labels.yaml"
CACHE = Path(os.environ.get("CALLQA_PHI_CACHE", ROOT / "benchmarks" / ".cache" / "phi_calls"))
VOICES = {"agent": {"pitch": 0.92, "tempo": 1.05}, "customer": {"pitch": 1.12, "tempo": 1.0}}
MIN_GAP_S = 0.25  # between two turns of one speaker when the synthetic voice runs late
_MARKUP = re.compile(r"\[[^\]]*\]|<unk>|\S+~")


def clean(text: str) -> str:
    """The words of a human transcript, without its markup ([noise], <unk>, cut-off words like "car~")."""
    return " ".join(_MARKUP.sub(" ", text).split())


class Segment(NamedTuple):
    index: int
    speaker: str  # agent | customer
    start: float
    text: str  # cleaned
    gold: tuple[tuple[int, int, str], ...]  # (start, end, label) in text


def load_calls(conversations: Path = CONVERSATIONS, labels: Path = LABELS) -> dict[str, list[Segment]]:
    """sid -> its spoken segments in time order, each with its gold PHI spans."""
    labelled = yaml.safe_load(labels.read_text(encoding="utf-8"))["calls"]
    calls = {}
    for path in sorted(conversations.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        marks = labelled.get(data["sid"]) or {}
        segments = []
        for seg in data["segments"]:
            text = clean(seg["human_transcript"])
            if not text:
                continue
            values = marks.get(seg["index"], {})
            segments.append(Segment(seg["index"], "agent" if seg["speaker_role"] == "agent" else "customer",
                                    seg["start_ms"] / 1000, text, _gold(text, values, f"{data['sid']}:{seg['index']}")))
        calls[data["sid"]] = sorted(segments, key=lambda s: s.start)
    return calls


def _gold(text: str, values: dict, where: str) -> tuple[tuple[int, int, str], ...]:
    gold: list[tuple[int, int, str]] = []
    for value, label in sorted(values.items(), key=lambda item: -len(str(item[0]))):
        found = [m for m in re.finditer(rf"(?<!\w){re.escape(str(value))}(?!\w)", text)
                 if not any(s < m.end() and m.start() < e for s, e, _ in gold)]
        if not found:
            raise ValueError(f"{where}: labelled value {value!r} is not in {text!r}")
        gold += [(m.start(), m.end(), label) for m in found]
    return tuple(sorted(gold))


# ---------------------------------------------------------------- audio
def audio_path(sid: str) -> Path:
    return CACHE / f"{sid}.wav"


def _generate():
    sys.path.insert(0, str(ROOT / "sample_calls"))
    import generate  # the sample corpus' tooling: Piper voices, telephone line, writer

    return generate


def render_call(voices, segments: list[Segment], path: Path, call_id: str) -> None:
    """One call as a u-law stereo WAV (agent left), each segment at its start time or later."""
    generate = _generate()
    script = {"call_id": call_id, "format": "wav-ulaw-stereo"}
    rate = generate.FORMATS[script["format"]].rate
    placed, delay, last_end = [], 0.0, {"agent": 0.0, "customer": 0.0}
    for seg in segments:
        voice = VOICES[seg.speaker]
        audio = voices.speak(seg.text, voice["pitch"], voice["tempo"], rate)
        start = seg.start + delay
        if start < last_end[seg.speaker] + MIN_GAP_S:
            delay += last_end[seg.speaker] + MIN_GAP_S - start
            start = seg.start + delay
        placed.append(generate.Placed(seg.speaker, seg.text, round(start * rate) / rate, audio))
        last_end[seg.speaker] = placed[-1].end(rate)
    tmp = path.with_suffix(".tmp.wav")
    generate.write_audio(tmp, generate.render(script, placed, rate), script["format"])
    tmp.replace(path)


def render_missing(calls: dict[str, list[Segment]]) -> list[str]:
    """Render the calls whose audio is not cached yet; returns their sids."""
    missing = [sid for sid in calls if not audio_path(sid).exists()]
    if not missing:
        return []
    CACHE.mkdir(parents=True, exist_ok=True)
    voices = _generate().Voices()
    for sid in missing:
        render_call(voices, calls[sid], audio_path(sid), sid)
        print(f"rendered {sid}", file=sys.stderr)
    return missing


# ---------------------------------------------------------------- ASR
def transcripts(calls: dict[str, list[Segment]], model: str | None = None):
    """sid -> Transcript of the cached audio as the pipeline builds it: its executor (decoding and ASR of each
    channel), then its role stage naming agent and customer. Cached as JSON."""
    from callqa.asr_pool import LocalExecutor
    from callqa.executor import AudioJob
    from callqa.records import Transcript, Utterance, Word
    from callqa.roles import build_transcript
    from callqa.transcribe import AsrSettings
    from callqa.vad import VAD_THRESHOLD

    settings = AsrSettings(workers=1, cpu_threads=int(os.environ.get("CALLQA_PHI_THREADS", "2")),
                           **({"model": model} if model else {}))
    executor = None
    out = {}
    try:
        for sid in calls:
            wav = audio_path(sid)
            # "roles": transcripts cached before they went through the role stage named channels, not speakers;
            # the VAD threshold decides which audio Whisper hears
            salt = f"{settings.model}roles{VAD_THRESHOLD}".encode()
            key = hashlib.sha256(wav.read_bytes() + salt).hexdigest()[:16]
            cached = CACHE / f"{sid}.{key}.json"
            if not cached.exists():
                executor = executor or LocalExecutor(settings)
                asr = executor.result(executor.submit(AudioJob(sid, path=str(wav))))
                transcript, _ = build_transcript(sid, asr)
                cached.write_text(json.dumps(transcript_to_json(transcript)), encoding="utf-8")
                print(f"transcribed {sid}", file=sys.stderr)
            data = json.loads(cached.read_text(encoding="utf-8"))
            out[sid] = Transcript(data["call_id"], data["duration_s"], data["speaker_mode"], tuple(
                Utterance(u["seq"], u["speaker"], u["start"], u["end"], u["text"], u["confidence"],
                          tuple(Word(*w) for w in u["words"])) for u in data["utterances"]))
    finally:
        if executor is not None:
            executor.close()
    return out


def transcript_to_json(transcript) -> dict:
    return {"call_id": transcript.call_id, "duration_s": transcript.duration_s,
            "speaker_mode": transcript.speaker_mode,
            "utterances": [{**u._asdict(), "words": [list(w) for w in u.words]} for u in transcript.utterances]}


# ---------------------------------------------------------------- gold on ASR output
_WORD = re.compile(r"[A-Za-z0-9']+")


def _norm(word: str) -> str:
    return word.lower().replace("'", "")


_DIGIT_OF = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())} | {w: str(20 + 10 * i) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())} | {"oh": "0"}


def _as_digits(word: str) -> str:
    """"nine" and "9" compare equal when a spoken reference is aligned to Whisper's digits."""
    return _DIGIT_OF.get(word, word)


def asr_gold(segments: list[Segment], transcript) -> list[tuple[tuple[int, int, str], ...]]:
    """Gold spans per utterance of ``transcript``: ASR words aligned to labelled reference words.

    Each reference mention becomes one gold span per utterance it lands in (a value Whisper split over two
    utterances is two gold spans, both to be redacted). A mention ASR lost entirely has nothing to redact.
    """
    gold: list[list[tuple[int, int, str]]] = [[] for _ in transcript.utterances]
    for speaker in ("agent", "customer"):
        ref = []  # (word, mention id or None, label)
        mention = 0
        for seg in (s for s in segments if s.speaker == speaker):
            for m in _WORD.finditer(seg.text):
                hit = next(((i, lab) for i, (a, b, lab) in enumerate(seg.gold) if a <= m.start() < b), None)
                ref.append((_norm(m.group()), None if hit is None else (mention + hit[0]), hit and hit[1]))
            mention += len(seg.gold)
        hyp = [(k, m) for k, u in enumerate(transcript.utterances) if u.speaker in (speaker, "unknown")
               for m in _WORD.finditer(u.text)]
        tags: list[tuple[int, str] | None] = [None] * len(hyp)
        matcher = difflib.SequenceMatcher(None, [w for w, _, _ in ref], [_norm(m.group()) for _, m in hyp],
                                          autojunk=False)
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op == "equal":
                for i in range(a1 - a0):
                    if ref[a0 + i][1] is not None:
                        tags[b0 + i] = (ref[a0 + i][1], ref[a0 + i][2])
            elif op == "replace":  # a misrecognised word of a value is still the value: the likeliest ref word
                for i in range(b0, b1):
                    word = _as_digits(_norm(hyp[i][1].group()))
                    where = (i - b0 + 0.5) / (b1 - b0)

                    def likeness(k: int) -> float:  # spelling first, then the place in the block
                        return (difflib.SequenceMatcher(None, _as_digits(ref[k][0]), word).ratio()
                                - 0.2 * abs((k - a0 + 0.5) / (a1 - a0) - where))

                    best = max(range(a0, a1), key=likeness)
                    if ref[best][1] is not None and likeness(best) >= 0.4:
                        tags[i] = (ref[best][1], ref[best][2])
                    elif word.isdigit():  # "63453" for "six three four five three": the mention's digits
                        spoken: dict[tuple[int, str], str] = {}
                        for r in ref[a0:a1]:
                            if r[1] is not None:
                                spoken[(r[1], r[2])] = spoken.get((r[1], r[2]), "") + _as_digits(r[0])
                        near = [(difflib.SequenceMatcher(None, d, word).ratio(), m) for m, d in spoken.items()]
                        if near and max(near)[0] >= 0.5:
                            tags[i] = max(near)[1]
        # Consecutive words of one mention in one utterance form one gold span.
        for (k, m), tag in zip(hyp, tags):
            if tag is None:
                continue
            spans = gold[k]
            if spans and spans[-1][3] == tag[0] and not _WORD.search(transcript.utterances[k].text[spans[-1][1]:m.start()]):
                spans[-1] = (spans[-1][0], m.end(), tag[1], tag[0])
            else:
                spans.append((m.start(), m.end(), tag[1], tag[0]))
    return [tuple((a, b, lab) for a, b, lab, _ in sorted(spans)) for spans in gold]


TEST_CALL = ROOT / "tests" / "data" / "phi" / "split_values.yaml"


def render_test_call() -> Path:
    """tests/data/phi/split_values.wav from its script (the one rendered call the tests transcribe)."""
    script = yaml.safe_load(TEST_CALL.read_text(encoding="utf-8"))
    segments = [Segment(i, t["speaker"], float(t["start"]), t["text"], ()) for i, t in enumerate(script["turns"])]
    out = TEST_CALL.with_suffix(".wav")
    render_call(_generate().Voices(), segments, out, "split-values")
    return out


def main() -> int:
    if sys.argv[1:] == ["--test-call"]:
        print(render_test_call())
        return 0
    calls = load_calls()
    render_missing(calls)
    transcripts(calls)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
