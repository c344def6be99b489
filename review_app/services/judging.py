"""Judge runs: the rubrics on offer, planning a run (calls still missing, estimated cost), running
it through the judge engine with every verdict committed as it lands, or through the provider's
batch API (send, resume, collect, cancel), and run totals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from judge.batch import BatchProgress, OpenBatch, cancel_batches, run_batches
from judge.errors import FatalProviderError, JudgeError, ProviderError, RubricError
from judge.pricing import Estimate, PriceTable, estimate_cost, load_prices
from judge.providers.base import BatchProvider, BatchStatus, get_provider, split_spec
from judge.rubric import Rubric, field_location, load_rubric, parse_rubric
from judge.runner import (
    CallResult,
    JudgeCall,
    JudgeParams,
    Progress,
    RunOptions,
    RunSummary,
    build_calls,
    missing_calls,
    render_call,
    run_judge,
)
from review_app.baselines import is_baseline
from review_app.errors import Conflict, InputError, JudgeUnavailable, NotFound
from review_app.services.context import StudyContext
from review_app.settings import Settings
from review_app.store import Store, now_iso

__all__ = [
    "DEMO_RUBRIC",
    "available_rubrics",
    "cancel_batch_run",
    "check_judge",
    "check_run",
    "judge_batches",
    "judge_run_failures",
    "judge_runs",
    "plan_judge_run",
    "refresh_batch_run",
    "start_batch_run",
    "start_judge_run",
]

RUBRICS_DIR = Path(__file__).resolve().parents[2] / "rubrics"
# Judges whose provider has a batch API.
BATCH_PROVIDERS = ("openai", "anthropic")


DEMO_RUBRIC = RUBRICS_DIR / "general-pairwise.yaml"


@dataclass(frozen=True)
class RubricChoice:
    """A rubric file offered to the user; `error` says why it cannot be used."""

    path: Path
    rubric: Rubric | None
    error: str | None = None

    @property
    def title(self) -> str:
        if self.rubric is None:
            return f"{self.path.name} (invalid)"
        return f"{self.rubric.name} v{self.rubric.version} ({self.rubric.mode})"


def available_rubrics(settings: Settings) -> list[RubricChoice]:
    """The shipped rubrics, then those in `REVIEW_APP_RUBRICS` (else the `rubrics` folder beside
    the workspace, where the rubric editor saves); invalid files are listed with their error
    rather than hidden."""
    folders = [RUBRICS_DIR]
    if settings.judge_rubrics_dir:
        folders.append(Path(settings.judge_rubrics_dir))
    else:
        # Versions saved from the rubric editor when no folder is configured.
        folders.append(settings.db_folder() / "rubrics")
    choices = []
    for folder in folders:
        for path in sorted(folder.glob("*.y*ml")):
            try:
                choices.append(RubricChoice(path, load_rubric(path)))
            except RubricError as exc:
                choices.append(RubricChoice(path, None, str(exc)))
    return choices


@dataclass(frozen=True)
class JudgePlan:
    """What a judge run would do: the calls still missing and what they would cost (at the batch
    price when `batch`).

    `run_id` is the existing run these settings resume, or None for a new run. Calls waiting in
    the run's open provider batches (`n_in_batches`) are neither stored nor missing.
    """

    study: str
    study_id: int
    judge: str
    label: str
    rubric: Rubric
    rubric_body: str
    rubric_hash: str
    params: JudgeParams
    run_id: int | None
    n_pairs: int
    n_total: int
    calls: list[JudgeCall]
    estimate: Estimate
    n_in_batches: int = 0
    batch: bool = False
    split: str = "all"

    @property
    def n_missing(self) -> int:
        return len(self.calls)

    @property
    def n_stored(self) -> int:
        return self.n_total - self.n_missing - self.n_in_batches

    def line(self) -> str:
        """One line for the CLI and the page: calls and cost before anything is sent."""
        estimate = self.estimate
        if estimate.cost is None:
            cost = (
                f"cost unknown: no price for {self.judge} "
                "(add it to a price file, see REVIEW_APP_JUDGE_PRICES)"
            )
        else:
            cost = f"estimated cost ${estimate.cost:.4f} (at most ${estimate.max_cost:.4f})"
            if self.batch:
                cost += " at the batch price"
            if estimate.tokens_cached:
                cost += f", with {estimate.tokens_cached} input tokens from the prompt cache"
        waiting = f", {self.n_in_batches} in open batches" if self.n_in_batches else ""
        part = f" {self.split}" if self.split != "all" else ""
        return (
            f"{self.label}: {self.n_missing} calls to send, {self.n_stored} of {self.n_total} "
            f"already stored{waiting} ({self.n_pairs}{part} pairs, "
            f"{'both orders' if self.params.both_orders else 'single order'}); {cost}"
        )


@dataclass(frozen=True)
class JudgeRunOutcome:
    run_id: int
    label: str
    status: str
    progress: Progress
    failures: list[str]

    def line(self) -> str:
        p = self.progress
        cost = "cost unknown" if p.cost_unknown else f"cost ${p.cost:.4f}"
        return (
            f"run {self.run_id} {self.label}: {p.done - p.failed} verdicts stored "
            f"({p.parsed} parsed, {p.unparsed} unparsed), {p.failed} failed; "
            f"tokens {p.tokens_in} in ({p.tokens_cached} cached) / {p.tokens_out} out; {cost}; "
            f"{p.elapsed_s:.1f}s; status {self.status}"
        )


@dataclass(frozen=True)
class BatchRunOutcome:
    """Where a batch run stands after sending, polling or cancelling. `status` is "batched" while
    the provider still works on some of its batches."""

    run_id: int
    label: str
    status: str
    progress: BatchProgress

    @property
    def failures(self) -> list[str]:
        """Requests that came back without an answer (the first few) or could not be sent."""
        not_sent = [
            f"pair {f.call.pair_id} ({f.call.first_system} first): {f.error}"
            for f in self.progress.not_sent
        ]
        return self.progress.errors + not_sent

    def line(self) -> str:
        p, a = self.progress, self.progress.answers
        cost = "cost unknown" if a.cost_unknown else f"cost ${a.cost:.4f} at the batch price"
        waiting = f"; {p.open} batches still running at the provider" if p.open else ""
        return (
            f"run {self.run_id} {self.label}: {p.submitted} calls sent in batches, "
            f"{a.done} verdicts stored ({a.parsed} parsed, {a.unparsed} unparsed), "
            f"{p.failed + len(p.not_sent)} without an answer; tokens {a.tokens_in} in "
            f"({a.tokens_cached} cached) / {a.tokens_out} out; {cost}{waiting}; "
            f"{p.elapsed_s:.1f}s; status {self.status}"
        )


@contextmanager
def _judge_errors() -> Iterator[None]:
    """The judge engine's errors in the app's terms: a provider that refuses to work is
    JudgeUnavailable; anything else it raises on purpose (a bad rubric, judge spec or price file)
    is an InputError."""
    try:
        yield
    except FatalProviderError as exc:
        raise JudgeUnavailable(str(exc)) from exc
    except JudgeError as exc:
        raise InputError(str(exc)) from exc


def _prices(settings: Settings) -> PriceTable:
    with _judge_errors():
        return load_prices(settings.judge_prices or None)


def _run_label(store: Store, study_id: int, judge: str, rubric: Rubric, params: JudgeParams) -> str:
    """A readable label, unique in the study: statistics and reports show judges by it.

    Baselines ignore the rubric, so they are labelled by name alone, as the statistics expect.
    """
    label = judge if is_baseline(judge) else f"{judge} · {rubric.name} v{rubric.version}"
    if not params.both_orders:
        label += " · single order"
    taken = store.judging.judge_run_labels(study_id)
    if label not in taken:
        return label
    n = 2
    while f"{label} #{n}" in taken:
        n += 1
    return f"{label} #{n}"


def plan_judge_run(
    store: Store,
    settings: Settings,
    study: str,
    rubric_path: str | Path,
    judge: str,
    both_orders: bool = True,
    seed: int | None = None,
    batch: bool = False,
    split: str = "all",
) -> JudgePlan:
    """Everything `start_judge_run` (or `start_batch_run` when `batch`) would do, without calling
    any model (the dry run).

    A run is identified by study, judge, rubric content hash and parameters; when such a run
    exists, only its missing calls are planned.
    """
    with _judge_errors():
        provider, _ = split_spec(judge)
        if is_baseline(judge):
            get_provider(judge)  # refuses a baseline that does not exist (baseline/longer)
        rubric = load_rubric(rubric_path)
    if batch and provider not in BATCH_PROVIDERS:
        raise InputError(
            f"judge {judge} has no batch API: batches are for "
            f"{' and '.join(f'{name}/MODEL' for name in BATCH_PROVIDERS)} judges "
            "(baseline judges decide locally, at no cost)"
        )
    study_row = store.studies.require_study(study)
    rubric_body = Path(rubric_path).read_text(encoding="utf-8")
    params = JudgeParams(
        max_tokens=settings.judge_max_tokens,
        both_orders=both_orders,
        seed=settings.seed if seed is None else seed,
    )
    # A baseline's answers do not depend on the rubric: one run per baseline and parameters.
    rubric_hash = "" if is_baseline(judge) else rubric.content_hash
    run = store.judging.find_judge_run(study_row["id"], judge, rubric_hash, params.params_hash)
    pairs = store.frames.pairs_frame(study_row["id"]).to_dict("records")
    if not is_baseline(judge):
        refuse_test_examples(store, study_row, rubric, str(rubric_path), rubric_body, pairs)
    pairs = _in_split(store, study_row, pairs, split)
    calls = build_calls(pairs, both_orders=params.both_orders, seed=params.seed)
    done = store.judging.verdict_keys(run["id"]) if run else set()
    in_batches = store.batches.open_batch_keys(run["id"]) if run else set()
    missing = missing_calls(calls, done | in_batches)
    # Only the calls of the pairs planned (a split's part) count as waiting in batches.
    in_batches = {(c.pair_id, c.first_system) for c in calls} & in_batches
    prompt_chars = []
    prefix_chars = 0
    if not is_baseline(judge):
        item_keys = {p["pair_id"]: p["item_key"] for p in pairs}
        for call in missing:
            try:
                messages = render_call(rubric, call)
            except RubricError as exc:
                raise InputError(f"{rubric_path}: item {item_keys[call.pair_id]}: {exc}") from exc
            prompt_chars.append(sum(len(m["content"]) for m in messages))
            # The static start is the same in every call: measuring it once is enough.
            prefix_chars = prefix_chars or sum(
                len(m["content"]) for m in messages[: rubric.static_messages]
            )
    else:
        prompt_chars = [0] * len(missing)
    return JudgePlan(
        study=study,
        study_id=study_row["id"],
        judge=judge,
        label=run["label"] if run else _run_label(store, study_row["id"], judge, rubric, params),
        rubric=rubric,
        rubric_body=rubric_body,
        rubric_hash=rubric_hash,
        params=params,
        run_id=run["id"] if run else None,
        n_pairs=len(pairs),
        n_total=len(calls),
        calls=missing,
        estimate=estimate_cost(
            _prices(settings), judge, prompt_chars, params.max_tokens, prefix_chars, batch
        ),
        n_in_batches=len(in_batches),
        batch=batch,
        split=split,
    )


# An output shorter than this may match an example by chance ("Yes."), so is not compared.
_MIN_COPIED_OUTPUT = 40


def _normalised(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def refuse_test_examples(
    store: Store, study_row: dict, rubric: Rubric, source: str, body: str, pairs: list[dict]
) -> None:
    """InputError when one of the rubric's few-shot examples comes from a test comparison of the
    study (its prompt is a test item's prompt, or a response is a test output): examples may be
    drawn from dev disagreements only, or test would score the labels it was taught."""
    parts = store.calibration.split_parts(study_row["id"])
    test = [p for p in pairs if parts.get(p["pair_id"]) == "test"]
    if not test or not rubric.examples:
        return
    prompts = {_normalised(p["prompt"]): p["item_key"] for p in test}
    outputs = {
        _normalised(p[side]): p["item_key"]
        for p in test
        for side in ("output_x", "output_y")
        if len(_normalised(p[side])) >= _MIN_COPIED_OUTPUT
    }
    for i, example in enumerate(rubric.examples):
        for field, text, known in (
            ("prompt", example.prompt, prompts),
            ("response_a", example.response_a, outputs),
            ("response_b", example.response_b, outputs),
        ):
            item = known.get(_normalised(text))
            if item is not None:
                where = field_location(body, source, ("examples", i, field))
                raise InputError(
                    f"{where}: copied from test item {item} of study {study_row['name']}; "
                    "few-shot examples may come from dev comparisons only"
                )


def _in_split(store: Store, study_row: dict, pairs: list[dict], split: str) -> list[dict]:
    """The pairs of one part of the study's split ("all": every pair)."""
    if split == "all":
        return pairs
    if split not in ("dev", "test"):
        raise InputError(f"split {split!r}: choose one of all, dev, test")
    parts = store.calibration.split_parts(study_row["id"])
    if not parts:
        raise NotFound(
            f"study {study_row['name']} has no dev/test split yet: make one with "
            f"`review-app calibrate split --study {study_row['name']}`"
        )
    return [p for p in pairs if parts.get(p["pair_id"]) == split]


def check_judge(judge: str, provider_options: dict | None = None) -> None:
    """JudgeUnavailable or InputError when a run with `judge` could not start: an unknown
    provider or baseline, a missing SDK or API key. Creates the provider and closes it again;
    sends nothing."""
    with _judge_errors():
        provider = get_provider(judge, **(provider_options or {}))
    close = getattr(provider, "aclose", None)
    if close is not None:
        asyncio.run(close())


def check_run(ctx: StudyContext, plan: JudgePlan, reason: str = "") -> None:
    """What `start_judge_run` would refuse, checked without running (a dry run): the judge
    itself (`check_judge`), and after the lock, calls to send without a reason."""
    check_judge(plan.judge)
    if plan.calls:
        ctx.lock.require_reason(reason, f"judging with {plan.label}")


def _open_run(ctx: StudyContext, plan: JudgePlan, status: str, reason: str) -> int:
    """The run the plan resumes, or a new one; its status set to `status`. After the lock, a run
    that would send calls adds verdicts the gate may decide on (a rubric written after seeing
    the results, say): like an import of verdicts it needs a reason and is recorded as a
    deviation the report lists."""
    actor = ctx.require("run a judge")
    store = ctx.store
    if plan.calls:
        ctx.lock.require_reason(reason, f"judging with {plan.label}")
    with store.transaction():
        if plan.calls:
            ctx.lock.change(
                actor,
                reason,
                "judge calls sent",
                f"{plan.label}: {plan.n_total - len(plan.calls)} of {plan.n_total} calls at the "
                "lock",
                f"{plan.label}: {len(plan.calls)} calls sent after the lock",
                judge=plan.label,
                calls=len(plan.calls),
            )
        rubric_id = None
        if not is_baseline(plan.judge):
            rubric = plan.rubric
            rubric_id = store.judging.ensure_rubric(
                rubric.name, rubric.version, rubric.content_hash, plan.rubric_body
            )
        run = store.judging.find_judge_run(
            plan.study_id, plan.judge, plan.rubric_hash, plan.params.params_hash
        )
        if run is None:
            run_id = store.judging.insert_judge_run(
                plan.study_id,
                plan.label,
                plan.judge,
                rubric_id,
                plan.rubric_hash,
                plan.params.as_dict(),
                plan.params.params_hash,
            )
        else:
            run_id = run["id"]
        store.judging.mark_judge_run(run_id, status)
    return run_id


def start_judge_run(
    ctx: StudyContext,
    rubric_path: str | Path,
    judge: str,
    both_orders: bool = True,
    seed: int | None = None,
    concurrency: int = 8,
    rpm: int | None = None,
    tpm: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    provider_options: dict | None = None,
    on_start: Callable[[JudgePlan], None] | None = None,
    split: str = "all",
    reason: str = "",
) -> JudgeRunOutcome:
    """Judge the study's pairs, sending only the calls this run does not hold yet.

    Each finished call is committed on its own, so a killed process loses at most the calls in
    flight and re-running the same command resumes. Calls whose retries ran out are listed in
    the outcome (status "incomplete"); re-running sends them again. `on_start` receives the plan
    once the judge is ready (credentials found), before the first call.
    """
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}")
    for name, value in (("requests per minute", rpm), ("tokens per minute", tpm)):
        if value is not None and value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    store, settings = ctx.store, ctx.settings
    plan = plan_judge_run(
        store, settings, ctx.name, rubric_path, judge, both_orders, seed, split=split
    )
    prices = _prices(settings)
    with _judge_errors():
        provider = get_provider(judge, **(provider_options or {}))
    run_id = _open_run(ctx, plan, "running", reason)
    # Another process may have stored verdicts or sent batches since the plan: never send those.
    calls = missing_calls(
        plan.calls, store.judging.verdict_keys(run_id) | store.batches.open_batch_keys(run_id)
    )
    if on_start:
        on_start(plan)

    def persist(result: CallResult) -> None:
        with store.transaction():
            store.judging.insert_verdicts([_verdict_row(run_id, result)])

    options = RunOptions(
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        timeout_s=settings.judge_timeout,
        max_attempts=settings.judge_max_attempts,
        parse_retries=settings.judge_parse_retries,
        backoff_cap_s=settings.judge_backoff_cap,
        retry_after_cap_s=settings.judge_retry_after_cap,
    )

    async def run_all() -> RunSummary:
        try:
            return await run_judge(
                provider,
                plan.rubric,
                calls,
                persist,
                params=plan.params,
                options=options,
                prices=prices,
                on_progress=on_progress,
            )
        finally:
            await provider.aclose()

    try:
        summary = asyncio.run(run_all())
    except FatalProviderError as exc:
        with store.transaction():
            store.judging.mark_judge_run(run_id, "failed", finished=True)
        raise JudgeUnavailable(str(exc)) from exc
    except BaseException:
        with store.transaction():
            store.judging.mark_judge_run(run_id, "interrupted", finished=True)
        raise
    status = "incomplete" if summary.failures else "complete"
    with store.transaction():
        store.judging.mark_judge_run(run_id, status, finished=True)
    failures = [
        f"pair {f.call.pair_id} ({f.call.first_system} first): {f.error}" for f in summary.failures
    ]
    return JudgeRunOutcome(run_id, plan.label, status, summary.progress, failures)


