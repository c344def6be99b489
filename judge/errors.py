"""The judge package's exception tree. Upstream SDK errors are translated once, at the provider
boundary (`judge/providers/`), so the runner only ever sees these classes.

    JudgeError                      anything the judge engine raises on purpose
    ├── RubricError                 a rubric file is invalid, or a prompt cannot be rendered
    └── ProviderError               a call to a judge model failed
        ├── RateLimited             429; carries the server's retry-after (seconds) if it sent one
        ├── TransientError          5xx, timeout, dropped connection: worth retrying
        └── FatalProviderError      bad request, bad key, unknown model: retrying cannot help
            ├── MissingCredentials  the provider's API-key environment variable is not set
            └── NotFoundAtProvider  404: the provider does not know the model, batch or file
"""

from __future__ import annotations


class JudgeError(Exception):
    """Base class for every error the judge engine raises on purpose."""


class RubricError(JudgeError):
    """A rubric file is invalid, or a prompt cannot be rendered from it."""


class ProviderError(JudgeError):
    """A call to a judge model failed."""


class RateLimited(ProviderError):
    """The provider answered 429. `retry_after` is the delay it asked for, in seconds, or None."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(ProviderError):
    """A server error, timeout or dropped connection: the same call may succeed later."""


class FatalProviderError(ProviderError):
    """An error that retrying cannot fix (bad request, rejected key, unknown model)."""


class MissingCredentials(FatalProviderError):
    """The environment variable holding the provider's API key is not set."""


class NotFoundAtProvider(FatalProviderError):
    """The provider answered 404: it does not know the model, batch or file asked for."""
