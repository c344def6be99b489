"""The scorecard: Bradley-Terry against independent fits, the length-controlled win rate on
simulated length-only preferences, criterion means, the regression verdicts the gate gives, the
blinding before the lock, and the preference export read back."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from review_app import cli, gate, ranking, report
from review_app.services import (
    data,
    grading,
    people,
    review,
    scorecard,
    studies,
    thresholds,
)
from review_app.services import decision as decisions
from tests.acting import acting, looking, person
from tests.conftest import ROOT, write
from tests.review_fixtures import STUDY, SYSTEM_X, SYSTEM_Y, SYSTEM_Z, make_study

# ---- Bradley-Terry ----

# A known tournament: four systems, every result written out, ties included.
TOURNAMENT = [
    # (system_a, system_b, wins of a, ties, wins of b)
    ("alpha", "bravo", 7, 2, 3),
    ("alpha", "charlie", 9, 1, 2),
    ("alpha", "delta", 5, 0, 6),
    ("bravo", "charlie", 6, 3, 4),
    ("bravo", "delta", 2, 2, 8),
    ("charlie", "delta", 3, 1, 7),
]


def _observations(tournament) -> pd.DataFrame:
    rows = []
    for a, b, wins, ties, losses in tournament:
        for score, count in ((1.0, wins), (0.5, ties), (0.0, losses)):
            rows += [(a, b, score)] * count
    obs = pd.DataFrame(rows, columns=["system_a", "system_b", "score"])
    return obs.assign(item=[f"item-{i}" for i in range(len(obs))])


def _sklearn_elo(obs: pd.DataFrame, systems: list[str]) -> np.ndarray:
    """Bradley-Terry as an unpenalised logistic regression on the pairwise design, a tie as one
    half-weighted win and one half-weighted loss; Elo scale, mean 1000."""
    index = {s: i for i, s in enumerate(systems)}
    x, y, w = [], [], []
    for row in obs.itertuples():
        design = np.zeros(len(systems))
        design[index[row.system_a]], design[index[row.system_b]] = 1.0, -1.0
        for label, weight in ((1, row.score), (0, 1 - row.score)):
            if weight > 0:
                x.append(design)
                y.append(label)
                w.append(weight)
    fit = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-10, max_iter=10_000)
    fit.fit(np.array(x), np.array(y), sample_weight=np.array(w))
    elo = 400 * fit.coef_[0] / np.log(10)
    return elo - elo.mean() + 1000


def test_bradley_terry_matches_an_independent_logistic_fit_with_ties():
    obs = _observations(TOURNAMENT)
    systems = ["alpha", "bravo", "charlie", "delta"]
    score = np.zeros((4, 4))
    games = np.zeros((4, 4))
    for a, b, wins, ties, losses in TOURNAMENT:
        i, j = systems.index(a), systems.index(b)
        score[i, j], score[j, i] = wins + ties / 2, losses + ties / 2
        games[i, j] = games[j, i] = wins + ties + losses
    ours = ranking.elo(ranking.fit_bradley_terry(score, games, prior_games=0.0))
    np.testing.assert_allclose(ours, _sklearn_elo(obs, systems), atol=0.05)
    assert ours.mean() == pytest.approx(1000)

    # The public function (its tiny prior included) stays within two points of the MLE.
    rated = {r.system: r for r in ranking.bradley_terry(obs, n_boot=200)}
    for s, system in enumerate(systems):
        assert rated[system].rating == pytest.approx(ours[s], abs=2.0)
        low, high = rated[system].ci
        assert low < rated[system].rating < high
    assert [r.system for r in ranking.bradley_terry(obs, n_boot=0)] == [
        "delta",
        "alpha",
        "bravo",
        "charlie",
    ]


def _mm_with_virtual_ties(score: np.ndarray, games: np.ndarray, prior: float) -> np.ndarray:
    """Hunter's MM algorithm for Bradley-Terry, on the data plus the same virtual ties."""
    k = len(score)
    off = 1 - np.eye(k)
    games = games + prior * off
    wins = (score + prior / 2 * off).sum(axis=1)
    p = np.ones(k)
    for _ in range(200_000):
        new = wins / (games / (p[:, None] + p[None, :])).sum(axis=1)
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - p) / p) < 1e-13:
            break
        p = new
    elo = 400 * np.log10(new)
    return elo - elo.mean() + 1000