def _verdict_row(run_id: int, result: CallResult) -> dict:
    call, verdict = result.call, result.verdict
    scores = {}
    if verdict.scores:
        scores = {
            call.first_system: verdict.scores["first"],
            call.second_system: verdict.scores["second"],
        }
    return {
        "run_id": run_id,
        "pair_id": call.pair_id,
        "first_system": call.first_system,
        "winner": result.winner_system,
        "scores": json.dumps(scores),
        "explanation": verdict.explanation,
        "raw_text": result.raw_text,
        "parse_error": verdict.parse_error,
        "finish_reason": result.finish_reason,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "tokens_cached": result.tokens_cached,
        "cost": result.cost,  # None when the judge has no price in the table: unknown, not free
        "latency_ms": result.latency_ms,
        "attempts": result.attempts,
        "created_at": now_iso(),
    }


class _RunJournal:
    """A judge run's provider batches and answers in the workspace (`judge.batch.BatchJournal`);
    every change is its own transaction, so a crash loses nothing already recorded."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.run_id = run_id

    def open_batches(self) -> list[OpenBatch]:
        return [
            OpenBatch(
                local_id=row["id"],
                key=row["key"],
                batch_id=row["batch_id"],
                created_at=datetime.fromisoformat(row["created_at"]),
                requests=self.store.batches.judge_batch_requests(row["id"]),
            )
            for row in self.store.batches.open_judge_batches(self.run_id)
        ]

    def taken(self) -> set[tuple[int, str]]:
        return self.store.judging.verdict_keys(self.run_id) | self.store.batches.open_batch_keys(
            self.run_id
        )

    def known_batch_ids(self) -> set[str]:
        return self.store.batches.provider_batch_ids()

    def record_batch(self, key: str, requests: dict[str, tuple[int, str]]) -> int:
        with self.store.transaction():
            # Checked inside the write transaction: two processes sending the same run can
            # never both record (and pay for) the same call.
            if not self.taken().isdisjoint(requests.values()):
                raise Conflict(
                    f"another process is judging run {self.run_id} at the same time; "
                    "let it finish, then run this again"
                )
            return self.store.batches.insert_judge_batch(self.run_id, key, requests)

    def update_batch(self, local_id: int, status: BatchStatus) -> None:
        with self.store.transaction():
            self.store.batches.update_judge_batch(
                local_id,
                status.batch_id,
                status.state,
                status.provider_status,
                status.succeeded,
                status.errored,
                status.error,
            )

    def store_answers(self, results: list[CallResult]) -> None:
        with self.store.transaction():
            self.store.judging.insert_verdicts([_verdict_row(self.run_id, r) for r in results])

    def batch_collected(self, local_id: int, answered: int, failed: int, error: str | None) -> None:
        with self.store.transaction():
            self.store.batches.collect_judge_batch(local_id, answered, failed, error)


def start_batch_run(
    ctx: StudyContext,
    rubric_path: str | Path,
    judge: str,
    both_orders: bool = True,
    seed: int | None = None,
    wait: bool = True,
    on_progress: Callable[[BatchProgress], None] | None = None,
    provider_options: dict | None = None,
    on_start: Callable[[JudgePlan], None] | None = None,
    split: str = "all",
    reason: str = "",
) -> BatchRunOutcome:
    """Judge the study's pairs through the provider's batch API, at the batch price.

    The run's open batches are resumed first (after a crash, a reboot, days later); then every
    call that is neither stored nor in an open batch is sent, split within the provider's limits.
    With `wait`, the batches are polled every `REVIEW_APP_JUDGE_BATCH_POLL` seconds until every
    one has ended and its answers are stored; without, they are looked at once (run it again to
    collect). Requests that come back without an answer go out again on the next run.
    """
    store, settings = ctx.store, ctx.settings
    plan = plan_judge_run(
        store, settings, ctx.name, rubric_path, judge, both_orders, seed, batch=True, split=split
    )
    # The key is checked before the run is recorded, as for an interactive run.
    with _judge_errors():
        provider = get_provider(judge, **(provider_options or {}))
    run_id = _open_run(ctx, plan, "batched", reason)
    if on_start:
        on_start(plan)
    pairs = store.frames.pairs_frame(plan.study_id).to_dict("records")
    pairs = _in_split(store, ctx.study, pairs, split)
    calls = build_calls(pairs, both_orders=plan.params.both_orders, seed=plan.params.seed)
    journal = _RunJournal(store, run_id)
    return _drive_batches(
        store,
        settings,
        journal,
        provider,
        len(calls),
        lambda prices, options: run_batches(
            provider,
            plan.rubric,
            calls,
            journal,
            params=plan.params,
            prices=prices,
            options=options,
            wait=wait,
            poll_interval_s=settings.judge_batch_poll,
            on_progress=on_progress,
        ),
    )


def refresh_batch_run(
    store: Store, settings: Settings, run_id: int, provider_options: dict | None = None
) -> BatchRunOutcome:
    """Look once at the run's open batches and store the answers of those that ended; nothing
    is sent."""
    run = _StoredRun.load(store, run_id)
    provider = run.provider(provider_options)
    journal = _RunJournal(store, run_id)
    return _drive_batches(
        store,
        settings,
        journal,
        provider,
        len(run.calls),
        lambda prices, options: run_batches(
            provider,
            run.rubric,
            run.calls,
            journal,
            params=run.params,
            prices=prices,
            options=options,
            submit=False,
            wait=False,
        ),
    )


def cancel_batch_run(
    store: Store, settings: Settings, run_id: int, provider_options: dict | None = None
) -> BatchRunOutcome:
    """Ask the provider to cancel the run's open batches and store whatever answers they already
    hold (a cancelling batch may take minutes to end: look again to collect the rest). Calls left
    without an answer go out again when the run is started again."""
    run = _StoredRun.load(store, run_id)
    if not store.batches.open_judge_batches(run_id):
        raise InputError(f"run {run_id} has no batch still running at the provider")
    provider = run.provider(provider_options)
    journal = _RunJournal(store, run_id)

    async def cancel_then_look(prices: PriceTable, options: RunOptions) -> BatchProgress:
        await cancel_batches(provider, journal)
        return await run_batches(
            provider,
            run.rubric,
            run.calls,
            journal,
            params=run.params,
            prices=prices,
            options=options,
            submit=False,
            wait=False,
        )

    return _drive_batches(
        store, settings, journal, provider, len(run.calls), cancel_then_look, cancelling=True
    )


@dataclass(frozen=True)
class _StoredRun:
    """What a stored run's batches need: its judge, rubric, parameters and calls."""

    judge: str
    rubric: Rubric
    params: JudgeParams
    calls: list[JudgeCall]

    @classmethod
    def load(cls, store: Store, run_id: int) -> _StoredRun:
        run = store.judging.judge_run(run_id)
        if run is None:
            raise NotFound(f"no judge run with id {run_id}")
        provider_name, _ = split_spec(run["judge"])
        if run["source"] != "run" or provider_name not in BATCH_PROVIDERS or not run["rubric_id"]:
            raise InputError(f"run {run_id} ({run['label']}) has no provider batches")
        rubric_row = store.judging.rubric(run["rubric_id"])
        source = f"rubric {rubric_row['name']} v{rubric_row['version']}"
        with _judge_errors():
            rubric = parse_rubric(rubric_row["body"], source=source)
        params = JudgeParams(**json.loads(run["params"]))
        pairs = store.frames.pairs_frame(run["study_id"]).to_dict("records")
        calls = build_calls(pairs, both_orders=params.both_orders, seed=params.seed)
        return cls(run["judge"], rubric, params, calls)

    def provider(self, options: dict | None) -> BatchProvider:
        with _judge_errors():
            return get_provider(self.judge, **(options or {}))


