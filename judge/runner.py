"""Async execution of judge calls: both orders, bounded concurrency, optional request/token rate
limits, per-call timeout, capped exponential backoff with jitter that honours retry-after up to a
cap, retries of unparsed answers, cost accounting and progress.

The runner owns no storage. The caller passes only the calls it still needs (that is how a run
resumes) and persists each finished call in `on_result`, which runs as soon as the call finishes,
so a killed process loses at most the calls that were in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from judge.errors import RateLimited, RubricError, TransientError
from judge.pricing import CHARS_PER_TOKEN, PriceTable, load_prices
from judge.providers.base import Completion, JudgeRequest, Provider
from judge.rubric import Rubric
from judge.verdict import Verdict, parse_verdict

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class JudgeParams:
    """Everything that changes what the judge answers. Its hash, with the judge and the rubric
    hash, identifies a run: re-running with equal params resumes instead of paying again."""

    temperature: float = 0.0
    max_tokens: int = 1024
    both_orders: bool = True
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def params_hash(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class RunOptions:
    """How calls are made; none of this changes the answers, so it is not part of the run's hash."""

    concurrency: int = 8
    rpm: int | None = None
    tpm: int | None = None
    timeout_s: float = 60.0
    max_attempts: int = 6
    parse_retries: int = 2
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    retry_after_cap_s: float = 60.0


@dataclass(frozen=True)
class JudgeCall:
    """One call to make: a pair shown in one order."""

    pair_id: int
    first_system: str
    second_system: str
    prompt: str
    first_text: str
    second_text: str
    reference: str | None = None
    category: str | None = None

    @property
    def key(self) -> str:
        """Identifies the call; with the run's seed it decides the random baseline, in the same
        "<pair id>:<first system>" form the statistics use for their baseline rows."""
        return f"{self.pair_id}:{self.first_system}"


@dataclass(frozen=True)
class CallResult:
    """A finished call: parsed or unparsed, with what it cost. Totals cover every attempt;
    `tokens_cached` of the `tokens_in` came from the prompt cache. A batch answer has no
    latency of its own."""

    call: JudgeCall
    verdict: Verdict
    raw_text: str
    finish_reason: str
    tokens_in: int
    tokens_out: int
    cost: float | None
    latency_ms: int | None
    attempts: int
    tokens_cached: int = 0

    @property
    def winner_system(self) -> str | None:
        """The winner as a system name, 'tie', or None when unparsed."""
        if self.verdict.winner == "first":
            return self.call.first_system
        if self.verdict.winner == "second":
            return self.call.second_system
        return self.verdict.winner


@dataclass(frozen=True)
class CallFailure:
    """A call that never got an answer (retries exhausted). Nothing is stored, so a re-run
    sends it again."""

    call: JudgeCall
    error: str
    attempts: int


@dataclass
class Progress:
    total: int
    done: int = 0
    parsed: int = 0
    unparsed: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost: float = 0.0
    cost_unknown: bool = False
    elapsed_s: float = 0.0

    def add(self, result: CallResult) -> None:
        """Count one stored answer's verdict, tokens and cost (`done` is counted by the caller)."""
        self.parsed += result.verdict.parsed
        self.unparsed += not result.verdict.parsed
        self.tokens_in += result.tokens_in
        self.tokens_out += result.tokens_out
        self.tokens_cached += result.tokens_cached
        if result.cost is None:
            self.cost_unknown = True
        else:
            self.cost += result.cost

    def merge(self, other: Progress) -> None:
        """Add another tally's answers to this one."""
        self.done += other.done
        self.parsed += other.parsed
        self.unparsed += other.unparsed
        self.failed += other.failed
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.tokens_cached += other.tokens_cached
        self.cost += other.cost
        self.cost_unknown |= other.cost_unknown


@dataclass
class RunSummary:
    progress: Progress
    failures: list[CallFailure] = field(default_factory=list)


