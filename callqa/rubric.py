"""Rubric files: the pydantic models of the YAML format and the loader that reports every problem with its line.

The format is documented for QA teams in ``rubrics/README.md``. Keys beyond the issue-3 contract:

- ``match.all`` items may be lists of alternatives: ``all: [["date of birth", "birth date"], ["full name"]]``
  needs one phrase of every group.
- ``na_unless``: the criterion is ``na`` unless a condition is found in the call, either another criterion's
  phrases (``na_unless: {found: discloses_details}``) or phrases of its own
  (``na_unless: {speaker: customer, match: {any: ["problem"]}}``).
- ``scored: false`` marks a helper criterion (e.g. ``discloses_details``) that other criteria refer to with
  ``before`` or ``na_unless``; it is reported with outcome ``na`` and weight 0 and never changes a score.
- ``negation: ignore | respect`` (default respect) applies to ``expect: present`` only.

Durations are written with a unit: ``20s``, ``1.5m``; windows also accept percentages of the call: ``10%``.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import RubricError
from .metrics import METRICS

DEFAULT_RUBRIC_FILE = "clinic_helpdesk.yaml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_SECONDS_PER_UNIT = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0}


def parse_duration(value: object) -> float:
    """``"20s"`` / ``"1.5m"`` -> seconds. A bare number is refused: the unit must be explicit."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration; write it with a unit, e.g. 20s or 1.5m")
    return float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]


class WindowEdge(NamedTuple):
    amount: float
    percent: bool  # amount is a percentage of the call's duration, else seconds

    def seconds(self, duration_s: float) -> float:
        return duration_s * self.amount / 100.0 if self.percent else self.amount


