"""The in-app rubric editor: check rubric YAML as it is typed (the judge's own loader, its error in
one line), render the prompt a judge would get for a sample pair of the study (responses as A and
B only), and save the text as a new rubric version beside the other rubric files."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from judge.errors import RubricError
from judge.rubric import Rubric, parse_rubric
from judge.runner import build_calls, render_call
from review_app import auth
from review_app.auth import Actor
from review_app.errors import Conflict, InputError
from review_app.services import audit, judging
from review_app.settings import Settings
from review_app.store import Store

__all__ = ["check_rubric", "editor_folder", "sample_prompt", "save_rubric_version"]

EDITOR_SOURCE = "rubric (editor)"
_FILE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class RubricCheck:
    rubric: Rubric | None
    error: str | None


def check_rubric(text: str) -> RubricCheck:
    """The rubric the text describes, or the loader's error (one line: line and field)."""
    try:
        return RubricCheck(parse_rubric(text, source=EDITOR_SOURCE), None)
    except RubricError as exc:
        return RubricCheck(None, " ".join(str(exc).split()))


def editor_folder(settings: Settings) -> Path:
    """Where saved versions go: REVIEW_APP_RUBRICS, else a `rubrics` folder beside the workspace
    (offered on the judge-runs screen either way)."""
    if settings.judge_rubrics_dir:
        return Path(settings.judge_rubrics_dir)
    return settings.db_folder() / "rubrics"


def sample_prompt(
    store: Store, study: str, rubric: Rubric, settings: Settings
) -> list[dict[str, str]]:
    """The messages a judge would receive for one of the study's pairs (a dev pair when the study
    is split), picked and ordered with the seed. The responses are called A and B; nothing names
    a system."""
    study_row = store.studies.require_study(study)
    # Only the chosen pair's texts are read: a large study's texts take seconds to load.
    pair_ids = store.frames.pair_ids(study_row["id"])
    if not pair_ids:
        raise InputError(f"study {study} has no pairs to show a prompt for")
    parts = store.calibration.split_parts(study_row["id"])
    dev = [p for p in pair_ids if parts.get(p) == "dev"]
    chosen_id = random.Random(settings.seed).choice(dev or pair_ids)
    chosen = store.frames.pair_with_texts(study_row["id"], chosen_id)
    calls = build_calls([chosen], both_orders=False, seed=settings.seed)
    try:
        return render_call(rubric, calls[0])
    except RubricError as exc:
        raise InputError(f"{EDITOR_SOURCE}: {exc}") from exc


def save_rubric_version(store: Store, settings: Settings, text: str, actor: Actor) -> Path:
    """Write the rubric text as a new file `<name>-v<version>.yaml` in the editor folder and record
    it in the workspace's rubrics. Refused when it does not load, when a rubric file with the same
    name and version exists (change the version), or when the same content is already saved."""
    auth.require(actor, "save a rubric")
    check = check_rubric(text)
    if check.rubric is None:
        raise InputError(check.error or "the rubric does not load")
    rubric = check.rubric
    if not _FILE_PART.match(str(rubric.version)):
        # The version is part of the file name: a "/" in it would name another folder.
        raise InputError(
            f"{EDITOR_SOURCE}: version {rubric.version!r}: use letters, digits, '.', '-' or '_' "
            "(it becomes part of the file name)"
        )
    for choice in judging.available_rubrics(settings):
        if choice.rubric is None:
            continue
        if choice.rubric.content_hash == rubric.content_hash:
            raise Conflict(f"this rubric is already saved as {choice.path.name}")
        if (choice.rubric.name, choice.rubric.version) == (rubric.name, rubric.version):
            raise Conflict(
                f"{choice.path.name} already holds {rubric.name} v{rubric.version}: change the "
                "version (or the name) to save a new one"
            )
    folder = editor_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{rubric.name}-v{rubric.version}.yaml"
    if path.exists():
        raise Conflict(f"{path} exists: change the version (or the name) to save a new one")
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    with store.transaction():
        store.judging.ensure_rubric(rubric.name, rubric.version, rubric.content_hash, text)
        audit.record(
            store,
            actor.name,
            "rubric version saved",
            rubric=rubric.name,
            version=str(rubric.version),
            content_hash=rubric.content_hash,
            file=path.name,
        )
    return path
