"""Anthropic judges (`anthropic/<model>`) through the official SDK, with JSON-schema structured
output (`output_config.format`).

Keys come from `ANTHROPIC_API_KEY`, the endpoint from `ANTHROPIC_BASE_URL`. The SDK's own retries
are off (it would honour any retry-after without a cap): `judge.runner` retries.
"""

from __future__ import annotations

import os
from typing import Any

import anthropic

from judge.errors import FatalProviderError, MissingCredentials, TransientError
from judge.providers.base import Completion, JudgeRequest, status_error

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "refusal",
}


class AnthropicProvider:
    """A messages-API judge. `http_client` (an `httpx2.AsyncClient`) is for tests."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
    ) -> None:
        self.name = f"anthropic/{model}"
        self.model = model
        api_key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise MissingCredentials(f"{self.name}: set ANTHROPIC_API_KEY")
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            max_retries=0,
            http_client=http_client,
        )

    async def complete(self, request: JudgeRequest) -> Completion:
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        turns = [m for m in request.messages if m["role"] != "system"]
        try:
            response = await self.client.messages.create(
                model=self.model,
                system=system,
                messages=turns,  # type: ignore[arg-type]
                # The current Messages API takes no temperature; the model's default applies.
                max_tokens=request.max_tokens,
                output_config={"format": {"type": "json_schema", "schema": request.schema}},
                timeout=request.timeout_s,
            )
        except anthropic.APIStatusError as exc:
            message = exc.api_message or exc.message
            raise status_error(self.name, exc.status_code, message, exc.response.headers) from exc
        except anthropic.APITimeoutError as exc:
            raise TransientError(f"{self.name}: timed out after {request.timeout_s:g}s") from exc
        except anthropic.APIConnectionError as exc:
            raise TransientError(f"{self.name}: connection failed: {exc.message}") from exc
        except anthropic.AnthropicError as exc:
            raise FatalProviderError(f"{self.name}: {exc}") from exc
        text = "".join(block.text for block in response.content if block.type == "text")
        usage = response.usage
        return Completion(
            text=text,
            finish_reason=_STOP_REASONS.get(response.stop_reason or "", "other"),
            tokens_in=usage.input_tokens if usage else 0,
            tokens_out=usage.output_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        await self.client.close()
