"""Screenshots of the review screen for the README: the demo study as the demo reviewer sees it,
wide (1400x900) and narrow (420x900), in Debian's chromium.

Usage: python docs/make_screenshots.py   (writes docs/review-wide.png and docs/review-narrow.png)"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from review_app.services import demo  # noqa: E402
from review_app.settings import Settings  # noqa: E402
from review_app.store import Store  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, AppServer, wait_for_pair  # noqa: E402

SIZES = {"wide": (1400, 900), "narrow": (420, 900)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        store = Store.open(db)
        links = demo.seed_demo(store, Settings.from_env())
        store.close()
        token = links["demo-reviewer"].split("token=")[1]
        server = AppServer(db)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for name, (width, height) in SIZES.items():
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(server.link(token))
                    wait_for_pair(page)
                    page.wait_for_timeout(500)
                    out = ROOT / "docs" / f"review-{name}.png"
                    page.screenshot(path=str(out))
                    print(f"wrote {out.relative_to(ROOT)}")
                    page.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