def _parse_window_edge(value: object) -> WindowEdge:
    match = _PERCENT.match(value) if isinstance(value, str) else None
    if match:
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise ValueError(f"{value!r}: a percentage must be above 0% and at most 100%")
        return WindowEdge(percent, True)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a window; write seconds (20s, 1.5m) or a percentage (10%)") from None
    if seconds <= 0:
        raise ValueError(f"{value!r}: a window must be longer than 0 s")
    return WindowEdge(seconds, False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """``{first: 20s}`` or ``{last: 25%}``: only words starting inside this part of the call count."""

    first: WindowEdge | None = None
    last: WindowEdge | None = None

    @field_validator("first", "last", mode="before")
    @classmethod
    def _edge(cls, value: object) -> WindowEdge | None:
        return None if value is None else _parse_window_edge(value)

    @model_validator(mode="after")
    def _one_edge(self) -> "Window":
        if (self.first is None) == (self.last is None):
            raise ValueError("a window needs exactly one of `first` or `last`")
        return self

    def bounds(self, duration_s: float) -> tuple[float, float]:
        """[lo, hi) in seconds: a word counts when its start falls inside."""
        if self.first is not None:
            return 0.0, self.first.seconds(duration_s)
        assert self.last is not None  # _one_edge
        return duration_s - self.last.seconds(duration_s), float("inf")


def _phrase_list(value: object) -> object:
    if isinstance(value, list) and not value:
        raise ValueError("an empty list matches nothing; remove the key or add phrases")
    return value


def _phrase_groups(value: object) -> object:
    """``all`` items: a phrase, or a list of alternative phrases; normalised to a list of groups."""
    if not isinstance(value, list) or not value:
        raise ValueError("`all` needs a non-empty list of phrases (or of lists of alternative phrases)")
    groups = []
    for item in value:
        group = [item] if isinstance(item, str) else item
        if not isinstance(group, list) or not group or not all(isinstance(p, str) for p in group):
            raise ValueError(f"{item!r}: each `all` item must be a phrase or a non-empty list of phrases")
        groups.append(tuple(group))
    return groups


@functools.lru_cache(maxsize=1)
def _blank_vocab():
    import spacy

    return spacy.blank("en").vocab


def check_token_patterns(patterns: list[list[dict[str, Any]]], vocab=None) -> None:
    """Compile spaCy Matcher patterns with validation; raises ValueError naming the first bad pattern."""
    from spacy.errors import MatchPatternError
    from spacy.matcher import Matcher

    matcher = Matcher(vocab or _blank_vocab(), validate=True)
    for i, pattern in enumerate(patterns):
        try:
            matcher.add(f"p{i}", [pattern])
        except (MatchPatternError, ValueError, TypeError, KeyError) as exc:
            detail = " ".join(str(exc).split())
            raise ValueError(f"pattern {i} is not a valid spaCy Matcher pattern: {detail}") from None


class Match(_Strict):
    any: tuple[str, ...] = ()
    all: tuple[tuple[str, ...], ...] = ()
    patterns: tuple[tuple[dict[str, Any], ...], ...] = ()

    @field_validator("any", mode="before")
    @classmethod
    def _any(cls, value: object) -> object:
        return _phrase_list(value)

    @field_validator("all", mode="before")
    @classmethod
    def _all(cls, value: object) -> object:
        return _phrase_groups(value)

    @field_validator("patterns", mode="before")
    @classmethod
    def _patterns(cls, value: object) -> object:
        _phrase_list(value)
        if isinstance(value, list) and all(isinstance(p, list) and p and all(isinstance(t, dict) for t in p)
                                           for p in value):
            check_token_patterns(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> "Match":
        if not (self.any or self.all or self.patterns):
            raise ValueError("`match` needs at least one of `any`, `all` or `patterns`")
        for phrase in [*self.any, *(p for group in self.all for p in group)]:
            if not re.search(r"\w", phrase):
                raise ValueError(f"phrase {phrase!r} has no words")
        return self

    def phrases(self) -> list[str]:
        return [*self.any, *(p for group in self.all for p in group)]


class NaIf(_Strict):
    duration_under: float | None = None

    @field_validator("duration_under", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)


class Condition(_Strict):
    """``na_unless``: another criterion's phrases (``found``), or phrases of its own, must occur in the call."""

    found: str | None = None
    speaker: Literal["agent", "customer", "any"] = "any"
    window: Window | None = None
    match: Match | None = None
    fuzzy: float | None = Field(None, ge=0.0, le=1.0)
    negation: Literal["respect", "ignore"] = "respect"


class Criterion(_Strict):
    id: str = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    weight: float = Field(1.0, gt=0)
    scored: bool = True
    speaker: Literal["agent", "customer", "any"] = "any"
    window: Window | None = None
    expect: Literal["present", "absent"] = "present"
    match: Match | None = None
    fuzzy: float | None = Field(None, ge=0.0, le=1.0)
    negation: Literal["respect", "ignore"] | None = None
    before: str | None = None
    metric: str | None = None
    min: float | None = None
    max: float | None = None
    auto_fail: bool = False
    na_if: NaIf | None = None
    na_unless: Condition | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in METRICS:
            close = difflib.get_close_matches(value, METRICS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown metric {value!r}{hint}; known: {', '.join(sorted(METRICS))}")
        return value

    @property
    def title(self) -> str:
        return self.name or self.id


class Section(_Strict):
    id: str = Field(min_length=1)
    name: str | None = None
    weight: float = Field(1.0, gt=0)
    criteria: tuple[Criterion, ...] = Field(min_length=1)


class Rubric(_Strict):
    id: str = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    version: int = Field(1, ge=1)
    pass_mark: float = Field(80.0, ge=0, le=100)
    sections: tuple[Section, ...] = Field(min_length=1)

    _sha256: str | None = PrivateAttr(None)
    _source: str | None = PrivateAttr(None)
    _text: str | None = PrivateAttr(None)

    @property
    def sha256(self) -> str:
        """Hash of the file's bytes when loaded from a file, else of the validated content."""
        if self._sha256 is None:
            canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
            self._sha256 = hashlib.sha256(canonical).hexdigest()
        return self._sha256

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def text(self) -> str:
        """The YAML as written (stored with every rubric version), else the validated content as YAML."""
        if self._text is None:
            self._text = yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
        return self._text

    def criteria(self) -> list[tuple[Section, Criterion]]:
        return [(section, criterion) for section in self.sections for criterion in section.criteria]

    def criterion(self, criterion_id: str) -> Criterion:
        return next(c for _, c in self.criteria() if c.id == criterion_id)


# ---------------------------------------------------------------- loading with line numbers

Loc = tuple  # a location inside the document: ("sections", 0, "criteria", 2, "window")


def _format_path(path: Loc) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(rubric)"


def _node_lines(node: yaml.Node, path: Loc, lines: dict[Loc, int], problems: list[tuple[int, str]]) -> None:
    """Record the 1-based line of every key and list item; YAML silently keeps the last of duplicate keys."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append((line, f"{_format_path((*path, key))}: duplicate key {key!r}"))
            seen.add(key)
            lines[(*path, key)] = line
            _node_lines(value_node, (*path, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*path, i), lines, problems)


def _line_of(path: Loc, lines: dict[Loc, int]) -> int:
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


_ALL_KEYS = sorted({k for m in (Rubric, Section, Criterion, Match, Window, NaIf, Condition) for k in m.model_fields})


def _describe(error: Mapping[str, Any]) -> tuple[Loc, str]:
    # Pydantic adds the validator kind to loc for some errors; the document path is the str/int parts.
    path = tuple(p for p in error["loc"] if isinstance(p, int) or not p.startswith(("function-", "tagged-")))
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(path[-1]), _ALL_KEYS, n=1)
        return path, f"unknown key {path[-1]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return path, f"missing required key {path[-1]!r}"
    if kind == "too_short":
        return path, "needs at least one item"
    msg = msg.removeprefix("Value error, ")
    if kind not in ("value_error", "assertion_error") and not isinstance(error.get("input"), (dict, list)):
        msg += f" (got {error.get('input')!r})"
    return path, msg


def _cross_checks(data: dict) -> list[tuple[Loc, str]]:
    """Checks that span criteria or combine keys, run on the raw document so they report even when
    other parts fail validation."""
    problems: list[tuple[Loc, str]] = []
    criteria: dict[str, tuple[Loc, dict]] = {}
    section_ids: dict[str, Loc] = {}
    sections = data.get("sections")
    for si, section in enumerate(sections if isinstance(sections, list) else []):
        if not isinstance(section, dict):
            continue
        sid = section.get("id")
        if isinstance(sid, str):
            if sid in section_ids:
                problems.append(((("sections", si, "id")), f"duplicate section id {sid!r}"))
            section_ids.setdefault(sid, ("sections", si))
        items = section.get("criteria")
        for ci, crit in enumerate(items if isinstance(items, list) else []):
            if not isinstance(crit, dict):
                continue
            path = ("sections", si, "criteria", ci)
            cid = crit.get("id")
            if isinstance(cid, str):
                if cid in criteria:
                    first = _format_path(criteria[cid][0])
                    problems.append(((*path, "id"), f"duplicate criterion id {cid!r} (first used at {first})"))
                else:
                    criteria[cid] = (path, crit)
            problems += _combination_checks(path, crit)
    for cid, (path, crit) in criteria.items():
        condition = crit.get("na_unless")
        refs: list[tuple[Loc, Any]] = [((*path, "before"), crit.get("before"))]
        if isinstance(condition, dict):
            refs.append(((*path, "na_unless", "found"), condition.get("found")))
        for ref_path, ref in refs:
            if not isinstance(ref, str):
                continue
            if ref == cid:
                problems.append((ref_path, f"{ref!r} refers to the criterion itself"))
            elif ref not in criteria:
                close = difflib.get_close_matches(ref, list(criteria), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append((ref_path, f"no criterion with id {ref!r} in this rubric{hint}"))
            elif "match" not in criteria[ref][1]:
                problems.append((ref_path, f"{ref!r} is a metric criterion; it must name a criterion with `match`"))
    return problems


_PHRASE_ONLY = ("speaker", "window", "expect", "match", "fuzzy", "negation", "before")


def _combination_checks(path: Loc, crit: dict) -> list[tuple[Loc, str]]:
    problems = []
    if "metric" in crit:
        problems += [((*path, k), f"`{k}` does not apply to a metric criterion") for k in _PHRASE_ONLY if k in crit]
        if "min" not in crit and "max" not in crit:
            problems.append(((*path, "metric"), "a metric criterion needs `min` and/or `max`"))
        low, high = crit.get("min"), crit.get("max")
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            problems.append(((*path, "min"), f"min {low} is above max {high}"))
    else:
        if "match" not in crit:
            problems.append((path, "a criterion needs `match` (phrases) or `metric`"))
        problems += [((*path, k), f"`{k}` only applies to a metric criterion") for k in ("min", "max") if k in crit]
        if crit.get("expect") == "absent":
            problems += [((*path, k), f"`{k}` only applies to expect: present") for k in ("negation", "before")
                         if k in crit]
    if crit.get("scored") is False and crit.get("auto_fail") is True:
        problems.append(((*path, "auto_fail"), "an unscored helper criterion (scored: false) cannot auto-fail"))
    condition = crit.get("na_unless")
    if isinstance(condition, dict) and ("found" in condition) == ("match" in condition):
        problems.append(((*path, "na_unless"), "`na_unless` needs exactly one of `found` (a criterion id) or `match`"))
    return problems


def rubric_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parse_rubric(text: str, source: str = "<rubric>") -> Rubric:
    """Validate rubric YAML; raises RubricError with one ``FILE:LINE: path: problem`` line per problem."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        context = f" ({exc.context} started on line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        raise RubricError([f"{source}:{line}: (yaml syntax): {exc.problem or exc}{context}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        found = "empty" if data is None else f"a {type(data).__name__}"
        raise RubricError([f"{source}:1: (rubric): a rubric must be a YAML mapping with id, sections, ...; "
                           f"the file is {found}"])
    lines: dict[Loc, int] = {}
    found_problems: list[tuple[int, str]] = []
    _node_lines(node, (), lines, found_problems)
    located = list(_cross_checks(data))
    rubric = None
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as exc:
        described = [_describe(error) for error in exc.errors()]
        # A list whose items all failed is also reported as too short: only the items' own problems count.
        located += [(path, msg) for (path, msg), error in zip(described, exc.errors())
                    if error["type"] != "too_short" or not any(p[:len(path)] == path and p != path for p, _ in described)]
    found_problems += [(_line_of(path, lines), f"{_format_path(path)}: {msg}") for path, msg in located]
    if found_problems:
        unique = sorted(set(found_problems))
        raise RubricError([f"{source}:{line}: {message}" for line, message in unique])
    assert rubric is not None  # a failed validation leaves problems
    rubric._text = text
    return rubric


def load_rubric(path: str | Path) -> Rubric:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RubricError([f"{path}:1: (rubric): cannot read the file: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RubricError([f"{path}:1: (rubric): not UTF-8 text ({exc.reason})"]) from None
    rubric = parse_rubric(text, str(path))
    rubric._sha256 = hashlib.sha256(raw).hexdigest()
    rubric._source = str(path)
    return rubric


def load_rubrics(paths: Iterable[str | Path]) -> tuple[Rubric, ...]:
    """The rubrics a run scores against: the given files, or the shipped default when none is given."""
    return tuple(load_rubric(path) for path in list(paths) or [default_rubric_path()])


def default_rubric_path() -> Path:
    """The shipped clinic rubric: package data when installed, else the repository's ``rubrics/`` folder."""
    packaged = Path(__file__).parent / "rubrics" / DEFAULT_RUBRIC_FILE
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "rubrics" / DEFAULT_RUBRIC_FILE
