"""The rubric format as pydantic models: every rule of a rubric lives on them, so every way of building a ``Rubric``
(a file, ``Rubric.model_validate``, the constructor) is checked the same.

A criterion is a phrase criterion (``match``) or a metric criterion (``metric``): a union told apart by the
``metric`` key. Rules that combine keys (``_rules``) are checked on the model they belong to: a criterion's on
the criterion, the references between criteria and the section ids on the rubric. The loader with line numbers
is ``rubric.py``; the format is documented for QA teams in ``rubrics/README.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Discriminator, Field, PrivateAttr, Tag, field_validator

from .metrics import METRICS
from .rubric_terms import Condition, Id, Match, NaIf, Problems, Window, _get, _Ruled, _Strict
from .views import RESERVED_SECTION_IDS, section_column
from .yaml_lines import format_path


class _CriterionBase(_Ruled):
    id: Id
    name: str | None = None
    description: str | None = None
    weight: float = Field(1.0, gt=0)
    scored: bool = True
    auto_fail: bool = False
    na_if: NaIf | None = None
    na_unless: Condition | None = None

    @classmethod
    def _rules(cls, value: object) -> Problems:
        if _get(value, "scored") is False and _get(value, "auto_fail") is True:
            return [(("auto_fail",), "an unscored helper criterion (scored: false) cannot auto-fail")]
        return []

    @property
    def title(self) -> str:
        return self.name or self.id


class PhraseCriterion(_CriterionBase):
    """Passes when its phrases are said (``expect: present``) or not said (``absent``)."""

    match: Match
    speaker: Literal["agent", "customer", "any"] = "any"
    window: Window | None = None
    expect: Literal["present", "absent"] = "present"
    fuzzy: float | None = Field(None, ge=0.0, le=1.0)
    negation: Literal["respect", "ignore"] | None = None
    before: str | None = None

    @classmethod
    def _rules(cls, value: object) -> Problems:
        problems = super()._rules(value)
        if _get(value, "expect") == "absent":
            problems += [((key,), f"`{key}` only applies to expect: present") for key in ("negation", "before")
                         if _get(value, key) is not None]
        return problems


class MetricCriterion(_CriterionBase):
    """Passes when a call metric lies within ``min``/``max``."""

    metric: str
    min: float | None = None
    max: float | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            close = difflib.get_close_matches(value, METRICS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown metric {value!r}{hint}; known: {', '.join(sorted(METRICS))}")
        return value

    @classmethod
    def _rules(cls, value: object) -> Problems:
        problems = super()._rules(value)
        low, high = _get(value, "min"), _get(value, "max")
        if low is None and high is None:
            problems.append((("metric",), "a metric criterion needs `min` and/or `max`"))
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if numbers and low > high:
            problems.append((("min",), f"min {low} is above max {high}"))
        return problems


PHRASE, METRIC = "phrase criterion", "metric criterion"  # the union's tags; pydantic puts them in error paths


def criterion_kind(value: object) -> str:
    """A criterion with a ``metric`` key is a metric criterion; any other is a phrase criterion."""
    if isinstance(value, Mapping):
        return METRIC if "metric" in value else PHRASE
    return METRIC if isinstance(value, MetricCriterion) else PHRASE


Criterion = Annotated[Union[Annotated[PhraseCriterion, Tag(PHRASE)], Annotated[MetricCriterion, Tag(METRIC)]],
                      Discriminator(criterion_kind)]


class Section(_Strict):
    id: Id
    name: str | None = None
    weight: float = Field(1.0, gt=0)
    criteria: tuple[Criterion, ...] = Field(min_length=1)


def _items(value: object, key: str) -> list[tuple[int, Any]]:
    items = _get(value, key)
    return list(enumerate(items)) if isinstance(items, (list, tuple)) else []


def _section_problems(value: object) -> Problems:
    """Section ids name columns of agent_scorecards (``avg_<id>``): unique whatever their letter case (DuckDB
    ignores it), never a reserved name."""
    problems: Problems = []
    columns: dict[str, str] = {}
    for si, section in _items(value, "sections"):
        sid = _get(section, "id")
        if not isinstance(sid, str) or not sid:
            continue
        loc = ("sections", si, "id")
        column = section_column(sid)
        first = columns.get(column.lower())
        if sid.lower() in RESERVED_SECTION_IDS:
            problems.append((loc, f"section id {sid!r} is reserved (a column of the database views); "
                                  "choose another"))
        elif first == sid:
            problems.append((loc, f"duplicate section id {sid!r}"))
        elif first is not None and first.lower() == sid.lower():
            problems.append((loc, f"section id {sid!r} differs from section {first!r} only in letter case, "
                                  "which DuckDB column names ignore"))
        elif first is not None:
            problems.append((loc, f"section id {sid!r} would share the column {column} with section {first!r}"))
        columns.setdefault(column.lower(), sid)
    return problems


def _reference_problems(value: object) -> Problems:
    """Criterion ids unique across the rubric; ``before`` and ``na_unless.found`` name another phrase criterion."""
    problems: Problems = []
    criteria: dict[str, tuple[tuple, Any]] = {}
    for si, section in _items(value, "sections"):
        for ci, criterion in _items(section, "criteria"):
            cid = _get(criterion, "id")
            if not isinstance(cid, str):
                continue
            loc = ("sections", si, "criteria", ci)
            if cid in criteria:
                first = format_path(criteria[cid][0], "(rubric)")
                problems.append(((*loc, "id"), f"duplicate criterion id {cid!r} (first used at {first})"))
            else:
                criteria[cid] = (loc, criterion)
    for cid, (loc, criterion) in criteria.items():
        if not isinstance(criterion, (Mapping, BaseModel)):
            continue
        refs: list[tuple[tuple, Any]] = [((*loc, "before"), _get(criterion, "before"))]
        condition = _get(criterion, "na_unless")
        if isinstance(condition, (Mapping, BaseModel)):
            refs.append(((*loc, "na_unless", "found"), _get(condition, "found")))
        for ref_loc, ref in refs:
            if not isinstance(ref, str):
                continue
            if ref == cid:
                problems.append((ref_loc, f"{ref!r} refers to the criterion itself"))
            elif ref not in criteria:
                close = difflib.get_close_matches(ref, list(criteria), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append((ref_loc, f"no criterion with id {ref!r} in this rubric{hint}"))
            elif criterion_kind(criteria[ref][1]) == METRIC:
                problems.append((ref_loc, f"{ref!r} is a metric criterion; it must name a criterion with `match`"))
    return problems


_VERSION_SUFFIX = re.compile(r"@\d+$")


class Rubric(_Ruled):
    id: Id
    name: str | None = None
    description: str | None = None
    version: int = Field(1, ge=1)
    pass_mark: float = Field(80.0, ge=0, le=100)
    sections: tuple[Section, ...] = Field(min_length=1)

    _sha256: str | None = PrivateAttr(None)
    _source: str | None = PrivateAttr(None)
    _text: str | None = PrivateAttr(None)

    @field_validator("id")
    @classmethod
    def _selectable(cls, value: str) -> str:
        if _VERSION_SUFFIX.search(value):
            raise ValueError(f"{value!r}: a rubric id must not end in @<number>, which `--rubric ID@VERSION` "
                             "reads as a version")
        return value

    @classmethod
    def _rules(cls, value: object) -> Problems:
        return _section_problems(value) + _reference_problems(value)

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


MODELS = (Rubric, Section, PhraseCriterion, MetricCriterion, Match, Window, NaIf, Condition)
