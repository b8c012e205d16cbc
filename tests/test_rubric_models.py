"""The rubric rules live on the models: every way of building a Rubric is checked, not only the file loader."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callqa.errors import RubricError
from callqa.rubric import MetricCriterion, PhraseCriterion, Rubric, Section, parse_rubric


def doc(*criteria, section_id="s", rubric_id="t"):
    return {"id": rubric_id, "sections": [{"id": section_id, "criteria": list(criteria)}]}


GREETING = {"id": "greeting", "match": {"any": ["hello"]}}


def problems(data) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as caught:
        Rubric.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


@pytest.mark.parametrize("criterion, where, what", [
    ({**GREETING, "before": "nope"}, "before", "no criterion with id 'nope'"),
    ({**GREETING, "min": 1}, "min", "Extra inputs"),
    ({"id": "m", "metric": "hold_count", "speaker": "agent", "max": 1}, "speaker", "Extra inputs"),
    ({"id": "m", "metric": "hold_count"}, "metric", "needs `min` and/or `max`"),
    ({"id": "m", "metric": "hold_count", "min": 3, "max": 1}, "min", "is above max"),
    ({**GREETING, "expect": "absent", "before": "greeting2"}, "before", "only applies to expect: present"),
    ({**GREETING, "scored": False, "auto_fail": True}, "auto_fail", "cannot auto-fail"),
    ({**GREETING, "na_unless": {"speaker": "agent"}}, "na_unless", "needs exactly one of"),
    ({"id": "x"}, "match", "Field required"),
])
def test_model_validate_refuses_what_the_file_loader_refuses(criterion, where, what):
    found = problems(doc(GREETING | {"id": "greeting2"}, criterion))
    assert any(where in loc and what in msg for loc, msg in found), found


def test_references_are_checked_when_built_from_models():
    criterion = PhraseCriterion(id="a", match={"any": ["x"]}, before="missing")
    with pytest.raises(ValidationError, match="no criterion with id 'missing'"):
        Rubric(id="t", sections=(Section(id="s", criteria=(criterion,)),))
    metric = MetricCriterion(id="m", metric="hold_count", max=1)
    with pytest.raises(ValidationError, match="'m' is a metric criterion"):
        Rubric(id="t", sections=(Section(id="s", criteria=(metric, PhraseCriterion(id="a", match={"any": ["x"]},
                                                                                    before="m"))),))


def test_the_two_kinds_of_criteria():
    rubric = Rubric.model_validate(doc(GREETING, {"id": "m", "metric": "hold_count", "max": 1}))
    kinds = [type(c) for _, c in rubric.criteria()]
    assert kinds == [PhraseCriterion, MetricCriterion]
    assert Rubric.model_validate(rubric.model_dump(exclude_defaults=True)).criteria() == rubric.criteria()


@pytest.mark.parametrize("sections, what", [
    (["call_id"], "section id 'call_id' is reserved"),
    (["Rubric_SHA256"], "is reserved"),
    (["courtesy", "Courtesy"], "only in letter case"),
    (["score", "section_score"], "would share the column avg_section_score"),
    (["a", "a"], "duplicate section id 'a'"),
])
def test_section_ids_that_would_break_the_views_are_refused(sections, what):
    data = {"id": "t", "sections": [{"id": sid, "criteria": [{**GREETING, "id": f"c{i}"}]}
                                    for i, sid in enumerate(sections)]}
    assert any(what in msg for _, msg in problems(data))


def test_a_rubric_id_may_hold_an_at_sign_but_not_end_in_a_version():
    assert Rubric.model_validate(doc(GREETING, rubric_id="billing@east")).id == "billing@east"
    with pytest.raises(RubricError, match=r"r.yaml:1: id: 'team@2': a rubric id must not end in @<number>"):
        parse_rubric("id: team@2\nsections:\n  - id: s\n    criteria:\n      - id: c\n        match: {any: [x]}\n",
                     "r.yaml")


def test_braces_in_ids_are_kept_in_messages():
    found = problems(doc({**GREETING, "before": "{message}"}))
    assert ("sections", 0, "criteria", 0, "before") in [loc for loc, _ in found]
    assert any("'{message}'" in msg for _, msg in found)


@pytest.mark.parametrize("where", ["rubric", "section", "criterion"])
def test_ids_cannot_hold_control_characters(where):
    """A NUL in a section id broke the views' SQL; an escape sequence in any id would reach the terminal."""
    ids = {"rubric": "t", "section": "s", "criterion": "greeting"}
    ids[where] += "\x00\x1b[2J"
    data = {"id": ids["rubric"], "sections": [{"id": ids["section"], "criteria": [{**GREETING, "id": ids["criterion"]}]}]}
    assert any("cannot hold control characters such as '\\x00'" in msg for _, msg in problems(data))
