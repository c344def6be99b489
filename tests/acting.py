"""Who tests act as: people with real rows in the workspace (an Actor is always someone holding a
link), the study contexts use cases take, and the token a CLI test passes."""

from __future__ import annotations

from review_app import auth
from review_app.auth import Actor
from review_app.services import context, thresholds
from review_app.services.context import StudyContext
from review_app.settings import Settings
from review_app.store import Store


def person(store: Store, name: str | None = None, role: str = "admin") -> Actor:
    """`name` as an Actor (someone with a live link; created with `role` when missing, the row
    written directly: how they got it is not what these tests are about). Without a name, the
    workspace's first live admin (the demo's admin in a demo workspace), else "admin"."""
    if name is None:
        admins = [
            r
            for r in store.people.reviewers()
            if r["role"] == "admin" and r["has_link"] and not r["revoked_at"]
        ]
        name = admins[0]["name"] if admins else "admin"
    row = store.people.reviewer(name)
    if row is None or not row["token_hash"]:
        token_hash = auth.hash_token(auth.new_token())
        with store.transaction():
            if row is None:
                store.people.insert_reviewer(name, role, token_hash, None)
            else:
                store.people.set_reviewer_token(row["id"], token_hash, role, row["study_id"])
        row = store.people.reviewer(name)
    return Actor.of(row)


def acting(
    store: Store,
    study: str,
    name: str | None = None,
    role: str = "admin",
    settings: Settings | None = None,
) -> StudyContext:
    """The context of `study` as `name` (an admin unless `role` says otherwise)."""
    actor = person(store, name, role)
    return context.open_study(store, settings or Settings.from_env(), study, actor)


def reading(store: Store, study: str, settings: Settings | None = None) -> StudyContext:
    """The context of `study` for reads made without a link."""
    return context.open_study(store, settings or Settings.from_env(), study, None)


def token_for(store: Store, name: str = "admin", role: str = "admin") -> str:
    """A fresh personal token for `name` (replacing any link they had)."""
    token = auth.new_token()
    person(store, name, role)
    row = store.people.reviewer(name)
    with store.transaction():
        store.people.set_reviewer_token(row["id"], auth.hash_token(token), role, row["study_id"])
    return token


def looking(store: Store, study: str, settings: Settings | None = None) -> StudyContext:
    """The context of `study` as the workspace's first admin: outcomes are read by someone, and
    before the planned sample is in each look is recorded in their name."""
    return acting(store, study, settings=settings)


def lock_on_win_rate(store: Store, settings: Settings | None = None) -> None:
    """The demo with one threshold, finetuned's human win rate over base above one half, locked
    by the demo's admin (with a reason: the demo is too small for the design to pass)."""
    admin = acting(store, "demo", "demo-admin", settings=settings)
    thresholds.add_threshold(
        admin, "human_win_rate", {"system_a": "finetuned", "system_b": "base"}, ">", 0.5
    )
    thresholds.lock_thresholds(
        acting(store, "demo", "demo-admin", settings=settings), "a small test study"
    )


def lock_as_ada(store: Store, settings: Settings, recommended: bool = True) -> str:
    """Lock the demo study as admin ada (with the recommended thresholds unless told
    otherwise); returns ada's personal token."""
    from review_app.services import people

    _, link = people.add_reviewer(
        store, settings, "ada", "admin", "demo", actor=person(store), reissue=True
    )
    if recommended:
        thresholds.add_recommended_thresholds(acting(store, "demo", "ada"))
    thresholds.lock_thresholds(
        acting(store, "demo", "ada", settings=settings), "a small test study"
    )
    return link.rsplit("token=", 1)[1]
