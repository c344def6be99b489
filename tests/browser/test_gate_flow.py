"""The whole ship decision on the demo, in a real browser and through the UI only: the admin
pre-registers and locks the thresholds, a reviewer votes, the admin runs a baseline judge, the
signer does the final review, signs off and downloads the report; the workspace is checked after.
With REVIEW_APP_UPDATE_DOCS=1 it also redraws docs/gate.png, docs/calibration.png and
docs/report.png from that run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from review_app.services import demo, judging, thresholds
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import looking
from tests.browser.conftest import (
    done_count,
    photograph,
    start_server,
    wait_done,
    wait_drawn,
    wait_for_pair,
    wait_idle,
)

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
SIGN_OFF_COMMENT = "Beats base on the target task; no regression suite drops."
REJECT_COMMENT = "States a refund window the policy does not have."
OVERRIDE_REASON = "Pilot for 5% of support traffic while the planned votes come in."


@pytest.fixture(scope="module")
def tokens(module_workspace) -> dict[str, str]:
    """A fresh demo workspace; the demo users' tokens by name."""
    store = Store.open(module_workspace)
    links = demo.seed_demo(store, Settings.from_env())
    store.close()
    return {name: link.split("token=")[1] for name, link in links.items()}


@pytest.fixture(scope="module")
def server(module_workspace, tokens):
    yield from start_server(module_workspace)


@pytest.fixture
def context(browser):
    opened = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    yield opened
    opened.close()


def picture(page, name: str, **options) -> None:
    """A picture of the page when one is asked for; with REVIEW_APP_UPDATE_DOCS=1, the docs'
    own copy too."""
    photograph(page, name, **options)
    if os.environ.get("REVIEW_APP_UPDATE_DOCS") == "1":
        page.screenshot(path=str(DOCS / name), **options)


def open_screen(page, title: str) -> None:
    """Click a screen in the sidebar, as a user would, and wait until it is drawn."""
    page.locator('[data-testid="stSidebarNavLink"]', has_text=title).click()
    page.get_by_role("heading", name=title, exact=True).wait_for()
    wait_idle(page)


def click_and_wait(page, locator) -> None:
    locator.click()
    wait_idle(page)


def test_a_reviewer_link_cannot_open_the_gate(server, tokens, context):
    page = context.new_page()
    page.goto(server.link(tokens["demo-reviewer"]))
    wait_for_pair(page)
    assert page.locator('[data-testid="stSidebarNavLink"]', has_text="Gate").count() == 0
    page.goto(f"{server.url}/gate?token={tokens['demo-reviewer']}")
    wait_for_pair(page)  # sent back to the review screen
    assert page.get_by_role("heading", name="Gate").count() == 0
    assert page.get_by_text("Thresholds").count() == 0
    assert page.get_by_role("button", name="Sign").count() == 0
    assert page.get_by_role("button", name=re.compile("Download report")).count() == 0


