"""Reviewers, admins and signers: personal links (tokens) and their versions, revocation, the
history of every link the audit log issued, and the rule that a workspace keeps an admin."""

from __future__ import annotations

import json

from review_app import auth, links
from review_app.auth import Actor
from review_app.errors import Conflict, Forbidden, InputError, NotFound
from review_app.migrations import LINK_ISSUED
from review_app.names import checked_name
from review_app.services import audit
from review_app.settings import Settings
from review_app.store import Store

__all__ = [
    "actor_for",
    "add_reviewer",
    "authenticate",
    "had_admin",
    "has_admin",
    "link_issues",
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
    link_base: links.LinkBase | None = None,
) -> tuple[dict, str]:
    """Create a reviewer and return their personal link, on `link_base` (a screen passes the
    address its browser reached; by default `links.link_base(settings)`). Someone who already has a link (or
    another role) gets a new one only with `reissue`: silently replacing anyone's link or role
    would let an admin act in their name. Both are logged, with the new link's fingerprint and
    version. `actor` is an admin, or None only to set up the first admin of a workspace that
    never had one, who is then recorded as adding themselves."""
    if actor is not None:
        auth.require(actor, "manage links")
    elif role != "admin" or has_admin(store):
        raise Forbidden("adding someone acts in an admin's name: it needs an admin's link")
    elif had_admin(store):
        # Otherwise revoking the admins (or their rows in the file) would let anyone take over.
        raise Forbidden(
            "this workspace has had an admin: a new one needs an admin's link, never the "
            "first-admin setup"
        )
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
            if role != "admin":
                _refuse_last_admin(store, existing, f"given the role {role}")
            store.people.set_reviewer_token(existing["id"], auth.hash_token(token), role, study_id)
            action = "link reissued" if has_link else "link issued"
        if actor is None:
            action = "first admin added"
        by = actor.name if actor is not None else name
        issued = store.people.reviewer(name)
        audit.record(
            store,
            by,
            action,
            study_id,
            reviewer=name,
            role=role,
            link=auth.link_fingerprint(issued["token_hash"]),
            version=issued["token_version"],
        )
    base = link_base or links.link_base(settings)
    return store.people.reviewer(name), links.personal_link(base, token)


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
        _refuse_last_admin(store, row, "revoked")
        store.people.revoke_reviewer(row["id"])
        audit.record(store, actor.name, "link revoked", row["study_id"], reviewer=name)


def _refuse_last_admin(store: Store, row: dict, what: str) -> None:
    """Conflict when `row` holds the workspace's last live admin link: without one nobody
    could manage links, and the first-admin setup stays closed."""
    live = [
        r
        for r in store.people.reviewers()
        if r["role"] == "admin" and not r["revoked_at"] and r["has_link"]
    ]
    if [r["id"] for r in live] == [row["id"]]:
        raise Conflict(
            f"{row['name']} holds the last admin link and cannot be {what}: add another admin first"
        )


def has_admin(store: Store) -> bool:
    """Whether anyone holds a live admin link."""
    return any(
        r["role"] == "admin" and not r["revoked_at"] and r["has_link"]
        for r in store.people.reviewers()
    )


def had_admin(store: Store) -> bool:
    """Whether the workspace has ever had an admin (a row, live or revoked, or an admin link
    the audit log issued): the first-admin setup is only for a workspace that never had one."""
    if any(r["role"] == "admin" for r in store.people.reviewers()):
        return True
    return any(
        issue["role"] == "admin" for issues in link_issues(store).values() for issue in issues
    )


def link_issues(store: Store) -> dict[str, list[dict]]:
    """reviewer name -> every link the audit log issued them, oldest first: who issued it
    (`by`), when (`at`), how (`action`), the role, and the link's fingerprint and version when
    recorded; and each revocation (`action` "link revoked")."""
    issues: dict[str, list[dict]] = {}
    for entry in store.audit.audit_entries():
        if entry["action"] not in (*LINK_ISSUED, "link revoked"):
            continue
        detail = json.loads(entry["detail"])
        issues.setdefault(detail.get("reviewer"), []).append(
            {
                "action": entry["action"],
                "by": entry["actor"],
                "at": entry["at"],
                "role": detail.get("role"),
                "link": detail.get("link"),
                "version": detail.get("version"),
            }
        )
    return issues


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
