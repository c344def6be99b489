"""A small blind-review workspace shared by the review tests: system names are unique sentinel
strings, so a test can prove none of them ever reaches a reviewer's screen."""

from __future__ import annotations

import csv
from pathlib import Path

from review_app.services import data, people, studies
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import person

SYSTEM_X = "zq-sentinel-alpha-4f1c"
SYSTEM_Y = "zq-sentinel-bravo-9b7e"
SYSTEM_Z = "zq-sentinel-delta-2a5d"
SENTINELS = (SYSTEM_X, SYSTEM_Y, SYSTEM_Z)
STUDY = "zq-sentinel-study-8c3f"
HOSTILE = (
    "Here you go:\n\n<script>window.__pwned = 1; alert('script')</script>\n\n"
    "<img src=x onerror=\"window.__pwned = 2; alert('img')\">\n\n"
    "[click me](javascript:alert('link'))\n\n"
    "![tracking pixel](http://203.0.113.9/pixel.png)\n\n"
    "| plan | price |\n|---|---|\n| Plus | 4 |\n\n```python\nprint('hello')\n```\n"
)


def write_outputs(path: Path, n_items: int, hostile_item: int | None = None) -> Path:
    """Outputs of three systems on `n_items` items; each text names its item, not its system."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "prompt", "system", "output", "category", "reference"])
        for i in range(n_items):
            for system, style in ((SYSTEM_X, "short"), (SYSTEM_Y, "long"), (SYSTEM_Z, "plain")):
                text = f"Answer {style} for question {i}."
                if hostile_item == i and system == SYSTEM_Y:
                    text = HOSTILE
                writer.writerow(
                    [f"q{i:04d}", f"Question number {i}?", system, text, "support", f"Ref {i}."]
                )
    return path


def make_study(
    store: Store,
    tmp_path: Path,
    n_items: int = 12,
    reviews_per_pair: int = 2,
    criteria: list[str] | None = None,
    hostile_item: int | None = None,
    show_reference: bool = False,
) -> dict:
    data.import_outputs(
        store,
        write_outputs(tmp_path / "outputs.csv", n_items, hostile_item),
        "es",
        actor=person(store),
    )
    studies.create_study(
        store,
        STUDY,
        "es",
        [(SYSTEM_X, SYSTEM_Y), (SYSTEM_X, SYSTEM_Z)],
        reviews_per_pair=reviews_per_pair,
        show_reference=show_reference,
        criteria=criteria,
        actor=person(store),
    )
    return store.studies.require_study(STUDY)


def add_reviewer(store: Store, settings: Settings, name: str, role: str = "reviewer") -> str:
    """Add a reviewer on the sentinel study and return their token."""
    _, link = people.add_reviewer(store, settings, name, role, STUDY, actor=person(store))
    return link.split("token=")[1]
