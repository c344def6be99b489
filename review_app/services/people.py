"""Reviewers, admins and signers: personal links (tokens), revocation, and who may do what."""

from __future__ import annotations

from review_app import auth
from review_app.auth import Actor
from review_app.errors import Conflict, Forbidden, InputError, NotFound
from review_app.names import checked_name
from review_app.services import audit
from review_app.settings import Settings
from review_app.store import Store

__all__ = [
    "actor_for",
    "add_reviewer",
    "authenticate",
    "has_admin",
    "list_reviewers",
    "reviewer_named",
    "revoke_reviewer",
]


def add_reviewer(
    store: Store,
    settings: Settings,
    name: str,
    role: str,
    study: str | None = None,
    *,
    actor: Actor | None,
    reissue: bool = False,
) -> tuple[dict, str]:
    """Create a reviewer and return their personal link. Someone who already has a link (or
    another role) gets a new one only with `reissue`: silently replacing anyone's link or role
    would let an admin act in their name. Both are logged. `actor` is an admin, or None only to
    set up a workspace's first admin, who is then recorded as adding themselves."""
    if actor is not None:
        auth.require(actor, "manage links")
    elif role != "admin" or has_admin(store):
        raise Forbidden("adding someone acts in an admin's name: it needs an admin's link")
    if role not in auth.ROLES:
        raise InputError(f"role {role!r}: choose one of {', '.join(auth.ROLES)}")
    name = checked_name(name, "reviewer name")
    token = auth.new_token()
    with store.transaction():
        study_id = store.studies.require_study(study)["id"] if study else None
        existing = store.people.reviewer(name)
        if existing is None:
            store.people.insert_reviewer(name, role, auth.hash_token(token), study_id)
            action = "reviewer added"
        else:
            has_link = existing["token_hash"] is not None
            if (has_link or existing["role"] != role) and not reissue:
                raise Conflict(
                    f"{name!r} already has a {existing['role']} link; issuing a new one (or a "
                    "new role) replaces it and must be asked for explicitly"
                )
            store.people.set_reviewer_token(existing["id"], auth.hash_token(token), role, study_id)
            action = "link reissued" if has_link else "link issued"
        if actor is None:
            action = "first admin added"
        by = actor.name if actor is not None else name
        audit.record(store, by, action, study_id, reviewer=name, role=role)
    return store.people.reviewer(name), auth.personal_link(settings.base_url, token)


def reviewer_named(store: Store, name: str) -> dict:
    row = store.people.reviewer(name)
    if row is None:
        raise NotFound(f"no reviewer named {name!r}")
    return row


def list_reviewers(store: Store) -> list[dict]:
    return store.people.reviewers()


def revoke_reviewer(store: Store, name: str, actor: Actor) -> None:
    auth.require(actor, "manage links")
    with store.transaction():
        row = store.people.reviewer(name)
        if row is None:
            raise NotFound(f"no reviewer named {name!r}")
        store.people.revoke_reviewer(row["id"])
        audit.record(store, actor.name, "link revoked", row["study_id"], reviewer=name)


def has_admin(store: Store) -> bool:
    """Whether anyone holds a live admin link (until then the CLI may create the first one)."""
    return any(
        r["role"] == "admin" and not r["revoked_at"] and r["has_link"]
        for r in store.people.reviewers()
    )


def authenticate(store: Store, token: str | None) -> dict:
    """The reviewer a token belongs to; Forbidden if it is missing, unknown or revoked."""
    if not token:
        raise Forbidden("this app needs your personal link (it ends in ?token=...)")
    row = store.people.reviewer_by_token_hash(auth.hash_token(token))
    if row is None:
        raise Forbidden("this link is not valid; ask the study admin for a new one")
    if row["revoked_at"]:
        raise Forbidden("this link has been revoked; ask the study admin for a new one")
    return row


def actor_for(store: Store, token: str | None) -> Actor:
    """The Actor a personal token stands for; Forbidden if it is missing, unknown or revoked."""
    return Actor.of(authenticate(store, token))
