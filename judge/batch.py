"""Judging through a provider's batch API: the calls split into batches within the provider's
limits, each batch recorded before it is sent, polling, and each ended batch's answers turned into
CallResults by the same parser as interactive calls, at the batch price.

This module owns no storage: a BatchJournal (the app's store) records batches and answers, under
three rules that make a run resumable at any moment. A batch is recorded with its requests before
it is sent, so a crash can never leave a paid batch unknown (a batch sent but not acknowledged is
looked up at the provider before anything is sent again). A request in a batch that has not been
collected is never sent again. Once an ended batch is collected, its requests without an answer
(errored, expired, cancelled) are free to go out again on the next run.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from judge.errors import (
    FatalProviderError,
    NotFoundAtProvider,
    RateLimited,
    RubricError,
    TransientError,
)
from judge.pricing import PriceTable
from judge.providers.base import BatchProvider, BatchStatus, Completion
from judge.rubric import Rubric
from judge.runner import (
    CallFailure,
    CallResult,
    JudgeCall,
    JudgeParams,
    Progress,
    RunOptions,
    backoff_delay,
    judge_request,
    verdict_of,
)

Sleep = Callable[[float], Awaitable[None]]
CallKey = tuple[int, str]  # (pair id, first system)

# How far apart our clock and the provider's may be when looking for a batch sent before a crash.
CLOCK_SKEW = timedelta(minutes=10)
# Answers are stored in slices of this many, so collecting a large batch holds little in memory.
STORE_EVERY = 1000


@dataclass(frozen=True)
class OpenBatch:
    """A batch the journal recorded and has not collected yet. `batch_id` is None until the
    provider acknowledged it; `requests` maps each custom_id to its call's key."""

    local_id: int
    key: str
    batch_id: str | None
    created_at: datetime
    requests: dict[str, CallKey]


class BatchJournal(Protocol):
    """Where a run's batches and answers are kept (one judge run)."""

    def open_batches(self) -> list[OpenBatch]:
        """The run's batches not yet collected, oldest first."""
        ...

    def taken(self) -> set[CallKey]:
        """Calls that hold an answer or sit in a batch not yet collected."""
        ...

    def known_batch_ids(self) -> set[str]:
        """Every provider batch id recorded in the workspace."""
        ...

    def record_batch(self, key: str, requests: dict[str, CallKey]) -> int:
        """Record a batch about to be sent; returns its local id."""
        ...

    def update_batch(self, local_id: int, status: BatchStatus) -> None:
        """Record what the provider said about the batch (its id, once acknowledged)."""
        ...

    def store_answers(self, results: list[CallResult]) -> None:
        """Store answers; an answer already stored is never stored twice."""
        ...

    def batch_collected(self, local_id: int, answered: int, failed: int, error: str | None) -> None:
        """Every answer of the batch is stored: its unanswered requests are free again."""
        ...


@dataclass
class BatchProgress:
    """Where a batch run stands: the latest status of each of its batches, requests sent this
    time, answers stored (parsed, unparsed, tokens, cost) and requests that came back without an
    answer, with the first few reasons."""

    statuses: dict[str, BatchStatus] = field(default_factory=dict)
    submitted: int = 0
    answers: Progress = field(default_factory=lambda: Progress(total=0))
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    not_sent: list[CallFailure] = field(default_factory=list)
    poll_error: str | None = None
    elapsed_s: float = 0.0

    @property
    def open(self) -> int:
        """Batches the provider is still working on."""
        return sum(status.state != "ended" for status in self.statuses.values())

    def line(self) -> str:
        """One line: each batch's state and counts, then what was stored."""
        parts = [
            f"batch {s.batch_id} {s.provider_status}: {s.succeeded + s.errored}/{s.total} done"
            + (f", {s.errored} failed" if s.errored else "")
            for s in self.statuses.values()
        ]
        a = self.answers
        cost = "cost unknown" if a.cost_unknown else f"${a.cost:.4f}"
        stored = f"{a.parsed + a.unparsed} answers stored ({a.unparsed} unparsed), {cost}"
        return "; ".join([*parts, stored]) + f"; {self.elapsed_s:.1f}s"

    def note_failure(self, text: str) -> None:
        """Count a request that came back without an answer; keep the first few reasons."""
        self.failed += 1
        if len(self.errors) < 10:
            self.errors.append(text)


def new_batch_key() -> str:
    """Our own id for a batch: it starts every custom_id of the batch (letters, digits and '-',
    as both providers require) and is the OpenAI batch's metadata."""
    return secrets.token_hex(8)


