"""Rubric validation: every problem reported as FILE:LINE: path: message; the shipped rubrics are valid."""

from __future__ import annotations

import hashlib

import pytest

from callqa.errors import EXIT_USAGE, RubricError
from callqa.rubric import default_rubric_path, load_rubric, parse_rubric, rubric_sha256
from rubric_helpers import RUBRICS, SHIPPED

BAD = RUBRICS / "bad"


def problems_of(path) -> list[str]:
    with pytest.raises(RubricError) as caught:
        load_rubric(path)
    assert caught.value.exit_code == EXIT_USAGE
    return caught.value.problems


def test_every_problem_is_listed_with_file_line_and_path():
    path = BAD / "many_problems.yaml"
    found = problems_of(path)
    expected = [
        (5, "colour", "unknown key 'colour'"),
        (11, "sections[0].criteria[0].window.first", "'20x' is not a window"),
        (13, "sections[0].criteria[1].id", "duplicate criterion id 'greeting'"),
        (17, "sections[0].criteria[2].before", "no criterion with id 'discloses_details'"),
        (19, "sections[0].criteria[3].weight", "greater than 0"),
        (22, "sections[0].criteria[4].fuzy", "did you mean 'fuzzy'"),
        (25, "sections[0].criteria[5].weight", "valid number"),
        (28, "sections[0].criteria[6].metric", "unknown metric 'agent_interuptions'"),
        (32, "sections[0].criteria[7].match.patterns", "not a valid spaCy Matcher pattern"),
        (34, "sections[0].criteria[8].window.last", "at most 100%"),
    ]
    assert len(found) == len(expected), "\n".join(found)
    for problem, (line, where, what) in zip(found, expected):
        assert problem.startswith(f"{path}:{line}: {where}: "), problem
        assert what in problem


def test_structure_problems():
    path = BAD / "structure.yaml"
    found = "\n".join(problems_of(path))
    for line, where, what in [
        (2, "id", "missing required key 'id'"),
        (4, "pass_mark", "less than or equal to 100"),
        (10, "sections[0].criteria[0].metric", "needs `min` and/or `max`"),
        (11, "sections[0].criteria[0].speaker", "does not apply to a metric criterion"),
        (14, "sections[0].criteria[1].speaker", "duplicate key 'speaker'"),
        (16, "sections[0].criteria[2]", "needs `match` (phrases) or `metric`"),
        (17, "sections[0].criteria[2].expect", "'present' or 'absent'"),
        (19, "sections[1].criteria", "at least one item"),
    ]:
        assert f"{path}:{line}: {where}: " in found and what in found, (line, found)


def test_yaml_syntax_error_gives_the_line():
    path = BAD / "syntax_error.yaml"
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:9: (yaml syntax): ")
    assert "line 8" in problem


@pytest.mark.parametrize("text, expected", [
    ("", "the file is empty"),
    ("- a\n- b\n", "the file is a list"),
])
def test_not_a_mapping(text, expected):
    with pytest.raises(RubricError, match=expected):
        parse_rubric(text, "r.yaml")


def test_missing_file_is_a_rubric_error(tmp_path):
    [problem] = problems_of(tmp_path / "nope.yaml")
    assert problem.startswith(f"{tmp_path / 'nope.yaml'}:1: ")


def test_conditional_keys_are_checked():
    text = """\
id: t
sections:
  - id: s
    criteria:
      - id: a
        match: {any: ["x"]}
        na_unless: {found: a}
      - id: b
        metric: hold_count
        max: 1
      - id: c
        match: {any: ["y"]}
        before: b
        na_unless: {found: b, match: {any: ["z"]}}
      - id: d
        scored: false
        auto_fail: true
        expect: absent
        negation: ignore
        match: {any: ["w"]}
"""
    with pytest.raises(RubricError) as caught:
        parse_rubric(text, "r.yaml")
    found = "\n".join(caught.value.problems)
    assert "r.yaml:7: sections[0].criteria[0].na_unless.found: 'a' refers to the criterion itself" in found
    assert "r.yaml:13: sections[0].criteria[2].before: 'b' is a metric criterion" in found
    assert "r.yaml:14: sections[0].criteria[2].na_unless: `na_unless` needs exactly one of" in found
    assert "r.yaml:17: sections[0].criteria[3].auto_fail: an unscored helper" in found
    assert "r.yaml:19: sections[0].criteria[3].negation: `negation` only applies to expect: present" in found


@pytest.mark.parametrize("name", ["clinic_helpdesk.yaml", "it_helpdesk.yaml"])
def test_shipped_rubrics_are_valid(name):
    rubric = load_rubric(SHIPPED / name)
    assert rubric.sha256 == hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == rubric_sha256(SHIPPED / name)
    assert rubric.criteria()


def test_default_rubric_is_the_clinic_rubric_with_the_fixed_ids():
    rubric = load_rubric(default_rubric_path())
    assert (rubric.id, rubric.pass_mark) == ("clinic-helpdesk", 80)
    ids = {s.id: [c.id for c in s.criteria] for s in rubric.sections}
    assert ids == {
        "courtesy": ["greeting", "agent_name", "please_thank_you", "empathy", "no_rude_language", "interruptions",
                     "dead_air", "hold_etiquette"],
        "resolution": ["reason_for_call", "verify_identity", "discloses_details", "outcome_stated", "anything_else",
                       "closing_thanks", "customer_confirms"],
    }
    assert rubric.criterion("no_rude_language").auto_fail and rubric.criterion("verify_identity").auto_fail
    # A dropped call: everything but no_rude_language drops out (discloses_details is unscored anyway).
    assert [c.id for _, c in rubric.criteria() if c.na_if is None] == ["no_rude_language", "discloses_details"]
