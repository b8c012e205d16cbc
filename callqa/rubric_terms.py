"""The parts of a rubric criterion: durations, windows, phrase matches, conditions; and the base of every rubric
model, which checks rules across its keys however it is built (``_Ruled``)."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

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


Problems = list[tuple[tuple, str]]  # (path inside the model, message)
RULE_ERROR = "rubric_rule"  # the pydantic error type of a broken rule


def _get(value: object, key: str) -> Any:
    """A key of what was written (a mapping) or a field of a built model; None when absent."""
    return value.get(key) if isinstance(value, Mapping) else getattr(value, key, None)


def _rule_error(loc: tuple, message: str) -> dict:
    # The message goes in as context: a template would read braces in a user's id as placeholders.
    return {"type": PydanticCustomError(RULE_ERROR, "{message}", {"message": message}), "loc": loc, "input": None}


def _located(title: str, problems: Problems, errors: list | None = None) -> ValidationError:
    """One ValidationError of ``errors`` (pydantic's, as ``errors()`` lists them) and the rules' ``problems``."""
    details: list[Any] = [_rule_error(e["loc"], e["msg"]) if e["type"] == RULE_ERROR else e for e in errors or []]
    return ValidationError.from_exception_data(title, details + [_rule_error(*p) for p in problems])


def _printable(value: str) -> str:
    control = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if control is not None:  # a NUL breaks the views' SQL; an escape sequence would reach the terminal
        raise ValueError(f"{value!r}: an id cannot hold control characters such as {control!r}")
    return value


Id = Annotated[str, Field(min_length=1), AfterValidator(_printable)]  # of a rubric, section or criterion


class _Ruled(_Strict):
    """A model with rules that span its keys (``_rules``), checked however the model is built.

    When the fields themselves fail, the rules are checked on what was written as well, so that one pass reports
    every problem of a file; they must therefore accept raw values of any type.
    """

    @classmethod
    def _rules(cls, value: object) -> Problems:
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: Any, handler: Any) -> Any:
        try:
            model = handler(data)
        except ValidationError as exc:
            problems = cls._rules(data) if isinstance(data, Mapping) else []
            if not problems:
                raise
            raise _located(exc.title, problems, exc.errors()) from None
        problems = cls._rules(model)
        if problems:
            raise _located(cls.__name__, problems)
        return model


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


class Condition(_Ruled):
    """``na_unless``: another criterion's phrases (``found``), or phrases of its own, must occur in the call."""

    found: str | None = None
    speaker: Literal["agent", "customer", "any"] = "any"
    window: Window | None = None
    match: Match | None = None
    fuzzy: float | None = Field(None, ge=0.0, le=1.0)
    negation: Literal["respect", "ignore"] = "respect"

    @classmethod
    def _rules(cls, value: object) -> Problems:
        if (_get(value, "found") is None) == (_get(value, "match") is None):
            return [((), "`na_unless` needs exactly one of `found` (a criterion id) or `match`")]
        return []
