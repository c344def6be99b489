"""The one settings object. Configuration flows one way: environment -> Settings -> explicit
arguments. Every field names its environment variable and carries the help text the README shows."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from review_app import links
from review_app.errors import InputError

# Renamed settings: still set, they would be ignored silently (links built on another address).
_RENAMED = {"REVIEW_APP_BASE_URL": "REVIEW_APP_PUBLIC_URL"}

SERVER_SCHEMES = ("postgresql://", "postgres://")


def is_server_url(location: str) -> bool:
    """Whether a workspace location names a PostgreSQL database rather than a SQLite file."""
    return str(location).startswith(SERVER_SCHEMES)


def shown_location(location: str) -> str:
    """The location with any password masked, for messages and logs."""
    location = str(location)
    if not is_server_url(location):
        return location
    parts = urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _setting(env: str, default: object, help: str) -> object:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    db: str = _setting(
        "REVIEW_APP_DB",
        "review.db",
        "The workspace the app and the CLI use: a SQLite file, or a PostgreSQL database as a "
        "`postgresql://user:password@host:port/dbname` URL (several servers share one).",
    )
    public_url: str = _setting(
        "REVIEW_APP_PUBLIC_URL",
        "",
        "The address reviewers open the app at (http or https, a path prefix allowed: "
        "`https://example.com/review/`); every personal link starts with it, and the server "
        "serves the app under its path. Unset: a screen uses the address its browser reached, "
        "the command line `http://HOST:PORT`. `serve --public-url` overrides it.",
    )
    host: str = _setting(
        "REVIEW_APP_HOST",
        "127.0.0.1",
        "Address `serve` and `demo` listen on (`--host` overrides it); without a public URL the "
        "command line builds links on it (127.0.0.1 when it is 0.0.0.0).",
    )
    port: int = _setting(
        "REVIEW_APP_PORT",
        8501,
        "Port `serve` and `demo` listen on (`--port` overrides it); without a public URL the "
        "command line builds links on it.",
    )
    lease_minutes: float = _setting(
        "REVIEW_APP_LEASE_MINUTES",
        30.0,
        "How long a pair handed to a reviewer stays reserved for them before others may take it.",
    )
    bootstrap_resamples: int = _setting(
        "REVIEW_APP_BOOTSTRAP",
        1000,
        "Bootstrap resamples (of whole items, fixed seed) behind every confidence interval.",
    )
    seed: int = _setting(
        "REVIEW_APP_SEED", 0, "Seed for pair order, left/right assignment and bootstrap."
    )
    gate_min_items: int = _setting(
        "REVIEW_APP_GATE_MIN_ITEMS",
        30,
        "Items (independent units: the comparisons and votes of one item move together) a "
        "threshold, or a judge's verdict against the human ceiling, needs before it can pass or "
        "fail; below it the outcome is inconclusive. Recorded in the lock.",
    )
    ceiling_margin: float = _setting(
        "REVIEW_APP_CEILING_MARGIN",
        0.05,
        "How far below the human ceiling a judge's strict agreement may be (at its one-sided 95% "
        "bound) and still count as within it.",
    )
    token: str = _setting(
        "REVIEW_APP_TOKEN",
        "",
        "Your personal token (the end of your link): the CLI acts as you, so every command that "
        "records something (imports, studies, thresholds, the lock, sign-offs, reviewer "
        "changes...) records who did it; without it only reads run. `--token` overrides it.",
    )
    signing_key: str = _setting(
        "REVIEW_APP_SIGNING_KEY",
        "",
        "Secret kept outside the workspace; reports carry an HMAC signature made with it, which "
        "`review-app audit verify --report FILE` checks. Unset: reports are unsigned.",
    )
    judge_prices: str = _setting(
        "REVIEW_APP_JUDGE_PRICES",
        "",
        "JSON or YAML file of judge prices (USD per million tokens) that overrides and extends "
        "the built-in table, e.g. `openai/my-model: {input_per_mtok: 1, output_per_mtok: 2}`.",
    )
    judge_rubrics_dir: str = _setting(
        "REVIEW_APP_RUBRICS",
        "",
        "Folder of your own rubric files offered on the judge-runs screen, besides the shipped ones.",
    )
    judge_timeout: float = _setting(
        "REVIEW_APP_JUDGE_TIMEOUT", 60.0, "Seconds one judge call may take before it is retried."
    )
    judge_max_attempts: int = _setting(
        "REVIEW_APP_JUDGE_MAX_ATTEMPTS",
        6,
        "Attempts per judge call on 429, 5xx and timeouts before the call is reported as failed.",
    )
    judge_backoff_cap: float = _setting(
        "REVIEW_APP_JUDGE_BACKOFF_CAP",
        30.0,
        "Longest wait, in seconds, of the exponential backoff (with jitter) between attempts.",
    )
    judge_retry_after_cap: float = _setting(
        "REVIEW_APP_JUDGE_RETRY_AFTER_CAP",
        60.0,
        "Longest wait, in seconds, honoured from a provider's retry-after header.",
    )
    judge_parse_retries: int = _setting(
        "REVIEW_APP_JUDGE_PARSE_RETRIES",
        2,
        "Extra calls made when a judge answer cannot be parsed, before it is stored as unparsed.",
    )
    judge_max_tokens: int = _setting(
        "REVIEW_APP_JUDGE_MAX_TOKENS",
        1024,
        "max_tokens of each judge answer (part of a run's parameters: changing it starts a new run).",
    )
    judge_batch_poll: float = _setting(
        "REVIEW_APP_JUDGE_BATCH_POLL",
        30.0,
        "Seconds between two looks at a judge run's provider batches while `judge --batch` waits.",
    )
    model_families: str = _setting(
        "REVIEW_APP_MODEL_FAMILIES",
        "",
        "Model family of systems and judges whose names do not say it, for the self-preference "
        "check: `my-finetune=openai, openai/my-judge=meta` (names like gpt-*, claude-*, "
        "gemini-*, llama-* are recognised).",
    )

    def __post_init__(self) -> None:
        if self.public_url:
            try:
                public_url = links.check_public_url(self.public_url)
            except InputError as exc:
                raise InputError(f"{links.PUBLIC_URL_ENV}: {exc}") from None
            object.__setattr__(self, "public_url", public_url)
        if not 1 <= self.port <= 65535:
            raise InputError(f"REVIEW_APP_PORT={self.port}: a port is between 1 and 65535")

    @property
    def db_is_server(self) -> bool:
        """Whether the workspace is a PostgreSQL database rather than a SQLite file."""
        return is_server_url(str(self.db))

    def db_location(self) -> str:
        """The workspace as another process must be told it: the file's absolute path, or the
        database URL as it is."""
        if self.db_is_server or str(self.db) == ":memory:":
            return str(self.db)
        return str(Path(self.db).resolve())

    def db_folder(self) -> Path:
        """The folder the workspace's own files sit beside (rubrics, the demo's links): the
        SQLite file's folder, or the current folder for a database server."""
        if self.db_is_server:
            return Path.cwd()
        return Path(self.db).resolve().parent

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from the environment; a malformed value is a one-line error."""
        environ = os.environ if environ is None else environ
        for old, new in _RENAMED.items():
            if environ.get(old):
                raise InputError(f"{old} is now called {new}: set {new} instead")
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
