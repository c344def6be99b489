"""Names users type (study, system, judge, reviewer, eval set, category, rubric) and their comments
appear on every screen and in the Markdown report exactly as typed: none of them can become an
image the browser fetches, a link or any other formatting."""

from __future__ import annotations

import html as html_module
import re
import shutil
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from review_app import report
from review_app.safe_markdown import escape_markdown
from review_app.services import signoff
from review_app.settings import Settings
from review_app.store import Store
from tests import hostile_names
from tests.acting import looking
from tests.conftest import ROOT
from tests.hostile_names import (
    ADMIN,
    CANDIDATE,
    CATEGORY,
    EVAL_SET,
    HOST,
    JUDGE,
    OTHER,
    SIGNER,
    STUDY,
    hostile,
)

PAGES = ROOT / "review_app" / "app_pages"
# Close to the Markdown Streamlit renders (CommonMark with GFM tables and strikethrough).
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def formatted(text: str) -> list[str]:
    """The Markdown constructs `text` renders to, beyond paragraphs and line breaks."""
    tags = set(re.findall(r"<(\w+)", MARKDOWN.render(text)))
    return sorted(tags - {"p", "br", "strong", "code", "ul", "li", "h4"})


# The hostile study of this process, by the settings it was built with: (folder, tokens).
_BUILT: dict[Settings, tuple[Path, dict[str, str]]] = {}


def _settings_at(db: Path, monkeypatch) -> Settings:
    """The test's settings with the workspace at `db`."""
    with monkeypatch.context() as env:
        env.setenv("REVIEW_APP_DB", str(db))
        return Settings.from_env()


@pytest.fixture
def workspace(isolated_workspace, tmp_path, tmp_path_factory, monkeypatch):
    """The hostile study (`hostile_names.build`). Building it takes seconds and every screen is
    tested on it, so it is built once per test process in a folder of its own; each test gets
    copies of its workspace file and rubric folder (what the build writes does not depend on
    the file's path)."""
    key = _settings_at(Path("hostile-template.db"), monkeypatch)
    if key not in _BUILT:
        folder = tmp_path_factory.mktemp("hostile-template")
        building = Store.open(folder / "workspace.db")
        try:
            tokens = hostile_names.build(
                building, _settings_at(folder / "workspace.db", monkeypatch), folder
            )
        finally:
            building.close()  # the last connection: the write-ahead log is folded into the file
        _BUILT[key] = (folder, tokens)
    folder, tokens = _BUILT[key]
    shutil.copyfile(folder / "workspace.db", isolated_workspace)
    shutil.copytree(folder / "rubrics", tmp_path / "rubrics")
    monkeypatch.setenv("REVIEW_APP_RUBRICS", str(tmp_path / "rubrics"))
    return dict(tokens)


def markdown_on(at: AppTest) -> list[str]:
    """Every string the page hands Streamlit to render as Markdown: texts, alerts, headings,
    captions, and the labels of expanders and widgets."""
    texts = []
    for kind in ("markdown", "caption", "title", "header", "subheader"):
        texts += [e.value for e in getattr(at, kind)]
    for kind in ("error", "warning", "info", "success"):
        texts += [e.value for e in getattr(at, kind)]

    def walk(node):
        try:
            label = getattr(node, "label", None)
        except Exception:  # some element kinds raise on attributes they lack
            label = None
        if isinstance(label, str):
            texts.append(label)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return texts


SCREENS = [
    ("admin", None),
    ("admin", "home.py"),
    ("admin", "calibration.py"),
    ("admin", "disagreements.py"),
    ("admin", "results.py"),
    ("admin", "scorecard.py"),
    ("admin", "gate.py"),
    ("admin", "judge_runs.py"),
    ("admin", "data.py"),
    ("admin", "studies.py"),
    ("admin", "quality.py"),
    ("admin", "items.py"),
    ("signer", "gate.py"),
]


@pytest.mark.parametrize(("who", "page"), SCREENS)
def test_every_screen_shows_names_as_typed(workspace, who, page):
    path = ROOT / "review_app" / "streamlit_app.py" if page is None else PAGES / page
    at = AppTest.from_file(str(path), default_timeout=60)
    at.query_params["token"] = workspace[who]
    at.run()
    if page == "judge_runs.py":
        at.selectbox(key="judge_rubric").select_index(-1).run()
    assert not at.exception
    texts = markdown_on(at)
    shown = [t for t in texts if HOST in t]
    assert shown, "the screen shows none of the names, so this test would prove nothing"
    assert {t: formatted(t) for t in shown if formatted(t)} == {}


def test_the_markdown_report_shows_names_as_typed(workspace, store, settings):
    text = report.render_report(signoff.build_report(looking(store, STUDY, settings)), "md")
    html = MARKDOWN.render(text)
    assert "<img" not in html and "<a " not in html and "<em>" not in html
    for name in (STUDY, EVAL_SET, CANDIDATE, OTHER, CATEGORY, JUDGE, ADMIN, SIGNER):
        assert escape_markdown(name) in text, name
    for comment in ("reason", "mark", "signoff"):
        assert escape_markdown(hostile(comment)) in text, comment


@pytest.mark.parametrize(
    "text",
    [
        "![x](//attacker.example/p.png)",
        "[x]: //attacker.example/p.png",
        "# heading",
        "1. one",
        "- item",
        "> quote",
        "a | b",
        "_em_ *strong* `code` ~~gone~~ $x^2$",
        "<img src=//attacker.example/p.gif>",
        "plain text & more",
        "tab\tand\nnew line\n===",
    ],
)
def test_escaped_text_renders_as_exactly_those_characters(text):
    escaped = escape_markdown(text)
    html = MARKDOWN.render(escaped)
    assert formatted(escaped) == []
    shown = html_module.unescape(re.sub(r"<[^>]+>", "", html))
    assert " ".join(shown.split()) == " ".join(text.split())
