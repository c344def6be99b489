"""The gate's decision on a study: its inputs (statistics, final review, graders in force), how
much of the locked plan is in, the one evaluation every outcome screen shows (the Gate and
Results screens, the scorecard, the report), the regression table it decides, and the looks it
records: after the lock and before the planned sample is in, every evaluation shown to someone
is an interim look on the record (audit log), in their name."""

from __future__ import annotations

import json
import random

import numpy as np

from review_app import baselines, gate, ppi, sequential, stats
from review_app.errors import Forbidden

# The scorecard reads the gate's decision too: both import the other module, not its names.
from review_app.services import audit, grading, scorecard
from review_app.services.context import StudyContext
from review_app.services.plans import FINAL_REVIEW_TOP, final_review_size
from review_app.services.study_data import StudyData, run_labels

__all__ = [
    "LOOK",
    "evaluate_gate",
    "final_review_choice",
    "final_review_marks",
    "gate_inputs",
    "interim_looks",
    "judge_pins",
    "locked_inputs",
    "plan_progress",
    "ppi_win_rates",
    "prediction_powered",
    "regression_table",
    "sequential_look",
]

# The audit action of a look at outcomes before the planned sample is in.
LOOK = "interim look"


def _locked_data(ctx: StudyContext) -> StudyData:
    """The study's data; OutcomesHidden until its thresholds are locked."""
    ctx.lock.require_visible()
    return ctx.data()


def _review_size(ctx: StudyContext) -> int:
    """The final-review sample: as the lock planned it, else as the study plans it now."""
    planned = ctx.lock.plan or {}
    if "final_review" in planned:
        return planned["final_review"]
    return final_review_size(ctx.store, ctx.study) if ctx.candidate else 0


def final_review_choice(ctx: StudyContext) -> tuple[list[dict], set[int]]:
    """The final-review sample in review order (the `FINAL_REVIEW_TOP` outputs the real judges
    preferred, then a seeded random sample of the rest) and the ids of those top ones, drawn
    once per data version."""
    data = ctx.data()
    size = _review_size(ctx)

    def choose() -> tuple[list[dict], set[int]]:
        chosen, top_ids = _final_review_choice(
            data, data.candidate_outputs(ctx.store), size, FINAL_REVIEW_TOP, ctx.settings.seed
        )
        # Chosen by id and item: only the sample's texts are read.
        texts = ctx.store.catalog.outputs_with_texts(o["output_id"] for o in chosen)
        return [texts[o["output_id"]] for o in chosen], top_ids

    return data.memo(f"final review {size} {FINAL_REVIEW_TOP}", choose)


def _final_review_choice(
    data: StudyData, outputs: list[dict], size: int, top: int, seed: int
) -> tuple[list[dict], set[int]]:
    scores = gate.judge_preference(data.pairs, data.real_verdicts, data.candidate)
    ranked = sorted(
        (o for o in outputs if o["item_key"] in scores),
        key=lambda o: (-scores[o["item_key"]], o["item_key"]),
    )
    chosen = ranked[: min(top, size)]
    top_ids = {o["output_id"] for o in chosen}
    rest = [o for o in outputs if o["output_id"] not in top_ids]
    random.Random(f"{seed}:{data.study['name']}").shuffle(rest)
    chosen += rest[: max(0, size - len(chosen))]
    return chosen, top_ids


def final_review_marks(ctx: StudyContext) -> list[dict]:
    """The latest final-review mark of each output, read once per context."""
    return ctx.memo("final review marks", lambda: ctx.store.gate.final_reviews(ctx.id))


def gate_inputs(ctx: StudyContext, data: StudyData) -> gate.GateInputs:
    """The study's calibration over all its comparisons, its win rates (also length-controlled)
    and its final review (marks on outputs of the sample only)."""
    # The calibration first: with the win rates still to compute, both come from one product.
    calibration = data.overall
    win_rates, category_win_rates = data.win_rates
    sample_ids = {o["output_id"] for o in final_review_choice(ctx)[0]}
    marks = [m for m in final_review_marks(ctx) if m["output_id"] in sample_ids]
    final = {
        "n": len(marks),
        "acceptable": sum(1 for m in marks if m["acceptable"]),
        "sample_size": len(sample_ids),
    }
    return gate.GateInputs(
        calibration,
        win_rates,
        category_win_rates,
        final,
        graders=grading.results_in_force(ctx),
        candidate=data.candidate,
        lc_win_rates=scorecard.length_controlled_win_rates(data),
        ppi_win_rate=_ppi_lookup(ctx, data, "win"),
        ppi_lc_win_rate=_ppi_lookup(ctx, data, "lc"),
    )


