"""OpenAI judges (`openai/<model>`) through the official SDK, with JSON-schema structured output.

Any OpenAI-compatible server (vLLM, Ollama, llama.cpp) works through `OPENAI_BASE_URL` or
`base_url=`. Keys come from `OPENAI_API_KEY`. The SDK's own retries are off: `judge.runner` retries.
"""

from __future__ import annotations

import os
from typing import Any

import openai

from judge.errors import FatalProviderError, MissingCredentials, TransientError
from judge.providers.base import Completion, JudgeRequest, status_error

_FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


class OpenAIProvider:
    """A chat-completions judge. `http_client` (an `httpx2.AsyncClient`) is for tests and for
    tuning connection pools; leave it None otherwise."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
    ) -> None:
        self.name = f"openai/{model}"
        self.model = model
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

    async def complete(self, request: JudgeRequest) -> Completion:
        try:
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=request.messages,  # type: ignore[arg-type]
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": request.schema_name,
                        "schema": request.schema,
                        "strict": True,
                    },
                },
                timeout=request.timeout_s,
            )
        except openai.APIStatusError as exc:
            raise status_error(
                self.name, exc.status_code, exc.message, exc.response.headers
            ) from exc
        except openai.APITimeoutError as exc:
            raise TransientError(f"{self.name}: timed out after {request.timeout_s:g}s") from exc
        except openai.APIConnectionError as exc:
            raise TransientError(f"{self.name}: connection failed: {exc.message}") from exc
        except openai.OpenAIError as exc:
            raise FatalProviderError(f"{self.name}: {exc}") from exc
        return _completion(response)

    async def aclose(self) -> None:
        await self.client.close()


def _completion(response: Any) -> Completion:
    usage = response.usage
    tokens_in = usage.prompt_tokens if usage else 0
    tokens_out = usage.completion_tokens if usage else 0
    if not response.choices:
        # Recorded as an empty answer (unparsed), never silently dropped.
        return Completion(
            text="", finish_reason="other", tokens_in=tokens_in, tokens_out=tokens_out
        )
    choice = response.choices[0]
    message = choice.message
    return Completion(
        text=message.content or "",
        finish_reason=_FINISH_REASONS.get(choice.finish_reason or "", "other"),
        refusal=getattr(message, "refusal", None),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )
