"""Every screen of the app, and the exported HTML report, as a reviewer, signer or admin sees it:
at a wide (1400x1000) and a phone-sized (390x844) window, in the light and the dark theme (the app
follows the browser's `prefers-color-scheme`), before and after the thresholds are locked. Each
view is checked for what a person would call broken: an error box, raw "None"/"nan" text, a page
wider than the phone, a missing title, text or chart marks drawn in (almost) their background's
colour. With REVIEW_APP_SCREENSHOTS=DIR each view is also photographed into DIR, to be looked at
(without it no picture is taken: the checks read the page itself, and a tall picture costs a
second or two).

100 views. A screen's script draws the same whatever the theme (the theme is the browser's, and
Streamlit redraws its elements when the browser's scheme changes), so each screen is opened once
per size, looked at in the light theme, then switched to the dark one in place: 50 script runs,
about 2-4 s each on a 2-core machine shared with other test runs, Calibration up to 18 s. The
screens before the lock and those after it are two groups that may run on two test processes,
each with its own server and browser."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from review_app.report import render_report
from review_app.services import demo, signoff, thresholds
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import acting, looking
from tests.browser.conftest import AppServer, wait_drawn

pytestmark = pytest.mark.browser

SIZES = {"wide": (1400, 1000), "phone": (390, 844)}
THEMES = ("light", "dark")

# (address, title, who opens it): every screen of the admin's sidebar, the review screen as a
# reviewer and the gate as its signer.
SCREENS = [
    ("home", "Workspace", "demo-admin"),
    ("review", "Which response is better?", "demo-reviewer"),
    ("studies", "Studies", "demo-admin"),
    ("data", "Upload data", "demo-admin"),
    ("people", "Reviewers", "demo-admin"),
    ("judge", "Judge runs", "demo-admin"),
    ("calibration", "Calibration", "demo-admin"),
    ("disagreements", "Disagreements", "demo-admin"),
    ("quality", "Reviewer quality", "demo-admin"),
    ("results", "Results", "demo-admin"),
    ("gate", "Gate", "demo-signer"),
    ("scorecard", "Scorecard", "demo-admin"),
    ("items", "Items", "demo-admin"),
]
# The screens whose content changes with the lock, seen again after it.
LOCKED_SCREENS = ["calibration", "disagreements", "results", "gate", "scorecard", "items"]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    """The demo workspace, and a copy of it whose thresholds (the recommended set) are locked."""
    folder = tmp_path_factory.mktemp("screens")
    before, after = folder / "before.db", folder / "after.db"
    settings = replace(Settings.from_env(), db=before)
    store = Store.open(before)
    try:
        links = demo.seed_demo(store, settings)
    finally:
        store.close()
    shutil.copyfile(before, after)
    store = Store.open(after)
    try:
        locked = replace(settings, db=after)
        thresholds.add_recommended_thresholds(acting(store, "demo", "demo-admin", settings=locked))
        thresholds.lock_thresholds(
            acting(store, "demo", "demo-admin", settings=locked), "screenshots of the demo"
        )
    finally:
        store.close()
    tokens = {name: link.split("token=")[1] for name, link in links.items()}
    return {"before": before, "after": after, "tokens": tokens}


class Servers:
    """One app server per workspace, started when a test first needs it: the tests before the
    lock and those after it may run on different test processes."""

    def __init__(self, workspaces):
        self._workspaces = workspaces
        self._started: dict[str, AppServer] = {}

    def __getitem__(self, phase: str) -> AppServer:
        if phase not in self._started:
            self._started[phase] = AppServer(self._workspaces[phase])
        return self._started[phase]

    def stop(self) -> None:
        for server in self._started.values():
            server.stop()


@pytest.fixture(scope="module")
def servers(workspaces):
    started = Servers(workspaces)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def contexts(browser):
    """A browser context per size (a phone's is a touch screen), opened in the first theme."""
    opened = {}
    for size, (width, height) in SIZES.items():
        opened[size] = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=THEMES[0],
            is_mobile=size == "phone",
            has_touch=size == "phone",
        )
    yield opened
    for context in opened.values():
        context.close()


@pytest.fixture(scope="module")
def tabs(contexts):
    """One tab per size, each screen opened in it in turn. A new tab is a new renderer process
    that compiles Streamlit's scripts again: about 2 s of CPU a view, against under 1 s for a
    tab that has loaded the app before. Each view is a fresh load of its address all the same
    (a new script session), opened in the first theme."""
    return {size: context.new_page() for size, context in contexts.items()}


