"""Use cases of the app. Streamlit pages and the CLI both call these and nothing lower, so the two
can never disagree. Each function takes the `Store` first and returns plain data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from review_app import auth, importers
from review_app.errors import Conflict, Forbidden, InputError, NotFound
from review_app.settings import Settings
from review_app.store import Store

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
DEMO_STUDY = "demo"
DEMO_EVAL_SET = "demo"
DEMO_USERS = (("demo-admin", "admin"), ("demo-reviewer", "reviewer"), ("demo-signer", "signer"))


def open_store(settings: Settings | None = None) -> Store:
    settings = settings or Settings.from_env()
    return Store.open(settings.db_path)


# ---- workspace ----


def workspace_summary(store: Store) -> dict:
    """Counts a home page or `review-app info` shows."""
    studies = []
    for study in store.studies():
        counts = store.study_counts(study["id"])
        comparisons = store.comparisons(study["id"])
        studies.append(
            {
                "name": study["name"],
                "eval_set": study["eval_set"],
                "comparisons": [f"{a} vs {b}" for a, b in comparisons],
                "reviews_per_pair": study["reviews_per_pair"],
                **counts,
            }
        )
    return {
        "eval_sets": [
            {"name": e["name"], "items": e["n_items"], "frozen": bool(e["frozen_at"])}
            for e in store.eval_sets()
        ],
        "systems": store.system_names(),
        "studies": studies,
    }


# ---- imports and exports ----


def import_outputs(store: Store, path: str | Path, eval_set: str, replace: bool = False):
    return importers.import_outputs(store, path, eval_set, replace=replace)


def import_votes(store: Store, path: str | Path, study: str, eval_set: str | None = None):
    return importers.import_votes(store, path, study, eval_set)


def import_verdicts(store: Store, path: str | Path, study: str, eval_set: str | None = None):
    return importers.import_verdicts(store, path, study, eval_set)


EXPORTS = ("votes", "verdicts", "pairs")


def export_rows(store: Store, what: str, study: str) -> Iterator[dict]:
    """Rows of an export, in the same columns the importers read (so exports round-trip)."""
    study_row = store.require_study(study)
    if what == "votes":
        frame = store.votes_frame(study_row["id"])
        pairs = store.pairs_frame(study_row["id"]).set_index("pair_id")
        for vote in frame.itertuples():
            pair = pairs.loc[vote.pair_id]
            yield {
                "item_id": pair.item_key,
                "system_a": pair.system_x,
                "system_b": pair.system_y,
                "reviewer": vote.reviewer,
                "winner": vote.winner,
                "shown_left": vote.shown_left or "",
                "rationale": vote.rationale,
                "created_at": vote.created_at,
            }
    elif what == "verdicts":
        for v in store.verdict_rows(study_row["id"]):
            yield {
                "item_id": v["item_key"],
                "system_a": v["system_x"],
                "system_b": v["system_y"],
                "judge": v["judge"],
                "winner": v["winner"] or "",
                "first": v["first_system"],
                "explanation": v["explanation"],
            }
    elif what == "pairs":
        for p in store.pairs_frame(study_row["id"]).itertuples():
            yield {
                "pair_id": int(p.pair_id),
                "item_id": p.item_key,
                "category": p.category,
                "system_x": p.system_x,
                "system_y": p.system_y,
                "prompt": p.prompt,
                "output_x": p.output_x,
                "output_y": p.output_y,
            }
    else:
        raise InputError(f"unknown export {what!r}; choose one of {', '.join(EXPORTS)}")


# ---- studies ----


@dataclass(frozen=True)
class StudySummary:
    name: str
    eval_set: str
    pairs_added: int
    skipped_items: dict[str, int]
    eval_set_hash: str


def parse_comparison(text: str) -> tuple[str, str]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise InputError(f"--compare {text!r}: expected SYSTEM:SYSTEM, e.g. finetuned:base")
    a, b = (p.strip() for p in parts)
    if a == b:
        raise InputError(f"--compare {text!r}: a system cannot be compared with itself")
    return a, b


def create_study(
    store: Store,
    name: str,
    eval_set: str,
    comparisons: Iterable[tuple[str, str]],
    reviews_per_pair: int = 3,
    show_reference: bool = False,
    criteria: list[str] | None = None,
) -> StudySummary:
    """Create a study and its pairs (one per item and comparison, canonical order), freezing the
    eval set. Items missing an output from either system are skipped and counted."""
    comparisons = list(comparisons)
    if reviews_per_pair < 1:
        raise InputError(f"--reviews-per-pair must be at least 1, got {reviews_per_pair}")
    with store.transaction():
        if store.study(name) is not None:
            raise Conflict(f"a study named {name!r} already exists")
        es = store.require_eval_set(eval_set)
        known = set(store.system_names())
        for a, b in comparisons:
            for system in (a, b):
                if system not in known:
                    raise NotFound(
                        f"--compare {a}:{b}: no system named {system!r} "
                        f"(known: {', '.join(sorted(known)) or 'none'})"
                    )
        study_id = store.insert_study(name, es["id"], reviews_per_pair, show_reference, criteria)
        skipped: dict[str, int] = {}
        added = 0
        all_items = set(store.item_ids_by_key(es["id"]).values())
        for a, b in comparisons:
            store.add_comparison(study_id, a, b)
            having = store.items_with_outputs(es["id"], [a, b])
            both = having[a] & having[b]
            skipped[f"{a}:{b}"] = len(all_items - both)
            x, y = sorted((a, b))
            added += store.insert_pairs(study_id, [(item_id, x, y) for item_id in sorted(both)])
        content_hash = store.freeze_eval_set(es["id"])
    return StudySummary(name, eval_set, added, skipped, content_hash)


# ---- reviewers ----


def add_reviewer(
    store: Store, settings: Settings, name: str, role: str, study: str | None = None
) -> tuple[dict, str]:
    """Create a reviewer (or re-issue the token of an existing one) and return their link."""
    if role not in auth.ROLES:
        raise InputError(f"--role {role!r}: choose one of {', '.join(auth.ROLES)}")
    name = name.strip()
    if not name:
        raise InputError("reviewer name is empty")
    token = auth.new_token()
    with store.transaction():
        study_id = store.require_study(study)["id"] if study else None
        existing = store.reviewer(name)
        if existing is None:
            store.insert_reviewer(name, role, auth.hash_token(token), study_id)
        else:
            store.set_reviewer_token(existing["id"], auth.hash_token(token), role)
    return store.reviewer(name), auth.personal_link(settings.base_url, token)


def list_reviewers(store: Store) -> list[dict]:
    return store.reviewers()


def revoke_reviewer(store: Store, name: str) -> None:
    with store.transaction():
        row = store.reviewer(name)
        if row is None:
            raise NotFound(f"no reviewer named {name!r}")
        store.revoke_reviewer(row["id"])


def authenticate(store: Store, token: str | None) -> dict:
    """The reviewer a token belongs to; Forbidden if it is missing, unknown or revoked."""
    if not token:
        raise Forbidden("this app needs your personal link (it ends in ?token=...)")
    row = store.reviewer_by_token_hash(auth.hash_token(token))
    if row is None:
        raise Forbidden("this link is not valid; ask the study admin for a new one")
    if row["revoked_at"]:
        raise Forbidden("this link has been revoked; ask the study admin for a new one")
    return row


def require_role(reviewer: dict, *roles: str) -> None:
    if reviewer["role"] not in roles:
        raise Forbidden(f"this screen is for {' or '.join(roles)} accounts")


# ---- demo ----


def seed_demo(store: Store, settings: Settings, data_dir: Path = DEMO_DIR) -> dict[str, str]:
    """Load the demo eval set, study and example votes (idempotent) and return fresh personal
    links for the demo users, by name."""
    import_outputs(store, data_dir / "outputs.jsonl", DEMO_EVAL_SET)
    if store.study(DEMO_STUDY) is None:
        create_study(
            store,
            DEMO_STUDY,
            DEMO_EVAL_SET,
            [("finetuned", "base"), ("finetuned", "frontier")],
            reviews_per_pair=3,
            show_reference=False,
            criteria=["accuracy", "helpfulness", "tone", "format"],
        )
    import_votes(store, data_dir / "votes.csv", DEMO_STUDY)
    links = {}
    for name, role in DEMO_USERS:
        _, links[name] = add_reviewer(store, settings, name, role, DEMO_STUDY)
    return links


# ---- end of sections ----
