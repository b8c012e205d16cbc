"""Recall and false redactions of callqa.redact on its own PHI test set (tests/data/phi) and on 30 real Harper
Valley calls (their human transcripts, and the same calls rendered to audio and recognised by Whisper), and its
per-utterance cost.

Usage: python benchmarks/phi_eval.py [--verbose] [--no-asr]

The Harper Valley audio and transcripts are rendered and recognised once and cached (see phi_calls.py);
``--no-asr`` leaves that set out where the cache is empty and Piper is not installed.

Span-level scoring, label-agnostic and per label:
- a gold mention is *found* when every letter and digit of it lies inside predicted spans (a partial hit
  still leaks part of the value, so it counts as a miss); per label, those spans must also carry its label;
- a predicted span is *correct* when it overlaps a gold mention (per label: one of the same label).
The sample-call scripts (sample_calls/scripts/*.yaml) are added, each as one call, where their PHI is listed
(tests/data/phi/sample_scripts.yaml, or a ``phi:`` mapping in the script; see ``load_script_cases``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import phi_calls  # noqa: E402

from callqa.redact.conversation import Turn  # noqa: E402

PHI_DIR = ROOT / "tests" / "data" / "phi"
PHI_SETS = (PHI_DIR / "mentions.yaml", PHI_DIR / "heldout.yaml")
SCRIPT_PHI = PHI_DIR / "sample_scripts.yaml"  # gold PHI of the sample-call scripts, and their allow-list
SAMPLE_SCRIPTS = ROOT / "sample_calls" / "scripts"
RECALL_TARGET = 0.98
FALSE_REDACTION_TARGET = 0.05  # placeholders over no PHI, of all placeholders
PRECISION_TARGET = 1 - FALSE_REDACTION_TARGET
ORGANISATION = ["Harper Valley National Bank"]  # the bank's config of the Harper Valley calls
_MARK = re.compile(r"\[\[(.+?)\|([A-Z]+)\]\]")


class Gold(NamedTuple):
    start: int
    end: int
    label: str


class Case(NamedTuple):
    text: str
    gold: tuple[Gold, ...]
    origin: str
    call: str | None = None  # utterances of one call are redacted together (names found once count everywhere)
    turn: tuple | None = None  # (speaker, start, end) where the call's timing is known


def parse_marked(marked: str, origin: str) -> Case:
    """``"call [[five five five|PHONE]]"`` -> the plain text and its gold spans."""
    text, gold, pos = [], [], 0
    length = 0
    for m in _MARK.finditer(marked):
        before = marked[pos : m.start()]
        text.append(before)
        length += len(before)
        gold.append(Gold(length, length + len(m.group(1)), m.group(2)))
        text.append(m.group(1))
        length += len(m.group(1))
        pos = m.end()
    text.append(marked[pos:])
    return Case("".join(text), tuple(gold), origin)


def load_cases(sets: tuple[Path, ...] = PHI_SETS, scripts: Path = SAMPLE_SCRIPTS) -> list[Case]:
    cases = []
    for file in sets:
        sections = yaml.safe_load(file.read_text(encoding="utf-8"))
        cases += [parse_marked(s, f"{file.name}:{name}") for name, items in sections.items() for s in items]
    return cases + load_script_cases(scripts)


def allow_list() -> list[str]:
    return yaml.safe_load(SCRIPT_PHI.read_text(encoding="utf-8"))["allow_list"]


def _script_phi(scripts: Path, annotations: Path) -> dict[Path, dict]:
    """Script path -> {VALUE: LABEL}: the script's own ``phi`` mapping, else the one in ``annotations``."""
    annotated = yaml.safe_load(annotations.read_text(encoding="utf-8"))["scripts"] if annotations.exists() else {}
    phi = {}
    for path in sorted(scripts.glob("*.yaml")) if scripts.is_dir() else ():
        script = yaml.safe_load(path.read_text(encoding="utf-8"))
        values = script.get("phi") if isinstance(script, dict) and "phi" in script else annotated.get(path.name)
        if values is not None:  # {} is a script annotated as holding no PHI
            phi[path] = values
    return phi


def _gold_in(text: str, values: dict) -> tuple[Gold, ...]:
    gold: list[Gold] = []
    for value, label in sorted(values.items(), key=lambda item: -len(str(item[0]))):
        for m in re.finditer(rf"(?<!\w){re.escape(str(value))}(?!\w)", text):
            if not any(g.start < m.end() and m.start() < g.end for g in gold):  # "Margaret" in "Margaret Ellis"
                gold.append(Gold(m.start(), m.end(), label))
    return tuple(sorted(gold))