async def run_batches(
    provider: BatchProvider,
    rubric: Rubric,
    calls: Iterable[JudgeCall],
    journal: BatchJournal,
    *,
    params: JudgeParams,
    prices: PriceTable,
    options: RunOptions | None = None,
    submit: bool = True,
    wait: bool = True,
    poll_interval_s: float = 30.0,
    on_progress: Callable[[BatchProgress], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> BatchProgress:
    """Resume the run's open batches, send the calls that are neither answered nor in an open
    batch (unless `submit` is false), then poll: until every batch has ended and been collected
    when `wait`, else once.

    `calls` are every call of the run (open batches are matched back to them). A provider error
    that retrying cannot fix is raised; transient errors while polling are retried at the next
    poll, and reported in `poll_error` when not waiting.
    """
    options = options or RunOptions()
    rng = rng or random.Random()
    started = time.perf_counter()
    progress = BatchProgress()
    by_key = {(call.pair_id, call.first_system): call for call in calls}

    def report() -> None:
        progress.elapsed_s = time.perf_counter() - started
        if on_progress:
            on_progress(progress)

    # A crash (or a lost answer) while sending: find the batch at the provider, else send it now.
    for batch in journal.open_batches():
        if batch.batch_id is None:
            status = await _send(
                provider, rubric, journal, batch, by_key, params, options, sleep, rng
            )
            progress.statuses[batch.key] = status
    if submit:
        taken = journal.taken()
        todo = [call for key, call in by_key.items() if key not in taken]
        for key, chunk in _split(provider, rubric, todo, params, progress.not_sent):
            requests = {
                body["custom_id"]: (call.pair_id, call.first_system) for call, body in chunk
            }
            local_id = journal.record_batch(key, requests)
            batch = OpenBatch(local_id, key, None, datetime.now(UTC), requests)
            bodies = [body for _, body in chunk]
            status = await _send(
                provider, rubric, journal, batch, by_key, params, options, sleep, rng, bodies
            )
            progress.statuses[key] = status
            progress.submitted += len(requests)
            report()
    batches = journal.open_batches()
    progress.answers.total = sum(len(b.requests) for b in batches)

    while batches:
        still_open = []
        for batch in batches:
            try:
                status = await provider.batch_status(batch.batch_id or "")
                journal.update_batch(batch.local_id, status)
                progress.statuses[batch.key] = status
                if status.state == "ended":
                    await _collect(
                        provider, rubric, journal, batch, status, by_key, prices, progress
                    )
                    continue
            except (RateLimited, TransientError) as exc:
                progress.poll_error = str(exc)
            except NotFoundAtProvider as exc:
                # Never assumed gone: with another API key or project the batch may still run
                # (and be paid for). The user decides, by cancelling.
                raise NotFoundAtProvider(
                    f"{exc}; the provider does not know batch {batch.batch_id} (another API key "
                    "or project?); if it is gone for good, cancel the run's batches and its "
                    "calls go out again on the next run"
                ) from exc
            still_open.append(batch)
        batches = still_open
        report()
        if not batches or not wait:
            break
        await sleep(poll_interval_s)
    report()
    return progress


async def cancel_batches(provider: BatchProvider, journal: BatchJournal) -> list[BatchStatus]:
    """Ask the provider to cancel every open batch of the run that is still running. Answers a
    batch already holds stay collectable (the next poll stores them). A batch the provider does
    not know (never sent, or gone) is closed here, so its calls can go out again."""
    statuses = []
    for batch in journal.open_batches():
        try:
            if batch.batch_id is None:
                status = await provider.find_batch(
                    batch.key,
                    batch.created_at - CLOCK_SKEW,
                    len(batch.requests),
                    journal.known_batch_ids(),
                )
                if status is None:
                    journal.batch_collected(batch.local_id, 0, len(batch.requests), "never sent")
                    continue
            else:
                status = await provider.batch_status(batch.batch_id)
            if status.state != "ended":
                status = await provider.cancel_batch(status.batch_id)
        except NotFoundAtProvider as exc:
            journal.batch_collected(batch.local_id, 0, len(batch.requests), str(exc))
            continue
        journal.update_batch(batch.local_id, status)
        statuses.append(status)
    return statuses


def _split(
    provider: BatchProvider,
    rubric: Rubric,
    calls: list[JudgeCall],
    params: JudgeParams,
    not_sent: list[CallFailure],
) -> Iterator[tuple[str, list[tuple[JudgeCall, dict[str, Any]]]]]:
    """Batches of (call, request body) within the provider's request and byte limits, each with
    a new key. A call whose prompt cannot be rendered goes to `not_sent`."""
    limits = provider.batch_limits
    key, chunk, size = new_batch_key(), [], 0
    for call in calls:
        try:
            request = judge_request(provider, rubric, call, params)
        except RubricError as exc:
            not_sent.append(CallFailure(call, str(exc), attempts=0))
            continue
        body = provider.batch_request(f"{key}-{len(chunk)}", request)
        line = len(json.dumps(body, separators=(",", ":")).encode()) + 1
        if chunk and (len(chunk) >= limits.max_requests or size + line > limits.max_bytes):
            yield key, chunk
            key, chunk, size = new_batch_key(), [], 0
            body = provider.batch_request(f"{key}-0", request)
        chunk.append((call, body))
        size += line
    if chunk:
        yield key, chunk


async def _send(
    provider: BatchProvider,
    rubric: Rubric,
    journal: BatchJournal,
    batch: OpenBatch,
    by_key: dict[CallKey, JudgeCall],
    params: JudgeParams,
    options: RunOptions,
    sleep: Sleep,
    rng: random.Random,
    bodies: list[dict[str, Any]] | None = None,
) -> BatchStatus:
    """Send a recorded batch, retrying transient errors. Whenever an earlier attempt may have
    reached the provider (a timeout, a crash), the batch is looked up first: never sent twice."""
    maybe_sent = bodies is None
    failures = 0
    while True:
        try:
            status = None
            if maybe_sent:
                status = await provider.find_batch(
                    batch.key,
                    batch.created_at - CLOCK_SKEW,
                    len(batch.requests),
                    journal.known_batch_ids(),
                )
            if status is None:
                if bodies is None:
                    bodies = _bodies(provider, rubric, batch, by_key, params)
                try:
                    status = await provider.submit_batch(batch.key, bodies)
                except FatalProviderError as exc:
                    # Refused outright (bad request, key or model): there is no batch to wait
                    # for, and its calls must not stay reserved for one.
                    journal.batch_collected(batch.local_id, 0, len(batch.requests), str(exc))
                    raise
            journal.update_batch(batch.local_id, status)
            return status
        except (RateLimited, TransientError) as exc:
            failures += 1
            maybe_sent = True
            if failures >= options.max_attempts:
                raise
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            await sleep(backoff_delay(failures, retry_after, options, rng))


def _bodies(
    provider: BatchProvider,
    rubric: Rubric,
    batch: OpenBatch,
    by_key: dict[CallKey, JudgeCall],
    params: JudgeParams,
) -> list[dict[str, Any]]:
    """The request bodies of a recorded batch, rebuilt from its calls (after a crash)."""
    return [
        provider.batch_request(custom_id, judge_request(provider, rubric, by_key[key], params))
        for custom_id, key in batch.requests.items()
    ]


async def _collect(
    provider: BatchProvider,
    rubric: Rubric,
    journal: BatchJournal,
    batch: OpenBatch,
    status: BatchStatus,
    by_key: dict[CallKey, JudgeCall],
    prices: PriceTable,
    progress: BatchProgress,
) -> None:
    """Store every answer of an ended batch, then mark it collected. Collecting again after an
    interruption is harmless: stored answers are never stored twice, and what this collection
    found only reaches `progress` once it is complete."""
    answers = Progress(total=len(batch.requests))
    failures: list[str] = []
    results: list[CallResult] = []
    seen: set[str] = set()
    async for item in provider.batch_results(batch.batch_id or ""):
        key = batch.requests.get(item.custom_id)
        # Another batch's answer (a wrong guess after a crash) or a repeat: not ours to store.
        if key is None or key not in by_key or item.custom_id in seen:
            continue
        seen.add(item.custom_id)
        if item.completion is None:
            failures.append(f"pair {key[0]} ({key[1]} first): {item.error}")
            continue
        results.append(_result(provider.name, rubric, by_key[key], item.completion, prices))
        if len(results) >= STORE_EVERY:
            _store(journal, results, answers)
            results = []
    _store(journal, results, answers)
    why = "no result came back"
    if status.error:
        why = f"the batch {status.provider_status}: {status.error}"
    failures += [
        f"pair {key[0]} ({key[1]} first): {why}"
        for custom_id, key in batch.requests.items()
        if custom_id not in seen
    ]
    journal.batch_collected(
        batch.local_id, answers.done, len(failures), status.error or next(iter(failures), None)
    )
    progress.answers.merge(answers)
    for failure in failures:
        progress.note_failure(failure)


def _store(journal: BatchJournal, results: list[CallResult], answers: Progress) -> None:
    if not results:
        return
    journal.store_answers(results)
    for result in results:
        answers.add(result)
        answers.done += 1


def _result(
    judge: str, rubric: Rubric, call: JudgeCall, completion: Completion, prices: PriceTable
) -> CallResult:
    return CallResult(
        call=call,
        verdict=verdict_of(rubric, completion),
        raw_text=completion.text,
        finish_reason=completion.finish_reason,
        tokens_in=completion.tokens_in,
        tokens_out=completion.tokens_out,
        cost=prices.cost(
            judge,
            completion.tokens_in,
            completion.tokens_out,
            completion.tokens_cached,
            completion.tokens_cache_write,
            batch=True,
        ),
        latency_ms=None,
        attempts=1,
        tokens_cached=completion.tokens_cached,
    )
