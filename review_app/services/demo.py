"""The demo workspace: the shipped eval set, study, example votes and verdicts, the baseline judge
runs, and links for its three users."""

from __future__ import annotations

import json
from pathlib import Path

from review_app import auth, baselines, links
from review_app.auth import Actor
from review_app.services.context import StudyContext, open_study
from review_app.services.data import import_outputs, import_verdicts, import_votes
from review_app.services.grading import DEMO_GRADER, grade
from review_app.services.judging import DEMO_RUBRIC, start_judge_run
from review_app.services.people import add_reviewer
from review_app.services.studies import create_study, read_guidelines_file, set_guidelines
from review_app.settings import Settings
from review_app.store import Store

__all__ = ["DEMO_ADMIN", "DEMO_EVAL_SET", "DEMO_STUDY", "seed_demo"]

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo"


DEMO_STUDY = "demo"


DEMO_EVAL_SET = "demo"


DEMO_ADMIN = "demo-admin"
DEMO_USERS = ((DEMO_ADMIN, "admin"), ("demo-reviewer", "reviewer"), ("demo-signer", "signer"))


def seed_demo(store: Store, settings: Settings, data_dir: Path = DEMO_DIR) -> dict[str, str]:
    """Load the demo eval set, study (with its reviewer guidelines), example votes and example
    judge verdicts (idempotent), run the baseline judges and the demo grader, and return the
    personal links of the demo users, by name (the same links as the last run while they still
    work). Everything is done as the demo's admin, who is
    the workspace's first admin."""
    if store.people.reviewer(DEMO_ADMIN) is None:
        add_reviewer(store, settings, DEMO_ADMIN, "admin", actor=None)
    admin = Actor.of(store.people.reviewer(DEMO_ADMIN))
    import_outputs(store, data_dir / "outputs.jsonl", DEMO_EVAL_SET, actor=admin)
    if store.studies.study(DEMO_STUDY) is None:
        create_study(
            store,
            DEMO_STUDY,
            DEMO_EVAL_SET,
            [("finetuned", "base"), ("finetuned", "frontier")],
            reviews_per_pair=3,
            show_reference=False,
            criteria=["accuracy", "helpfulness", "tone", "format"],
            actor=admin,
        )
    ctx = open_study(store, settings, DEMO_STUDY, admin)
    set_guidelines(ctx, read_guidelines_file(data_dir / "guidelines.md"))
    import_votes(store, data_dir / "votes.csv", DEMO_STUDY, actor=admin)
    import_verdicts(store, data_dir / "verdicts.csv", DEMO_STUDY, actor=admin)
    seed_demo_judges(ctx)
    if not ctx.lock.locked:
        grade(ctx, DEMO_GRADER)
    return _demo_links(store, settings, admin)


def links_file(settings: Settings) -> Path:
    """Where the demo keeps the links it handed out, beside its workspace (owner-only)."""
    if settings.db_is_server:
        return settings.db_folder() / "demo-links.json"
    db = Path(settings.db)
    return db.with_name(db.name + ".demo-links.json")


def _demo_links(store: Store, settings: Settings, admin: Actor) -> dict[str, str]:
    """The demo users' links: the ones handed out before when they still work, so restarting
    the demo keeps every open tab signed in; a new link for a user whose link is gone."""
    path = links_file(settings)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    issued = {}
    for name, role in DEMO_USERS:
        token = kept.get(name) if isinstance(kept, dict) else None
        row = store.people.reviewer(name)
        live = (
            isinstance(token, str)
            and row is not None
            and not row["revoked_at"]
            and row["role"] == role
            and row["token_hash"] == auth.hash_token(token)
        )
        if live:
            issued[name] = links.personal_link(links.link_base(settings), token)
        else:
            _, issued[name] = add_reviewer(
                store, settings, name, role, DEMO_STUDY, actor=admin, reissue=True
            )
    if str(settings.db) != ":memory:":
        tokens = {name: link.split("token=", 1)[1] for name, link in issued.items()}
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(json.dumps(tokens), encoding="utf-8")
    return issued


def seed_demo_judges(ctx: StudyContext) -> None:
    """Baseline-judge runs (all four, both orders) on the demo study, so calibration has judges
    to show without any API key. Idempotent: a complete run sends nothing."""
    for name in baselines.BASELINES:
        start_judge_run(ctx, DEMO_RUBRIC, baselines.label(name))
