import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app import gate, services, stats
from review_app.cli import main
from review_app.errors import Forbidden, InputError, OutcomesHidden

PAGES = Path(__file__).resolve().parent.parent / "review_app" / "app_pages"


def add_standard_thresholds(store, by="demo-admin"):
    services.add_threshold(
        store,
        "demo",
        "human_win_rate",
        {"system_a": "finetuned", "system_b": "base"},
        ">=",
        0.6,
        by,
    )
    services.add_threshold(
        store,
        "demo",
        "max_regression_points",
        {"system_a": "finetuned", "system_b": "base", "categories": "reasoning,formatting,safety"},
        "<=",
        5,
        by,
    )


@pytest.fixture
def locked(demo_store):
    add_standard_thresholds(demo_store)
    services.lock_thresholds(demo_store, "demo", "demo-admin")
    return demo_store


def reviewer(store, name):
    return store.reviewer(name)


def test_threshold_validation_names_the_problem():
    with pytest.raises(InputError, match="unknown metric 'win'"):
        gate.validate_threshold("win", {}, ">=", 1)
    with pytest.raises(InputError, match="needs the parameter system_b"):
        gate.validate_threshold("human_win_rate", {"system_a": "x"}, ">=", 0.5)
    with pytest.raises(InputError, match="not judge"):
        gate.validate_threshold("human_win_rate", {"judge": "j"}, ">=", 0.5)
    with pytest.raises(InputError, match="comparator '=='"):
        gate.validate_threshold("final_review_acceptable_rate", {}, "==", 0.5)


def test_outcomes_are_hidden_until_the_lock(demo_store, settings):
    add_standard_thresholds(demo_store)
    for call in (services.study_results, services.evaluate_gate, services.build_report):
        with pytest.raises(OutcomesHidden, match="hidden until its thresholds are locked"):
            call(demo_store, "demo", settings)
    content_hash = services.lock_thresholds(demo_store, "demo", "demo-admin")
    assert len(content_hash) == 64
    assert len(services.evaluate_gate(demo_store, "demo", settings)) == 2


def test_lock_needs_thresholds_and_happens_once(demo_store):
    with pytest.raises(InputError, match="at least one threshold"):
        services.lock_thresholds(demo_store, "demo", "a")
    add_standard_thresholds(demo_store)
    services.lock_thresholds(demo_store, "demo", "a")
    with pytest.raises(Exception, match="already locked"):
        services.lock_thresholds(demo_store, "demo", "a")


def test_changes_after_the_lock_need_a_reason_and_are_recorded(locked, settings):
    first = services.list_thresholds(locked, "demo")[0]
    before = locked.table_counts()
    with pytest.raises(InputError, match="needs a reason"):
        services.update_threshold(locked, "demo", first["id"], ">=", 0.55, "demo-admin")
    with pytest.raises(InputError, match="needs a reason"):
        services.remove_threshold(locked, "demo", first["id"], "demo-admin")
    assert locked.table_counts() == before
    services.update_threshold(
        locked, "demo", first["id"], ">=", 0.55, "demo-admin", "base too strong"
    )
    deviations = locked.deviations(locked.require_study("demo")["id"])
    assert len(deviations) == 1
    assert deviations[0]["before"].endswith(">= 0.6") and deviations[0]["after"].endswith(">= 0.55")
    report = services.build_report(locked, "demo", settings)
    assert report["deviations"][0]["reason"] == "base too strong"
    assert report["thresholds"]["locked"][0]["value"] == 0.6  # the lock keeps the original
    assert "Deviations after the lock" in services.render_report(report, "md")


def test_report_numbers_equal_the_statistics_module(locked, settings):
    report = services.build_report(locked, "demo", settings)
    study_id = locked.require_study("demo")["id"]
    pairs, votes, verdicts = services.study_frames(locked, study_id, settings.seed)
    expected = stats.win_rates(
        pairs,
        votes,
        verdicts,
        [("finetuned", "base"), ("finetuned", "frontier")],
        seed=settings.seed,
        n_boot=settings.bootstrap_resamples,
    )
    humans = [w for w in report["win_rates"] if w["source"] == "humans"]
    assert [(w["value"], w["ci"], w["n"]) for w in humans] == [
        (e.value, list(e.ci), e.n) for e in expected if e.source == "humans"
    ]
    first = report["results"][0]
    human_fb = next(e for e in expected if e.source == "humans" and e.system_b == "base")
    assert first["value"] == human_fb.value and first["passed"] == (human_fb.value >= 0.6)
    calibration = stats.calibrate(
        pairs, votes, verdicts, seed=settings.seed, n_boot=settings.bootstrap_resamples
    )
    assert (
        report["human_agreement"]["without_ties"]
        == calibration.overall.humans.agreement_without_ties.to_json()
    )


