"""Reviewer tokens and roles: which screens each role opens and where it lands. A token is 192
random bits shown once in a personal link; only its SHA-256 is stored, so a leaked database does
not leak working links."""

from __future__ import annotations

import hashlib
import secrets

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
    },
    "signer": {"review", "home", "calibration", "results", "scorecard", "gate"},
}


def new_token() -> str:
    """A personal token: 32 URL-safe characters. One that starts with "-" would read as an
    option in `--token TOKEN` (about 1 in 64), so such draws are drawn again."""
    while (token := secrets.token_urlsafe(24)).startswith("-"):
        pass
    return token


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def personal_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/?token={token}"
