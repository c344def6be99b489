"""A study's data, loaded once per data version and shared by every screen, the CLI and the report:
its pairs, votes and verdicts (computed baselines included, every judge labelled as the statistics
name it), the statistics derived from them, and, on first use, the texts behind them."""

from __future__ import annotations

import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from review_app import baselines, stats
from review_app.errors import InputError, NotFound
from review_app.settings import Settings
from review_app.store import Store

__all__ = [
    "COMPUTED_BASELINE",
    "JudgeInfo",
    "Ratings",
    "SPLITS",
    "StudyData",
    "judge_labels",
    "load",
    "run_labels",
]

COMPUTED_BASELINE = "baseline (computed)"
T = TypeVar("T")


@dataclass(frozen=True)
class JudgeInfo:
    """Where a judge's verdicts come from, for listing judges side by side."""

    label: str
    judge: str
    rubric: str
    source: str


@dataclass(frozen=True)
class Statistics:
    """Everything computed from a study's frames: calibration and win rates, overall and per
    category. The calibration screen, the gate, the results screen and the report all read these."""

    calibration: stats.Calibration
    win_rates: list[stats.WinRate]
    category_win_rates: dict[str, list[stats.WinRate]]


@dataclass(frozen=True)
class Ratings:
    """1-5 ratings, one row each: reviewers' criterion ratings (pair_id, system, criterion,
    score) and judges' pointwise scores (judge, pair_id, system, criterion, score)."""

    humans: pd.DataFrame
    judges: pd.DataFrame


@dataclass(frozen=True)
class Texts:
    """The frames with every text column (prompts, outputs, rationales, judge explanations)."""

    pairs: pd.DataFrame
    votes: pd.DataFrame
    verdicts: pd.DataFrame


class StudyData:
    """One study at one data version. The lean frames (only what the statistics read) are loaded
    at once; statistics, texts and the candidate's outputs on first use, then kept. Never
    modified after loading, so one instance serves every session."""

    def __init__(
        self,
        study: dict,
        version: str,
        comparisons: list[tuple[str, str]],
        judges: dict[str, JudgeInfo],
        run_labels: dict[int, str],
        pairs: pd.DataFrame,
        votes: pd.DataFrame,
        stored_verdicts: pd.DataFrame,
        settings: Settings,
        juries: dict[str, list[str]] | None = None,
        pair_filter: frozenset[int] | None = None,
        split: str = "all",
    ) -> None:
        self.study = study
        self.version = version
        self.juries = juries or {}
        self.split = split
        self._pair_filter = pair_filter
        self.comparisons = comparisons
        self.judges = judges
        self.judge_order = baselines.order_judges(judges)
        self.pairs = pairs
        self.votes = votes
        self._stored_verdicts = stored_verdicts
        self._verdicts: pd.DataFrame | None = None
        self._encoded: stats.Encoded | None = None
        self._run_labels = run_labels
        self._seed = settings.seed
        self._n_boot = settings.bootstrap_resamples
        self._margin = settings.ceiling_margin
        self._min_items = settings.gate_min_items
        # One lock per lazy part, so a page waiting for texts does not wait for the bootstrap.
        self._locks = {
            part: threading.Lock()
            for part in (
                "verdicts",
                "encoded",
                "statistics",
                "win_rates",
                "texts",
                "vote_texts",
                "outputs",
                "ratings",
                "memo",
            )
        }
        self._statistics: Statistics | None = None
        self._overall: stats.Analysis | None = None
        self._win_rates: tuple[list[stats.WinRate], dict[str, list[stats.WinRate]]] | None = None
        self._texts: Texts | None = None
        self._vote_texts: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self._all_text_pairs: pd.DataFrame | None = None
        self._candidate_outputs: list[dict] | None = None
        self._ratings: Ratings | None = None
        self._memo: dict[str, object] = {}
        self._memo_locks: dict[str, threading.Lock] = {}

    @property
    def verdicts(self) -> pd.DataFrame:
        """The lean verdicts of every judge: the stored ones, the computed verdicts of every
        baseline that has no stored run, then each jury's (computed on first use)."""
        with self._locks["verdicts"]:
            if self._verdicts is None:
                computed = baselines.computed_verdicts(self.pairs, choices=self._baseline_choices())
                self._verdicts = _with_juries(
                    _appended(self._stored_verdicts, computed), self.pairs, self.juries
                )
            return self._verdicts

    def _baseline_choices(self) -> baselines.Choices:
        """The choices of every baseline that has no stored run, over the study's pairs: made
        once for both the encoding and the rows of `verdicts`."""
        return self.memo(
            "baseline choices",
            lambda: baselines.computed_choices(
                self.pairs, _computed_baselines(self.judges), seed=self._seed
            ),
        )

    @property
    def encoded(self) -> stats.Encoded:
        """The pairs, votes and every judge's verdicts as the statistics read them (`stats.encode`),
        coded once for every figure, screen and check. The computed baselines are coded straight
        from the pairs: their rows (`verdicts`) are built only for a screen that shows them."""
        with self._locks["encoded"]:
            if self._encoded is None:
                if self.juries:
                    # A jury is combined from its members' rows, baselines included.
                    verdicts, computed = self.verdicts, []
                else:
                    verdicts = self._stored_verdicts
                    computed = baselines.computed_codes(
                        self.pairs, choices=self._baseline_choices()
                    )
                self._encoded = stats.encode(
                    self.pairs, self.votes, verdicts, self.judge_order, computed
                )
            return self._encoded

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def n_boot(self) -> int:
        return self._n_boot

    @property
    def candidate(self) -> str | None:
        """The system the study decides on (named when the study was created, pinned by the
        lock)."""
        return self.study.get("candidate")

    @property
    def real_judges(self) -> list[str]:
        """The judges that are not baselines, in table order."""
        return [j for j in self.judge_order if not baselines.is_baseline(j)]

    @property
    def real_verdicts(self) -> pd.DataFrame:
        """The lean verdicts of real judges only (baselines say nothing about quality)."""
        # Computed baselines are baselines: the stored verdicts hold every real judge's (a jury
        # is combined from every verdict, so with juries the whole set is needed).
        verdicts = self.verdicts if self.juries else self._stored_verdicts
        judges = verdicts["judge"].astype(str)
        named = [j for j in judges.unique() if baselines.is_baseline(j)]
        return verdicts[~judges.isin(named)].reset_index(drop=True)

    @property
    def statistics(self) -> Statistics:
        with self._locks["statistics"]:
            if self._statistics is None:
                options = self._figure_options()
                if self._overall is not None:
                    # The gate's figures are in: only each category's calibration is left.
                    by_category = stats.category_analyses_of(self.encoded, **options)
                    calibration = stats.Calibration(self._overall, by_category)
                else:
                    with self._locks["win_rates"]:
                        if self._win_rates is None:
                            # Together: the study is split by category once for all three.
                            calibration, *win_rates = stats.study_figures_of(
                                self.encoded, self.comparisons, **options
                            )
                            self._win_rates = tuple(win_rates)
                        else:
                            calibration = stats.calibrate_of(self.encoded, **options)
                    self._overall = calibration.overall
                self._statistics = Statistics(calibration, *self._win_rates)
            return self._statistics

    @property
    def overall(self) -> stats.Analysis:
        """The study's calibration over all its comparisons (part of `statistics`). With the
        win rates it is all the gate, its report and the results read: computed before
        `statistics`, it leaves out each category's calibration, which only the calibration
        screen and `stats` show (the same figures either way, on the same resamples)."""
        with self._locks["statistics"]:
            if self._overall is None:
                options = self._figure_options()
                with self._locks["win_rates"]:
                    if self._win_rates is None:
                        overall, *win_rates = stats.gate_figures_of(
                            self.encoded, self.comparisons, **options
                        )
                        self._win_rates = tuple(win_rates)
                    else:
                        overall = stats.analysis_of(self.encoded, **options)
                self._overall = overall
            return self._overall

    def _figure_options(self) -> dict:
        return {
            "seed": self._seed,
            "n_boot": self._n_boot,
            "margin": self._margin,
            "min_items": self._min_items,
        }

    @property
    def win_rates(self) -> tuple[list[stats.WinRate], dict[str, list[stats.WinRate]]]:
        """The win rates overall and per category (part of `statistics`; on their own for the
        screens that need only them, without the calibration's cost)."""
        with self._locks["win_rates"]:
            if self._win_rates is None:
                self._win_rates = stats.win_rates_of(
                    self.encoded, self.comparisons, seed=self._seed, n_boot=self._n_boot
                )
            return self._win_rates

    def texts(self, store: Store) -> Texts:
        """The frames with texts, labelled like the lean ones (loaded from `store` once)."""
        with self._locks["texts"]:
            if self._texts is None:
                pairs, votes = self.vote_texts(store)
                verdicts = _labelled(
                    store.frames.verdicts_frame(self.study["id"], texts=True),
                    self._run_labels,
                    self._all_text_pairs,
                    self.judges,
                    self._seed,
                    self.juries,
                )
                (verdicts,) = _restricted(self._pair_filter, verdicts)
                self._all_text_pairs = None  # needed only here
                self._texts = Texts(pairs, votes, verdicts)
            return self._texts

    def vote_texts(self, store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The pairs and votes of `texts` without the verdicts (loaded from `store` once): the
        judges' answers are the largest texts, and screens that show none need not wait for
        them."""
        with self._locks["vote_texts"]:
            if self._vote_texts is None:
                study_id = self.study["id"]
                pairs = store.frames.pairs_frame(study_id, texts=True)
                votes = store.frames.votes_frame(study_id, texts=True)
                # Computed verdicts are labelled over every pair, then restricted (`texts`).
                self._all_text_pairs = pairs
                self._vote_texts = _restricted(self._pair_filter, pairs, votes)
            return self._vote_texts

    def ratings(self, store: Store) -> Ratings:
        """Criterion ratings of the counted votes and judges' pointwise scores, one row per
        rating, judges named by their run's label (loaded from `store` once)."""
        with self._locks["ratings"]:
            if self._ratings is None:
                study_id = self.study["id"]
                votes = store.frames.criteria_frame(study_id)
                votes = votes[votes["vote_id"].isin(self.votes["vote_id"])]
                (verdicts,) = _restricted(self._pair_filter, store.frames.scores_frame(study_id))
                humans = _long_ratings(votes["pair_id"], votes["criteria"], system_first=False)
                judges = _long_ratings(verdicts["pair_id"], verdicts["scores"], system_first=True)
                # Categorical: a few names over many rows (strings would be converted one by one).
                labels = pd.Categorical(verdicts["run_id"].map(self._run_labels).to_numpy(object))
                judges.insert(0, "judge", labels[judges.pop("row").to_numpy()])
                humans = humans.drop(columns="row")
                self._ratings = Ratings(humans, judges.dropna(subset=["judge"]))
            return self._ratings

    def memo(self, name: str, compute: Callable[[], T]) -> T:
        """`compute()` once per study data version, under `name` (for derived figures a screen
        would otherwise recompute on every rerun)."""
        with self._locks["memo"]:
            lock = self._memo_locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._memo:
                self._memo[name] = compute()
            return self._memo[name]

    def candidate_outputs(self, store: Store) -> list[dict]:
        """Every output of the candidate system in the eval set: output_id and item_key, by
        item key."""
        with self._locks["outputs"]:
            if self._candidate_outputs is None:
                self._candidate_outputs = (
                    store.catalog.output_keys_of_system(self.study["eval_set_id"], self.candidate)
                    if self.candidate
                    else []
                )
            return self._candidate_outputs


def _long_ratings(pair_ids: pd.Series, texts: pd.Series, system_first: bool) -> pd.DataFrame:
    """Nested JSON ratings, one text per row, as one row per rating: row (the text's position),
    pair_id, system, criterion, score. Votes nest {criterion: {system: score}}, verdicts
    {system: {criterion: score}}; anything that is not a number is left out. Ratings repeat a
    few shapes and values, so each distinct text is parsed once."""
    codes, distinct = pd.factorize(texts.astype(object))
    names: dict[str, int] = {}
    flat_system: list[int] = []
    flat_criterion: list[int] = []
    flat_score: list[float] = []
    lengths = np.zeros(len(distinct), dtype=np.int64)
    for index, text in enumerate(distinct):
        try:
            nested = json.loads(text)
        except (TypeError, ValueError):
            continue
        if not isinstance(nested, dict):
            continue
        for outer, inner in nested.items():
            if not isinstance(inner, dict):
                continue
            for key, score in inner.items():
                if isinstance(score, (int, float)) and not isinstance(score, bool):
                    system, criterion = (outer, key) if system_first else (key, outer)
                    flat_system.append(names.setdefault(system, len(names)))
                    flat_criterion.append(names.setdefault(criterion, len(names)))
                    flat_score.append(float(score))
                    lengths[index] += 1
    # Expand: every row gets the entries of its distinct text.
    known = codes >= 0
    row_lengths = np.where(known, lengths[np.maximum(codes, 0)], 0)
    rows = np.repeat(np.arange(len(codes)), row_lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    first_of_row = np.repeat(np.cumsum(row_lengths) - row_lengths, row_lengths)
    entry = starts[codes[rows]] + np.arange(len(rows)) - first_of_row
    labels = np.array(list(names), dtype=object)
    return pd.DataFrame(
        {
            "row": rows,
            "pair_id": pair_ids.to_numpy()[rows],
            "system": pd.Categorical.from_codes(
                np.asarray(flat_system, dtype=np.int64)[entry], categories=labels
            )
            if len(labels)
            else pd.Categorical([]),
            "criterion": pd.Categorical.from_codes(
                np.asarray(flat_criterion, dtype=np.int64)[entry], categories=labels
            )
            if len(labels)
            else pd.Categorical([]),
            "score": np.asarray(flat_score, dtype=np.float64)[entry],
        }
    )


def _study_judges(store: Store, study_id: int) -> tuple[dict[int, str], dict[str, JudgeInfo]]:
    """Unique labels of the study's runs that hold verdicts (a label shared by several runs gets
    "#<run id>"), and every judge's origin, including the baselines that have no stored run."""
    runs = [r for r in store.judging.calibration_runs(study_id) if r["n_verdicts"]]
    label_counts = Counter(r["label"] for r in runs)
    labels = {
        r["run_id"]: r["label"] if label_counts[r["label"]] == 1 else f"{r['label']} #{r['run_id']}"
        for r in runs
    }
    infos = {}
    for run in runs:
        rubric = f"{run['rubric_name']} v{run['rubric_version']}" if run["rubric_name"] else ""
        label = labels[run["run_id"]]
        infos[label] = JudgeInfo(label, run["judge"], rubric, run["source"])
    stored = {info.judge for info in infos.values()}
    for name in baselines.BASELINES:
        label = baselines.label(name)
        if label not in stored:
            infos[label] = JudgeInfo(label, label, "", COMPUTED_BASELINE)
    return labels, infos


def _labelled(
    verdicts: pd.DataFrame,
    run_labels: dict[int, str],
    pairs: pd.DataFrame,
    judges: dict[str, JudgeInfo],
    seed: int,
    juries: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Stored verdicts named by their run's label, followed by the computed verdicts of every
    baseline that has no stored run, then each jury's verdicts (combined from its members')."""
    verdicts = _with_computed(_named(verdicts, run_labels), pairs, judges, seed)
    return _with_juries(verdicts, pairs, juries or {})


def _with_juries(
    verdicts: pd.DataFrame, pairs: pd.DataFrame, juries: dict[str, list[str]]
) -> pd.DataFrame:
    """The verdicts followed by each jury's, combined from its members' among them."""
    frames = [verdicts]
    for label, members in juries.items():
        jury = stats.jury_verdicts(pairs, verdicts, members, label)
        if len(jury):
            frames.append(jury[list(verdicts.columns)])
    if len(frames) == 1:
        return verdicts
    return pd.concat(frames, ignore_index=True)


def _restricted(pair_ids: frozenset[int] | None, *frames: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """The frames' rows whose pair is in `pair_ids` (all of them when None)."""
    if pair_ids is None:
        return frames
    ids = list(pair_ids)
    return tuple(f[f["pair_id"].isin(ids)].reset_index(drop=True) for f in frames)


def _named(verdicts: pd.DataFrame, run_labels: dict[int, str]) -> pd.DataFrame:
    """Stored verdicts named by their run's label."""
    return verdicts.assign(judge=verdicts["run_id"].map(run_labels))


def _computed_baselines(judges: dict[str, JudgeInfo]) -> list[str]:
    """The baselines (by name) whose verdicts are computed: those with no stored run."""
    return [
        name
        for name in baselines.BASELINES
        if judges.get(baselines.label(name), JudgeInfo("", "", "", "")).source == COMPUTED_BASELINE
    ]


def _with_computed(
    verdicts: pd.DataFrame, pairs: pd.DataFrame, judges: dict[str, JudgeInfo], seed: int
) -> pd.DataFrame:
    """Named stored verdicts followed by the computed verdicts of every baseline that has no
    stored run."""
    computed = baselines.computed_verdicts(pairs, _computed_baselines(judges), seed=seed)
    return _appended(verdicts, computed)


def _appended(verdicts: pd.DataFrame, computed: pd.DataFrame) -> pd.DataFrame:
    """Named stored verdicts followed by computed ones (in the stored frame's columns)."""
    computed = computed[list(verdicts.columns)]
    if not len(computed):
        return verdicts
    if not len(verdicts):
        return computed.reset_index(drop=True)
    return pd.concat([verdicts, computed], ignore_index=True)


# (workspace, study, data version, settings) -> StudyData. Screens rerun on every click;
# what they show only changes with the data. Each entry holds a study's lean frames; room for
# the studies the Results trend reads together (every locked study of an eval set) and their
# dev/test splits, so they do not evict each other on every render.
_CACHE: OrderedDict[tuple, StudyData] = OrderedDict()
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


SPLITS = ("all", "dev", "test")


def load(store: Store, study: dict, settings: Settings, split: str = "all") -> StudyData:
    """The study's data at its current version: from the cache when nothing changed since it was
    last read (one query to learn the version), else read from the store. With `split` "dev" or
    "test", only the comparisons of that part of the study's split (NotFound without one)."""
    if split not in SPLITS:
        raise InputError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    version = store.frames.calibration_data_version(study["id"])
    # The study's own row is part of the key: naming another candidate changes no data.
    key = (store.identity, tuple(sorted(study.items())), version, settings, split)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    pair_filter = None
    if split != "all":
        parts = store.calibration.split_parts(study["id"])
        if not parts:
            raise NotFound(
                f"study {study['name']} has no dev/test split yet: make one with "
                f"`review-app calibrate split --study {study['name']}`"
            )
        pair_filter = frozenset(p for p, part in parts.items() if part == split)
    run_labels, judges = _study_judges(store, study["id"])
    juries = {}
    for jury in store.calibration.juries(study["id"]):
        label = stats.JURY_PREFIX + jury["name"]
        juries[label] = jury["members"]
        judges[label] = JudgeInfo(label, label, "", f"jury of {', '.join(jury['members'])}")
    pairs = store.frames.pairs_frame(study["id"], texts=False)
    votes = store.frames.votes_frame(study["id"], texts=False)
    stored = _named(store.frames.verdicts_frame(study["id"], texts=False), run_labels)
    pairs, votes, stored = _restricted(pair_filter, pairs, votes, stored)
    data = StudyData(
        study=study,
        version=version,
        comparisons=store.studies.comparisons(study["id"]),
        judges=judges,
        run_labels=run_labels,
        pairs=pairs,
        votes=votes,
        stored_verdicts=stored,
        settings=settings,
        juries=juries,
        pair_filter=pair_filter,
        split=split,
    )
    with _CACHE_LOCK:
        _CACHE[key] = data
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return data


def run_labels(store: Store, study_id: int) -> dict[int, str]:
    """run id -> the label the statistics give the run's verdicts."""
    return _study_judges(store, study_id)[0]


def judge_labels(store: Store, study: str, settings: Settings | None = None) -> list[str]:
    """Every judge of a study as the statistics name it: runs first, then the baselines."""
    settings = settings or Settings.from_env()
    return load(store, store.studies.require_study(study), settings).judge_order