def judge_pins(ctx: StudyContext, judges: list[str]) -> dict[str, dict]:
    """What pins each named judge: the rubric hashes and ids of the runs whose verdicts the
    statistics give its label, and how many verdicts they hold (a judge run or an import after
    the lock changes them)."""
    labels = run_labels(ctx.store, ctx.id)
    runs = ctx.store.judging.calibration_runs(ctx.id)
    pins = {}
    for judge in judges:
        mine = [r for r in runs if labels.get(r["run_id"]) == judge]
        pins[judge] = {
            "rubric_hashes": sorted({r["rubric_hash"] or "" for r in mine}),
            "runs": [r["run_id"] for r in mine],
            # Verdicts are append-only: their count says whether any were added since.
            "verdicts": sum(r["n_verdicts"] for r in mine),
        }
    return pins


def _ppi_frames(ctx: StudyContext, data: StudyData, judge: str):
    """The pairs (with `human`: in the human subset and not in the dev split, the votes that may
    correct the judge), the votes, and the judge's combined verdicts, once per data version."""

    def frames():
        dev = {
            pid for pid, part in ctx.store.calibration.split_parts(ctx.id).items() if part == "dev"
        }
        pairs = data.pairs.copy()
        human = pairs["human"].to_numpy(bool) if "human" in pairs else np.ones(len(pairs), bool)
        pairs["human"] = human & ~pairs["pair_id"].isin(dev).to_numpy()
        # A real judge's rows are all in `real_verdicts`: the computed baselines' rows (every
        # pair, four times over) are built only when the judge is a baseline.
        source = data.verdicts if baselines.is_baseline(judge) else data.real_verdicts
        verdicts = source[source["judge"].astype(str) == judge]
        return pairs, data.votes, stats.combine_verdicts(data.pairs, verdicts)

    return data.memo(f"ppi frames {judge}", frames)


def _ppi_unavailable(ctx: StudyContext, data: StudyData, judge: str) -> str | None:
    """Why `judge` cannot sharpen this study's human votes, or None when it can: it must have
    verdicts here and, once the thresholds are locked, be the judge the lock pinned."""
    if judge not in data.judges:
        return f"no judge named {judge!r} in study {ctx.name!r}"
    if ctx.lock.row is not None:
        pinned = (ctx.lock.plan or {}).get("ppi_judges", {})
        if judge not in pinned:
            return f"judge {judge!r} was not pinned by the lock"
        current = ctx.memo(f"judge pin {judge}", lambda: judge_pins(ctx, [judge])[judge])
        if current != pinned[judge]:
            return f"judge {judge!r} changed after the lock (another run or rubric)"
    return None


def _rates(
    ctx: StudyContext, data: StudyData, judge: str, kind: str, category: str | None = None
) -> list[ppi.PredictionPowered] | str:
    """The prediction-powered estimates of `kind` ("win": win rates, in `category` when given;
    "lc": length-controlled win rates) of every comparison with `judge`, once per data
    version, or why there are none. Checks no pin: callers that decide check
    `_ppi_unavailable` first."""
    pairs, votes, combined = _ppi_frames(ctx, data, judge)
    if combined.empty:
        return f"judge {judge!r} has no verdicts in study {ctx.name!r}"
    if kind == "lc":
        return data.memo(
            f"ppi lc {judge}",
            lambda: ppi.lc_win_rates(pairs, votes, combined, judge, data.comparisons),
        )
    return data.memo(
        f"ppi win rates {judge} {category}",
        lambda: ppi.win_rates(pairs, votes, combined, judge, data.comparisons, category),
    )


def ppi_win_rates(
    ctx: StudyContext, data: StudyData, judge: str, category: str | None = None
) -> list[ppi.PredictionPowered] | str:
    """The prediction-powered win rate of each of the study's comparisons with `judge` (in
    `category` when given), or why there is none (`_ppi_unavailable`)."""
    return _ppi_unavailable(ctx, data, judge) or _rates(ctx, data, judge, "win", category)