def shots() -> Path | None:
    """The folder the views are photographed into, when one is asked for."""
    if not os.environ.get("REVIEW_APP_SCREENSHOTS"):
        return None
    folder = Path(os.environ["REVIEW_APP_SCREENSHOTS"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def params(screens: list[str], phase: str) -> list:
    # The screens before the lock and those after it are separate groups of the parallel run.
    group = pytest.mark.xdist_group(f"tests/browser/test_screens.py-{phase}")
    return [
        pytest.param(address, size, id=f"{address}-{size}", marks=group)
        for address in screens
        for size in SIZES
    ]


# The checks, in the page: each returns a list of what is wrong (empty when nothing is).
OVERFLOW = """() => {
  // Wider than the window: the page itself, or any element sticking out of it that is not
  // inside something that scrolls or clips sideways on purpose (a table, a code block).
  const width = window.innerWidth;
  const found = [];
  const roots = [document.documentElement, document.querySelector('[data-testid="stMain"]')];
  for (const root of roots) {
    if (root && root.scrollWidth > root.clientWidth + 1) {
      found.push(`${root.tagName.toLowerCase()} scrolls sideways: ${root.scrollWidth} px`);
    }
  }
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const x = getComputedStyle(up).overflowX;
      if (x === 'auto' || x === 'scroll' || x === 'hidden' || x === 'clip') return true;
    }
    return false;
  };
  const main = document.querySelector('[data-testid="stMain"]');
  for (const el of main ? main.querySelectorAll('*') : []) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !clipped(el)) {
      const testid = el.closest('[data-testid]');
      found.push(`${el.tagName.toLowerCase()} in ${testid && testid.dataset.testid} ends at `
        + `${Math.round(box.right)} px: ${(el.innerText || '').slice(0, 60)}`);
      if (found.length > 5) break;
    }
  }
  return found;
}"""

CONTRAST = """(where) => {
  // Text (headings, captions, paragraphs, labels, metrics, chart text) and chart marks whose
  // colour is too close to the colour behind them to be read.
  const parse = (c) => {
    const m = c && c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  // The colour under everything: a page that sets none gets the browser's, light or dark.
  const app = [document.querySelector('[data-testid="stApp"]'), document.body,
    document.documentElement].filter(Boolean)
    .map((el) => parse(getComputedStyle(el).backgroundColor)).find((c) => c && c.a === 1);
  if (!app) return ['the page sets no background colour: the browser theme chooses it'];
  const behind = (el) => {
    const layers = [];
    for (let up = el; up; up = up.parentElement) {
      const bg = parse(getComputedStyle(up).backgroundColor);
      if (bg && bg.a > 0) { layers.push(bg); if (bg.a === 1) break; }
    }
    let colour = layers.length && layers[layers.length - 1].a === 1 ? layers.pop() : app;
    while (layers.length) colour = over(layers.pop(), colour);
    return colour;
  };
  const found = [];
  // A disabled control is faint on purpose; a slider's value floats outside the thumb that
  // holds it in the page.
  const deliberate = (el) => {
    const widget = el.closest('[data-testid="stElementContainer"], .stElementContainer');
    return Boolean(el.closest('[data-testid="stSliderThumbValue"]')) || Boolean(widget
      && widget.querySelector(':disabled, [aria-disabled="true"]'));
  };
  const check = (el, colour, least, what) => {
    if (!colour || colour.a === 0 || !el.getClientRects().length || deliberate(el)) return;
    const bg = behind(el);
    const shown = over(colour, bg);
    const r = ratio(shown, bg);
    if (r < least) {
      const text = (el.textContent || '').trim().slice(0, 40);
      found.push(`${what} "${text}" contrast ${r.toFixed(2)} (${JSON.stringify(colour)} on `
        + `${JSON.stringify(bg)})`);
    }
  };
  const main = document.querySelector(where);
  const texts = main.querySelectorAll(
    'h1, h2, h3, h4, h5, h6, p, li, label, [data-testid="stCaptionContainer"], '
    + '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], th, td, code, summary');
  for (const el of texts) {
    // A data table's cells are drawn on its canvas; its own table is for screen readers.
    if (!(el.textContent || '').trim() || el.closest('[data-testid="stDataFrame"]')) continue;
    check(el, parse(getComputedStyle(el).color), 3, el.tagName.toLowerCase());
  }
  for (const el of main.querySelectorAll('svg text')) {
    if (!(el.textContent || '').trim()) continue;
    const style = getComputedStyle(el);
    const fill = parse(style.fill);
    if (fill) fill.a *= Number(style.fillOpacity || 1) * Number(style.opacity || 1);
    check(el, fill, 3, 'chart text');
  }
  for (const el of main.querySelectorAll('svg .role-mark path, svg .role-mark line, '
      + 'svg .role-mark rect, svg .role-mark circle')) {
    const style = getComputedStyle(el);
    for (const [paint, opacity] of [['stroke', 'strokeOpacity'], ['fill', 'fillOpacity']]) {
      const colour = parse(style[paint]);
      if (!colour || style[paint] === 'none') continue;
      colour.a *= Number(style[opacity] || 1) * Number(style.opacity || 1);
      // A translucent band is faint on purpose; a solid mark must stand out.
      if (colour.a >= 0.5) check(el, colour, 1.3, `chart mark ${paint}`);
    }
  }
  return found.slice(0, 8);
}"""

RAW_MISSING = re.compile(r"(?<![\w.])(None|nan|NaN|null|undefined)(?![\w])")


# A data table draws on a canvas and keeps a table of its cells for screen readers. A missing
# value is an empty cell there, and the canvas draws it as a faint "None"; an empty text looks the
# same there and reads as nothing on screen: a table says what is missing ("-", "no votes").
EMPTY_CELLS = """() => {
  const found = [];
  for (const table of document.querySelectorAll('[data-testid="stDataFrame"] table')) {
    const rows = [...table.querySelectorAll('tr')].map((row) => [...row.children]
      .map((cell) => cell.textContent.trim()));
    // An empty table shows one blank row.
    const [head, ...body] = rows.filter((row) => row.some((cell) => cell !== ''));
    if (!head) continue;
    head.forEach((name, i) => {
      const empty = body.filter((row) => row[i] === '').length;
      if (empty) found.push(`${empty} empty cells (drawn as None) in column "${name}"`);
    });
  }
  return found;
}"""


def scorecard_problems(page) -> list[str]:
    """The ranking chart gives each system one band with a line per source: three systems fit
    in a few hundred pixels (a step per system times the sources drew it 800 px tall)."""
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    if not charts.count():
        return []
    height = charts.first.bounding_box()["height"]
    return [f"the ranking chart is {height:.0f} px tall"] if height > 360 else []


def heading_problems(page) -> list[str]:
    """Headings built from values that are already bracketed ("(hidden until ...)")."""
    return [
        f"doubled brackets in a heading: {text}"
        for text in page.locator("h1, h2, h3").all_inner_texts()
        if "((" in text or "))" in text
    ]


# What only one screen can get wrong, checked on that screen.
SCREEN_CHECKS = {"scorecard": scorecard_problems, "disagreements": heading_problems}


def problems(page, title: str, size: str, theme: str) -> list[str]:
    found = []
    if not page.get_by_role("heading", name=title, exact=True).is_visible():
        found.append(f"the title {title!r} is not shown")
    for testid in ("stException", "stAlertContentError"):
        for box in page.locator(f'[data-testid="{testid}"]').all():
            found.append(f"error box: {box.inner_text()[:200]}")
    for line in page.locator('[data-testid="stMain"]').inner_text().splitlines():
        if RAW_MISSING.search(line):
            found.append(f"raw missing value: {line.strip()[:120]}")
    found += page.evaluate(EMPTY_CELLS)
    if size == "phone":
        found += page.evaluate(OVERFLOW)
    found += page.evaluate(CONTRAST, '[data-testid="stMain"]')
    return found


def screenshot(page, path: Path) -> None:
    """The whole screen, top to bottom: the app scrolls inside its main area, not the page, so
    the window is made as tall as the screen's content for the picture."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    tall = page.evaluate(
        """() => { const main = document.querySelector('[data-testid="stMain"]');
          return main ? main.scrollHeight : document.documentElement.scrollHeight; }"""
    )
    page.set_viewport_size({"width": width, "height": min(max(height, tall), 12_000)})
    page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": height})


def in_theme(page, theme: str) -> None:
    """Switch the page to the browser's light or dark scheme and wait until Streamlit has drawn
    it again: the app's background in the theme's brightness, every chart drawn anew, and no
    colour still in transition (an element's colours ease from one theme's to the other's)."""
    page.evaluate(
        """() => document.querySelectorAll('[data-testid="stVegaLiteChart"] svg, '
          + '[data-testid="stVegaLiteChart"] canvas').forEach((el) => { el.dataset.before = '1'; })"""
    )
    page.emulate_media(color_scheme=theme)
    page.wait_for_function(
        """(dark) => {
          const app = document.querySelector('[data-testid="stApp"]');
          const m = app && getComputedStyle(app).backgroundColor.match(/\\d+/g);
          if (!m) return false;
          const light = (0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2]) > 128;
          return light !== dark && [...document.querySelectorAll(
            '[data-testid="stVegaLiteChart"]')].every((chart) =>
              chart.querySelector('svg:not([data-before]), canvas:not([data-before])'));
        }""",
        arg=theme == "dark",
    )
    wait_drawn(page)
    page.wait_for_function(
        """() => document.getAnimations().every(
          (animation) => !(animation instanceof CSSTransition)
            || animation.playState !== 'running')"""
    )


def look(page, url: str, address: str, title: str, size: str, path: str | None) -> dict[str, list]:
    """What is wrong with the screen at `url` in each theme (with a `path`, a screenshot of
    each there, the theme in place of {theme})."""
    found: dict[str, list] = {}
    # The tab may have shown the last view in another theme.
    page.emulate_media(color_scheme=THEMES[0])
    page.goto(url)
    page.get_by_role("heading", name=title, exact=True).wait_for()
    wait_drawn(page)
    for theme in THEMES:
        if theme != THEMES[0]:
            in_theme(page, theme)
        found[theme] = problems(page, title, size, theme)
        if address in SCREEN_CHECKS:
            found[theme] += SCREEN_CHECKS[address](page)
        if path:
            screenshot(page, Path(path.format(theme=theme)))
    return found


def check_screen(phase, address, size, servers, workspaces, tabs):
    _, title, who = next(s for s in SCREENS if s[0] == address)
    server = servers[phase]
    url = f"{server.url}/{address}?token={workspaces['tokens'][who]}"
    folder = shots()
    path = folder and str(folder / f"{address}-{phase}-{size}-{{theme}}.png")
    found = look(tabs[size], url, address, title, size, path)
    wrong = [
        f"{address} ({phase} the lock, {size}, {theme}): " + "\n".join(problems)
        for theme, problems in found.items()
        if problems
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("address, size", params([s[0] for s in SCREENS], "before"))
def test_each_screen_before_the_lock(address, size, servers, workspaces, tabs):
    check_screen("before", address, size, servers, workspaces, tabs)


@pytest.mark.parametrize("address, size", params(LOCKED_SCREENS, "after"))
def test_each_screen_after_the_lock(address, size, servers, workspaces, tabs):
    check_screen("after", address, size, servers, workspaces, tabs)


VIEWS = [(size, theme) for size in SIZES for theme in THEMES]


@pytest.fixture(scope="module")
def report_html(workspaces) -> str:
    """The report of the locked workspace, as the Gate's download gives it (the report exists
    only after the lock: before it the outcomes are hidden). No test writes to that workspace,
    so one build serves every view."""
    store = Store.open(workspaces["after"])
    try:
        settings = replace(Settings.from_env(), db=workspaces["after"])
        return render_report(signoff.build_report(looking(store, "demo", settings)), "html")
    finally:
        store.close()


@pytest.mark.xdist_group("tests/browser/test_screens.py-after")
@pytest.mark.parametrize("size, theme", VIEWS, ids=[f"{s}-{t}" for s, t in VIEWS])
def test_the_report(size, theme, report_html, tabs):
    phase = "after"
    # The size's tab, emptied first: nothing of the page it showed before is left to run.
    page = tabs[size]
    page.goto("about:blank")
    page.emulate_media(color_scheme=theme)
    page.set_content(report_html)
    page.get_by_role("heading", name="Ship decision report: study demo").wait_for()
    if folder := shots():
        page.screenshot(path=str(folder / f"report-{phase}-{size}-{theme}.png"), full_page=True)
    found = [
        f"raw missing value: {line.strip()[:120]}"
        for line in page.locator("body").inner_text().splitlines()
        if RAW_MISSING.search(line)
    ]
    found += page.evaluate(CONTRAST, "body")
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > SIZES[size][0] + 1:
        found.append(f"the report is {width} px wide")
    assert not found, "\n".join(found)
