"""The one interface every judge provider implements, the optional batch interface of those with a
batch API, and the `provider/model` registry.

A provider adapter only translates: a JudgeRequest into one SDK call (or one line of a batch), the
answer into a Completion, and SDK exceptions into `judge.errors`. Retries, timeouts and
concurrency belong to `judge.runner`, batch submission and polling to `judge.batch`, so the SDKs'
own retries are always off.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

from judge.errors import (
    FatalProviderError,
    JudgeError,
    NotFoundAtProvider,
    ProviderError,
    RateLimited,
    TransientError,
)
from judge.verdict import Choice


@dataclass(frozen=True)
class JudgeRequest:
    """Everything one judge call needs.

    Model judges read `messages` and `schema`; baseline judges decide from the raw texts and `key`.
    The first `static_messages` messages are the same in every call of a run (the rubric's
    instructions and examples): the prefix a provider's prompt cache can reuse.
    """

    messages: list[dict[str, str]]
    schema_name: str
    schema: dict[str, Any]
    max_tokens: int
    temperature: float
    timeout_s: float
    first_text: str
    second_text: str
    key: str
    seed: int = 0
    static_messages: int = 0


@dataclass(frozen=True)
class Completion:
    """What a provider answered. `finish_reason` is normalised to stop | length | refusal |
    content_filter | other. Baseline judges set `choice` directly instead of answering in JSON.

    `tokens_in` counts every input token; `tokens_cached` of them were read from the provider's
    prompt cache and `tokens_cache_write` written to it (they are priced differently).
    """

    text: str
    finish_reason: str = "stop"
    refusal: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    choice: Choice | None = None
    tokens_cached: int = 0
    tokens_cache_write: int = 0


class Provider(Protocol):
    """A judge: `name` is the full `provider/model` string it was created from. A provider that
    decides without reading the prompt (the baselines) also sets `uses_prompt = False`."""

    name: str

    async def complete(self, request: JudgeRequest) -> Completion:
        """Make one call. Raises only `judge.errors.ProviderError` subclasses."""
        ...

    async def aclose(self) -> None:
        """Release network resources."""
        ...


@dataclass(frozen=True)
class BatchLimits:
    """The most one batch may hold: requests, and bytes of serialized requests."""

    max_requests: int
    max_bytes: int


BatchState = Literal["in_progress", "cancelling", "ended"]


@dataclass(frozen=True)
class BatchStatus:
    """What a provider says about one batch. `state` is normalised (results can be read once it
    is "ended"); `provider_status` is the provider's own word for it. Counts are requests."""

    batch_id: str
    state: BatchState
    provider_status: str
    total: int
    succeeded: int = 0
    errored: int = 0
    error: str | None = None


@dataclass(frozen=True)
class BatchItem:
    """One request's outcome in an ended batch: its answer, or why there is none (errored,
    expired, cancelled)."""

    custom_id: str
    completion: Completion | None = None
    error: str | None = None


class BatchProvider(Provider, Protocol):
    """A provider with a batch API: requests go out together at a lower price and come back
    within the provider's window (24 hours). Raises only `judge.errors.ProviderError` subclasses."""

    batch_limits: BatchLimits

    def batch_request(self, custom_id: str, request: JudgeRequest) -> dict[str, Any]:
        """One request of a batch, as the provider's batch format wants it."""
        ...

    async def submit_batch(self, key: str, requests: list[dict[str, Any]]) -> BatchStatus:
        """Send one batch. `key` is the caller's own id for it, findable by `find_batch`."""
        ...

    async def find_batch(
        self, key: str, created_after: datetime, n_requests: int, exclude: set[str]
    ) -> BatchStatus | None:
        """The batch sent with `key` (of `n_requests` requests, created after `created_after`), if
        the provider holds one: a crash may have struck between sending a batch and recording its
        id. Batch ids in `exclude` are known to be someone else's."""
        ...

    async def batch_status(self, batch_id: str) -> BatchStatus: ...

    def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        """Every request's outcome, once the batch has ended."""
        ...

    async def cancel_batch(self, batch_id: str) -> BatchStatus: ...


# Providers a user may choose, imported lazily so a missing SDK only matters when it is used.
PROVIDERS: dict[str, str] = {
    "openai": "judge.providers.openai:OpenAIProvider",
    "anthropic": "judge.providers.anthropic:AnthropicProvider",
    "baseline": "judge.providers.baseline:BaselineProvider",
}


def split_spec(spec: str) -> tuple[str, str]:
    """Split "provider/model" into its two parts, or raise JudgeError explaining the form."""
    provider, sep, model = spec.partition("/")
    if not sep or not provider or not model:
        raise JudgeError(
            f"judge {spec!r} is not of the form PROVIDER/MODEL "
            f"(e.g. openai/gpt-4o-mini, baseline/longest); providers: {', '.join(PROVIDERS)}"
        )
    if provider not in PROVIDERS:
        raise JudgeError(
            f"unknown judge provider {provider!r}; choose one of {', '.join(PROVIDERS)}"
        )
    return provider, model


def get_provider(spec: str, **options: Any) -> Provider:
    """Create the provider for "provider/model"; `options` go to its constructor
    (for example `http_client=` or `base_url=`)."""
    provider, model = split_spec(spec)
    module_name, class_name = PROVIDERS[provider].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise JudgeError(
            f"judge provider {provider!r} needs the {exc.name!r} package: pip install {exc.name}"
        ) from exc
    return getattr(module, class_name)(model, **options)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The delay a 429/503 response asked for: `retry-after-ms`, or `retry-after` in seconds or as
    an HTTP date. None when absent or unreadable. The runner applies its own cap."""
    if not headers:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return None


def status_error(
    spec: str, status: int, message: str, headers: Mapping[str, str] | None
) -> ProviderError:
    """Classify an HTTP error status from any provider."""
    text = f"{spec}: HTTP {status}: {message}"
    if status == 429:
        return RateLimited(text, retry_after_seconds(headers))
    # 408 request timeout, 409 lock conflict, 5xx and Anthropic's 529 "overloaded" are transient.
    if status in (408, 409) or status >= 500:
        return TransientError(text)
    if status == 404:
        return NotFoundAtProvider(text)
    return FatalProviderError(text)
