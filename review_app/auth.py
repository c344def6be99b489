"""Reviewer tokens and roles. A token is 192 random bits shown once in a personal link; only its
SHA-256 is stored, so a leaked database does not leak working links."""

from __future__ import annotations

import hashlib
import secrets

ROLES = ("reviewer", "admin", "signer")

# Which screens each role may open. Signers and admins can also review.
ROLE_SCREENS = {
    "reviewer": {"review"},
    "admin": {
        "review",
        "home",
        "data",
        "studies",
        "people",
        "quality",
        "judge",
        "calibration",
        "disagreements",
        "results",
        "gate",
    },
    "signer": {"review", "home", "calibration", "results", "gate"},
}


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def personal_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/?token={token}"