def load_script_cases(scripts: Path = SAMPLE_SCRIPTS, annotations: Path = SCRIPT_PHI) -> list[Case]:
    """The turns of every sample-call script whose PHI is listed (in the script or in ``annotations``).

    Unlisted scripts are left out: unannotated, their PHI would count as false positives.
    """
    cases = []
    for path, values in _script_phi(scripts, annotations).items():
        turns = yaml.safe_load(path.read_text(encoding="utf-8")).get("turns", [])
        texts = [t.get("agent") or t.get("customer") for t in turns if isinstance(t, dict)]
        cases += [Case(text, _gold_in(text, values), path.name, call=path.name) for text in texts if text]
    return cases


def script_summary(scripts: Path = SAMPLE_SCRIPTS, annotations: Path = SCRIPT_PHI) -> str:
    if not scripts.is_dir():
        return f"sample-call scripts: none yet ({scripts} does not exist)"
    listed = len(_script_phi(scripts, annotations))
    return f"sample-call scripts: {listed} of {len(list(scripts.glob('*.yaml')))} with their PHI listed"


def harper_valley_text_cases() -> list[Case]:
    """The labelled human transcripts, one case per segment, timed as spoken."""
    return [Case(seg.text, tuple(Gold(*g) for g in seg.gold), f"{sid}:{seg.index}", call=sid,
                 turn=(seg.speaker, seg.start, seg.start + 0.5))
            for sid, segments in phi_calls.load_calls().items() for seg in segments]


def harper_valley_asr_cases() -> list[Case]:
    """The same calls rendered to audio (cached) and recognised by the pipeline's Transcriber."""
    calls = phi_calls.load_calls()
    phi_calls.render_missing(calls)
    cases = []
    for sid, transcript in phi_calls.transcripts(calls).items():
        for u, gold in zip(transcript.utterances, phi_calls.asr_gold(calls[sid], transcript)):
            cases.append(Case(u.text, tuple(Gold(*g) for g in gold), f"{sid}@{u.start:.1f}s", call=f"asr:{sid}",
                              turn=(u.speaker, u.start, u.end)))
    if not any(case.gold for case in cases):  # the alignment found no speaker named as in the reference
        raise SystemExit("Harper Valley ASR set: no gold mention aligned to the transcripts (speakers named?)")
    return cases


def predict(redactor, cases: list[Case]) -> list[list]:
    """Spans per case: single sentences one by one (batched), a script's turns together as one call."""
    out: list[list | None] = [None] * len(cases)
    groups: dict[str | None, list[int]] = {}
    for i, case in enumerate(cases):
        groups.setdefault(case.call, []).append(i)
    for call, indexes in groups.items():
        texts = [cases[i].text for i in indexes]
        timed = all(cases[i].turn is not None for i in indexes)
        turns = [Turn(*cases[i].turn, cases[i].text) for i in indexes] if timed else None
        found = redactor.find_many(texts) if call is None else redactor.find_call(texts, turns=turns)
        for i, spans in zip(indexes, found):
            out[i] = spans
    return out


class Scores(NamedTuple):
    found: Counter  # label -> gold mentions fully covered (label-agnostic)
    found_labelled: Counter  # label -> covered by spans of the same label
    gold: Counter  # label -> gold mentions
    correct: Counter  # label -> predicted spans overlapping any gold mention
    correct_labelled: Counter  # label -> predicted spans overlapping gold of the same label
    predicted: Counter  # label -> predicted spans
    misses: list[str]
    false_positives: list[str]
    mislabelled: list[str]

    @property
    def recall(self) -> float:
        return sum(self.found.values()) / max(1, sum(self.gold.values()))

    @property
    def precision(self) -> float:
        return sum(self.correct.values()) / max(1, sum(self.predicted.values()))


def _alnum_positions(text: str, start: int, end: int) -> set[int]:
    return {i for i in range(start, end) if text[i].isalnum()}


def score(cases: list[Case], predictions: list[list]) -> Scores:
    s = Scores(Counter(), Counter(), Counter(), Counter(), Counter(), Counter(), [], [], [])
    for case, spans in zip(cases, predictions):
        for g in case.gold:
            s.gold[g.label] += 1
            needed = _alnum_positions(case.text, g.start, g.end)
            covering = [p for p in spans if p.start < g.end and g.start < p.end]
            covered = set().union(*(_alnum_positions(case.text, p.start, p.end) for p in covering))
            if needed <= covered:
                s.found[g.label] += 1
                if all(p.label == g.label for p in covering):
                    s.found_labelled[g.label] += 1
            else:
                s.misses.append(f"{g.label}: {case.text[g.start:g.end]!r} in {case.text!r} ({case.origin})")
        for p in spans:
            s.predicted[p.label] += 1
            overlapped = [g for g in case.gold if p.start < g.end and g.start < p.end]
            if overlapped:
                s.correct[p.label] += 1
                if any(g.label == p.label for g in overlapped):
                    s.correct_labelled[p.label] += 1
                else:
                    s.mislabelled.append(f"{p.label} for {overlapped[0].label}: {case.text[p.start:p.end]!r}")
            else:
                s.false_positives.append(
                    f"{p.label}: {case.text[p.start:p.end]!r} in {case.text!r} ({p.source}, {case.origin})"
                )
    return s