def test_the_whole_ship_decision(server, tokens, context, module_workspace, tmp_path):
    """About 25 s on a quiet machine and more on a busy one: the whole decision is one story
    (thresholds, votes, the gate, the sign-off, the report) whose steps depend on each other,
    each a real script run of the app."""
    page = context.new_page()

    # 1. The admin pre-registers the thresholds before any outcome number is visible.
    page.goto(server.link(tokens["demo-admin"]))
    page.get_by_text("Signed in as").wait_for()
    open_screen(page, "Gate")
    page.get_by_text(re.compile(r"^Not locked yet\. Outcome numbers")).wait_for()
    page.get_by_text(re.compile(r"stay hidden until its thresholds are locked")).wait_for()
    assert page.get_by_text(re.compile(r"^Gate (PASS|FAIL|INCONCLUSIVE)")).count() == 0
    open_screen(page, "Results")
    page.get_by_text(re.compile(r"Lock them on the Gate screen")).wait_for()
    assert page.get_by_role("heading", name="Win rates").count() == 0
    assert page.get_by_text("win rate", exact=False).count() == 0
    open_screen(page, "Gate")
    click_and_wait(page, page.get_by_role("button", name="Add the recommended set"))
    # The design's power is on the screen before the lock; the demo is too small to pass, so
    # the lock takes a reason.
    page.get_by_text(
        re.compile(r"^Chance that every threshold passes at the expected truth")
    ).wait_for()
    reason = page.get_by_role("textbox", name=re.compile("^Reason for locking a design under 50%"))
    reason.fill("a walk through the demo, not a decision")
    reason.press("Enter")
    wait_idle(page)
    click_and_wait(page, page.get_by_role("button", name="Lock thresholds"))
    click_and_wait(page, page.get_by_role("button", name="Yes, lock thresholds"))
    page.get_by_text(re.compile(r"^Locked by demo-admin at ")).wait_for()
    # The demo's example votes are an interim look at the planned sample: nothing is decided.
    page.get_by_text(
        re.compile(r"^Gate INCONCLUSIVE: interim: \d+ thresholds not decided until")
    ).wait_for()
    page.get_by_text(re.compile(r"^Locked design's chance that every threshold passes")).wait_for()
    expect(page.get_by_role("button", name="Lock thresholds")).to_have_count(0)
    open_screen(page, "Results")
    page.get_by_role("heading", name="Win rates").wait_for()

    # 2. A reviewer votes on three pairs with the keyboard.
    reviewer = context.new_page()
    reviewer.goto(server.link(tokens["demo-reviewer"]))
    wait_for_pair(reviewer)
    start = done_count(reviewer)
    for number, key in enumerate("abt", start=start + 1):
        reviewer.keyboard.press(key)
        wait_done(reviewer, number)
    reviewer.close()

    # 3. The admin runs a baseline judge in one order, so there are calls to send. The
    # thresholds are locked: the run needs a reason and becomes a deviation in the report.
    open_screen(page, "Judge runs")
    judge = page.get_by_role("textbox", name="Judge (provider/model)")
    judge.fill("baseline/random")
    judge.press("Enter")
    wait_idle(page)
    page.get_by_text("Judge both orders").click()
    wait_idle(page)
    assert not page.get_by_role("checkbox", name="Judge both orders").is_checked()
    plan = page.get_by_text(
        re.compile(r"^baseline/random · single order: \d+ calls to send, 0 of \d+ already stored")
    )
    plan.wait_for()
    calls_to_send = int(re.search(r": (\d+) calls to send", plan.inner_text()).group(1))
    assert calls_to_send > 0
    calls = page.locator('[data-testid="stMetric"]', has_text="Calls to send")
    expect(calls.locator('[data-testid="stMetricValue"]')).to_have_text(str(calls_to_send))
    reason = page.get_by_role("textbox", name=re.compile("^Reason .the thresholds are locked"))
    reason.fill("position-bias check of the random baseline in one order")
    reason.press("Enter")
    wait_idle(page)
    click_and_wait(page, page.get_by_role("button", name="Start run"))
    page.get_by_text(
        re.compile(rf"baseline/random · single order: {calls_to_send} verdicts stored")
    ).wait_for()
    page.get_by_text(re.compile(r"status complete$")).wait_for()
    expect(calls.locator('[data-testid="stMetricValue"]')).to_have_text("0")

    # 4. The signer reviews part of the final-review sample and signs off.
    signer = context.new_page()
    signer.goto(server.link(tokens["demo-signer"]))
    signer.get_by_text("Signed in as").wait_for()
    open_screen(signer, "Gate")
    signer.get_by_text(re.compile(r"^0 of 50 reviewed$")).wait_for()
    marks = [(True, ""), (False, REJECT_COMMENT), (True, "")]
    for number, (acceptable, comment) in enumerate(marks, start=1):
        if comment:
            box = signer.get_by_role("textbox", name="Comment", exact=True)
            expect(box).to_have_count(1)  # the previous output's box is gone
            box.fill(comment)
            box.press("Enter")
            wait_idle(signer)
        label = "Acceptable" if acceptable else "Not acceptable"
        click_and_wait(signer, signer.get_by_role("button", name=label, exact=True))
        signer.get_by_text(re.compile(rf"^{number} of 50 reviewed$")).wait_for()
    signer.get_by_text("approve", exact=True).click()
    wait_idle(signer)
    comment_box = signer.get_by_label("Comment (required)")
    comment_box.fill(SIGN_OFF_COMMENT)
    comment_box.press("Control+Enter")
    wait_idle(signer)
    # The gate did not pass: approving needs an override reason, which the report shows.
    signer.get_by_text(re.compile(r"^Approving now overrides the gate")).wait_for()
    override_box = signer.get_by_label("Override reason (required to approve)")
    override_box.fill(OVERRIDE_REASON)
    override_box.press("Enter")
    wait_idle(signer)
    click_and_wait(signer, signer.get_by_role("button", name="Sign", exact=True))
    signer.get_by_text("Signed: the sign-off is recorded.").wait_for()
    expect(signer.get_by_label("Comment (required)")).to_have_value("")
    signer.get_by_text(
        re.compile(rf"^APPROVE by demo-signer at .*: {SIGN_OFF_COMMENT}$")
    ).wait_for()
    with signer.expect_download() as download_info:
        signer.get_by_role("button", name="Download report (html)").click()
    download = download_info.value
    assert download.suggested_filename == "report-demo.html"
    report_file = tmp_path / download.suggested_filename
    download.save_as(report_file)
    # Tall windows, so each screenshot shows the whole screen from the top.
    signer.set_viewport_size({"width": 1400, "height": 2560})
    signer.reload()
    signer.get_by_text(re.compile(r"^APPROVE by demo-signer")).wait_for()
    wait_idle(signer)
    picture(signer, "gate.png")
    signer.set_viewport_size({"width": 1400, "height": 1800})
    open_screen(signer, "Calibration")
    signer.get_by_role("heading", name="Human ceiling", exact=True).wait_for()
    signer.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    wait_drawn(signer)
    picture(signer, "calibration.png")

    report_page = context.new_page()
    report_page.goto(report_file.as_uri())
    report_page.get_by_role("heading", name="Ship decision report: study demo").wait_for()
    picture(report_page, "report.png", full_page=True)
    html = report_file.read_text(encoding="utf-8")
    shown_hash = re.search(r"Report hash <code>([0-9a-f]{64})</code>", html).group(1)
    assert "Locked by <b>demo-admin</b>" in html
    assert f"signed report hash <code>{shown_hash}</code> (this report)" in html
    assert SIGN_OFF_COMMENT in html and REJECT_COMMENT in html
    assert f"override reason: {OVERRIDE_REASON}" in html

    # 5. The workspace holds exactly what the three users did.
    store = Store.open(module_workspace)
    try:
        study = store.studies.require_study(demo.DEMO_STUDY)
        lock = store.gate.threshold_lock(study["id"])
        assert lock["locked_by"] == "demo-admin"
        assert len(thresholds.list_thresholds(looking(store, "demo"))) > 0

        reviewer_votes = [
            v for v in store.review.vote_history(study["id"]) if v["reviewer"] == "demo-reviewer"
        ]
        assert [v["choice"] for v in reviewer_votes] == ["A", "B", "tie"]
        assert all(v["created_at"] > lock["locked_at"] for v in reviewer_votes)

        runs = judging.judge_runs(store, Settings.from_env(), "demo")
        random_run = next(r for r in runs if r["label"] == "baseline/random · single order")
        assert random_run["status"] == "complete"
        assert (
            random_run["verdicts"]
            == calls_to_send
            == store.studies.study_counts(study["id"])["pairs"]
        )
        assert random_run["missing"] == 0

        final = store.gate.final_reviews(study["id"])
        assert len({m["output_id"] for m in final}) == 3
        assert sorted((bool(m["acceptable"]), m["comment"]) for m in final) == [
            (False, REJECT_COMMENT),
            (True, ""),
            (True, ""),
        ]
        assert {m["reviewer"] for m in final} == {"demo-signer"}

        signoffs = store.gate.signoffs(study["id"])
        assert [(s["signer"], s["decision"], s["comment"], s["override"]) for s in signoffs] == [
            ("demo-signer", "approve", SIGN_OFF_COMMENT, OVERRIDE_REASON)
        ]
        assert signoffs[0]["gate_result"] == "inconclusive"
        assert signoffs[0]["report_hash"] == shown_hash
    finally:
        store.close()