def prediction_powered(ctx: StudyContext, data: StudyData) -> list[dict]:
    """Each comparison's human win rate beside its prediction-powered estimate with each real
    judge (the candidate first), for the Results and Gate screens and the report. Shown for
    every judge; a threshold decides on one only when it names that judge, which the lock
    pins (`pinned`). Reads outcomes: after the lock only."""
    ctx.lock.require_visible()
    inputs = locked_inputs(ctx)
    pinned = (ctx.lock.plan or {}).get("ppi_judges", {})
    rows = []
    for judge in data.real_judges:
        if judge.startswith(stats.JURY_PREFIX):
            continue
        rates = _rates(ctx, data, judge, "win")
        if isinstance(rates, str):
            continue
        for w in rates:
            w = (gate.orient(w, data.candidate) if data.candidate else None) or w
            human = inputs.win_rate(w.system_a, w.system_b, stats.HUMANS)
            rows.append(
                {
                    "system_a": w.system_a,
                    "system_b": w.system_b,
                    "judge": judge,
                    "pinned": judge in pinned,
                    "humans": {
                        "value": None if human is None else human.value,
                        "ci": list(human.ci) if human is not None and human.ci else None,
                        "n_items": 0 if human is None else human.n_items,
                    },
                    "ppi": {
                        "value": w.value,
                        "ci": list(w.ci) if w.ci else None,
                        "reason": w.reason,
                        **w.method(),
                    },
                }
            )
    return rows


def _ppi_lookup(ctx: StudyContext, data: StudyData, kind: str) -> gate.PPILookup:
    """The gate's lookup of a prediction-powered estimate of `kind` (see `_rates`) with a
    threshold's judge, oriented as the threshold names its systems."""

    def lookup(judge: str, a: str, b: str, category: str | None):
        rates = _ppi_unavailable(ctx, data, judge) or _rates(ctx, data, judge, kind, category)
        if isinstance(rates, str):
            return rates
        for w in rates:
            if (oriented := gate.orient(w, a, b)) is not None:
                return oriented
        return f"no comparison of {a} and {b} judged by {judge!r}"

    return lookup


def locked_inputs(ctx: StudyContext) -> gate.GateInputs:
    """`gate_inputs` of the locked study, computed once per context."""
    return ctx.memo("gate inputs", lambda: gate_inputs(ctx, _locked_data(ctx)))


def plan_progress(ctx: StudyContext) -> gate.Plan | None:
    """The lock's planned sample and how much of it is in (None before the lock, or for a lock
    made before plans were recorded). The final review counts only when a threshold reads it:
    the gate waits for the data its thresholds decide on (the sign-off waits for the final
    review in any case, `signoff.approval_blockers`)."""
    planned = ctx.lock.plan
    if not planned:
        return None
    reviewed = any(t.metric == gate.FINAL_REVIEW_METRIC for t in ctx.thresholds)

    def progress() -> gate.Plan:
        votes = ctx.data().votes
        k = planned["votes_per_comparison"]
        per_pair = votes.groupby("pair_id").size() if len(votes) else None
        sample_ids = {o["output_id"] for o in final_review_choice(ctx)[0]}
        marked = sum(1 for m in final_review_marks(ctx) if m["output_id"] in sample_ids)
        return gate.Plan(
            comparisons=planned["comparisons"],
            votes_per_comparison=k,
            final_review=planned["final_review"] if reviewed else 0,
            comparisons_reached=int((per_pair >= k).sum()) if per_pair is not None else 0,
            final_review_reached=marked,
            power=planned.get("power"),
        )

    return ctx.memo("plan progress", progress)


def _fraction(progress: dict) -> float:
    """The information fraction of a plan's progress: comparisons with their votes over those
    planned (1 once all are in)."""
    planned = progress.get("comparisons") or 0
    return 1.0 if planned <= 0 else min(1.0, (progress.get("reached") or 0) / planned)