def _drive_batches(
    store: Store,
    settings: Settings,
    journal: _RunJournal,
    provider: BatchProvider,
    n_calls: int,
    work: Callable[[PriceTable, RunOptions], Awaitable[BatchProgress]],
    cancelling: bool = False,
) -> BatchRunOutcome:
    """Run `work` (sending, polling, cancelling) on the provider, then record the run's status.
    A provider error leaves every recorded batch in place for the next run."""
    run_id = journal.run_id
    prices = _prices(settings)
    options = RunOptions(
        timeout_s=settings.judge_timeout,
        max_attempts=settings.judge_max_attempts,
        backoff_cap_s=settings.judge_backoff_cap,
        retry_after_cap_s=settings.judge_retry_after_cap,
    )

    async def go() -> BatchProgress:
        try:
            return await work(prices, options)
        finally:
            await provider.aclose()

    try:
        progress = asyncio.run(go())
    except FatalProviderError as exc:
        _settle_batch_run(store, run_id, n_calls, "failed")
        raise JudgeUnavailable(str(exc)) from exc
    except ProviderError as exc:
        _settle_batch_run(store, run_id, n_calls, "interrupted")
        raise JudgeUnavailable(
            f"{exc}; run it again to resume (a batch already sent is never sent again)"
        ) from exc
    except BaseException:
        _settle_batch_run(store, run_id, n_calls, "interrupted")
        raise
    if cancelling:
        status = _settle_batch_run(store, run_id, n_calls, "cancelled", "cancelling")
    else:
        status = _settle_batch_run(store, run_id, n_calls, "incomplete")
    return BatchRunOutcome(run_id, store.judging.judge_run(run_id)["label"], status, progress)


