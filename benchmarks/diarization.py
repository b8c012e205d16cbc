"""Speaker estimation on mono mixdowns of recordings whose channels say who spoke: DER, word attribution, cost.

Cases (each a two-channel truth summed to mono):
  sample      the stereo sample calls (one Piper voice at two pitches: an easy case)
  talkers     ../shared/testdata/speech/stereo_two_talkers.wav (two real talkers, 5 s)
  voices      conversations assembled from the Asterisk prompts of two different real voice talents, turns
              alternating with gaps and some overlap; also one-voice monologues and three-voice calls
Truth: speech = Silero VAD of each clean channel; words = Whisper (bundled tiny.en) on each clean channel, each
word labelled with its channel (only words inside their channel's speech: on the non-English voices tiny.en
sometimes places a word in silence). Word attribution = share of those words whose estimated speaker (the turn that
holds the word's middle, after the best speaker mapping) is their channel.

Interruptions: the callqa.metrics rule for each speaker in turn as the agent, on the clean channels' speech (a
start inside the other's speech: the stereo rule) against the mono rule on the estimated turns (a change of
speaker with no pause after 1 s of the other's speech), summed over both directions of every two-voice call.

Cost: diarization seconds against the ASR seconds of the same mono call, both on one thread in this process
(ratios within one run; the machine is shared, absolute times are noisy). Peak RSS is of a child process that
loads the embedder and diarizes the longest call.

Real voices: `apt-get download asterisk-core-sounds-{en,fr,it,ru}-wav asterisk-prompt-it-menardi-wav` and
`dpkg -x` each into one folder; pass its usr/share/asterisk/sounds as --voices.

    python benchmarks/diarization.py --voices /tmp/ast/x/usr/share/asterisk/sounds --methods resemblyzer,mfcc,whisper
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callqa.audio import load_audio  # noqa: E402
from callqa.der import diarization_error_rate, word_attribution  # noqa: E402
from callqa.diarize import diarize, speaker_at  # noqa: E402
from callqa.embeddings import SAMPLE_RATE, ResemblyzerEmbedder, _frame_slices, _mel_power  # noqa: E402
from callqa.metrics import compute_metrics  # noqa: E402
from callqa.records import MONO_ESTIMATED, Transcript, Utterance  # noqa: E402
from callqa.vad import speech_regions  # noqa: E402

VOICE_DIRS = ("en_US_f_Allison", "fr_CA_f_June", "it_IT_m_Carlo", "it_IT_f_Menardi", "ru_RU_f_IvrvoiceRU")


class MfccEmbedder:  # a candidate: classical cepstral statistics, numpy/scipy only
    """Mean and standard deviation of 20 MFCCs (without c0: loudness) per window."""

    name = "mfcc"

    def embed(self, audio: np.ndarray, starts: np.ndarray) -> np.ndarray:
        from scipy.fft import dct

        mel = _mel_power(audio)
        mfcc = dct(np.log(mel + 1e-8), type=2, axis=1, norm="ortho")[:, 1:21]
        windows = mfcc[_frame_slices(len(mfcc), starts)]
        feats = np.concatenate([windows.mean(axis=1), windows.std(axis=1)], axis=1)
        return (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-6)


class WhisperEncoderEmbedder:
    """Whisper's encoder states (bundled tiny.en), averaged over each window, centred on the call's mean."""

    name = "whisper"

    def __init__(self, model=None):
        if model is None:
            from faster_whisper import WhisperModel

            from callqa.transcribe import bundled_model_path

            model = WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8", cpu_threads=1)
        self.model = model

    def embed(self, audio: np.ndarray, starts: np.ndarray) -> np.ndarray:
        chunk = 30 * SAMPLE_RATE
        states = []
        for at in range(0, len(audio), chunk):
            piece = audio[at : at + chunk]
            features = self.model.feature_extractor(piece)[:, :3000]
            features = np.pad(features, ((0, 0), (0, 3000 - features.shape[1])))
            encoded = np.asarray(self.model.encode(features))[0]  # (1500, dims): 20 ms frames
            states.append(encoded[: int(np.ceil(len(piece) / 320))])
        frames = np.repeat(np.concatenate(states), 2, axis=0)  # 10 ms steps like the others
        windows = frames[_frame_slices(len(frames), starts)].mean(axis=1)
        return windows - windows.mean(axis=0)


EMBEDDERS = {cls.name: cls for cls in (ResemblyzerEmbedder, MfccEmbedder, WhisperEncoderEmbedder)}


def _wav16k(path: Path) -> np.ndarray:
    import av
    from scipy.signal import resample_poly

    with av.open(str(path)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        x = np.concatenate([f.to_ndarray().reshape(-1).astype(np.float32) for f in c.decode(audio=0)])
    x = x / 32768 if np.abs(x).max() > 2 else x
    return resample_poly(x, 16000, rate).astype(np.float32) if rate != 16000 else x


def _trimmed(x: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > 0.02)
    return x[max(loud[0] - 800, 0) : loud[-1] + 800] if loud.size else x


def assemble(voices: list[list[Path]], rng: random.Random, turns: int = 16) -> np.ndarray:
    """(len(voices), samples): the voices taking turns, prompts of 1-6 s, gaps 0.2-1.2 s, 15 % overlapping 0.4 s."""
    pieces = []
    for i in range(turns):
        v = i % len(voices) if len(voices) > 1 else 0
        while True:
            x = _trimmed(_wav16k(rng.choice(voices[v])))
            if 1.0 <= len(x) / 16000 <= 6.0:
                break
        pieces.append((v, x))
    total = sum(len(x) for _, x in pieces) + 16000 * (turns + 2)
    out = np.zeros((len(voices), total), np.float32)
    at = 8000
    for v, x in pieces:
        out[v, at : at + len(x)] += x
        at += len(x) + (-6400 if rng.random() < 0.15 else int(rng.uniform(0.2, 1.2) * 16000))
    return out[:, : at + 8000]


def cases(voice_root: Path | None, only: set[str]):
    """(name, kind, channels array, expected speaker count)."""
    if "sample" in only:
        for f in sorted((ROOT / "sample_calls").iterdir()):
            if f.suffix in (".wav", ".mp3", ".flac"):
                a = load_audio(f)
                if a.speaker_mode == "stereo":
                    yield f.stem.split("_")[-1], "sample", np.stack(a.channels), 2
    if "talkers" in only:
        a = load_audio(ROOT.parent / "shared" / "testdata" / "speech" / "stereo_two_talkers.wav")
        yield "two_talkers", "talkers", np.stack(a.channels), 2
    if voice_root is None or "voices" not in only:
        return
    prompts = [sorted((voice_root / d).rglob("*.wav")) for d in VOICE_DIRS]
    rng = random.Random(14)
    for i in range(len(VOICE_DIRS)):
        for j in range(i + 1, len(VOICE_DIRS)):
            yield f"{_who(i)}+{_who(j)}", "voices", assemble([prompts[i], prompts[j]], rng), 2
    for i in range(len(VOICE_DIRS)):
        yield f"{_who(i)} alone", "one_voice", assemble([prompts[i]], rng, turns=10), 1
    for trio in ((0, 1, 2), (1, 3, 4)):
        yield "+".join(_who(k) for k in trio), "three", assemble([prompts[k] for k in trio], rng, 18), 3


def _who(i: int) -> str:
    return VOICE_DIRS[i].rsplit("_", 1)[-1]


def truth(channels: np.ndarray, transcriber, cache: Path, name: str):
    """Reference segments and (mid time, channel) words, cached: the ASR of clean channels is the slow part."""
    file = cache / f"{name.replace(' ', '_')}.json"
    segments = [(s, e, c) for c, ch in enumerate(channels) for s, e in speech_regions(ch)]
    if file.exists():
        return segments, [tuple(w) for w in json.loads(file.read_text())["words"]]
    words = [((w.start + w.end) / 2, c) for c, ch in enumerate(channels)
             for u in transcriber.transcribe_channel(ch, str(c)) for w in u.words]
    file.write_text(json.dumps({"words": sorted(words)}))
    return segments, sorted(words)


def spoken(words, segments, tolerance: float = 0.2):
    """The words whose middle lies in their own channel's speech: tiny.en on French, Italian or Russian
    sometimes puts a word where its channel is silent, and that word says nothing about who spoke."""
    return [(t, c) for t, c in words if any(s - tolerance <= t <= e + tolerance for s, e, k in segments if k == c)]


def interruptions(segments, turns, mapping: dict) -> tuple[int, int]:
    """(interruptions in the clean channels' speech, barge-ins counted on the estimated turns), each of the two
    speakers taken as the agent in turn."""
    counted = [0, 0]
    for agent in (0, 1):
        def role(channel) -> str:
            return "agent" if channel == agent else "customer"

        truth = [(s, e, role(c)) for s, e, c in sorted(segments)]
        estimate = [(t.start, t.end, role(mapping.get(t.speaker))) for t in turns]
        for i, (mode, spans) in enumerate((("stereo", truth), (MONO_ESTIMATED, estimate))):
            utterances = tuple(Utterance(k, spk, s, e, "x", 1.0, ()) for k, (s, e, spk) in enumerate(spans))
            call = Transcript("c", 0.0, mode, utterances, tuple(spans) if mode == MONO_ESTIMATED else ())
            counted[i] += int(compute_metrics(call)["agent_interruptions"].value or 0)
    return counted[0], counted[1]


def peak_rss(method: str, audio_file: Path) -> float:
    code = ("import sys,resource,numpy as np; sys.path.insert(0,%r); from callqa.diarize import diarize; "
            "sys.path.insert(0,%r); from diarization import EMBEDDERS; x=np.load(%r); diarize(x, EMBEDDERS[%r]()); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])") % (str(ROOT), str(ROOT / "benchmarks"), str(audio_file), method)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1]) / 1024  # VmHWM in kB (ru_maxrss keeps the parent's mark)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=Path, default=None, help="folder holding the Asterisk voice folders")
    parser.add_argument("--methods", default="resemblyzer,mfcc,whisper")
    parser.add_argument("--cases", default="sample,talkers,voices")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/callqa-diarization-cache"))
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    from callqa.transcribe import AsrSettings, Transcriber

    transcriber = Transcriber(AsrSettings(cpu_threads=1))
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)
    embedders = {m: EMBEDDERS[m]() if m != "whisper" else EMBEDDERS[m](transcriber.model) for m in args.methods.split(",")}
    rows: dict[str, dict[str, list]] = {m: {} for m in embedders}
    asr_s = {}
    longest = None
    for name, kind, channels, expected in cases(args.voices, set(args.cases.split(","))):
        mono = channels.sum(axis=0) / (1 if kind in ("voices", "one_voice", "three") else 2)
        segments, words = truth(channels, transcriber, args.cache, name)
        words = spoken(words, segments)
        if kind == "sample":
            t = time.perf_counter()
            transcriber.transcribe_channel(mono, "unknown")
            asr_s[name] = time.perf_counter() - t
            if longest is None or len(mono) > len(longest):
                longest = mono
        for method, embedder in embedders.items():
            t = time.perf_counter()
            result = diarize(mono, embedder)
            took = time.perf_counter() - t
            est = [(tr.start, tr.end, tr.speaker) for tr in result.turns]
            der = diarization_error_rate(segments, est)
            attribution = word_attribution(words, [speaker_at(result.turns, w[0]) for w in words], der.mapping)
            barge = interruptions(segments, result.turns, der.mapping) if expected == 2 else (0, 0)
            rows[method].setdefault(kind, []).append(
                (name, der.der, attribution, result.speakers == expected, took, asr_s.get(name), result.confidence,
                 barge))
            if args.verbose:
                print(f"{method:12s} {kind:9s} {name:26s} DER {der.der:6.1%} words {attribution:6.1%} "
                      f"speakers {result.speakers}/{expected} sep {result.separation:.2f} conf {result.confidence:.2f} {result.flags} "
                      f"interruptions {barge[0]}/{barge[1]} {took:.2f}s" + (f" asr {asr_s[name]:.1f}s" if name in asr_s else ""),
                      flush=True)
    np.save(args.cache / "longest.npy", longest if longest is not None else np.zeros(16000, np.float32))
    print("\nmethod       data        calls  DER(mean)  words(mean)  words(min)  count right  diar/ASR  peak RSS"
          "  interruptions (clean/mono)")
    for method, kinds in rows.items():
        rss = peak_rss(method, args.cache / "longest.npy")
        for kind, r in kinds.items():
            ratio = [x[4] / x[5] for x in r if x[5]]
            print(f"{method:12s} {kind:10s} {len(r):5d}  {np.mean([x[1] for x in r]):8.1%}  "
                  f"{np.mean([x[2] for x in r]):10.1%}  {min(x[2] for x in r):10.1%}  "
                  f"{sum(x[3] for x in r):5d}/{len(r):<5d}  " + (f"{np.mean(ratio):7.1%}" if ratio else "      -")
                  + f"  {rss:6.0f} MB  {sum(x[7][0] for x in r):5d}/{sum(x[7][1] for x in r)}")
    print(f"(benchmark process peak RSS with Whisper loaded: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
