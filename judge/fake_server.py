"""A local OpenAI- and Anthropic-compatible HTTP server with scripted answers, so the real SDK
clients can be exercised offline (tests, benchmarks, trying the app without a key).

It serves `POST /v1/chat/completions` and `POST /v1/messages` on 127.0.0.1, answers from a script
(then from a default answer), can add latency and rate-limit every Nth request, and counts what it
was asked. It also serves both batch APIs: OpenAI's files (upload, content) and batches (create,
retrieve, list, cancel), and Anthropic's message batches (create, retrieve, list, results,
cancel). A batch stays in progress for `batch_delay_s`, then every request in it is answered from
the same script. Run it alone with `python -m judge.fake_server --latency 0.1`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `content` is the judge's answer text (None = derive from the request's
    schema); a non-200 `status` sends an error body instead (in a batch: the request errored);
    `raw_body` replaces the whole body; `expired` (batches only) leaves the request unprocessed.
    Of `tokens_in`, `tokens_cached` were read from the prompt cache and `tokens_cache_write`
    (Anthropic) written to it."""

    status: int = 200
    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw_body: str | None = None
    tokens_in: int = 120
    tokens_out: int = 30
    tokens_cached: int = 0
    tokens_cache_write: int = 0
    expired: bool = False


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


@dataclass
class FakeBatch:
    """One batch as the fake holds it: its requests (custom_id, body), and once it has ended, each
    request's outcome as the provider's result line."""

    id: str
    kind: str  # "openai" | "anthropic"
    requests: list[tuple[str, dict[str, Any]]]
    created_at: float
    metadata: dict[str, str] = field(default_factory=dict)
    input_file_id: str = ""
    cancel_requested: bool = False
    ended_at: float | None = None
    error: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections when 50 clients connect at once.
    request_queue_size = 256
    daemon_threads = True
    # Do not wait for handlers still sleeping on a scripted delay when shutting down.
    block_on_close = False


class FakeJudgeServer:
    """Use as a context manager; `openai_base_url` and `anthropic_base_url` point the SDKs at it.

    `batch_delay_s` is how long a batch stays in progress; `max_batch_requests` makes a larger
    batch a 400 error, like a provider's limit; `lost_batch_acks` answers that many batch
    creations with a 502 after accepting them (the answer lost on the way back);
    `invalid_batches` fails every new OpenAI batch's validation with that message;
    `refuse_batches` answers every batch creation with that HTTP status instead. `batches` holds
    every batch received and `batch_custom_ids` every request sent in one, so tests can check
    nothing went out twice.
    """

    def __init__(
        self,
        script: Iterable[Reply] = (),
        answer: Callable[[dict[str, Any]], Reply] | None = None,
        latency_s: float = 0.0,
        rate_limit_every: int = 0,
        retry_after: str = "0.2",
        port: int = 0,
        batch_delay_s: float = 0.0,
        max_batch_requests: int = 0,
        lost_batch_acks: int = 0,
        invalid_batches: str | None = None,
        refuse_batches: int = 0,
    ) -> None:
        self.script = list(script)
        self.answer = answer
        self.latency_s = latency_s
        self.rate_limit_every = rate_limit_every
        self.retry_after = retry_after
        self.batch_delay_s = batch_delay_s
        self.max_batch_requests = max_batch_requests
        self.lost_batch_acks = lost_batch_acks
        self.invalid_batches = invalid_batches
        self.refuse_batches = refuse_batches
        self.requests: list[dict[str, Any]] = []
        self.batches: dict[str, FakeBatch] = {}
        self.batch_custom_ids: list[str] = []
        self.files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._batch_lock = threading.RLock()
        self._ids = itertools.count(1)
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

    # ---- batches ----

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def add_batch(self, batch: FakeBatch) -> FakeBatch:
        with self._batch_lock:
            self.batches[batch.id] = batch
            self.batch_custom_ids.extend(custom_id for custom_id, _ in batch.requests)
        return batch

    def settle(self, batch: FakeBatch) -> FakeBatch:
        """Bring a batch up to date: a cancelled batch ends with nothing processed; a batch past
        its delay ends with every request answered from the script."""
        with self._batch_lock:
            if batch.ended_at is not None:
                return batch
            if batch.cancel_requested:
                batch.results = [
                    _result(batch.kind, cid, None, body) for cid, body in batch.requests
                ]
            elif time.time() >= batch.created_at + self.batch_delay_s:
                batch.results = [
                    _result(batch.kind, cid, self.next_reply(body), body)
                    for cid, body in batch.requests
                ]
            else:
                return batch
            batch.ended_at = time.time()
            if batch.kind == "openai":
                self._write_openai_files(batch)
            return batch

    def _write_openai_files(self, batch: FakeBatch) -> None:
        answered, failed = [], []
        for result in batch.results:
            if (result.get("response") or {}).get("status_code") == 200:
                answered.append(result)
            elif result.get("kind") != "canceled":
                failed.append(result)
        for lines, attribute in ((answered, "output_file_id"), (failed, "error_file_id")):
            if lines:
                file_id = self.new_id("file-")
                self.files[file_id] = b"".join(
                    json.dumps({k: v for k, v in line.items() if k != "kind"}).encode() + b"\n"
                    for line in lines
                )
                setattr(batch, attribute, file_id)