def sequential_look(ctx: StudyContext) -> sequential.Look | None:
    """This evaluation as a look of the lock's sequential design: its information fraction and
    boundary after the looks already recorded (None for a lock without a sequential design)."""
    design = (ctx.lock.plan or {}).get("sequential")
    plan = plan_progress(ctx)
    if not design or plan is None:
        return None

    def look() -> sequential.Look:
        history = [_fraction(entry["plan"] or {}) for entry in interim_looks(ctx)]
        now = 1.0 if plan.complete else _fraction(plan.to_json())
        return sequential.look_at(history, now, design.get("alpha", sequential.ALPHA))

    return ctx.memo("sequential look", look)


def _until(ctx: StudyContext) -> str | None:
    plan = plan_progress(ctx)
    return plan.until() if plan is not None else None


def regression_table(ctx: StudyContext, data: StudyData, inputs: gate.GateInputs) -> list[dict]:
    """The study's one regression table (`gate.regression_table`): the rows the Results screen,
    the scorecard and the report show, read from the win rates in `inputs` (the gate's; a
    source's win rates do not depend on which other sources were computed beside it, since every
    source of a comparison is resampled over the same items), decided by the study's regression
    thresholds at the lock's minimum, the candidate first; `interim` until the plan is in."""
    return gate.regression_table(
        inputs, data.comparisons, ctx.thresholds, ctx.min_items, _until(ctx), sequential_look(ctx)
    )


def evaluate_gate(ctx: StudyContext) -> gate.GateDecision:
    """Every threshold decided (pass / fail / inconclusive, or interim until the planned sample
    is in) and the gate's one result, once per context: the Gate screen's evaluation and its
    report share it. Outcomes are for those who may look at them (Forbidden for others); an
    interim evaluation is a look, recorded in the name of the context's actor (Forbidden
    without one)."""

    def decide() -> gate.GateDecision:
        if ctx.actor is not None:
            ctx.require("look at outcomes")
        _locked_data(ctx)
        plan = plan_progress(ctx)
        if plan is not None and not plan.complete and ctx.actor is None:
            raise Forbidden(
                f"study {ctx.name!r} is interim ({plan.describe()}): every look at its "
                "outcomes before the planned sample is in is recorded in the name of who "
                "looks, so it needs a personal link or token"
            )
        look = sequential_look(ctx)
        decision = gate.decide_gate(ctx.thresholds, locked_inputs(ctx), ctx.min_items, plan, look)
        if decision.interim:
            _record_look(ctx, decision)
        return decision

    return ctx.memo("gate decision", decide)


def _figures(decision: gate.GateDecision) -> list[dict]:
    """What an interim look showed: each threshold's estimate and one-sided bounds so far."""
    return [
        {
            "threshold": r.threshold.describe(),
            "estimate": None if r.value is None else round(r.value, 6),
            "bounds": None if r.bounds is None else [round(b, 6) for b in r.bounds],
            "n": r.n,
        }
        for r in decision.results
    ]


def _record_look(ctx: StudyContext, decision: gate.GateDecision) -> None:
    """Record that the context's actor saw the gate's figures before the plan was in. A look
    that shows one person exactly what their previous look showed them adds nothing and is not
    recorded again."""
    actor = ctx.require("look at outcomes")
    figures = _figures(decision)
    progress = decision.plan.to_json()
    previous = next((e for e in reversed(interim_looks(ctx)) if e["actor"] == actor.name), None)
    if previous is not None and previous["figures"] == json.loads(json.dumps(figures)):
        return
    look = decision.look.to_json() if decision.look else None
    with ctx.store.transaction():
        audit.record(
            ctx.store,
            actor.name,
            LOOK,
            ctx.id,
            plan=progress,
            figures=figures,
            look=look,
            result=decision.result,
        )


def interim_looks(ctx: StudyContext) -> list[dict]:
    """Every recorded look before the plan was in, oldest first: when, who, the plan's progress
    and the figures shown."""
    looks = []
    for entry in ctx.store.audit.audit_entries(ctx.id):
        if entry["action"] != LOOK:
            continue
        detail = json.loads(entry["detail"])
        looks.append(
            {
                "at": entry["at"],
                "actor": entry["actor"],
                "plan": detail.get("plan"),
                "figures": detail.get("figures", []),
                "look": detail.get("look"),
                "result": detail.get("result"),
            }
        )
    return looks
