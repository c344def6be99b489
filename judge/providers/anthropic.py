"""Anthropic judges (`anthropic/<model>`) through the official SDK, with JSON-schema structured
output (`output_config.format`), one call at a time or as a Message Batch (same request params).

The prompt's static start (instructions, criteria, examples) ends with a `cache_control`
breakpoint so later calls read it from Anthropic's prompt cache. Keys come from
`ANTHROPIC_API_KEY`, the endpoint from `ANTHROPIC_BASE_URL`. The SDK's own retries are off (it
would honour any retry-after without a cap): `judge.runner` and `judge.batch` retry.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import anthropic

from judge.errors import FatalProviderError, MissingCredentials, TransientError
from judge.providers.base import (
    BatchItem,
    BatchLimits,
    BatchStatus,
    Completion,
    JudgeRequest,
    status_error,
)

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "refusal",
}
# Message Batches take at most 100,000 requests or 256 MB; the byte limit leaves room for the
# request's envelope and the difference between our measure and the provider's.
BATCH_LIMITS = BatchLimits(max_requests=100_000, max_bytes=240_000_000)
_STATES = {"in_progress": "in_progress", "canceling": "cancelling", "ended": "ended"}


class AnthropicProvider:
    """A messages-API judge. `http_client` (an `httpx2.AsyncClient`) and `batch_limits` are for
    tests."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        batch_limits: BatchLimits | None = None,
    ) -> None:
        self.name = f"anthropic/{model}"
        self.model = model
        self.batch_limits = batch_limits or BATCH_LIMITS
        api_key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise MissingCredentials(f"{self.name}: set ANTHROPIC_API_KEY")
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            max_retries=0,
            http_client=http_client,
        )

    def _params(self, request: JudgeRequest) -> dict[str, Any]:
        """The Messages API params, the same whether sent alone or in a batch. The last static
        message carries the cache breakpoint: everything up to it is the cached prefix."""
        last_static = request.static_messages - 1
        system_text = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        system: Any = system_text
        turns: list[dict[str, Any]] = []
        for index, message in enumerate(request.messages):
            if message["role"] == "system":
                if index == last_static:
                    system = [{"type": "text", "text": system_text, **_breakpoint()}]
                continue
            content: Any = message["content"]
            if index == last_static:
                content = [{"type": "text", "text": content, **_breakpoint()}]
            turns.append({"role": message["role"], "content": content})
        return {
            "model": self.model,
            "system": system,
            "messages": turns,
            # The current Messages API takes no temperature; the model's default applies.
            "max_tokens": request.max_tokens,
            "output_config": {"format": {"type": "json_schema", "schema": request.schema}},
        }

    async def complete(self, request: JudgeRequest) -> Completion:
        with self._errors(request.timeout_s):
            response = await self.client.messages.create(
                **self._params(request), timeout=request.timeout_s
            )
        return _completion(response)

    # ---- batches ----

    def batch_request(self, custom_id: str, request: JudgeRequest) -> dict[str, Any]:
        return {"custom_id": custom_id, "params": self._params(request)}

    async def submit_batch(self, key: str, requests: list[dict[str, Any]]) -> BatchStatus:
        # Anthropic batches carry no metadata: the key lives in every request's custom_id.
        with self._errors():
            return _batch_status(await self.client.messages.batches.create(requests=requests))

    async def find_batch(
        self, key: str, created_after: datetime, n_requests: int, exclude: set[str]
    ) -> BatchStatus | None:
        # Without metadata the best match is the newest unclaimed batch of the same size created
        # since. A wrong match costs nothing: its answers carry other custom_ids and are ignored.
        with self._errors():
            async for batch in self.client.messages.batches.list(limit=100):
                if batch.created_at < created_after:
                    return None
                status = _batch_status(batch)
                if status.total == n_requests and batch.id not in exclude:
                    return status
        return None

    async def batch_status(self, batch_id: str) -> BatchStatus:
        with self._errors():
            return _batch_status(await self.client.messages.batches.retrieve(batch_id))

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        with self._errors():
            results = await self.client.messages.batches.results(batch_id)
            async for item in results:
                yield _batch_item(item)

    async def cancel_batch(self, batch_id: str) -> BatchStatus:
        with self._errors():
            return _batch_status(await self.client.messages.batches.cancel(batch_id))

    async def aclose(self) -> None:
        await self.client.close()

    @contextmanager
    def _errors(self, timeout_s: float | None = None) -> Iterator[None]:
        """SDK exceptions in `judge.errors` terms."""
        try:
            yield
        except anthropic.APIStatusError as exc:
            message = exc.api_message or exc.message
            raise status_error(self.name, exc.status_code, message, exc.response.headers) from exc
        except anthropic.APITimeoutError as exc:
            after = f" after {timeout_s:g}s" if timeout_s else ""
            raise TransientError(f"{self.name}: timed out{after}") from exc
        except anthropic.APIConnectionError as exc:
            raise TransientError(f"{self.name}: connection failed: {exc.message}") from exc
        except anthropic.AnthropicError as exc:
            raise FatalProviderError(f"{self.name}: {exc}") from exc


def _breakpoint() -> dict[str, Any]:
    # The default five-minute cache: a run sends its calls back to back, which keeps it warm.
    return {"cache_control": {"type": "ephemeral"}}


def _completion(message: Any) -> Completion:
    text = "".join(block.text for block in message.content if block.type == "text")
    usage = message.usage
    cached = (usage.cache_read_input_tokens or 0) if usage else 0
    written = (usage.cache_creation_input_tokens or 0) if usage else 0
    # Anthropic's input_tokens leaves out what was read from or written to the cache.
    return Completion(
        text=text,
        finish_reason=_STOP_REASONS.get(message.stop_reason or "", "other"),
        tokens_in=(usage.input_tokens + cached + written) if usage else 0,
        tokens_out=usage.output_tokens if usage else 0,
        tokens_cached=cached,
        tokens_cache_write=written,
    )


def _batch_status(batch: Any) -> BatchStatus:
    counts = batch.request_counts
    failed = counts.errored + counts.canceled + counts.expired
    return BatchStatus(
        batch_id=batch.id,
        state=_STATES.get(batch.processing_status, "in_progress"),
        provider_status=batch.processing_status,
        total=counts.processing + counts.succeeded + failed,
        succeeded=counts.succeeded,
        errored=failed,
    )


def _batch_item(item: Any) -> BatchItem:
    result = item.result
    if result.type == "succeeded":
        return BatchItem(item.custom_id, _completion(result.message))
    if result.type == "errored":
        error = result.error.error
        return BatchItem(item.custom_id, error=f"{error.type}: {error.message}")
    return BatchItem(item.custom_id, error=result.type)  # expired or canceled
