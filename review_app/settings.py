"""The one settings object. Configuration flows one way: environment -> Settings -> explicit
arguments. Every field names its environment variable and carries the help text the README shows."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from review_app.errors import InputError


def _setting(env: str, default: object, help: str) -> object:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    db_path: Path = _setting(
        "REVIEW_APP_DB", Path("review.db"), "SQLite workspace file used by the app and the CLI."
    )
    base_url: str = _setting(
        "REVIEW_APP_BASE_URL",
        "http://127.0.0.1:8501",
        "Public address of the app; personal reviewer links are built on it.",
    )
    lease_minutes: float = _setting(
        "REVIEW_APP_LEASE_MINUTES",
        30.0,
        "How long a pair handed to a reviewer stays reserved for them before others may take it.",
    )
    bootstrap_resamples: int = _setting(
        "REVIEW_APP_BOOTSTRAP",
        1000,
        "Bootstrap resamples for every confidence interval (95% percentile, fixed seed).",
    )
    seed: int = _setting(
        "REVIEW_APP_SEED", 0, "Seed for pair order, left/right assignment and bootstrap."
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from the environment; a malformed value is a one-line error."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            kind = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise InputError(
                    f"environment variable {f.metadata['env']}={raw!r} is not a valid "
                    f"{kind.__name__}: {f.metadata['help']}"
                ) from None
        return cls(**values)


def documented_settings() -> list[tuple[str, object, str]]:
    """(environment variable, default, help) for every setting, for the README and `--help`."""
    return [(f.metadata["env"], f.default, f.metadata["help"]) for f in fields(Settings)]
