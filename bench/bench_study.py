"""The benchmark workspace every study benchmark starts from: an eval set of generated items
answered by each system, and a study comparing them, written through the store in one
transaction."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence

from review_app.auth import Actor
from review_app.services import people
from review_app.settings import Settings
from review_app.store import Store


def seed_study(
    store: Store,
    *,
    n_items: int,
    categories: Sequence[str],
    systems: Sequence[str],
    comparisons: Sequence[tuple[str, str]],
    output: Callable[[int, str], str],
    prompt: str = "question {i}",
    reviews_per_pair: int = 1,
    criteria: Sequence[str] = (),
    candidate: str | None = None,
) -> int:
    """Write the eval set "bench" (item i in category i mod len(categories); `output(i, system)`
    gives each answer) and the study "bench" over it with one pair per item and comparison, the
    eval set frozen as a study freezes it. Returns the study's id."""
    with store.transaction():
        eval_set_id = store.catalog.ensure_eval_set("bench")["id"]
        item_ids = store.catalog.insert_items(
            eval_set_id,
            [
                {
                    "item_key": f"item-{i:05d}",
                    "prompt": prompt.format(i=i),
                    "reference": None,
                    "category": categories[i % len(categories)],
                    "metadata": {},
                }
                for i in range(n_items)
            ],
        )
        store.catalog.ensure_systems(systems)
        store.catalog.upsert_outputs(
            [
                (item_id, system, output(i, system))
                for i, item_id in enumerate(item_ids.values())
                for system in systems
            ]
        )
        study_id = store.studies.insert_study(
            "bench",
            eval_set_id,
            reviews_per_pair,
            criteria=list(criteria) or None,
            candidate=candidate,
        )
        for a, b in comparisons:
            store.studies.add_comparison(study_id, a, b)
            x, y = sorted((a, b))
            store.studies.insert_pairs(study_id, [(item_id, x, y) for item_id in item_ids.values()])
        store.catalog.freeze_eval_set(eval_set_id)
    return study_id


def bench_admin(store: Store, name: str = "bench-admin") -> tuple[Actor, str]:
    """The workspace's first admin, as the Actor services take and the token the CLI takes."""
    _, link = people.add_reviewer(store, Settings.from_env(), name, "admin", actor=None)
    return Actor.of(store.people.reviewer(name)), link.split("token=")[1]


def import_everything() -> None:
    """Import every module of the app (not the Streamlit scripts: the app's entry and its
    pages), as a process that has run commands and pages before has. The command line imports a
    command's modules when the command runs: a benchmark that times one command in-process
    imports them first, so that it times the command's work and not the imports."""
    import review_app

    for module in pkgutil.walk_packages(review_app.__path__, "review_app."):
        if module.name != "review_app.streamlit_app" and ".app_pages" not in module.name:
            importlib.import_module(module.name)
