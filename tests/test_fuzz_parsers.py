"""The parsers of user input, fuzzed for a bounded time: each either parses or raises the project's typed error.

Manifest CSV, sidecar JSON, --name-pattern, rubric YAML and the config file; text is drawn both at random and
from grammars near the real formats (YAML with anchors and nesting, CSV with quotes), so the fuzzer reaches
past the first syntax check.
"""

from __future__ import annotations

import json
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callqa.config import Config, load_config
from callqa.errors import ConfigError, ManifestError, RubricError, UsageError
from callqa.ingest import Candidate, compile_name_pattern, read_manifest, resolve_metadata
from callqa.rubric import Rubric, parse_rubric

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

_WORDS = ["id", "sections", "criteria", "match", "any", "all", "metric", "min", "max", "before", "window", "first",
          "last", "weight", "na_unless", "found", "expect", "absent", "20s", "10%", "- ", ": ", "&a ", "*a", "<<: ",
          "[", "]", "{", "}", ",", "\n", "  ", "!!binary", "!!timestamp", "'", '"', "#", "\t", "\x00", "?", "2024-02-30",
          "1" * 5000, "hold_count", "call_id", "t@2", "- id: s\n    criteria:\n      - id: c\n        match: {any: [x]}\n"]
yaml_like = st.lists(st.sampled_from(_WORDS) | st.text(max_size=8), max_size=40).map("".join)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4),
                           max_leaves=20)


@FUZZ
@given(text=yaml_like | st.text(max_size=300))
def test_rubric_loader_parses_or_raises_rubric_error(text):
    try:
        rubric = parse_rubric(text, "r.yaml")
    except RubricError as exc:
        assert exc.problems and all(p.startswith("r.yaml:") and "\n" not in p for p in exc.problems)
    else:
        assert isinstance(rubric, Rubric)


@FUZZ
@given(doc=json_values)
def test_rubric_model_validates_any_structure_or_raises_rubric_error(doc):
    text = json.dumps({"id": "t", "sections": [{"id": "s", "criteria": [doc]}]})  # JSON is YAML
    try:
        parse_rubric(text, "r.yaml")
    except RubricError:
        pass


@FUZZ
@given(text=yaml_like | st.text(max_size=300))
def test_config_loader_parses_or_raises_config_error(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert all(p.startswith(f"{path}:") and "\n" not in p for p in exc.problems)
    else:
        assert isinstance(config, Config)


csv_like = st.lists(st.sampled_from(["file", "agent_id", "started_at", "call_id", ",", '"', '""', "\n", "\r\n",
                                     "\x00", "a.wav", "../x.wav", "/dev/zero", "\ufeff", "2024-01-01"])
                    | st.text(max_size=6), max_size=40).map("".join)


@FUZZ
@given(text=st.one_of(csv_like.map(lambda t: "file,agent_id,started_at\n" + t), csv_like, st.text(max_size=200)),
       raw=st.binary(max_size=100))
def test_manifest_parses_or_raises_manifest_error(tmp_path, text, raw):
    path = tmp_path / "manifest.csv"
    for content in (text.encode("utf-8", "surrogatepass"), raw):
        path.write_bytes(content)
        try:
            rows = read_manifest(path)
        except ManifestError as exc:
            assert "\n" not in str(exc)
        else:
            assert all(isinstance(v, str) for row in rows.values() for v in row.values())


@FUZZ
@given(value=json_values, raw=st.binary(max_size=60))
def test_sidecar_values_parse_or_are_ignored(tmp_path, value, raw):
    recording = tmp_path / "a_20240101T000000_c1.wav"
    recording.write_bytes(b"")
    for content in (json.dumps({"agent_id": value, "call_id": value, "started_at": value, "extra": value}).encode(),
                    raw):
        (tmp_path / "a_20240101T000000_c1.json").write_bytes(content)
        source = resolve_metadata(Candidate(recording, None), "0" * 64, 0, compile_name_pattern("{agent_id}_{x}"))
        assert isinstance(source.agent_id, str) and isinstance(source.call_id, str)
        json.dumps(source.extra, allow_nan=False)  # stored as JSON: never a Python repr, never NaN


@FUZZ
@given(pattern=st.text(alphabet=string.printable + "{}()[]\\ä", max_size=40)
       | st.lists(st.sampled_from(["{agent_id}", "{call_id}", "{1x}", "{a}", "_", "(", "\\", "{", "}", "*"]),
                  max_size=8).map("".join),
       stem=st.text(max_size=30))
def test_name_pattern_compiles_or_raises_usage_error(pattern, stem):
    try:
        regex = compile_name_pattern(pattern)
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(regex, re.Pattern)
        regex.match(stem)