def test_a_system_that_never_loses_gets_a_finite_rating_and_is_flagged():
    tournament = [
        ("champ", "mid", 6, 0, 0),
        ("champ", "low", 5, 0, 0),
        ("mid", "low", 4, 2, 3),
    ]
    obs = _observations(tournament)
    rated = {r.system: r for r in ranking.bradley_terry(obs, n_boot=300)}
    assert np.isfinite(rated["champ"].rating)
    assert rated["champ"].unbeaten and not rated["mid"].unbeaten and not rated["low"].unbeaten
    assert rated["champ"].rating > rated["mid"].rating > rated["low"].rating
    assert all(np.isfinite(rated["champ"].ci))

    systems = ["champ", "mid", "low"]
    score, games = np.zeros((3, 3)), np.zeros((3, 3))
    for a, b, wins, ties, losses in tournament:
        i, j = systems.index(a), systems.index(b)
        score[i, j], score[j, i] = wins + ties / 2, losses + ties / 2
        games[i, j] = games[j, i] = wins + ties + losses
    expected = _mm_with_virtual_ties(score, games, ranking.BT_PRIOR_GAMES)
    for s, system in enumerate(systems):
        assert rated[system].rating == pytest.approx(expected[s], abs=0.01)


def test_bradley_terry_intervals_cover_the_true_ratings_about_95_percent_of_the_time():
    """A simulation of the CI's error rate: tournaments drawn from known strengths."""
    rng = np.random.default_rng(7)
    theta = np.array([0.0, 0.4, 1.0])
    truth = ranking.elo(theta)
    systems = ["s0", "s1", "s2"]
    covered, total = 0, 0
    for trial in range(120):
        a = rng.integers(0, 3, 300)
        b = (a + rng.integers(1, 3, 300)) % 3
        p = 1 / (1 + np.exp(theta[b] - theta[a]))
        score = (rng.random(300) < p).astype(float)
        obs = pd.DataFrame(
            {
                "item": np.arange(300),
                "system_a": np.array(systems)[a],
                "system_b": np.array(systems)[b],
                "score": score,
            }
        )
        for r in ranking.bradley_terry(obs, seed=trial, n_boot=300):
            low, high = r.ci
            covered += low <= truth[systems.index(r.system)] <= high
            total += 1
    assert 0.88 <= covered / total <= 0.99


def test_the_order_a_comparison_is_written_in_does_not_change_a_rating():
    obs = _observations(TOURNAMENT)
    flipped = obs.copy()
    swap = np.arange(len(obs)) % 2 == 0
    flipped.loc[swap, ["system_a", "system_b"]] = obs.loc[swap, ["system_b", "system_a"]].values
    flipped.loc[swap, "score"] = 1 - obs.loc[swap, "score"]
    ours = {r.system: (r.rating, r.ci) for r in ranking.bradley_terry(obs, n_boot=200)}
    theirs = {r.system: (r.rating, r.ci) for r in ranking.bradley_terry(flipped, n_boot=200)}
    for system, (rating, ci) in ours.items():
        assert theirs[system][0] == pytest.approx(rating)
        assert theirs[system][1] == pytest.approx(ci)


# ---- the length-controlled win rate ----


def _length_only(
    n: int, mean_diff: float, quality: float, seed: int, ties: float = 0.1
) -> pd.DataFrame:
    """Comparisons where system a writes longer answers and the preference follows the length
    (through AlpacaEval's feature), plus `quality` on the logit scale; a share `ties` of ties."""
    rng = np.random.default_rng(seed)
    len_diff = rng.normal(mean_diff, 300, n)
    feature = np.tanh(len_diff / len_diff.std())
    p = 1 / (1 + np.exp(-(quality + 2.0 * feature)))
    u = rng.random(n)
    score = np.where(u < (1 - ties) * p, 1.0, np.where(u < (1 - ties) * p + ties, 0.5, 0.0))
    return pd.DataFrame({"item": np.arange(n), "score": score, "len_diff": len_diff})


