"""OpenAI judges (`openai/<model>`) through the official SDK, with JSON-schema structured output,
one call at a time (chat completions) or as a batch (Files + Batches API, same request bodies).

Any OpenAI-compatible server (vLLM, Ollama, llama.cpp) works through `OPENAI_BASE_URL` or
`base_url=`. Keys come from `OPENAI_API_KEY`. The SDK's own retries are off: `judge.runner` and
`judge.batch` retry. The prompt's static start comes first in every request, which is all
OpenAI's automatic prompt caching needs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from judge.errors import FatalProviderError, MissingCredentials, TransientError
from judge.providers.base import (
    BatchItem,
    BatchLimits,
    BatchStatus,
    Completion,
    JudgeRequest,
    status_error,
)

_FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter"}

BATCH_ENDPOINT = "/v1/chat/completions"
# The Batch API takes at most 50,000 requests and 200 MB per input file; the byte limit leaves
# room for the difference between our measure and the provider's.
BATCH_LIMITS = BatchLimits(max_requests=50_000, max_bytes=190_000_000)
# The batch metadata entry holding the caller's key, so a batch whose id was never recorded can
# be found again.
METADATA_KEY = "review_app_batch"
_ENDED = {"completed", "expired", "cancelled", "failed"}


class OpenAIProvider:
    """A chat-completions judge. `http_client` (an `httpx2.AsyncClient`) is for tests and for
    tuning connection pools; `batch_limits` lowers the batch limits (tests); leave both None
    otherwise."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        batch_limits: BatchLimits | None = None,
    ) -> None:
        self.name = f"openai/{model}"
        self.model = model
        self.batch_limits = batch_limits or BATCH_LIMITS
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise MissingCredentials(
                f"{self.name}: set OPENAI_API_KEY (for a local OpenAI-compatible server, set "
                "OPENAI_BASE_URL and any non-empty OPENAI_API_KEY)"
            )
        self.client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            max_retries=0,
            http_client=http_client,
        )

    def _body(self, request: JudgeRequest) -> dict[str, Any]:
        """The chat-completions request, the same whether sent alone or in a batch."""
        return {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.schema,
                    "strict": True,
                },
            },
        }

    async def complete(self, request: JudgeRequest) -> Completion:
        with self._errors(request.timeout_s):
            response = await self.client.chat.completions.create(
                **self._body(request), timeout=request.timeout_s
            )
        return _completion(response)

    # ---- batches ----

    def batch_request(self, custom_id: str, request: JudgeRequest) -> dict[str, Any]:
        return {
            "custom_id": custom_id,
            "method": "POST",
            "url": BATCH_ENDPOINT,
            "body": self._body(request),
        }

    async def submit_batch(self, key: str, requests: list[dict[str, Any]]) -> BatchStatus:
        # Through a temporary file, which the upload streams: a 200 MB batch is never in memory
        # twice.
        with tempfile.TemporaryFile() as lines, self._errors():
            for request in requests:
                lines.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            lines.seek(0)
            uploaded = await self.client.files.create(
                file=(f"{key}.jsonl", lines, "application/jsonl"), purpose="batch"
            )
            batch = await self.client.batches.create(
                input_file_id=uploaded.id,
                endpoint=BATCH_ENDPOINT,
                completion_window="24h",
                metadata={METADATA_KEY: key},
            )
        return _batch_status(batch)

    async def find_batch(
        self, key: str, created_after: datetime, n_requests: int, exclude: set[str]
    ) -> BatchStatus | None:
        with self._errors():
            # Newest first: stop at the first batch older than the one looked for.
            async for batch in self.client.batches.list(limit=100):
                if batch.created_at < created_after.timestamp():
                    return None
                if (batch.metadata or {}).get(METADATA_KEY) == key and batch.id not in exclude:
                    return _batch_status(batch)
        return None

    async def batch_status(self, batch_id: str) -> BatchStatus:
        with self._errors():
            return _batch_status(await self.client.batches.retrieve(batch_id))

    async def batch_results(self, batch_id: str) -> AsyncIterator[BatchItem]:
        with self._errors():
            batch = await self.client.batches.retrieve(batch_id)
        # Answers are in the output file, errored and expired requests in the error file.
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            with self._errors():
                async with self.client.files.with_streaming_response.content(file_id) as stream:
                    async for line in stream.iter_lines():
                        if line.strip():
                            yield _batch_item(json.loads(line))

    async def cancel_batch(self, batch_id: str) -> BatchStatus:
        with self._errors():
            return _batch_status(await self.client.batches.cancel(batch_id))

    async def aclose(self) -> None:
        await self.client.close()

    @contextmanager
    def _errors(self, timeout_s: float | None = None) -> Iterator[None]:
        """SDK exceptions in `judge.errors` terms."""
        try:
            yield
        except openai.APIStatusError as exc:
            raise status_error(
                self.name, exc.status_code, exc.message, exc.response.headers
            ) from exc
        except openai.APITimeoutError as exc:
            after = f" after {timeout_s:g}s" if timeout_s else ""
            raise TransientError(f"{self.name}: timed out{after}") from exc
        except openai.APIConnectionError as exc:
            raise TransientError(f"{self.name}: connection failed: {exc.message}") from exc
        except openai.OpenAIError as exc:
            raise FatalProviderError(f"{self.name}: {exc}") from exc


def _completion(response: Any) -> Completion:
    usage = response.usage
    tokens_in = usage.prompt_tokens if usage else 0
    tokens_out = usage.completion_tokens if usage else 0
    details = usage.prompt_tokens_details if usage else None
    tokens_cached = (details.cached_tokens or 0) if details else 0
    if not response.choices:
        # Recorded as an empty answer (unparsed), never silently dropped.
        return Completion(
            text="",
            finish_reason="other",
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            tokens_cached=tokens_cached,
        )
    choice = response.choices[0]
    message = choice.message
    return Completion(
        text=message.content or "",
        finish_reason=_FINISH_REASONS.get(choice.finish_reason or "", "other"),
        refusal=getattr(message, "refusal", None),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens_cached=tokens_cached,
    )


def _batch_status(batch: Any) -> BatchStatus:
    if batch.status in _ENDED:
        state = "ended"
    elif batch.status == "cancelling":
        state = "cancelling"
    else:
        state = "in_progress"  # validating, in_progress, finalizing
    counts = batch.request_counts
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    return BatchStatus(
        batch_id=batch.id,
        state=state,
        provider_status=batch.status,
        total=counts.total if counts else 0,
        succeeded=counts.completed if counts else 0,
        errored=counts.failed if counts else 0,
        error="; ".join(e.message or e.code or "" for e in errors) or None,
    )


def _batch_item(line: dict[str, Any]) -> BatchItem:
    custom_id = str(line.get("custom_id"))
    response = line.get("response") or {}
    if response.get("status_code") == 200:
        try:
            return BatchItem(
                custom_id, _completion(ChatCompletion.model_validate(response["body"]))
            )
        except (KeyError, ValidationError) as exc:
            return BatchItem(custom_id, error=f"unreadable answer in the batch output: {exc}")
    error = line.get("error") or (response.get("body") or {}).get("error") or {}
    status = f"HTTP {response['status_code']}: " if response.get("status_code") else ""
    code = error.get("code") or error.get("type") or "error"
    return BatchItem(custom_id, error=f"{status}{code}: {error.get('message') or 'no answer'}")
