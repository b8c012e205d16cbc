"""The HTML scorecard report rendered by a real headless Chromium: every agent and chart present, a script
planted in a transcript quote shows as text and never runs, A4 pages; a PNG of the page is kept as an artifact
(folder from env CALLQA_ARTIFACTS, else the test's tmp_path)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callqa.cli import app
from db_helpers import CRITERIA, CallSpec, build_db

PLANTED = "<script>document.title='PWNED'</script><img src=x onerror=\"document.title='PWNED'\"> calm down"
ODD_AGENT = 'dana "d" <o\'k> & co'
AGENTS = ["alice", "bob", ODD_AGENT]
TITLE = "callqa agent scorecards"
CHROMIUM = shutil.which("chromium")


def _calls() -> list[CallSpec]:
    calls = []
    for i in range(18):
        outcomes = {c: ("fail" if (i + j) % 4 == 0 else "pass") for j, c in enumerate(CRITERIA)}
        evidence = {"no_rude_language": ("agent", 30.0 + i, 32.0 + i, PLANTED if i == 3 else "whatever")}
        calls.append(CallSpec(f"call-{i:02d}", AGENTS[i % 3], datetime(2024, 4, 1, 9) + timedelta(days=3 * i),
                              outcomes, evidence=evidence))
    return calls


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    db = build_db(folder / "calls.duckdb", _calls())
    out = folder / "scorecard.html"
    result = CliRunner().invoke(app, ["scorecard", "--db", str(db), "--by", "week", "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


class _Dom(HTMLParser):
    """What the rendered DOM holds: title, elements by tag, and per agent section the classes of its charts."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self.charts: dict[str, list[str]] = {}
        self._agent: str | None = None
        self._in_title = False
        self._in_svg = False  # svg <title>s are tooltips, not the page title

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self._in_title = tag == "title" and not self._in_svg
        self._in_svg = self._in_svg or tag == "svg"
        if tag == "section" and "agent" in (attrs.get("class") or "").split():
            self._agent = attrs["data-agent"]
            self.charts[self._agent] = []
        if tag == "svg" and self._agent is not None:
            self.charts[self._agent].append(attrs.get("class", ""))

    def handle_endtag(self, tag):
        if tag == "section":
            self._agent = None
        if tag == "svg":
            self._in_svg = False
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.text.append(data)


def test_report_is_self_contained_and_escapes_everything(report):
    text = report.read_text()
    assert not re.search(r"<script|<img|https?://|url\(|@import", text, re.IGNORECASE)
    dom = _Dom()
    dom.feed(text)
    assert any(PLANTED in chunk for chunk in dom.text)  # the quote is there, as text
    assert PLANTED not in text and "<q><script" not in text  # only escaped
    assert set(dom.charts) == set(AGENTS)  # the odd agent id survives as an attribute value


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args],
        capture_output=True, timeout=120, check=True,
    )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_in_headless_chromium(report, tmp_path):
    url = report.as_uri()
    dom = _Dom()
    dom.feed(_chromium(tmp_path / "profile", "--dump-dom", url).stdout.decode())

    assert dom.title == TITLE  # the planted script would have changed it
    assert "script" not in dom.tags and "img" not in dom.tags
    assert any(PLANTED in chunk for chunk in dom.text)  # shown as text, verbatim
    assert set(dom.charts) == set(AGENTS)
    for agent, charts in dom.charts.items():
        assert sorted(charts) == ["chart sections", "chart trend"], agent

    artifacts = Path(os.environ.get("CALLQA_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    png = artifacts / "scorecard_report.png"
    _chromium(tmp_path / "profile", "--window-size=1240,1754", "--hide-scrollbars", f"--screenshot={png}", url)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000

    pdf = tmp_path / "scorecard.pdf"
    _chromium(tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", url)
    data = pdf.read_bytes()
    boxes = {tuple(round(float(v)) for v in box.split()) for box in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", data)}
    assert boxes == {(0, 0, 595, 842)}  # A4 in points
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 1 + len(AGENTS)  # summary, then a page per agent
