"""A workspace whose every name (study, systems, judge, reviewers, eval set, category, rubric)
and comment is Markdown that would show an image from, or link to, attacker.example if a screen
or report rendered it instead of showing it as typed."""

from __future__ import annotations

import json
import re
from pathlib import Path

from review_app.auth import Actor
from review_app.services import data, people, signoff, studies, thresholds
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import acting, looking, person
from tests.conftest import ROOT, write

HOST = "attacker.example"


def hostile(tag: str) -> str:
    """A name that is an image, a link and emphasis if rendered as Markdown."""
    return f"![{tag}](//{HOST}/{tag}.png) [{tag}](https://{HOST}/{tag}) *{tag}*"


CANDIDATE, OTHER = hostile("cand"), hostile("base")
STUDY, EVAL_SET, CATEGORY = hostile("study"), hostile("evalset"), hostile("category")
JUDGE, REVIEWER = hostile("judge"), hostile("reviewer")
ADMIN, SIGNER = hostile("admin"), hostile("signer")
COMMENTS = ("reason", "mark", "signoff", "rationale")


def build(store: Store, settings: Settings, folder: Path) -> dict[str, str]:
    """One locked, judged, reviewed and signed study with hostile names, and a rubric folder
    (`folder / "rubrics"`, for REVIEW_APP_RUBRICS) holding a rubric with a hostile description.
    Returns the tokens of its admin and signer."""
    rows = [
        {"item_id": f"q{i}", "prompt": f"Question {i}?", "system": system, "category": CATEGORY}
        | {"output": f"Answer {i} " + "long " * (5 if system == OTHER else 1)}
        for i in range(6)
        for system in (CANDIDATE, OTHER)
    ]
    data.import_outputs(
        store, write(folder / "o.jsonl", _jsonl(rows)), EVAL_SET, actor=person(store)
    )
    studies.create_study(
        store, STUDY, EVAL_SET, [(CANDIDATE, OTHER)], reviews_per_pair=2, actor=person(store)
    )
    votes = [
        {"item_id": f"q{i}", "system_a": CANDIDATE, "system_b": OTHER, "reviewer": reviewer}
        | {"winner": CANDIDATE if i % 3 else OTHER, "rationale": hostile("rationale")}
        for i in range(6)
        for reviewer in (REVIEWER, "ann")
    ]
    data.import_votes(store, write(folder / "v.jsonl", _jsonl(votes)), STUDY, actor=person(store))
    verdicts = [
        {"item_id": f"q{i}", "system_a": CANDIDATE, "system_b": OTHER, "judge": JUDGE}
        | {"winner": OTHER if i % 2 else CANDIDATE, "first": first, "explanation": "because"}
        for i in range(6)
        for first in (CANDIDATE, OTHER)
    ]
    data.import_verdicts(
        store, write(folder / "j.jsonl", _jsonl(verdicts)), STUDY, actor=person(store)
    )
    _, admin_link = people.add_reviewer(store, settings, ADMIN, "admin", actor=person(store))
    signer_row, signer_link = people.add_reviewer(
        store, settings, SIGNER, "signer", actor=person(store)
    )
    signer = Actor.of(signer_row)
    pair = {"system_a": CANDIDATE, "system_b": OTHER}
    thresholds.add_threshold(acting(store, STUDY, ADMIN), "human_win_rate", pair, ">", 0.5)
    thresholds.add_threshold(
        acting(store, STUDY, ADMIN),
        "max_regression_points",
        pair | {"categories": CATEGORY},
        "<=",
        5,
    )
    thresholds.lock_thresholds(acting(store, STUDY, ADMIN, settings=settings), "a small test study")
    thresholds.add_threshold(
        acting(store, STUDY, ADMIN),
        "judge_agreement",
        {"judge": JUDGE, "ties": "strict"},
        ">=",
        0.6,
        reason=hostile("reason"),
    )
    sample = signoff.final_review_sample(looking(store, STUDY, settings))
    signoff.record_final_review(
        store, STUDY, signer, sample[0]["output_id"], False, hostile("mark"), settings
    )
    signoff.sign_off(store, STUDY, signer, "reject", hostile("signoff"), settings)
    studies.set_guidelines(acting(store, STUDY, ADMIN), "# House rules\n\n- Be fair.")
    rubric = (ROOT / "rubrics" / "general-pairwise.yaml").read_text()
    rubric = re.sub(r"(?m)^description: .*$", f"description: '{hostile('rubric')}'", rubric)
    (folder / "rubrics").mkdir()
    write(folder / "rubrics" / "zz.yaml", rubric.replace("general-pairwise", "zz-hostile"))
    return {"admin": admin_link.split("token=")[1], "signer": signer_link.split("token=")[1]}


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)
