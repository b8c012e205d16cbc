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
import hashlib
from pathlib import Path
from typing import Iterable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .errors import RubricError
from .inputfiles import MAX_YAML_BYTES, UnreadableFile, read_limited
from .rubric_models import METRIC, MODELS, PHRASE, Criterion, MetricCriterion, PhraseCriterion, Rubric, Section
from .rubric_terms import RULE_ERROR, Condition, Match, NaIf, Window, WindowEdge, check_token_patterns, parse_duration
from .yaml_lines import Loc, YamlError, format_path, parse_yaml

__all__ = ["Condition", "Criterion", "Match", "MetricCriterion", "NaIf", "PhraseCriterion", "Rubric", "Section",
           "Window", "WindowEdge", "check_token_patterns", "parse_duration", "parse_rubric", "load_rubric",
           "load_rubrics", "default_rubric_path", "rubric_sha256", "DEFAULT_RUBRIC_FILE"]

DEFAULT_RUBRIC_FILE = "clinic_helpdesk.yaml"
_ALL_KEYS = sorted({key for model in MODELS for key in model.model_fields})
_KEYS_OF = {PHRASE: set(PhraseCriterion.model_fields), METRIC: set(MetricCriterion.model_fields)}


def _document_path(loc: tuple) -> tuple[Loc, str | None]:
    """Pydantic's error location as a path in the document, and the criterion kind it passed through, if any.

    Pydantic adds the validator kind to some locations and the union's tag after a criterion's index."""
    path: list = []
    kind = None
    for part in loc:
        if part in _KEYS_OF and path and isinstance(path[-1], int):
            kind = part
        elif isinstance(part, int) or not part.startswith(("function-", "tagged-")):
            path.append(part)
    return tuple(path), kind


def _describe(error: ErrorDetails) -> tuple[Loc, str]:
    path, kind = _document_path(error["loc"])
    error_type, msg = error["type"], error["msg"]
    if error_type == "extra_forbidden":
        key = str(path[-1])
        if kind == METRIC and key in _KEYS_OF[PHRASE]:
            return path, f"`{key}` does not apply to a metric criterion"
        if kind == PHRASE and key in _KEYS_OF[METRIC]:
            return path, f"`{key}` only applies to a metric criterion"
        close = difflib.get_close_matches(key, _ALL_KEYS, n=1)
        return path, f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if error_type == "missing":
        if kind == PHRASE and path[-1] == "match":
            return path[:-1], "a criterion needs `match` (phrases) or `metric`"
        return path, f"missing required key {path[-1]!r}"
    if error_type == "too_short":
        return path, "needs at least one item"
    if error_type in ("model_type", "model_attributes_type", "dict_type"):
        return path, f"needs keys and values (a YAML mapping), not {type(error.get('input')).__name__}"
    msg = msg.removeprefix("Value error, ")
    if error_type not in ("value_error", "assertion_error", RULE_ERROR) and \
            not isinstance(error.get("input"), (dict, list)):
        msg += f" (got {error.get('input')!r})"
    return path, msg


def validation_problems(exc: ValidationError) -> list[tuple[Loc, str]]:
    """Each problem once, located; a list whose items all failed is also reported as too short by pydantic:
    only the items' own problems count."""
    described = [_describe(error) for error in exc.errors()]
    return [(path, msg) for (path, msg), error in zip(described, exc.errors())
            if error["type"] != "too_short" or not any(p[:len(path)] == path and p != path for p, _ in described)]


def parse_rubric(text: str, source: str = "<rubric>") -> Rubric:
    """Validate rubric YAML; raises RubricError with one ``FILE:LINE: path: problem`` line per problem."""
    try:
        document = parse_yaml(text)
    except YamlError as exc:
        raise RubricError([f"{source}:{exc.line}: ({exc.kind}): {exc.problem}"]) from None
    data = document.data
    if not isinstance(data, dict):
        found = "empty" if data is None else f"a {type(data).__name__}"
        raise RubricError([f"{source}:1: (rubric): a rubric must be a YAML mapping with id, sections, ...; "
                           f"the file is {found}"])
    problems = [(line, f"{format_path(path, '(rubric)')}: duplicate key {path[-1]!r}")
                for path, line in document.duplicates]
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as exc:
        problems += [(document.line_of(path), f"{format_path(path, '(rubric)')}: {msg}")
                     for path, msg in validation_problems(exc)]
    if problems:
        raise RubricError([f"{source}:{line}: {message}" for line, message in sorted(set(problems))])
    rubric._text = text
    return rubric


def load_rubric(path: str | Path) -> Rubric:
    path = Path(path)
    try:
        raw = read_limited(path, MAX_YAML_BYTES)
    except UnreadableFile as exc:
        raise RubricError([f"{path}:1: (rubric): {exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RubricError([f"{path}:1: (rubric): not UTF-8 text ({exc.reason})"]) from None
    rubric = parse_rubric(text, str(path))
    rubric._sha256 = hashlib.sha256(raw).hexdigest()
    rubric._source = str(path)
    return rubric


def rubric_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_rubrics(paths: Iterable[str | Path]) -> tuple[Rubric, ...]:
    """The rubrics a run scores against: the given files, or the shipped default when none is given."""
    return tuple(load_rubric(path) for path in list(paths) or [default_rubric_path()])


def default_rubric_path() -> Path:
    """The shipped clinic rubric: package data when installed, else the repository's ``rubrics/`` folder."""
    packaged = Path(__file__).parent / "rubrics" / DEFAULT_RUBRIC_FILE
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "rubrics" / DEFAULT_RUBRIC_FILE