def test_length_controlled_win_rate_is_about_half_when_length_alone_explains_preference():
    obs = _length_only(4000, mean_diff=250, quality=0.0, seed=1)
    raw = obs.score.mean()
    lc = ranking.length_controlled_win_rate(obs, n_boot=300)
    value, ci, n = lc.value, lc.ci, lc.n
    assert raw > 0.62  # the longer system wins most comparisons...
    assert value == pytest.approx(0.5, abs=0.03)  # ...but not at equal length
    assert ci[0] < 0.5 < ci[1]
    assert n == 4000


def test_length_controlled_win_rate_keeps_a_real_quality_difference():
    obs = _length_only(4000, mean_diff=250, quality=0.8, seed=2, ties=0.0)
    lc = ranking.length_controlled_win_rate(obs, n_boot=300)
    value, ci = lc.value, lc.ci
    expected = 1 / (1 + np.exp(-0.8))
    assert value == pytest.approx(expected, abs=0.04)
    assert ci[0] > 0.6


def test_without_a_length_difference_the_length_controlled_win_rate_is_the_raw_one():
    rng = np.random.default_rng(5)
    score = rng.choice([1.0, 0.5, 0.0], size=3000, p=[0.55, 0.1, 0.35])
    obs = pd.DataFrame({"item": np.arange(3000), "score": score, "len_diff": np.zeros(3000)})
    value = ranking.length_controlled_win_rate(obs, n_boot=50).value
    assert value == pytest.approx(score.mean(), abs=1e-3)


def test_length_controlled_intervals_rarely_exclude_one_half_without_a_quality_difference():
    """Error rate of "the preference is more than length": how often the CI leaves out 0.5."""
    excluded = 0
    for seed in range(60):
        obs = _length_only(600, mean_diff=250, quality=0.0, seed=100 + seed)
        low, high = ranking.length_controlled_win_rate(obs, seed=seed, n_boot=200).ci
        excluded += not low <= 0.5 <= high
    assert excluded / 60 <= 0.12


# ---- the scorecard of a study ----

# Each system's accuracy rating (1-5) by reviewer: hand-checkable means.
ACCURACY = {
    SYSTEM_X: {"ana": 5, "ben": 4},
    SYSTEM_Y: {"ana": 2, "ben": 2},
    SYSTEM_Z: {"ana": 3, "ben": 4},
}


@pytest.fixture
def rated_study(store, settings, tmp_path):
    """Twelve items, two comparisons (X vs Y, X vs Z), two reviewers each rating every pair:
    X always beats Y; against Z, ana prefers Z and ben X; accuracy ratings from ACCURACY."""
    study = make_study(store, tmp_path, n_items=12, criteria=["accuracy"])
    for name in ("ana", "ben"):
        people.add_reviewer(store, settings, name, "reviewer", STUDY, actor=person(store))
        rid = store.people.reviewer(name)["id"]
        while (task := review.next_pair(store, settings, rid, study["id"])) is not None:
            handed = store.review.assignment(task.assignment_id)
            left, right = handed["shown_left"], handed["shown_right"]
            winner = SYSTEM_Z if name == "ana" and SYSTEM_Z in (left, right) else SYSTEM_X
            choice = "A" if left == winner else "B"
            scores = {"A": ACCURACY[left][name], "B": ACCURACY[right][name]}
            review.record_vote(
                store, settings, rid, task.assignment_id, choice, criteria={"accuracy": scores}
            )
    return study


def _lock(store, settings, study=STUDY, **params):
    thresholds.add_threshold(
        acting(store, study, "ada"),
        gate.REGRESSION_METRIC,
        {"system_a": SYSTEM_X, "system_b": SYSTEM_Y, "source": "humans", **params},
        "<=",
        5.0,
    )
    thresholds.lock_thresholds(acting(store, study, "ada", settings=settings), "a small test study")


SHORT_GRADER = """name: short
checks:
  - name: short
    type: max_chars
    n: 12
"""