def test_regression_metric_is_the_worst_listed_category(locked, settings):
    study_id = locked.require_study("demo")["id"]
    pairs, votes, verdicts = services.study_frames(locked, study_id, settings.seed)
    by_cat = stats.category_win_rates(pairs, votes, verdicts, [("finetuned", "base")], n_boot=1000)
    drops = {
        c: 100 * (0.5 - next(w for w in rates if w.source == "humans").value)
        for c, rates in by_cat.items()
        if c in ("reasoning", "formatting", "safety")
    }
    result = services.evaluate_gate(locked, "demo", settings)[1]
    assert result.value == pytest.approx(max(drops.values()))
    assert result.detail.startswith(f"worst: {max(drops, key=drops.get)}")


def test_only_a_signer_can_sign_and_final_review(locked, settings):
    sample = services.final_review_sample(locked, "demo", settings=settings)
    for name in ("demo-admin", "demo-reviewer"):
        with pytest.raises(Forbidden, match="for signer accounts"):
            services.sign_off(locked, "demo", reviewer(locked, name), "approve", "ok", settings)
        with pytest.raises(Forbidden):
            services.record_final_review(
                locked, "demo", reviewer(locked, name), sample[0]["output_id"], True
            )
    assert locked.signoffs(locked.require_study("demo")["id"]) == []


def test_sign_off_pins_the_report_and_is_append_only(locked, settings):
    signer = reviewer(locked, "demo-signer")
    with pytest.raises(InputError, match="needs a comment"):
        services.sign_off(locked, "demo", signer, "approve", "  ", settings)
    report = services.sign_off(locked, "demo", signer, "reject", "reasoning regressed", settings)
    report = services.sign_off(locked, "demo", signer, "approve", "after discussion", settings)
    assert [s["decision"] for s in report["signoffs"]] == ["reject", "approve"]
    assert report["signoffs"][-1]["report_hash"] == report["report_hash"]
    stored = locked.db.execute("SELECT report FROM signoffs ORDER BY id DESC").fetchone()[0]
    pinned = json.loads(stored)
    assert pinned["eval_set"]["content_hash"] == locked.eval_set("demo")["content_hash"]
    assert gate.report_hash(pinned) == report["report_hash"]
    with pytest.raises(Exception, match="append-only"):
        locked.db.execute("DELETE FROM signoffs")


def test_final_review_sample_puts_the_judges_favourites_first(locked, settings, tmp_path):
    rows = ["item_id,system_a,system_b,judge,winner,first,explanation"]
    favourites = [f"support-{i:03d}" for i in range(1, 13)]
    for key in favourites:
        rows += [
            f"{key},finetuned,base,gpt-judge,finetuned,finetuned,",
            f"{key},finetuned,base,gpt-judge,finetuned,base,",
        ]
    rows += ["reasoning-001,finetuned,base,gpt-judge,base,base,"]
    (tmp_path / "j.csv").write_text("\n".join(rows) + "\n")
    services.import_verdicts(locked, tmp_path / "j.csv", "demo")
    sample = services.final_review_sample(locked, "demo", settings=settings)
    assert len(sample) == 50 and len({s["output_id"] for s in sample}) == 50
    top = [s for s in sample if s["judge_top"]]
    assert len(top) == 10 and sample[:10] == top
    pairs, _, verdicts = services.study_frames(
        locked, locked.require_study("demo")["id"], 0, with_baselines=False
    )
    scores = gate.judge_preference(pairs, verdicts, "finetuned")
    rest = [scores.get(s["item_key"], 0) for s in sample[10:]]
    assert min(scores[s["item_key"]] for s in top) >= max(rest)
    assert scores["reasoning-001"] < 1.0 and "reasoning-001" not in {s["item_key"] for s in top}
    signer = reviewer(locked, "demo-signer")
    for s in sample[:4]:
        services.record_final_review(
            locked, "demo", signer, s["output_id"], s["item_key"] != sample[0]["item_key"], ""
        )
    services.add_threshold(
        locked, "demo", "final_review_acceptable_rate", {}, ">=", 0.9, "demo-admin", "added late"
    )
    result = services.evaluate_gate(locked, "demo", settings)[-1]
    assert (result.value, result.n, result.passed) == (0.75, 4, False)


def test_html_report_is_self_contained(locked, settings):
    html = services.render_report(services.build_report(locked, "demo", settings), "html")
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html.lower()


