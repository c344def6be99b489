"""Screenshots for the README from the demo study, in Debian's chromium: the review screen as the
demo reviewer sees it, wide (1440x900) and on a phone (390x844), and two admin screens, reviewer
quality and uploading outputs.

Usage: python docs/make_screenshots.py   (writes docs/review-wide.png, docs/review-narrow.png,
docs/quality.png and docs/upload.png)"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from review_app.services import demo, people, review  # noqa: E402
from review_app.settings import Settings  # noqa: E402
from review_app.store import Store  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    wait_for_pair,
    wait_idle,
)

SIZES = {"wide": (1440, 900), "narrow": (390, 844)}


def review_screens(browser, server: AppServer, token: str) -> None:
    for name, (width, height) in SIZES.items():
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(server.link(token))
        wait_for_pair(page)
        # A returning reviewer: the guidelines one click away, the pair in full view.
        page.keyboard.press("t")
        page.get_by_text("Saved: Tie.").wait_for()
        wait_idle(page)
        page.wait_for_timeout(800)
        save(page, f"review-{name}.png")
        page.close()


def add_hasty_reviewer(store: Store, settings: Settings) -> None:
    """A reviewer who clicked "A is better" on 40 pairs in about 2 seconds each: what the
    reviewer-quality screen is there to catch."""
    reviewer, _ = people.add_reviewer(store, settings, "hasty-hugo", "reviewer", demo.DEMO_STUDY)
    study_id = store.studies.require_study(demo.DEMO_STUDY)["id"]
    for _ in range(40):
        task = review.next_pair(store, settings, reviewer["id"], study_id)
        review.record_vote(store, settings, reviewer["id"], task.assignment_id, "A", ms_spent=2100)


def admin_screens(browser, server: AppServer, token: str) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.goto(f"{server.url}/quality?token={token}")
    page.get_by_role("heading", name="Exclude or include a reviewer").wait_for(timeout=30_000)
    wait_idle(page)
    page.wait_for_timeout(1000)
    save(page, "quality.png")
    page.goto(f"{server.url}/data?token={token}")
    page.get_by_role("heading", name="Upload data").wait_for(timeout=30_000)
    wait_idle(page)
    page.locator('input[type="file"]').set_input_files(str(demo.DEMO_DIR / "outputs.jsonl"))
    wait_idle(page)
    choice = page.locator(".st-key-upload_eval_set input")
    choice.click()
    choice.fill("(new)")
    choice.press("Enter")
    wait_idle(page)
    name = page.get_by_role("textbox", name="New eval set name")
    name.fill("lumen-march")
    name.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Import").click()
    page.get_by_text("Imported outputs.jsonl").wait_for(timeout=30_000)
    wait_idle(page)
    save(page, "upload.png")
    page.close()


def save(page, name: str) -> None:
    out = ROOT / "docs" / name
    page.screenshot(path=str(out))
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        store = Store.open(db)
        settings = Settings.from_env()
        links = demo.seed_demo(store, settings)
        add_hasty_reviewer(store, settings)
        store.close()
        tokens = {name: link.split("token=")[1] for name, link in links.items()}
        server = AppServer(db)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                review_screens(browser, server, tokens["demo-reviewer"])
                admin_screens(browser, server, tokens[demo.DEMO_ADMIN])
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
