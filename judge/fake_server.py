"""A local OpenAI- and Anthropic-compatible HTTP server with scripted answers, so the real SDK
clients can be exercised offline (tests, benchmarks, trying the app without a key).

It serves `POST /v1/chat/completions` and `POST /v1/messages` on 127.0.0.1, answers from a script
(then from a default answer), can add latency and rate-limit every Nth request, and counts what it
was asked. Run it alone with `python -m judge.fake_server --latency 0.1`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `content` is the judge's answer text (None = derive from the request's
    schema); a non-200 `status` sends an error body instead; `raw_body` replaces the whole body."""

    status: int = 200
    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw_body: str | None = None
    tokens_in: int = 120
    tokens_out: int = 30


def default_answer(request: dict[str, Any]) -> str:
    """A well-formed answer for whatever schema the request asked for: A wins / all scores high
    for A and low for B."""
    schema = _schema_of(request)
    properties = schema.get("properties", {})
    if "scores" in properties:
        per_response = properties["scores"]["properties"]["A"]["properties"]
        high = {name: spec["enum"][-1] for name, spec in per_response.items()}
        low = {name: spec["enum"][0] for name, spec in per_response.items()}
        return json.dumps({"explanation": "A is better.", "scores": {"A": high, "B": low}})
    return json.dumps({"explanation": "A is better.", "winner": "A"})


def _schema_of(request: dict[str, Any]) -> dict[str, Any]:
    if "response_format" in request:
        return request["response_format"]["json_schema"]["schema"]
    return request.get("output_config", {}).get("format", {}).get("schema", {})


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections when 50 clients connect at once.
    request_queue_size = 256
    daemon_threads = True
    # Do not wait for handlers still sleeping on a scripted delay when shutting down.
    block_on_close = False


class FakeJudgeServer:
    """Use as a context manager; `openai_base_url` and `anthropic_base_url` point the SDKs at it."""

    def __init__(
        self,
        script: Iterable[Reply] = (),
        answer: Callable[[dict[str, Any]], Reply] | None = None,
        latency_s: float = 0.0,
        rate_limit_every: int = 0,
        retry_after: str = "0.2",
        port: int = 0,
    ) -> None:
        self.script = list(script)
        self.answer = answer
        self.latency_s = latency_s
        self.rate_limit_every = rate_limit_every
        self.retry_after = retry_after
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _handler_for(self))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> FakeJudgeServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command-line form)."""
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeJudgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            return scripted
        if self.rate_limit_every and number % self.rate_limit_every == 0:
            return Reply(status=429, headers={"retry-after": self.retry_after})
        if self.answer is not None:
            return self.answer(request)
        return Reply()


def _handler_for(server: FakeJudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            reply = server.next_reply(request)
            delay = server.latency_s + reply.delay_s
            if delay:
                time.sleep(delay)
            anthropic = self.path.rstrip("/").endswith("/messages")
            body = reply.raw_body
            if body is None:
                build = _anthropic_body if anthropic else _openai_body
                body = json.dumps(build(reply, request))
            data = body.encode()
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


def _openai_body(reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
    if reply.status != 200:
        return {"error": {"message": f"scripted HTTP {reply.status}", "type": "server_error"}}
    content = reply.content if reply.content is not None else default_answer(request)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None if reply.refusal else content,
                    "refusal": reply.refusal,
                },
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": reply.tokens_in,
            "completion_tokens": reply.tokens_out,
            "total_tokens": reply.tokens_in + reply.tokens_out,
        },
    }


_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "refusal": "refusal"}


def _anthropic_body(reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
    if reply.status != 200:
        kind = "rate_limit_error" if reply.status == 429 else "api_error"
        return {
            "type": "error",
            "error": {"type": kind, "message": f"scripted HTTP {reply.status}"},
        }
    content = reply.content if reply.content is not None else default_answer(request)
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "fake"),
        "content": [{"type": "text", "text": content}] if content else [],
        "stop_reason": _ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason),
        "stop_sequence": None,
        "usage": {"input_tokens": reply.tokens_in, "output_tokens": reply.tokens_out},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--rate-limit-every", type=int, default=0, help="answer every Nth call 429")
    parser.add_argument("--retry-after", default="0.2", help="retry-after header sent with 429")
    args = parser.parse_args(argv)
    server = FakeJudgeServer(
        latency_s=args.latency,
        rate_limit_every=args.rate_limit_every,
        retry_after=args.retry_after,
        port=args.port,
    )
    print(f"listening on {server.anthropic_base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