def _result(kind: str, custom_id: str, reply: Reply | None, body: dict[str, Any]) -> dict[str, Any]:
    """One request's result line in the provider's format; `reply` None = cancelled."""
    if kind == "anthropic":
        if reply is None:
            outcome: dict[str, Any] = {"type": "canceled"}
        elif reply.expired:
            outcome = {"type": "expired"}
        elif reply.status != 200:
            outcome = {"type": "errored", "error": _anthropic_body(reply, body)}
        else:
            outcome = {"type": "succeeded", "message": _anthropic_body(reply, body)}
        return {"custom_id": custom_id, "result": outcome}
    line: dict[str, Any] = {"id": f"batch_req_{custom_id}", "custom_id": custom_id}
    if reply is None:
        # A cancelled OpenAI batch leaves requests it never ran out of both files.
        return {**line, "kind": "canceled", "response": None, "error": None}
    if reply.expired:
        error = {"code": "batch_expired", "message": "This request could not be executed."}
        return {**line, "response": None, "error": error}
    response = {"status_code": reply.status, "request_id": "req", "body": _openai_body(reply, body)}
    return {**line, "response": response, "error": None}


def _openai_batch(server: FakeJudgeServer, batch: FakeBatch) -> dict[str, Any]:
    server.settle(batch)
    n = len(batch.requests)
    if batch.error:
        status = "failed"
    elif batch.ended_at is not None:
        status = "cancelled" if batch.cancel_requested else "completed"
    else:
        status = "cancelling" if batch.cancel_requested else "in_progress"
    completed = sum(1 for r in batch.results if (r.get("response") or {}).get("status_code") == 200)
    failed = sum(1 for r in batch.results if r.get("kind") != "canceled") - completed
    errors = None
    if batch.error:
        errors = {"object": "list", "data": [{"code": "invalid", "message": batch.error}]}
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": errors,
        "input_file_id": batch.input_file_id,
        "completion_window": "24h",
        "status": status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": int(batch.created_at),
        "in_progress_at": int(batch.created_at),
        "completed_at": int(batch.ended_at) if batch.ended_at else None,
        "request_counts": {"total": n, "completed": completed, "failed": failed},
        "metadata": batch.metadata,
    }


def _anthropic_batch(server: FakeJudgeServer, batch: FakeBatch, base_url: str) -> dict[str, Any]:
    server.settle(batch)
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if batch.ended_at is None:
        counts["processing"] = len(batch.requests)
    for result in batch.results:
        counts[result["result"]["type"]] += 1
    if batch.ended_at is not None:
        status = "ended"
    else:
        status = "canceling" if batch.cancel_requested else "in_progress"
    created = datetime.fromtimestamp(batch.created_at, UTC)
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "created_at": created.isoformat(),
        "expires_at": (created + timedelta(hours=24)).isoformat(),
        "ended_at": (
            datetime.fromtimestamp(batch.ended_at, UTC).isoformat() if batch.ended_at else None
        ),
        "cancel_initiated_at": created.isoformat() if batch.cancel_requested else None,
        "archived_at": None,
        "results_url": (
            f"{base_url}/v1/messages/batches/{batch.id}/results" if batch.ended_at else None
        ),
    }