def build_calls(
    pairs: Iterable[Mapping[str, Any]], both_orders: bool = True, seed: int = 0
) -> list[JudgeCall]:
    """Calls for pairs given as mappings with pair_id, system_x, system_y, prompt, output_x,
    output_y and optional reference, category. Single order picks a seeded random order per pair."""
    calls = []
    for pair in pairs:
        pair_id = int(pair["pair_id"])
        x = (pair["system_x"], pair["output_x"] or "")
        y = (pair["system_y"], pair["output_y"] or "")
        if both_orders:
            orders = [(x, y), (y, x)]
        else:
            x_first = random.Random(f"{seed}:{pair_id}").random() < 0.5
            orders = [(x, y) if x_first else (y, x)]
        for first, second in orders:
            calls.append(
                JudgeCall(
                    pair_id=pair_id,
                    first_system=first[0],
                    second_system=second[0],
                    prompt=pair["prompt"],
                    first_text=first[1],
                    second_text=second[1],
                    reference=_text_or_none(pair.get("reference")),
                    category=_text_or_none(pair.get("category")),
                )
            )
    return calls


def missing_calls(calls: Iterable[JudgeCall], done: set[tuple[int, str]]) -> list[JudgeCall]:
    """The calls not yet answered, given the (pair_id, first_system) keys already stored."""
    return [c for c in calls if (c.pair_id, c.first_system) not in done]


def render_call(rubric: Rubric, call: JudgeCall) -> list[dict[str, str]]:
    return rubric.render(
        prompt=call.prompt,
        response_a=call.first_text,
        response_b=call.second_text,
        reference=call.reference,
        category=call.category,
    )


def judge_request(
    provider: Provider,
    rubric: Rubric,
    call: JudgeCall,
    params: JudgeParams,
    timeout_s: float = 60.0,
) -> JudgeRequest:
    """The request for one call, the same whether sent alone or in a batch. Raises RubricError
    when the rubric cannot be rendered for the call's item."""
    # Baseline judges never read the prompt, so a rubric variable they lack cannot fail them.
    messages = render_call(rubric, call) if getattr(provider, "uses_prompt", True) else []
    return JudgeRequest(
        messages=messages,
        schema_name=rubric.schema_name,
        schema=rubric.output_schema(),
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        timeout_s=timeout_s,
        first_text=call.first_text,
        second_text=call.second_text,
        key=call.key,
        seed=params.seed,
        static_messages=rubric.static_messages if messages else 0,
    )


def verdict_of(rubric: Rubric, completion: Completion) -> Verdict:
    """The verdict in a provider's answer: the one parser for every way an answer arrives."""
    if completion.choice is not None:
        return Verdict(winner=completion.choice, explanation=completion.text)
    return parse_verdict(rubric, completion.text, completion.finish_reason, completion.refusal)


class Throttle:
    """Optional requests-per-minute (evenly spaced starts) and tokens-per-minute (token bucket)
    limits. Waiters are served in order."""

    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next_start = clock()
        self._tokens = float(tpm or 0)
        self._refilled_at = clock()

    async def acquire(self, tokens: int) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self._lock:
            wait = self._wait_for(tokens)
            if wait > 0:
                await self._sleep(wait)
            now = self._clock()
            if self.rpm:
                self._next_start = max(now, self._next_start) + 60.0 / self.rpm
            if self.tpm:
                self._refill(now)
                self._tokens -= min(tokens, self.tpm)

    def _wait_for(self, tokens: int) -> float:
        now = self._clock()
        wait = 0.0
        if self.rpm:
            wait = max(wait, self._next_start - now)
        if self.tpm:
            self._refill(now)
            # A call larger than the whole budget waits for a full bucket instead of forever.
            needed = min(tokens, self.tpm) - self._tokens
            wait = max(wait, needed * 60.0 / self.tpm)
        return wait

    def _refill(self, now: float) -> None:
        assert self.tpm
        self._tokens = min(
            float(self.tpm), self._tokens + (now - self._refilled_at) * self.tpm / 60
        )
        self._refilled_at = now


def backoff_delay(
    failures: int, retry_after: float | None, options: RunOptions, rng: random.Random
) -> float:
    """Seconds to wait after the `failures`-th consecutive failed attempt of one call.

    A server's retry-after is honoured (plus up to 10% jitter) but never beyond
    `retry_after_cap_s`; otherwise exponential backoff capped at `backoff_cap_s`, with jitter
    between half and all of it so concurrent calls do not retry in lockstep.
    """
    if retry_after is not None:
        return min(options.retry_after_cap_s, retry_after * rng.uniform(1.0, 1.1))
    ceiling = min(options.backoff_cap_s, options.backoff_base_s * 2 ** (failures - 1))
    return rng.uniform(ceiling / 2, ceiling)


