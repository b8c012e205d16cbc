"""What `pip install .` ships: every subpackage, and the shipped rubrics as package data."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the check is the same on every version
ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_for_installation():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "callqa").rglob("__init__.py")}
    assert found <= listed
    assert config["package-dir"]["callqa.rubrics"] == "rubrics"
    assert {"clinic_helpdesk.yaml", "it_helpdesk.yaml"} <= {p.name for p in (ROOT / "rubrics").glob("*.yaml")}


def test_default_rubric_is_found():
    from callqa.rubric import default_rubric_path, load_rubric

    assert load_rubric(default_rubric_path()).id == "clinic-helpdesk"


def test_report_templates_are_package_data():
    from fnmatch import fnmatch

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["callqa"]
    templates = [p.relative_to(ROOT / "callqa").as_posix() for p in (ROOT / "callqa" / "templates").iterdir()]
    assert templates and all(any(fnmatch(t, pattern) for pattern in patterns) for t in templates)