def test_the_scorecard_is_withheld_before_the_lock(store, settings, rated_study, tmp_path, capsys):
    grading.grade(acting(store, STUDY, "ada"), write(tmp_path / "short.yaml", SHORT_GRADER))
    card = scorecard.scorecard(looking(store, STUDY, settings))
    assert card["outcomes_visible"] is False
    assert "locked" in card["withheld"]
    # Grader pass rates are outcomes too: a bar set after seeing them could be tuned to them.
    for key in ("graders", "criteria", "win_rates", "ranking", "regression", "reference_share"):
        assert not card[key], key
    from review_app import report

    text = "\n".join(report.scorecard_markdown(card))
    assert "Bradley-Terry" not in text and "mean 1-5" not in text and "passed" not in text
    # The CLI prints the same withheld document, and the export of preferences is refused.
    assert cli.main(["scorecard", "--study", STUDY, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["outcomes_visible"] is False and printed["ranking"] == {}
    assert cli.main(["export", "preferences", "--study", STUDY, "--format", "jsonl"]) == 1
    assert "stay hidden until" in capsys.readouterr().err
    # Once locked, the scorecard carries the grader's pass rates, as the grader summary has them.
    _lock(store, settings)
    card = scorecard.scorecard(looking(store, STUDY, settings))
    expected = grading.grader_summary(looking(store, STUDY))["graders"]
    assert card["graders"] == expected and {g["system"] for g in expected} == set(card["systems"])
    text = "\n".join(report.scorecard_markdown(card))
    assert "| short (% passed) | graders |" in text


def test_the_scorecard_after_the_lock(store, settings, rated_study, capsys):
    _lock(store, settings)
    card = scorecard.scorecard(looking(store, STUDY, settings))
    assert card["outcomes_visible"] and card["graders"] == []
    assert card["systems"] == [SYSTEM_X, SYSTEM_Y, SYSTEM_Z]

    means = {(c["system"], c["category"]): c for c in card["criteria"] if c["source"] == "humans"}
    # X is rated in both of its comparisons by both reviewers: (5 + 4) / 2 over 48 ratings.
    assert means[(SYSTEM_X, None)]["mean"] == pytest.approx(4.5)
    assert means[(SYSTEM_X, None)]["n"] == 48
    assert means[(SYSTEM_Y, None)]["mean"] == pytest.approx(2.0)
    assert means[(SYSTEM_Z, "support")]["mean"] == pytest.approx(3.5)
    low, high = means[(SYSTEM_X, None)]["ci"]
    assert low <= 4.5 <= high

    [humans] = card["ranking"].values()
    assert [r["system"] for r in humans] == [SYSTEM_X, SYSTEM_Z, SYSTEM_Y]
    assert not any(r["unbeaten"] for r in humans)
    assert np.mean([r["rating"] for r in humans]) == pytest.approx(1000)

    rates = {(w["system_b"], w["source"]): w for w in card["win_rates"]}
    assert rates[(SYSTEM_Y, "humans")]["win_rate"] == 1.0
    # X's outputs are the longer ones throughout: length and quality cannot be told apart.
    assert rates[(SYSTEM_Y, "humans")]["lc_win_rate"] is None
    assert rates[(SYSTEM_Y, "humans")]["lc_reason"].startswith(ranking.NOT_ESTIMABLE)

    # The reference defaults to the best-rated other system; shares are of its means.
    assert card["reference"] == SYSTEM_Z
    [share] = card["reference_share"]
    assert share["share"] == pytest.approx(4.5 / 3.5)

    # The base comes from the regression threshold; the outcome is the gate's own, in its words.
    assert card["base"] == SYSTEM_Y
    [row] = [r for r in card["regression"] if r["source"] == "humans"]
    inputs = gate.GateInputs(*_statistics(store, settings))
    w = inputs.win_rate(SYSTEM_X, SYSTEM_Y, "humans", "support")
    locked = thresholds.study_thresholds(store, store.studies.require_study(STUDY))
    expected = gate.regression_verdict(w, "support", locked, settings.gate_min_items)
    assert {k: row[k] for k in ("outcome", "margin", "reason")} == expected
    # 12 comparisons are fewer than the 30 the lock asks of a suite: not decided yet.
    assert (row["outcome"], row["margin"], row["n"]) == ("inconclusive", 5.0, 12)
    assert row["change_points"] == pytest.approx(50.0)

    assert cli.main(["scorecard", "--study", STUDY]) == 0
    text = capsys.readouterr().out
    assert "| Bradley-Terry rating | humans |" in text
    assert "accuracy (mean 1-5) | humans | 4.50" in text
    assert cli.main(["scorecard", "--study", STUDY, "--reference", "nobody"]) == 1


def _statistics(store, settings):
    from review_app.services import study_data

    s = study_data.load(store, store.studies.require_study(STUDY), settings).statistics
    return s.calibration.overall, s.win_rates, s.category_win_rates


def test_a_clear_regression_reads_regression(store, settings, rated_study):
    """Y as the candidate loses every comparison to X: its suite fails the locked threshold."""
    settings = replace(settings, gate_min_items=10)
    studies.set_candidate(acting(store, STUDY, "test"), SYSTEM_Y)
    people.add_reviewer(store, settings, "ada", "admin", STUDY, actor=person(store))
    thresholds.add_threshold(
        acting(store, STUDY, "ada"),
        gate.REGRESSION_METRIC,
        {"system_a": SYSTEM_Y, "system_b": SYSTEM_X, "source": "humans"},
        "<=",
        5.0,
    )
    thresholds.lock_thresholds(acting(store, STUDY, "ada", settings=settings), "a small test study")
    card = scorecard.scorecard(looking(store, STUDY, settings))
    [row] = [r for r in card["regression"] if r["source"] == "humans"]
    assert (row["system_a"], row["system_b"], row["n"]) == (SYSTEM_Y, SYSTEM_X, 12)
    assert row["change_points"] == pytest.approx(-50.0)
    assert row["win_rate"] == 0.0
    assert row["outcome"] == "fail"


# ---- preference export ----


def test_preferences_export_round_trips(demo_store, settings, tmp_path):
    people.add_reviewer(demo_store, settings, "ada", "admin", "demo", actor=person(demo_store))
    thresholds.add_recommended_thresholds(acting(demo_store, "demo", "ada"))
    thresholds.lock_thresholds(
        acting(demo_store, "demo", "ada", settings=settings), "a small test study"
    )
    out = tmp_path / "prefs.jsonl"
    assert (
        cli.main(
            ["export", "preferences", "--study", "demo", "--format", "jsonl", "--output", str(out)]
        )
        == 0
    )
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert exported and set(exported[0]) == {
        "prompt",
        "chosen",
        "rejected",
        "item_id",
        "chosen_system",
        "rejected_system",
        "n_votes",
    }

    # The expected pairs, from the exported votes and pairs (an independent path).
    votes = list(data.export_rows(demo_store, "votes", "demo"))
    pairs = {
        (p["item_id"], p["system_x"], p["system_y"]): p
        for p in data.export_rows(demo_store, "pairs", "demo")
    }
    tally: dict[tuple, Counter] = {}
    for v in votes:
        key = (v["item_id"], *sorted((v["system_a"], v["system_b"])))
        tally.setdefault(key, Counter())[v["winner"]] += 1
    expected = {}
    for key, counts in tally.items():
        (top, n_top), *rest = counts.most_common()
        if rest and rest[0][1] == n_top or top in ("tie", "both_bad"):
            continue
        pair = pairs[key]
        loser = pair["system_y"] if top == pair["system_x"] else pair["system_x"]
        output = {pair["system_x"]: pair["output_x"], pair["system_y"]: pair["output_y"]}
        expected[(key[0], top, loser)] = {
            "prompt": pair["prompt"],
            "chosen": output[top],
            "rejected": output[loser],
            "item_id": key[0],
            "chosen_system": top,
            "rejected_system": loser,
            "n_votes": sum(counts.values()),
        }
    got = {(r["item_id"], r["chosen_system"], r["rejected_system"]): r for r in exported}
    assert got == expected

    judged = list(
        data.export_rows(
            demo_store, "preferences", "demo", source="example-llm-judge", settings=settings
        )
    )
    assert judged and all(r["n_votes"] in (1, 2) for r in judged)
    with pytest.raises(Exception, match="choose one of humans"):
        list(data.export_rows(demo_store, "preferences", "demo", source="nobody"))
    assert cli.main(["export", "votes", "--study", "demo", "--source", "humans"]) == 1


# ---- the screen ----


def _open_scorecard(token: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(
        str(ROOT / "review_app" / "app_pages" / "scorecard.py"), default_timeout=60
    )
    at.query_params["token"] = token
    return at.run()


def test_the_scorecard_screen_hides_outcomes_until_the_lock_then_shows_the_table(
    store, settings, rated_study
):
    _, link = people.add_reviewer(store, settings, "sol", "signer", STUDY, actor=person(store))
    token = link.split("token=")[1]
    at = _open_scorecard(token)
    assert not at.exception
    assert "stay hidden until" in at.info[0].value
    assert not at.dataframe

    _lock(store, settings)
    at = _open_scorecard(token)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == ["metric", "source", SYSTEM_X, SYSTEM_Y, SYSTEM_Z]
    accuracy = table[table.metric == "accuracy (mean 1-5)"].iloc[0]
    assert accuracy[SYSTEM_X].startswith("4.50 [") and accuracy[SYSTEM_Y].startswith("2.00")
    assert "Bradley-Terry rating" in set(table.metric)
    assert [s.value for s in at.subheader][:2] == [
        "Ranking",
        "Win rates, raw and length-controlled",
    ]

    at.selectbox(key="scorecard_reference").select(SYSTEM_Y).run()
    assert not at.exception
    assert f"as a share of {SYSTEM_Y}" in " ".join(m.value for m in at.markdown)


def test_the_results_and_scorecard_screens_draw_the_same_regression_rows(
    store, settings, rated_study
):
    """The study compares X:Y and its candidate is Y: both screens show Y first, the same change,
    CI, n, margin and outcome (the gate's word), row for row."""
    from streamlit.testing.v1 import AppTest

    studies.set_candidate(acting(store, STUDY, "test"), SYSTEM_Y)
    people.add_reviewer(store, settings, "ada", "admin", STUDY, actor=person(store))
    thresholds.add_threshold(
        acting(store, STUDY, "ada"),
        gate.REGRESSION_METRIC,
        {"system_a": SYSTEM_Y, "system_b": SYSTEM_X, "source": "humans"},
        "<=",
        5.0,
    )
    thresholds.lock_thresholds(
        acting(store, STUDY, "ada", settings=replace(settings, gate_min_items=10)),
        "a small test study",
    )
    token = people.add_reviewer(store, settings, "sol", "signer", STUDY, actor=person(store))[
        1
    ].split("token=")[1]
    card_page = _open_scorecard(token)
    results_page = AppTest.from_file(
        str(ROOT / "review_app" / "app_pages" / "results.py"), default_timeout=60
    )
    results_page.query_params["token"] = token
    results_page.run()
    assert not card_page.exception and not results_page.exception

    def regression(at) -> pd.DataFrame:
        [frame] = [d.value for d in at.dataframe if "outcome" in d.value.columns]
        return frame

    on_card = regression(card_page)
    on_results = regression(results_page)
    assert on_results.comparison.tolist() == [
        f"{SYSTEM_Y} vs {SYSTEM_X}",
        f"{SYSTEM_X} vs {SYSTEM_Z}",
    ]
    shown = on_results[on_results.comparison == f"{SYSTEM_Y} vs {SYSTEM_X}"]
    pd.testing.assert_frame_equal(shown.drop(columns="comparison"), on_card)
    [row] = on_card.to_dict("records")
    assert (row["change (points)"], row["n"], row["margin (points)"]) == (-50.0, 12, "5")
    assert row["outcome"] == "fail" and row["reason"].startswith("upper 95% bound 50.000 vs <= 5")
    assert on_results.outcome.tolist()[1] == "no threshold"


def test_a_reviewer_cannot_open_the_scorecard(store, settings, rated_study):
    _lock(store, settings)
    token = people.add_reviewer(store, settings, "rex", "reviewer", STUDY, actor=person(store))[
        1
    ].split("token=")[1]
    at = _open_scorecard(token)
    assert at.error and not at.dataframe


def test_the_report_carries_the_scorecard(store, settings, rated_study):
    from review_app import report
    from review_app.services import signoff

    _lock(store, settings)
    built = signoff.build_report(looking(store, STUDY, settings))
    card = built["scorecard"]
    assert card == scorecard.scorecard(looking(store, STUDY, settings))
    assert [r["system"] for r in card["ranking"]["humans"]] == [SYSTEM_X, SYSTEM_Z, SYSTEM_Y]
    markdown = report.render_markdown(built)
    assert "## Scorecard" in markdown
    assert "| accuracy (mean 1-5) | humans | 4.50 [" in markdown
    assert "### Win rates, raw and length-controlled" in markdown
    page = report.render_html(built)
    assert "<h2>Scorecard</h2>" in page and "length-controlled" in page
    assert json.loads(report.render_json(built))["scorecard"]["ranking"]["humans"]


def test_an_excluded_reviewers_ratings_and_an_edited_votes_old_ratings_do_not_count(
    store, settings, rated_study
):
    from review_app.services import quality

    _lock(store, settings)
    # ben edits one vote with other ratings: only the edit counts.
    ben = store.people.reviewer("ben")["id"]
    review.undo_last_vote(store, settings, ben, rated_study["id"])
    task = review.next_pair(store, settings, ben, rated_study["id"])
    review.record_vote(
        store, settings, ben, task.assignment_id, "A", criteria={"accuracy": {"A": 1, "B": 1}}
    )
    means = {
        c["system"]: c
        for c in scorecard.scorecard(looking(store, STUDY, settings))["criteria"]
        if c["source"] == "humans" and c["category"] is None
    }
    assert means[SYSTEM_X]["n"] == 48  # still one rating per counted vote
    # X is in every pair: ben's edited vote rates it 1 instead of 4.
    assert means[SYSTEM_X]["mean"] == pytest.approx((24 * 5 + 23 * 4 + 1) / 48)

    quality.exclude_reviewer(acting(store, STUDY, "ada"), "ben", "rated without reading")
    means = {
        c["system"]: c
        for c in scorecard.scorecard(looking(store, STUDY, settings))["criteria"]
        if c["source"] == "humans" and c["category"] is None
    }
    assert (means[SYSTEM_X]["mean"], means[SYSTEM_X]["n"]) == (5.0, 24)
    assert means[SYSTEM_Y]["mean"] == 2.0


def test_the_demo_scorecard_ranks_by_humans_and_by_the_judge(demo_store, settings):
    people.add_reviewer(demo_store, settings, "ada", "admin", "demo", actor=person(demo_store))
    thresholds.add_recommended_thresholds(acting(demo_store, "demo", "ada"))
    thresholds.lock_thresholds(
        acting(demo_store, "demo", "ada", settings=settings), "a small test study"
    )
    token = demo_store.demo_links["demo-signer"].split("token=")[1]
    at = _open_scorecard(token)
    assert not at.exception
    ranking_table = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    # Baselines say nothing about quality: only humans and the real judge rank the systems.
    assert set(ranking_table.source) == {"humans", "example-llm-judge"}
    assert set(ranking_table.system) == {"base", "finetuned", "frontier"}


def test_the_regression_table_agrees_with_the_results_screen(demo_store, settings):
    """The scorecard's regression rows are the Results screen's rows of the candidate and its
    base, value for value, and the gate's regression threshold reads the same suites: its worst
    drop is the most negative change, its n the smallest suite's comparisons (votes are more)."""
    from review_app.services import signoff

    people.add_reviewer(demo_store, settings, "ada", "admin", "demo", actor=person(demo_store))
    thresholds.add_recommended_thresholds(acting(demo_store, "demo", "ada"))
    thresholds.lock_thresholds(
        acting(demo_store, "demo", "ada", settings=settings), "a small test study"
    )
    card = scorecard.scorecard(looking(demo_store, "demo", settings), base="base")
    results = signoff.study_results(looking(demo_store, "demo", settings))
    assert card["regression"]
    assert card["regression"] == [
        r for r in results["regression"] if (r["system_a"], r["system_b"]) == ("finetuned", "base")
    ]
    [gated] = [
        r
        for r in decisions.evaluate_gate(looking(demo_store, "demo", settings)).results
        if r.threshold.metric == gate.REGRESSION_METRIC
    ]
    decided = [r for r in card["regression"] if r["outcome"] is not None]
    assert {r["category"] for r in decided} == set(gated.threshold.params["categories"])
    assert {r["outcome"] for r in decided} == {gated.outcome} == {"interim"}
    assert min(r["n"] for r in decided) == gated.n
    assert max(-r["change_points"] for r in decided) == pytest.approx(gated.value)
    row = decided[0]
    [w] = [
        w
        for w in results["category_win_rates"][row["category"]]
        if (w.source, w.system_a, w.system_b) == ("humans", "finetuned", "base")
    ]
    assert row["n"] == w.n_comparisons < w.n


@pytest.mark.parametrize(("minimum", "outcome"), [(10, "fail"), (30, "inconclusive")])
def test_results_scorecard_and_gate_read_one_regression_table(
    store, settings, rated_study, minimum, outcome
):
    """The candidate Y is the second system of the study's comparison X:Y and loses every
    comparison. The Results screen's table, the scorecard's rows and the gate's threshold agree:
    Y first, n in comparisons, the change and its CI with one sign, the gate's outcome at the
    minimum the lock recorded (not the setting in force when the screens are read)."""
    from review_app.services import signoff

    studies.set_candidate(acting(store, STUDY, "test"), SYSTEM_Y)
    people.add_reviewer(store, settings, "ada", "admin", STUDY, actor=person(store))
    thresholds.add_threshold(
        acting(store, STUDY, "ada"),
        gate.REGRESSION_METRIC,
        {"system_a": SYSTEM_Y, "system_b": SYSTEM_X, "source": "humans"},
        "<=",
        5.0,
    )
    thresholds.lock_thresholds(
        acting(store, STUDY, "ada", settings=replace(settings, gate_min_items=minimum)),
        "a small test study",
    )
    results = signoff.study_results(looking(store, STUDY, settings))
    card = scorecard.scorecard(looking(store, STUDY, settings))
    [gated] = decisions.evaluate_gate(looking(store, STUDY, settings)).results

    assert card["base"] == SYSTEM_X
    assert card["regression"] == [r for r in results["regression"] if r["system_a"] == SYSTEM_Y]
    [row] = card["regression"]
    assert (row["system_a"], row["system_b"], row["category"]) == (SYSTEM_Y, SYSTEM_X, "support")
    assert (row["win_rate"], row["change_points"], row["n"]) == (0.0, -50.0, 12)
    assert (row["n"], row["change_points"]) == (gated.n, -gated.value)
    assert row["change_ci"] == pytest.approx([-gated.ci[1], -gated.ci[0]])
    assert (row["outcome"], row["margin"]) == (outcome, 5.0)
    assert gated.outcome == outcome
    # The other comparison has no candidate and no threshold: its study order, not decided.
    [other] = [r for r in results["regression"] if SYSTEM_Y not in (r["system_a"], r["system_b"])]
    assert (other["system_a"], other["system_b"], other["outcome"]) == (SYSTEM_X, SYSTEM_Z, None)


def test_a_row_no_threshold_covers_is_shown_not_decided(store, settings, rated_study):
    """Against a base no locked threshold names, the scorecard shows the change and its CI and
    decides nothing: no margin is made up for it."""
    _lock(store, settings)
    card = scorecard.scorecard(looking(store, STUDY, settings), base=SYSTEM_Z)
    [row] = card["regression"]
    assert (row["system_a"], row["system_b"], row["n"]) == (SYSTEM_X, SYSTEM_Z, 12)
    assert row["change_points"] == pytest.approx(0.0)
    assert row["change_ci"][0] < 0 < row["change_ci"][1]
    assert (row["outcome"], row["margin"], row["reason"]) == (None, None, gate.NOT_GATED)
    text = "\n".join(report.scorecard_markdown(card))
    assert "| no threshold |" in text and "watch" not in text and "usual margin" not in text


def test_systems_never_linked_by_comparisons_are_put_in_separate_groups_and_flagged():
    # Two tournaments that never meet: a and b, then c, d and e (linked through d).
    tournament = [
        ("a", "b", 9, 0, 1),
        ("c", "d", 5, 0, 5),
        ("d", "e", 2, 0, 8),
    ]
    rated = {r.system: r for r in ranking.bradley_terry(_observations(tournament), n_boot=50)}
    assert {s: r.group for s, r in rated.items()} == {"c": 0, "d": 0, "e": 0, "a": 1, "b": 1}
    notes = report.rating_notes([r.to_json() for r in rated.values()])
    assert len(notes) == 1
    assert "no chain of comparisons links these groups" in notes[0]
    assert "a, b" in notes[0] and "c" in notes[0]

    linked = ranking.bradley_terry(_observations([*tournament, ("b", "c", 1, 0, 1)]), n_boot=50)
    assert {r.group for r in linked} == {0}
    assert report.rating_notes([r.to_json() for r in linked]) == []
