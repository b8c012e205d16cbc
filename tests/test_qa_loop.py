"""The QA team's loop: `callqa sample` -> the reviewers fill in the form -> `callqa reviews import` -> `callqa
calibrate`, reviewed scores in call_scores and the scorecards, and bad review files."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import duckdb
import openpyxl
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from callqa.cli import app
from callqa.schema import SCHEMA_VERSION
from callqa.store import Store
from loop_helpers import AGENTS, FORMULA_CALL, built, db, read_csv, write_csv  # noqa: F401 (fixtures)

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def rows(db: Path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def sample(db: Path, out: Path, *args: str) -> Path:
    result = cli("sample", "--db", str(db), "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    return out


def fill(form: list[dict], reviewer: str, rng: random.Random, flip: float) -> list[dict]:
    """The reviewer agrees with the machine except for a random share of the criteria."""
    flipped = {"pass": "fail", "fail": "pass", "na": "na"}
    for row in form:
        outcome = row["auto_outcome"]
        row["outcome"] = flipped[outcome] if rng.random() < flip else outcome
        row["reviewer"] = reviewer
    return form


def expected_figures(form: list[dict]) -> dict[str, dict]:
    """Per criterion: counts from the form itself, kappa from scikit-learn."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    for row in form:
        if row["auto_outcome"] in ("pass", "fail") and row["outcome"] in ("pass", "fail"):
            pairs.setdefault(row["criterion_id"], []).append((row["auto_outcome"], row["outcome"]))
    figures = {}
    for criterion, found in pairs.items():
        auto, human = zip(*found)
        constant = len(set(auto) | set(human)) == 1
        figures[criterion] = {
            "reviewed": len(found), "agreement": sum(a == h for a, h in found) / len(found),
            "kappa": None if constant else cohen_kappa_score(auto, human, labels=["pass", "fail"]),
            "auto_pass_human_fail": found.count(("pass", "fail")),
            "auto_fail_human_pass": found.count(("fail", "pass")),
        }
    return figures