def report(s: Scores) -> str:
    predicted = sum(s.predicted.values())
    lines = [
        f"recall    {s.recall:6.1%}  ({sum(s.found.values())}/{sum(s.gold.values())} gold mentions)"
        f"  target >= {RECALL_TARGET:.0%}",
        f"false redactions {1 - s.precision:6.1%}  ({predicted - sum(s.correct.values())}/{predicted} placeholders"
        f" over no PHI)  target <= {FALSE_REDACTION_TARGET:.0%}",
        "label    gold  recall  recall(label)  predicted  precision(label)",
    ]
    for label in sorted(set(s.gold) | set(s.predicted)):
        lines.append(
            f"{label:<8}{s.gold[label]:>5}  {s.found[label] / max(1, s.gold[label]):6.1%}"
            f"  {s.found_labelled[label] / max(1, s.gold[label]):13.1%}"
            f"  {s.predicted[label]:>9}  {s.correct_labelled[label] / max(1, s.predicted[label]):16.1%}"
        )
    return "\n".join(lines)


def timing(redactor, cases: list[Case], repeats: int = 3) -> dict[str, float]:
    """Milliseconds per utterance: the analysis stage's parse (with the NER redaction needs, and without), and
    redaction's detection on the reused Docs, of which the conversation pass alone."""
    from callqa.redact.conversation import find_in_conversation

    calls: dict[str | None, list[Case]] = {}
    for case in cases:
        calls.setdefault(case.call, []).append(case)
    texts = [c.text for c in cases]
    ner_off = [p for p in redactor.nlp.pipe_names if p == "ner"]
    best = dict.fromkeys(("spaCy parse, NER included", "spaCy parse, no NER", "detection on reused Docs",
                          "  of which the conversation pass"), 1e9)
    for _ in range(repeats):
        t0 = time.perf_counter()
        docs = iter(list(redactor.nlp.pipe(texts)))
        t1 = time.perf_counter()
        list(redactor.nlp.pipe(texts, disable=ner_off))
        t2 = time.perf_counter()
        for group in calls.values():
            call_docs = [next(docs) for _ in group]
            redactor.find_call([c.text for c in group], call_docs, [Turn(*c.turn, c.text) for c in group]
                               if all(c.turn for c in group) else None)
        t3 = time.perf_counter()
        for group in calls.values():
            find_in_conversation([Turn(*(c.turn or ("unknown", 0.0, 0.0)), c.text) for c in group])
        t4 = time.perf_counter()
        for key, seconds in zip(best, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            best[key] = min(best[key], 1000 * seconds / len(texts))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="list misses and false positives")
    parser.add_argument("--no-asr", action="store_true", help="leave out the rendered Harper Valley calls")
    args = parser.parse_args(argv)
    from callqa.nlp import load_nlp
    from callqa.redact import Redactor

    nlp = load_nlp()
    sets = [("own test set", Redactor(nlp, allow_list=allow_list()), load_cases()),
            ("Harper Valley, human transcripts", Redactor(nlp, allow_list=ORGANISATION), harper_valley_text_cases())]
    if not args.no_asr:
        sets.append(("Harper Valley, rendered and recognised by Whisper", sets[1][1], harper_valley_asr_cases()))
    ok = True
    for name, redactor, cases in sets:
        scores = score(cases, predict(redactor, cases))
        print(f"\n== {name}: {len(cases)} utterances" + (f"; {script_summary()}" if name == "own test set" else ""))
        print(report(scores))
        if args.verbose:
            print("\nmisses:", *scores.misses, sep="\n  ")
            print("\nfalse positives:", *scores.false_positives, sep="\n  ")
            print("\nwrong label:", *scores.mislabelled, sep="\n  ")
        ok = ok and scores.recall >= RECALL_TARGET and scores.precision >= PRECISION_TARGET
    print("\ncost (best of 3, ms per utterance; one run, so compare the rows, not other runs):")
    for name, ms in timing(sets[-1][1], sets[-1][2]).items():
        print(f"  {name:<34}{ms:7.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
