"""Who may do what: the `Actor` (a link's holder, authenticated once), the roles each governance
action needs, and which screens each role opens. A token is 192 random bits shown once in a
personal link; only its SHA-256 is stored, so a leaked database does not leak working links."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from review_app.errors import Forbidden

ROLES = ("reviewer", "admin", "signer")

# (screen, page file in app_pages/, title, icon) in the order of the work: set up, review, judge
# and calibrate, then decide (the Gate locks the thresholds before Results show anything). The
# sidebar lists a role's screens in this order; each title is also its browser tab's title.
SCREENS = [
    ("review", "review.py", "Review", ":material/rate_review:"),
    ("home", "home.py", "Workspace", ":material/home:"),
    ("data", "data.py", "Upload data", ":material/upload_file:"),
    ("studies", "studies.py", "Studies", ":material/library_books:"),
    ("people", "people.py", "Reviewers", ":material/group:"),
    ("quality", "quality.py", "Reviewer quality", ":material/fact_check:"),
    ("judge", "judge_runs.py", "Judge runs", ":material/gavel:"),
    ("calibration", "calibration.py", "Calibration", ":material/tune:"),
    ("disagreements", "disagreements.py", "Disagreements", ":material/compare_arrows:"),
    ("gate", "gate.py", "Gate", ":material/verified:"),
    ("results", "results.py", "Results", ":material/leaderboard:"),
    ("scorecard", "scorecard.py", "Scorecard", ":material/table_chart:"),
    ("items", "items.py", "Items", ":material/search:"),
]
# Where each role starts: its own task.
LANDING = {"reviewer": "review", "admin": "home", "signer": "gate"}

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
        "scorecard",
        "gate",
        "items",
    },
    "signer": {"review", "home", "calibration", "results", "scorecard", "gate", "items"},
}


def new_token() -> str:
    """A personal token: 32 URL-safe characters. One that starts with "-" would read as an
    option in `--token TOKEN` (about 1 in 64), so such draws are drawn again."""
    while (token := secrets.token_urlsafe(24)).startswith("-"):
        pass
    return token


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_fingerprint(token_hash: str) -> str:
    """A short name for one personal link (from its token's hash, which it does not reveal):
    the audit log records it when the link is issued and a sign-off when the link signs, so a
    signature made with a link nobody issued shows."""
    return hashlib.sha256(f"link\n{token_hash}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Actor:
    """The person a use case acts for: the holder of a live personal link, authenticated once by
    the page or command that enters the use case and passed down, never defaulted. The audit log,
    deviations and sign-offs name them."""

    name: str
    role: str
    reviewer_id: int
    # The link they were authenticated with: its fingerprint and version (None for an actor
    # rebuilt from a record, such as an import finished by another process).
    link: str | None = None
    link_version: int | None = None

    @classmethod
    def of(cls, reviewer: dict) -> Actor:
        """The actor for a reviewer row whose token was just checked (see `people.authenticate`)."""
        if reviewer.get("revoked_at"):
            raise Forbidden(f"{reviewer['name']}'s link has been revoked")
        token_hash = reviewer.get("token_hash")
        return cls(
            reviewer["name"],
            reviewer["role"],
            reviewer["id"],
            link_fingerprint(token_hash) if token_hash else None,
            reviewer.get("token_version"),
        )


# Each governance action and the roles that may take it: the one table services check an Actor
# against (`require`). Reviewing a pair is not governance: any live link may vote on its own share.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "import data": ("admin",),
    "create a study": ("admin",),
    "archive a study": ("admin",),
    "name the candidate": ("admin",),
    "set the guidelines": ("admin",),
    "change the thresholds": ("admin", "signer"),
    "lock the thresholds": ("admin", "signer"),
    "change the plan": ("admin",),
    "look at outcomes": ("admin", "signer"),
    "browse items": ("admin", "signer"),
    "manage links": ("admin",),
    "exclude a reviewer": ("admin",),
    "set a known answer": ("admin",),
    "run a judge": ("admin",),
    "create a jury": ("admin",),
    "make the split": ("admin",),
    "run graders": ("admin",),
    "save a rubric": ("admin",),
    "look at test": ("admin", "signer"),
    "mark the final review": ("signer",),
    "sign off": ("signer",),
}


def allowed(actor: Actor, action: str) -> bool:
    return actor.role in PERMISSIONS[action]


def require(actor: Actor, action: str) -> None:
    """Forbidden unless `actor`'s role may take `action` (a key of PERMISSIONS)."""
    if not isinstance(actor, Actor):
        raise TypeError(f"{action} needs an authenticated Actor, got {actor!r}")
    if not allowed(actor, action):
        roles = " or ".join(PERMISSIONS[action])
        raise Forbidden(
            f"{actor.name} ({actor.role}) may not {action}: it takes a link with the role {roles}"
        )