def test_report_and_signoff_cli(locked, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["report", "--study", "demo", "--format", "json", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["study"] == "demo"
    assert (
        main(
            [
                "signoff",
                "--study",
                "demo",
                "--signer",
                "demo-admin",
                "--decision",
                "approve",
                "--comment",
                "x",
            ]
        )
        == 1
    )
    assert "for signer accounts" in capsys.readouterr().err
    assert (
        main(
            [
                "signoff",
                "--study",
                "demo",
                "--signer",
                "demo-signer",
                "--decision",
                "approve",
                "--comment",
                "ship it",
            ]
        )
        == 0
    )
    assert "approve recorded for study demo" in capsys.readouterr().out


def open_page(store, page, user):
    at = AppTest.from_file(str(PAGES / page), default_timeout=60)
    at.query_params["token"] = store.demo_links[user].split("token=")[1]
    return at.run()


def test_results_page_hides_outcomes_before_the_lock(demo_store):
    add_standard_thresholds(demo_store)
    at = open_page(demo_store, "results.py", "demo-admin")
    assert not at.exception
    assert "hidden until its thresholds are locked" in at.info[0].value
    assert not at.dataframe


def test_gate_page_lock_then_signer_signs(demo_store):
    add_standard_thresholds(demo_store)
    at = open_page(demo_store, "gate.py", "demo-admin")
    assert not at.exception
    assert "Not locked yet" in at.warning[0].value
    at.button(key="gate_lock").click().run()
    assert not at.exception
    assert services.threshold_lock(demo_store, "demo")["locked_by"] == "demo-admin"
    assert any("Gate" in e.value for e in [*at.success, *at.error])
    assert not [b for b in at.button if b.key == "signoff_submit"]

    at = open_page(demo_store, "gate.py", "demo-signer")
    at.radio(key="signoff_decision").set_value("approve")
    at.text_area(key="signoff_comment").input("numbers look right")
    at.button(key="signoff_submit").click().run()
    assert not at.exception
    signoffs = demo_store.signoffs(demo_store.require_study("demo")["id"])
    assert [(s["signer"], s["decision"], s["comment"]) for s in signoffs] == [
        ("demo-signer", "approve", "numbers look right")
    ]


def test_results_page_after_the_lock_shows_win_rates(locked):
    at = open_page(locked, "results.py", "demo-signer")
    assert not at.exception
    assert [s.value for s in at.subheader][:3] == [
        "Win rates",
        "Regression table",
        "Error analysis",
    ]
    frame = at.dataframe[0].value
    assert set(frame.source) >= {"humans", "baseline/longest"}
    # Regression verdicts use the locked 5-point tolerance, only where that threshold applies:
    # finetuned vs base on the reasoning, formatting and safety suites.
    regression = at.dataframe[1].value
    captions = [c.value for c in at.caption]
    assert any(
        c.startswith("Verdict against the gate's regression tolerance of 5 points")
        for c in captions
    )
    suites = {"reasoning", "formatting", "safety"}
    for row in regression.itertuples():
        if row.comparison == "finetuned vs base" and row.category in suites:
            assert row.verdict == ("regression" if row.delta_points < -5 else "ok")
        else:
            assert row.verdict == "not gated"
    gated = regression[regression.verdict != "not gated"]
    assert set(gated.category) == suites and len(gated) >= 3


def test_reviewer_cannot_open_gate_or_results(demo_store):
    for page in ("gate.py", "results.py"):
        at = open_page(demo_store, page, "demo-reviewer")
        assert "for admin or signer accounts" in at.error[0].value


def test_recommended_thresholds_cover_the_ship_bar(demo_store, tmp_path):
    (tmp_path / "j.csv").write_text(
        "item_id,system_a,system_b,judge,winner,first,explanation\n"
        "support-001,finetuned,base,gpt-judge,finetuned,base,\n"
    )
    services.import_verdicts(demo_store, tmp_path / "j.csv", "demo")
    described = [t.describe() for t in services.recommended_thresholds(demo_store, "demo")]
    assert "Human win rate (system_a=finetuned, system_b=base) >= 0.6" in described
    assert any("categories=formatting+reasoning+safety" in d and "<= 5" in d for d in described)
    assert any(
        d.startswith(
            "Judge agreement minus a baseline's (judge=gpt-judge, baseline=baseline/longest)"
        )
        for d in described
    )
    assert not any("judge=baseline/" in d for d in described)
    assert services.add_recommended_thresholds(demo_store, "demo", "demo-admin") == len(described)
    with pytest.raises(Exception, match="already has thresholds"):
        services.add_recommended_thresholds(demo_store, "demo", "demo-admin")


def test_marking_a_final_review_output_opens_the_next_unmarked_one(locked):
    at = open_page(locked, "gate.py", "demo-signer")
    first = at.selectbox(key="final_review_pick").value
    for acceptable in (True, False, True):
        at.button(key="final_review_ok" if acceptable else "final_review_bad").click().run()
        assert not at.exception
    marks = locked.final_reviews(locked.require_study("demo")["id"])
    assert sorted(m["acceptable"] for m in marks) == [False, True, True]
    assert len({m["output_id"] for m in marks}) == 3
    assert at.selectbox(key="final_review_pick").value == first + 3


def test_html_report_says_what_the_signer_signed(locked, settings):
    signer = reviewer(locked, "demo-signer")
    sample = services.final_review_sample(locked, "demo", settings=settings)
    services.record_final_review(
        locked, "demo", signer, sample[0]["output_id"], False, "made-up refund policy"
    )
    report = services.sign_off(locked, "demo", signer, "approve", "good enough", settings)
    html = services.render_report(report, "html")
    assert "Locked by <b>demo-admin</b>" in html
    assert f"{sample[0]['item_key']}: made-up refund policy" in html
    assert f"<code>{report['report_hash']}</code> (this report)" in html

    services.record_final_review(locked, "demo", signer, sample[1]["output_id"], True)
    html = services.render_report(services.build_report(locked, "demo", settings), "html")
    assert "(an earlier version: the figures changed after signing)" in html


def test_items_without_a_category_are_a_measurable_regression_suite(store, tmp_path, settings):
    rows = ["item_id,prompt,system,output,category"]
    for i in range(6):
        category = "math" if i < 4 else ""
        rows += [
            f"q{i},Question {i}?,base,answer {i},{category}",
            f"q{i},Question {i}?,ft,better answer {i},{category}",
        ]
    (tmp_path / "o.csv").write_text("\n".join(rows) + "\n")
    services.import_outputs(store, tmp_path / "o.csv", "e")
    services.create_study(store, "s", "e", [("ft", "base")])
    votes = ["item_id,system_a,system_b,reviewer,winner"] + [
        f"q{i},ft,base,ann,base" for i in range(6)
    ]
    (tmp_path / "v.csv").write_text("\n".join(votes) + "\n")
    services.import_votes(store, tmp_path / "v.csv", "s")
    assert services.study_categories(store, "s") == ["math", "uncategorized"]
    regression = next(
        t
        for t in services.recommended_thresholds(store, "s")
        if t.metric == "max_regression_points"
    )
    assert regression.params["categories"] == ["uncategorized"]
    with pytest.raises(InputError, match="has no category geography"):
        services.add_threshold(
            store,
            "s",
            "max_regression_points",
            {"system_a": "ft", "system_b": "base", "categories": "geography"},
            "<=",
            5,
            "admin",
        )
    services.add_threshold(store, "s", regression.metric, regression.params, "<=", 5, "admin")
    services.lock_thresholds(store, "s", "admin")
    result = services.evaluate_gate(store, "s", settings)[0]
    assert (result.value, result.n, result.passed) == (50.0, 2, False)
    assert result.detail.startswith("worst: uncategorized")


def test_a_revoked_signer_cannot_sign(locked, settings, capsys):
    services.revoke_reviewer(locked, "demo-signer")
    with pytest.raises(Forbidden, match="revoked"):
        services.sign_off(
            locked, "demo", reviewer(locked, "demo-signer"), "approve", "ok", settings
        )
    argv = [
        "signoff",
        "--study",
        "demo",
        "--signer",
        "demo-signer",
        "--decision",
        "approve",
        "--comment",
        "x",
    ]
    assert main(argv) == 1 and "revoked" in capsys.readouterr().err
    assert locked.signoffs(locked.require_study("demo")["id"]) == []


def test_gate_numbers_follow_new_votes_at_once(locked, settings, tmp_path):
    before = services.evaluate_gate(locked, "demo", settings)[0]
    again = services.evaluate_gate(locked, "demo", settings)[0]
    assert again == before  # served from the statistics cache, unchanged
    (tmp_path / "v.csv").write_text(
        "item_id,system_a,system_b,reviewer,winner\n"
        "support-001,finetuned,base,late-reviewer,base\n"
        "support-002,finetuned,base,late-reviewer,base\n"
    )
    services.import_votes(locked, tmp_path / "v.csv", "demo")
    after = services.evaluate_gate(locked, "demo", settings)[0]
    assert after.n == before.n + 2 and after.value < before.value