def calibration(db: Path, *args: str) -> list[dict]:
    result = cli("calibrate", "--db", str(db), "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def assert_matches(found: list[dict], expected: dict[str, dict]) -> None:
    assert {r["criterion_id"] for r in found} == set(expected)
    for row in found:
        want = expected[row["criterion_id"]]
        assert row["reviewed"] == want["reviewed"]
        assert row["agreement"] == pytest.approx(want["agreement"])
        assert row["auto_pass_human_fail"] == want["auto_pass_human_fail"]
        assert row["auto_fail_human_pass"] == want["auto_fail_human_pass"]
        if want["kappa"] is None:
            assert row["kappa"] is None
        else:
            assert row["kappa"] == pytest.approx(want["kappa"], abs=1e-9)
            assert row["flagged"] == (want["kappa"] < 0.6)


# ---------------------------------------------------------------- the round trip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_round_trip_csv_sample_fill_import_calibrate_kappa_as_scikit_learn(db, tmp_path, seed):
    form_path = sample(db, tmp_path / "queue.csv", "--per-agent", "3", "--seed", str(seed))
    form = read_csv(form_path)
    assert {"call_id", "criterion_id", "auto_outcome", "evidence", "outcome", "reviewer", "comment"} <= set(form[0])
    assert all(r["outcome"] == r["reviewer"] == r["comment"] == "" for r in form)
    filled = fill(form, "qa.lee", random.Random(seed), flip=0.3)
    write_csv(form_path, filled)
    result = cli("reviews", "import", str(form_path), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert rows(db, "SELECT count(*) FROM human_reviews")[0][0] == len(filled)
    found = [r for r in calibration(db) if r["comparison"] == "auto_vs_human"]
    assert_matches(found, expected_figures(filled))
    view = rows(db, "SELECT criterion_id, reviewed, kappa FROM calibration WHERE comparison = 'auto_vs_human'")
    assert sorted((c, n) for c, n, _ in view) == sorted((r["criterion_id"], r["reviewed"]) for r in found)


def test_round_trip_xlsx_filled_in_a_spreadsheet_imports_as_it_is(db, tmp_path):
    path = sample(db, tmp_path / "queue.xlsx", "--per-agent", "4")
    book = openpyxl.load_workbook(path)
    sheet = book["review"]
    header = [c.value for c in sheet[1]]
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row), "a cell would run as a formula"
    col = {name: header.index(name) for name in header}
    form = []
    for row in sheet.iter_rows(min_row=2):
        outcome = row[col["auto_outcome"]].value
        human = "fail" if row[col["criterion_id"]].value == "greeting" else outcome
        row[col["outcome"]].value, row[col["reviewer"]].value = human.upper(), "qa.kim"  # as typed, in capitals
        form.append({"criterion_id": row[col["criterion_id"]].value, "auto_outcome": outcome, "outcome": human})
    book.save(path)
    result = cli("reviews", "import", str(path), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert_matches([r for r in calibration(db) if r["comparison"] == "auto_vs_human"], expected_figures(form))
    assert rows(db, "SELECT count(*) FROM human_reviews WHERE call_id = ?", [FORMULA_CALL])[0][0] > 0


def test_kappa_is_null_when_both_sides_give_one_outcome_and_flagged_when_they_disagree(db, tmp_path):
    form = read_csv(sample(db, tmp_path / "q.csv", "--per-agent", "4"))
    for row in form:
        row["reviewer"] = "qa.lee"
        row["outcome"] = row["auto_outcome"] if row["criterion_id"] != "greeting" else \
            {"pass": "fail", "fail": "pass", "na": "na"}[row["auto_outcome"]]
    write_csv(tmp_path / "q.csv", form)
    assert cli("reviews", "import", str(tmp_path / "q.csv"), "--db", str(db)).exit_code == 0
    found = {r["criterion_id"]: r for r in calibration(db)}
    expected = expected_figures(form)
    assert_matches(list(found.values()), expected)
    assert found["greeting"]["agreement"] == 0 and found["greeting"]["flagged"]
    constant = [c for c, f in expected.items() if f["kappa"] is None]
    assert constant and all(found[c]["kappa"] is None and not found[c]["flagged"] for c in constant)
    table = cli("calibrate", "--db", str(db)).output
    assert next(line for line in table.splitlines() if " greeting " in line).endswith("<- kappa < 0.6")


def test_two_reviewers_on_the_same_calls_are_compared_with_each_other(db, tmp_path):
    form = read_csv(sample(db, tmp_path / "q.csv", "--per-agent", "4", "--seed", "7"))
    first = fill([dict(r) for r in form], "qa.ann", random.Random(1), flip=0.2)
    second = fill([dict(r) for r in form], "qa.bob", random.Random(2), flip=0.4)
    for name, filled in (("a.csv", first), ("b.csv", second)):
        assert cli("reviews", "import", str(write_csv(tmp_path / name, filled)), "--db", str(db)).exit_code == 0
    between = [r for r in calibration(db) if r["comparison"] == "reviewer_vs_reviewer"]
    pairs: dict[str, list[tuple[str, str]]] = {}
    for a, b in zip(first, second):
        if a["auto_outcome"] != "" and a["outcome"] in ("pass", "fail") and b["outcome"] in ("pass", "fail"):
            pairs.setdefault(a["criterion_id"], []).append((a["outcome"], b["outcome"]))
    assert {r["criterion_id"] for r in between} == set(pairs)
    for row in between:
        assert (row["rater_a"], row["rater_b"]) == ("qa.ann", "qa.bob")
        ann, bob = zip(*pairs[row["criterion_id"]])
        assert row["reviewed"] == len(ann)
        if len(set(ann) | set(bob)) > 1:
            assert row["kappa"] == pytest.approx(cohen_kappa_score(ann, bob, labels=["pass", "fail"]), abs=1e-9)
    only_bob = calibration(db, "--reviewer", "qa.bob")
    assert_matches([r for r in only_bob if r["comparison"] == "auto_vs_human"], expected_figures(second))
    assert cli("calibrate", "--db", str(db), "--reviewer", "nobody").exit_code == 2


def test_calibrate_filters_by_day_and_formats(db, tmp_path):
    form = fill(read_csv(sample(db, tmp_path / "q.csv", "--per-agent", "4")), "qa.lee", random.Random(5), 0.3)
    assert cli("reviews", "import", str(write_csv(tmp_path / "q.csv", form)), "--db", str(db)).exit_code == 0
    day = [r for r in form if r["started_at"].startswith("2026-11-03")]
    found = [r for r in calibration(db, "--since", "2026-11-03", "--until", "2026-11-03")
             if r["comparison"] == "auto_vs_human"]
    assert_matches(found, expected_figures(day))
    csv_out = cli("calibrate", "--db", str(db), "--format", "csv").output
    assert next(csv.reader(io.StringIO(csv_out)))[:8] == "rubric_id,criterion_id,comparison,rater_a,rater_b,reviewed,agreement,kappa".split(",")
    assert cli("calibrate", "--db", str(db), "--rubric", "no-such").exit_code == 2


# ---------------------------------------------------------------- the queue


def test_sample_states_a_reason_per_call_covers_every_agent_and_is_seeded(db, tmp_path):
    form = read_csv(sample(db, tmp_path / "a.csv", "--per-agent", "2", "--seed", "4"))
    calls = {r["call_id"]: r for r in form}
    per_agent = {agent: [c for c, r in calls.items() if r["agent_id"] == agent] for agent in AGENTS}
    assert all(len(ids) == 2 for ids in per_agent.values())
    assert all(r["reason"] for r in calls.values())
    assert all(any(calls[c]["reason"].startswith("random") for c in ids) for ids in per_agent.values())
    failed = {c for c, in rows(db, "SELECT call_id FROM call_scores WHERE NOT passed")}
    reasons = " ".join(r["reason"] for r in calls.values())
    assert failed and "failed" in reasons or "auto-failed" in reasons
    assert (tmp_path / "a.csv").read_bytes() == sample(db, tmp_path / "b.csv", "--per-agent", "2", "--seed", "4").read_bytes()
    draws = {sample(db, tmp_path / f"s{seed}.csv", "--per-agent", "2", "--seed", str(seed)).read_bytes()
             for seed in range(6)}
    assert len(draws) > 1
    assert (tmp_path / "a.csv").stat().st_mode & 0o077 == 0


def test_sample_names_uncertain_speakers_and_calls_near_the_pass_mark(db, tmp_path):
    form = read_csv(sample(db, tmp_path / "q.csv", "--per-agent", "4"))
    reasons = {r["call_id"]: r["reason"] for r in form}
    assert "speakers estimated (mono_fallback_dual)" in reasons.get("hv-04", "")
    scores = dict(rows(db, "SELECT call_id, score FROM call_scores"))
    for call, reason in reasons.items():
        if "near pass mark" in reason:
            assert abs(scores[call] - 80) <= 5


def test_sample_uses_role_confidence_and_review_reasons_where_the_database_has_them(db, tmp_path):
    con = duckdb.connect(str(db))
    present = {c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'calls'").fetchall()}
    for column, kind in (("role_confidence", "DOUBLE"), ("review_reasons", "VARCHAR[]")):
        if column not in present:  # as the role detection adds them
            con.execute(f"ALTER TABLE calls ADD COLUMN {column} {kind}")
    con.execute("UPDATE calls SET role_confidence = 0.55 WHERE call_id = 'hv-07'")
    con.execute("UPDATE calls SET review_reasons = ['roles uncertain: both channels greet'] WHERE call_id = 'hv-09'")
    con.close()
    reasons = {r["call_id"]: r["reason"] for r in read_csv(sample(db, tmp_path / "q.csv", "--per-agent", "4"))}
    assert "low role confidence (0.55)" in reasons["hv-07"]
    assert "roles uncertain: both channels greet" in reasons["hv-09"]


def test_sample_filters_agent_days_and_rubric(db, tmp_path):
    form = read_csv(sample(db, tmp_path / "q.csv", "--agent", "b.chen", "--since", "2026-11-03",
                           "--until", "2026-11-04", "--rubric", "bank-calls@1"))
    assert form and {r["agent_id"] for r in form} == {"b.chen"}
    assert all(r["started_at"][:10] in ("2026-11-03", "2026-11-04") for r in form)
    assert cli("sample", "--db", str(db), "-o", str(tmp_path / "x.txt")).exit_code == 2
    assert cli("sample", "--db", str(db), "-o", str(tmp_path / "x.csv"), "--agent", "nobody").exit_code == 2


# ---------------------------------------------------------------- import: replacing, skipping, bad files


def _one_review(tmp_path: Path, name: str = "r.csv", **values) -> Path:
    row = {"call_id": "hv-00", "criterion_id": "greeting", "outcome": "fail", "reviewer": "qa.lee", **values}
    return write_csv(tmp_path / name, [row])


def test_importing_again_replaces_never_duplicates(db, tmp_path):
    assert cli("reviews", "import", str(_one_review(tmp_path)), "--db", str(db)).exit_code == 0
    result = cli("reviews", "import", str(_one_review(tmp_path, outcome="pass")), "--db", str(db))
    assert result.exit_code == 0 and "1 replaced" in result.output
    assert rows(db, "SELECT outcome, rubric_id FROM human_reviews") == [("pass", "bank-calls")]
    assert cli("reviews", "import", str(_one_review(tmp_path, reviewer="qa.kim")), "--db", str(db)).exit_code == 0
    assert rows(db, "SELECT count(*) FROM human_reviews")[0][0] == 2


def test_reviewer_option_fills_rows_without_one(db, tmp_path):
    path = write_csv(tmp_path / "r.csv", [{"call_id": "hv-00", "criterion_id": "greeting", "outcome": "na"}])
    assert cli("reviews", "import", str(path), "--db", str(db)).exit_code == 2
    assert cli("reviews", "import", str(path), "--db", str(db), "--reviewer", "qa.kim").exit_code == 0
    assert rows(db, "SELECT reviewer, outcome FROM human_reviews") == [("qa.kim", "na")]


def test_unknown_calls_and_criteria_are_listed_with_line_numbers_and_skipped(db, tmp_path):
    good = {"call_id": "hv-01", "criterion_id": "greeting", "outcome": "pass", "reviewer": "qa.lee"}
    path = write_csv(tmp_path / "r.csv", [
        good, {**good, "call_id": "no-such-call"}, {**good, "criterion_id": "no_such_criterion"},
        {**good, "criterion_id": "agent_name", "rubric_id": "other-rubric"},
    ], fields=["call_id", "criterion_id", "outcome", "reviewer", "rubric_id"])
    result = cli("reviews", "import", str(path), "--db", str(db))
    assert result.exit_code == 3
    assert "line 3: unknown call 'no-such-call'" in result.output
    assert "line 4: unknown criterion 'no_such_criterion'" in result.output
    assert "line 5:" in result.output and "other-rubric" in result.output
    assert rows(db, "SELECT call_id, criterion_id FROM human_reviews") == [("hv-01", "greeting")]


BAD_FILES = {
    "missing_column": (b"call_id,outcome,reviewer\nhv-00,pass,qa\n", "missing column(s) criterion_id"),
    "bad_outcome": (b"call_id,criterion_id,outcome,reviewer\nhv-00,greeting,pass,qa\nhv-00,agent_name,yes,qa\n",
                    ":3: outcome 'yes'"),
    "bad_date": (b"call_id,criterion_id,outcome,reviewer,reviewed_at\nhv-00,greeting,pass,qa,last tuesday\n",
                 "reviewed_at 'last tuesday'"),
    "conflict": (b"call_id,criterion_id,outcome,reviewer\nhv-00,greeting,pass,qa\nhv-00,greeting,fail,qa\n",
                 "as line 2"),
    "empty": (b"", "empty"),
    "unclosed_quote": (b'call_id,criterion_id,outcome,reviewer\nhv-00,greeting,pass,"qa\n', "not a readable CSV"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_malformed_file_imports_nothing_and_exits_2(db, tmp_path, name):
    content, message = BAD_FILES[name]
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = cli("reviews", "import", str(path), "--db", str(db))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert rows(db, "SELECT count(*) FROM human_reviews")[0][0] == 0


@pytest.mark.parametrize("name,content", [("broken.xlsx", b"PK\x03\x04 not really a zip"),
                                          ("form.ods", b"whatever")])
def test_unreadable_or_unsupported_files_exit_2(db, tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    result = cli("reviews", "import", str(tmp_path / name), "--db", str(db))
    assert result.exit_code == 2 and "callqa: error:" in result.output


def test_excel_semicolon_csv_in_windows_1252_is_read(db, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("call_id;criterion_id;outcome;reviewer;comment\r\nhv-00;greeting;fail;qa.lee;caf\xe9 "
                     "ok\r\n".encode("cp1252"))
    assert cli("reviews", "import", str(path), "--db", str(db)).exit_code == 0
    assert rows(db, "SELECT outcome, comment FROM human_reviews") == [("fail", "café ok")]


def test_comments_are_redacted_like_transcripts(db, tmp_path):
    path = _one_review(tmp_path, comment="Caller Maria Lopez gave her date of birth March 4 1982 and "
                                         "phone five five five one two one two")
    assert cli("reviews", "import", str(path), "--db", str(db)).exit_code == 0
    (comment,), = rows(db, "SELECT comment FROM human_reviews")
    assert "Maria" not in comment and "1982" not in comment and "five five five" not in comment
    assert "[NAME]" in comment and "[DOB]" in comment


# ---------------------------------------------------------------- reviewed scores


def _criteria(db: Path, call: str) -> list[tuple]:
    return rows(db, "SELECT section_id, criterion_id, outcome, weight FROM criterion_results cr JOIN call_scores "
                    "USING (call_id, rubric_sha256) WHERE call_id = ? ORDER BY cr.rowid", [call])


def _section_weights(db: Path) -> dict[str, float]:
    (sections,), = rows(db, "SELECT sections FROM rubrics")
    return {s["id"]: s["weight"] for s in json.loads(sections)}


def test_reviewed_score_puts_human_outcomes_in_place_of_automatic_ones(db, tmp_path):
    call = "hv-01"
    criteria = _criteria(db, call)
    passing = next(c for c in criteria if c[2] == "pass" and c[3] > 0 and c[1] != "no_rude_language")
    path = _one_review(tmp_path, call_id=call, criterion_id=passing[1], outcome="fail")
    assert cli("reviews", "import", str(path), "--db", str(db)).exit_code == 0
    weights = _section_weights(db)
    sections = {}
    for section, criterion, outcome, weight in criteria:  # the README's arithmetic, by hand
        outcome = "fail" if criterion == passing[1] else outcome
        if outcome != "na":
            applicable, passed = sections.get(section, (0.0, 0.0))
            sections[section] = (applicable + weight, passed + weight * (outcome == "pass"))
    scored = {s: 100 * p / a for s, (a, p) in sections.items() if a}
    expected = sum(weights[s] * v for s, v in scored.items()) / sum(weights[s] for s in scored)
    (score, reviewed, reviewed_passed, pass_mark), = rows(
        db, "SELECT score, reviewed_score, reviewed_passed, pass_mark FROM call_scores WHERE call_id = ?", [call])
    assert reviewed == pytest.approx(expected, abs=1e-6) and reviewed < score
    assert reviewed_passed == (reviewed >= pass_mark)
    assert rows(db, "SELECT count(*) FROM call_scores WHERE reviewed_score IS NOT NULL")[0][0] == 1


def test_reviewed_score_follows_auto_fail_and_survives_a_rescore(db, tmp_path):
    auto_fail = "no_rude_language"  # the bank rubric's auto-fail criterion
    assert any(c[1] == auto_fail for c in _criteria(db, "hv-02"))
    path = _one_review(tmp_path, call_id="hv-02", criterion_id=auto_fail, outcome="fail")
    assert cli("reviews", "import", str(path), "--db", str(db)).exit_code == 0
    assert rows(db, "SELECT reviewed_score, reviewed_passed FROM call_scores WHERE call_id = 'hv-02'") == [(0.0, False)]
    changed = tmp_path / "bank_v2.yaml"
    from loop_helpers import BANK_RUBRIC
    changed.write_text(BANK_RUBRIC.read_text().replace("version: 1", "version: 2"))
    assert cli("rescore", "--db", str(db), "--rubric", str(changed)).exit_code == 0
    assert rows(db, "SELECT rubric_version, reviewed_score FROM call_scores WHERE call_id = 'hv-02'") == [(2, 0.0)]


def test_scorecards_and_the_html_report_show_both_scores(db, tmp_path):
    form = fill(read_csv(sample(db, tmp_path / "q.csv", "--per-agent", "2")), "qa.lee", random.Random(3), 0.5)
    assert cli("reviews", "import", str(write_csv(tmp_path / "q.csv", form)), "--db", str(db)).exit_code == 0
    data = json.loads(cli("scorecard", "--db", str(db), "--format", "json").output)
    expected = rows(db, "SELECT agent_id, count(reviewed_score), avg(reviewed_score), avg(reviewed_passed::INT) "
                        "FROM call_scores GROUP BY ALL ORDER BY 1")
    assert [(r["agent_id"], r["reviewed_calls"]) for r in data] == [(a, n) for a, n, _, _ in expected]
    for row, (_, _, avg_reviewed, rate) in zip(data, expected):
        assert row["avg_reviewed_score"] == pytest.approx(avg_reviewed)
        assert row["reviewed_pass_rate"] == pytest.approx(rate)
        assert "avg_score" in row and "pass_rate" in row
    assert "reviewed_pass_rate" in cli("scorecard", "--db", str(db)).output
    assert cli("scorecard", "--db", str(db), "-o", str(tmp_path / "r.html")).exit_code == 0
    html = (tmp_path / "r.html").read_text()
    assert "Reviewed score" in html and "passed after review" in html


def test_an_older_database_is_upgraded_in_place(db, tmp_path):
    con = duckdb.connect(str(db))  # take the file back to schema v1, as the previous callqa wrote it
    for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall():
        con.execute(f"DROP VIEW {view}")
    con.execute("DROP TABLE human_reviews")
    con.execute("ALTER TABLE evaluations DROP COLUMN reviewed_score")
    con.execute("ALTER TABLE evaluations DROP COLUMN reviewed_passed")
    con.execute("UPDATE schema_info SET value = '2'")
    con.close()
    refused = cli("calibrate", "--db", str(db))  # reading commands never write: they say how to upgrade
    assert refused.exit_code == 2 and "rescore" in refused.output
    Store(db).close()  # what a writing command (score, rescore) does first
    assert cli("calibrate", "--db", str(db)).exit_code == 0
    assert rows(db, "SELECT value FROM schema_info") == [(str(SCHEMA_VERSION),)]
    comments = dict(rows(db, "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'evaluations'"))
    assert comments["reviewed_score"] and comments["reviewed_passed"]
    assert rows(db, "SELECT comment FROM duckdb_tables() WHERE table_name = 'human_reviews'")[0][0]
    assert cli("reviews", "import", str(_one_review(tmp_path)), "--db", str(db)).exit_code == 0
    with Store(db, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM calibration").fetchone()[0] == 1