async def run_judge(
    provider: Provider,
    rubric: Rubric,
    calls: Iterable[JudgeCall],
    on_result: Callable[[CallResult], None],
    *,
    params: JudgeParams | None = None,
    options: RunOptions | None = None,
    prices: PriceTable | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> RunSummary:
    """Judge every call and return the totals.

    `on_result` runs synchronously for each finished call (parsed or unparsed) as soon as it
    finishes. Calls whose retries run out are returned in `failures`, not passed to `on_result`.
    A FatalProviderError (bad key, unknown model) stops the run and is raised.
    """
    params = params or JudgeParams()
    options = options or RunOptions()
    prices = prices or load_prices()
    rng = rng or random.Random()
    calls = list(calls)
    summary = RunSummary(Progress(total=len(calls)))
    throttle = Throttle(options.rpm, options.tpm, sleep=sleep)
    started = time.perf_counter()
    pending = iter(calls)

    async def worker() -> None:
        # Workers share one iterator: asyncio switches tasks only at `await`, so `next` is safe.
        for call in pending:
            outcome = await _judge_one(
                provider, rubric, call, params, options, prices, throttle, sleep, rng
            )
            progress = summary.progress
            progress.done += 1
            if isinstance(outcome, CallFailure):
                progress.failed += 1
                summary.failures.append(outcome)
            else:
                on_result(outcome)
                progress.add(outcome)
            progress.elapsed_s = time.perf_counter() - started
            if on_progress:
                on_progress(progress)

    # No more workers than calls: a huge concurrency must not mean a huge number of idle tasks.
    n_workers = max(1, min(options.concurrency, len(calls)))
    workers = [asyncio.create_task(worker()) for _ in range(n_workers)]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    summary.progress.elapsed_s = time.perf_counter() - started
    return summary


async def _judge_one(
    provider: Provider,
    rubric: Rubric,
    call: JudgeCall,
    params: JudgeParams,
    options: RunOptions,
    prices: PriceTable,
    throttle: Throttle,
    sleep: Sleep,
    rng: random.Random,
) -> CallResult | CallFailure:
    try:
        request = judge_request(provider, rubric, call, params, options.timeout_s)
    except RubricError as exc:
        return CallFailure(call, str(exc), attempts=0)
    estimated_tokens = sum(len(m["content"]) for m in request.messages) // CHARS_PER_TOKEN
    estimated_tokens += params.max_tokens
    attempts = failures = parse_failures = 0
    tokens_in = tokens_out = tokens_cached = tokens_cache_write = 0
    while True:
        await throttle.acquire(estimated_tokens)
        attempts += 1
        started = time.perf_counter()
        try:
            async with asyncio.timeout(options.timeout_s):
                completion = await provider.complete(request)
        except (RateLimited, TransientError, TimeoutError) as exc:
            failures += 1
            error = str(exc) or f"{provider.name}: timed out after {options.timeout_s:g}s"
            if failures >= options.max_attempts:
                return CallFailure(call, f"{error} (gave up after {attempts} attempts)", attempts)
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            await sleep(backoff_delay(failures, retry_after, options, rng))
            continue
        latency_ms = round((time.perf_counter() - started) * 1000)
        failures = 0
        tokens_in += completion.tokens_in
        tokens_out += completion.tokens_out
        tokens_cached += completion.tokens_cached
        tokens_cache_write += completion.tokens_cache_write
        verdict = verdict_of(rubric, completion)
        if verdict.parsed or parse_failures >= options.parse_retries:
            return CallResult(
                call=call,
                verdict=verdict,
                raw_text=completion.text,
                finish_reason=completion.finish_reason,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=prices.cost(
                    provider.name, tokens_in, tokens_out, tokens_cached, tokens_cache_write
                ),
                latency_ms=latency_ms,
                attempts=attempts,
                tokens_cached=tokens_cached,
            )
        parse_failures += 1


def _text_or_none(value: Any) -> str | None:
    # Frames carry missing text as None or NaN; both mean "absent".
    return value if isinstance(value, str) and value else None