def _multipart(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name (enough for the SDK's file upload)."""
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    fields = {}
    for part in raw.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        for name in (b"file", b"purpose"):
            if b'name="' + name + b'"' in head:
                fields[name.decode()] = body.removesuffix(b"\r\n")
    return fields


def _handler_for(server: FakeJudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            path = urlsplit(self.path).path.rstrip("/")
            if path.endswith("/files"):
                return self._upload(raw)
            if path.endswith("/batches"):
                return self._create_batch(json.loads(raw or b"{}"), path)
            if path.endswith("/cancel"):
                return self._cancel(path.split("/")[-2])
            request = json.loads(raw or b"{}")
            reply = server.next_reply(request)
            delay = server.latency_s + reply.delay_s
            if delay:
                time.sleep(delay)
            anthropic = path.endswith("/messages")
            body = reply.raw_body
            if body is None:
                build = _anthropic_body if anthropic else _openai_body
                body = json.dumps(build(reply, request))
            self._send(reply.status, body.encode(), reply.headers)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            path = url.path.rstrip("/")
            parts = path.split("/")
            if path.endswith("/content") and "/files/" in path:
                data = server.files.get(parts[-2])
                if data is None:
                    return self._error(404, "no such file")
                return self._send(200, data, {}, "application/octet-stream")
            if path.endswith("/results"):
                batch = server.batches.get(parts[-2])
                if batch is None or server.settle(batch).ended_at is None:
                    return self._error(404, "no results yet")
                lines = b"".join(json.dumps(r).encode() + b"\n" for r in batch.results)
                return self._send(200, lines, {}, "application/binary")
            if path.endswith("/batches"):
                return self._list(path, parse_qs(url.query))
            batch = server.batches.get(parts[-1])
            if batch is None:
                return self._error(404, "no such batch")
            self._send_json(self._batch_body(batch))

        def _upload(self, raw: bytes) -> None:
            fields = _multipart(self.headers.get("content-type", ""), raw)
            file_id = server.new_id("file-")
            server.files[file_id] = fields.get("file", b"")
            self._send_json(
                {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(server.files[file_id]),
                    "created_at": int(time.time()),
                    "filename": "batch.jsonl",
                    "purpose": fields.get("purpose", b"").decode(),
                    "status": "processed",
                }
            )

        def _create_batch(self, request: dict[str, Any], path: str) -> None:
            if server.refuse_batches:
                return self._error(server.refuse_batches, "scripted refusal")
            if "/messages/" in path:
                batch = FakeBatch(
                    id=server.new_id("msgbatch_"),
                    kind="anthropic",
                    requests=[(r["custom_id"], r["params"]) for r in request["requests"]],
                    created_at=time.time(),
                )
            else:
                data = server.files.get(request.get("input_file_id", ""))
                if data is None:
                    return self._error(404, "no such input file")
                lines = [json.loads(line) for line in data.splitlines() if line.strip()]
                batch = FakeBatch(
                    id=server.new_id("batch_"),
                    kind="openai",
                    requests=[(line["custom_id"], line["body"]) for line in lines],
                    created_at=time.time(),
                    metadata=request.get("metadata") or {},
                    input_file_id=request["input_file_id"],
                )
                if any(line.get("url") != request.get("endpoint") for line in lines):
                    batch.error = "every request must go to the batch's endpoint"
                batch.error = server.invalid_batches or batch.error
                if batch.error:
                    batch.ended_at = time.time()
            custom_ids = [custom_id for custom_id, _ in batch.requests]
            if len(set(custom_ids)) != len(custom_ids):
                return self._error(400, "custom_id values must be unique within a batch")
            if server.max_batch_requests and len(batch.requests) > server.max_batch_requests:
                return self._error(400, f"a batch holds at most {server.max_batch_requests}")
            body = self._batch_body(server.add_batch(batch))
            with server._batch_lock:
                lost = server.lost_batch_acks > 0
                server.lost_batch_acks -= lost
            if lost:
                return self._error(502, "bad gateway")
            self._send_json(body)

        def _cancel(self, batch_id: str) -> None:
            batch = server.batches.get(batch_id)
            if batch is None:
                return self._error(404, "no such batch")
            with server._batch_lock:
                if batch.ended_at is None:
                    batch.cancel_requested = True
                body = self._batch_body(batch)
            self._send_json(body)

        def _list(self, path: str, query: dict[str, list[str]]) -> None:
            kind = "anthropic" if "/messages/" in path else "openai"
            with server._batch_lock:
                batches = [b for b in server.batches.values() if b.kind == kind]
            batches.sort(key=lambda b: b.id, reverse=True)  # newest first
            after = (query.get("after") or query.get("after_id") or [None])[0]
            if after:
                batches = [b for b in batches if b.id < after]
            limit = int((query.get("limit") or ["20"])[0])
            page = [self._batch_body(b) for b in batches[:limit]]
            body = {
                "data": page,
                "has_more": len(batches) > limit,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            }
            self._send_json({"object": "list", **body} if kind == "openai" else body)

        def _batch_body(self, batch: FakeBatch) -> dict[str, Any]:
            if batch.kind == "openai":
                return _openai_batch(server, batch)
            return _anthropic_batch(server, batch, server.anthropic_base_url)

        def _send_json(self, body: dict[str, Any]) -> None:
            self._send(200, json.dumps(body).encode(), {})

        def _error(self, status: int, message: str) -> None:
            body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
            self._send(status, json.dumps(body).encode(), {})

        def _send(
            self,
            status: int,
            data: bytes,
            headers: dict[str, str],
            content_type: str = "application/json",
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
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
            "prompt_tokens_details": {"cached_tokens": reply.tokens_cached},
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
        # Anthropic counts cache reads and writes apart from the rest of the input.
        "usage": {
            "input_tokens": reply.tokens_in - reply.tokens_cached - reply.tokens_cache_write,
            "output_tokens": reply.tokens_out,
            "cache_read_input_tokens": reply.tokens_cached,
            "cache_creation_input_tokens": reply.tokens_cache_write,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--rate-limit-every", type=int, default=0, help="answer every Nth call 429")
    parser.add_argument("--retry-after", default="0.2", help="retry-after header sent with 429")
    parser.add_argument(
        "--batch-delay", type=float, default=0.0, help="seconds a batch stays in progress"
    )
    args = parser.parse_args(argv)
    server = FakeJudgeServer(
        latency_s=args.latency,
        rate_limit_every=args.rate_limit_every,
        retry_after=args.retry_after,
        port=args.port,
        batch_delay_s=args.batch_delay,
    )
    print(f"listening on {server.anthropic_base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