def _settle_batch_run(
    store: Store, run_id: int, n_calls: int, otherwise: str, open_status: str | None = None
) -> str:
    """Record a batch run's status: "batched" (or `open_status`) while the provider holds open
    batches of it, "complete" once every call is stored, else `otherwise`."""
    if store.batches.open_judge_batches(run_id):
        status, finished = open_status or "batched", False
    elif len(store.judging.verdict_keys(run_id)) >= n_calls:
        status, finished = "complete", True
    else:
        status, finished = otherwise, True
    with store.transaction():
        store.judging.mark_judge_run(run_id, status, finished=finished)
    return status


def judge_batches(store: Store, study: str) -> list[dict]:
    """The provider batches of the study's judge runs, newest first: state, counts, errors."""
    return store.batches.study_judge_batches(store.studies.require_study(study)["id"])


def judge_runs(store: Store, settings: Settings, study: str) -> list[dict]:
    """The study's judge runs with totals, newest first. `missing` is how many calls a re-run
    would send; `cost` is None when the judge's price is unknown."""
    study_row = store.studies.require_study(study)
    n_pairs = store.studies.study_counts(study_row["id"])["pairs"]
    prices = _prices(settings)
    runs = []
    for row in store.judging.judge_run_totals(study_row["id"]):
        params = json.loads(row["params"] or "{}")
        expected = None
        if row["source"] == "run":
            expected = n_pairs * (2 if params.get("both_orders", True) else 1)
        known_price = row["source"] != "run" or prices.price(row["judge"]) is not None
        runs.append(
            {
                "id": row["id"],
                "label": row["label"],
                "judge": row["judge"],
                "rubric": f"{row['rubric']} v{row['rubric_version']}" if row["rubric"] else "",
                "source": row["source"],
                "status": row["status"],
                "verdicts": row["n_verdicts"],
                "parsed": row["n_parsed"],
                "unparsed": row["n_unparsed"],
                "missing": (
                    None
                    if expected is None
                    else max(0, expected - row["n_verdicts"] - row["in_batches"])
                ),
                "in_batches": row["in_batches"],
                "open_batches": row["open_batches"],
                "tokens_in": row["tokens_in"],
                "tokens_out": row["tokens_out"],
                "tokens_cached": row["tokens_cached"],
                "cost": row["cost"] if known_price else None,
                "mean_latency_ms": row["mean_latency_ms"],
                "attempts": row["attempts"],
                "started_at": row["started_at"],
                "finished_at": row["finished_at"],
            }
        )
    return runs


def judge_run_failures(store: Store, run_id: int, limit: int = 100) -> list[dict]:
    """Unparsed verdicts of a run with their reason and the judge's raw answer."""
    if store.judging.judge_run(run_id) is None:
        raise NotFound(f"no judge run with id {run_id}")
    return store.judging.unparsed_verdicts(run_id, limit)
