"""The items browser's service: text, category, system and length filters, paging, what it shows
before and after the lock, and who may use it."""

from __future__ import annotations

import csv

import pytest

from review_app.errors import Forbidden, InputError, OutcomesHidden
from review_app.services import data, decision, disagreements, grading, items, studies
from tests.acting import acting, lock_on_win_rate, person, reading

pytestmark = pytest.mark.both_backends

# 60 items over two categories, answered by three systems; texts with LIKE's wildcards in them.
N_ITEMS = 60


def _text(i: int, system: str) -> str:
    if system == "big":
        return f"Item {i}: " + "a long answer. " * (i + 1)
    if i == 7 and system == "small":
        return "Discount: 100% off_today for Zebra fans"
    return f"Short answer {i}."


@pytest.fixture
def browsing(store, settings, tmp_path):
    path = tmp_path / "outputs.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "prompt", "system", "output", "category"])
        for i in range(N_ITEMS):
            prompt = "What does the ZEBRA eat?" if i == 3 else f"Question {i}?"
            for system in ("big", "small", "tiny"):
                category = "math" if i % 3 == 0 else "writing"
                writer.writerow([f"q{i:03d}", prompt, system, _text(i, system), category])
    data.import_outputs(store, path, "es", actor=person(store))
    studies.create_study(store, "s", "es", [("big", "small"), ("big", "tiny")], actor=person(store))
    return acting(store, "s", settings=settings)


def keys(page: items.ItemPage) -> list[str]:
    return [item.item_key for item in page.items]


def outputs(page: items.ItemPage) -> list[tuple[str, str]]:
    return [(item.item_key, o.system) for item in page.items for o in item.outputs]


def test_text_matches_prompt_or_output_whatever_the_case(browsing):
    page = items.browse_items(browsing, items.ItemFilters(text="zebra"))
    # q003's prompt names it (all three outputs); q007's small output names it (that one only).
    assert outputs(page) == [
        ("q003", "big"),
        ("q003", "small"),
        ("q003", "tiny"),
        ("q007", "small"),
    ]
    assert (page.n_items, page.n_outputs) == (2, 4)
    assert keys(items.browse_items(browsing, items.ItemFilters(text="  ZeBrA  "))) == keys(page)


def test_like_wildcards_in_the_search_are_literal(browsing):
    assert outputs(items.browse_items(browsing, items.ItemFilters(text="100%"))) == [
        ("q007", "small")
    ]
    assert outputs(items.browse_items(browsing, items.ItemFilters(text="off_today"))) == [
        ("q007", "small")
    ]
    assert items.browse_items(browsing, items.ItemFilters(text="off_t_day")).n_items == 0
    assert items.browse_items(browsing, items.ItemFilters(text="%")).n_outputs == 1


def test_category_system_and_length_filters_combine(browsing):
    page = items.browse_items(
        browsing, items.ItemFilters(categories=("math",), systems=("big", "tiny"))
    )
    assert page.n_items == 20 and page.n_outputs == 40
    assert {item.category for item in page.items} == {"math"}
    assert {o.system for item in page.items for o in item.outputs} == {"big", "tiny"}

    # "big" answers grow with the item: 15 characters per item plus its label.
    lengths = {i: len(_text(i, "big")) for i in range(N_ITEMS)}
    low, high = lengths[10], lengths[14]
    page = items.browse_items(
        browsing, items.ItemFilters(systems=("big",), min_length=low, max_length=high)
    )
    assert keys(page) == [f"q{i:03d}" for i in range(10, 15)]
    assert all(low <= o.length <= high for item in page.items for o in item.outputs)
    assert all(o.length == len(o.text) for item in page.items for o in item.outputs)


def test_pages_of_25_items_by_item_key(browsing):
    first = items.browse_items(browsing, items.ItemFilters())
    assert (first.n_items, first.n_outputs, first.pages, first.page) == (60, 180, 3, 1)
    assert keys(first) == [f"q{i:03d}" for i in range(25)]
    second = items.browse_items(browsing, items.ItemFilters(), page=2)
    assert keys(second) == [f"q{i:03d}" for i in range(25, 50)]
    last = items.browse_items(browsing, items.ItemFilters(), page=99)
    assert last.page == 3 and keys(last) == [f"q{i:03d}" for i in range(50, 60)]
    assert items.browse_items(browsing, items.ItemFilters(), page=0).page == 1
    # Each item carries its prompt and its outputs by system.
    item = first.items[0]
    assert item.prompt == "Question 0?" and [o.system for o in item.outputs] == [
        "big",
        "small",
        "tiny",
    ]
    empty = items.browse_items(browsing, items.ItemFilters(text="nothing like this"))
    assert (empty.items, empty.n_items, empty.pages, empty.page) == ([], 0, 1, 1)


def test_filters_naming_nothing_of_the_study_are_one_line_errors(browsing):
    with pytest.raises(InputError, match=r"^category 'poetry' is not in study 's'; choose one of"):
        items.browse_items(browsing, items.ItemFilters(categories=("poetry",)))
    with pytest.raises(InputError, match=r"^system 'huge' is not in study 's'"):
        items.browse_items(browsing, items.ItemFilters(systems=("huge",)))
    with pytest.raises(InputError, match="maximum is below the minimum"):
        items.browse_items(browsing, items.ItemFilters(min_length=50, max_length=10))


def test_reviewers_and_readers_without_a_link_may_not_browse(browsing, store, settings):
    reviewer = acting(store, "s", "rita", role="reviewer", settings=settings)
    with pytest.raises(Forbidden, match=r"rita \(reviewer\) may not browse items"):
        items.browse_items(reviewer, items.ItemFilters())
    with pytest.raises(Forbidden):
        items.browser_choices(reviewer)
    with pytest.raises(Forbidden, match="personal link"):
        items.browse_items(reading(store, "s", settings), items.ItemFilters())
    signer = acting(store, "s", "sam", role="signer", settings=settings)
    assert items.browse_items(signer, items.ItemFilters()).n_items == N_ITEMS


# ---- outcomes: hidden before the lock, shown after it ----


def test_before_the_lock_no_outcome_is_offered_shown_or_filtered(demo_store, settings):
    ctx = acting(demo_store, "demo", settings=settings)
    assert grading.has_results(demo_store, "demo")  # the demo is graded: results exist
    choices = items.browser_choices(ctx)
    assert not choices.outcomes_visible and choices.checks == [] and choices.judges == []
    assert choices.systems == ["base", "finetuned", "frontier"]
    page = items.browse_items(ctx, items.ItemFilters())
    assert not page.outcomes_visible and page.n_items > 0
    for item in page.items:
        assert item.disagreements == []
        assert all(o.failed_checks is None for o in item.outputs)
    for filters in (
        items.ItemFilters(check="json-valid"),
        items.ItemFilters(check="json-valid", check_passed=True),
        items.ItemFilters(disagreeing_judge=items.ANY_JUDGE),
        items.ItemFilters(disagreeing_judge="example-llm-judge"),
    ):
        with pytest.raises(OutcomesHidden, match="until its thresholds are locked"):
            items.browse_items(ctx, filters)
    # Browsing before the lock is no look at outcomes.
    assert decision.interim_looks(ctx) == []


@pytest.fixture
def locked(demo_store, settings):
    lock_on_win_rate(demo_store, settings)
    return acting(demo_store, "demo", settings=settings)


def test_after_the_lock_grader_results_filter_and_show(locked):
    choices = items.browser_choices(locked)
    assert choices.outcomes_visible and "json-valid" in choices.checks
    results = grading.results_in_force(locked)
    on_check = results[results["check"] == "json-valid"]
    by_output = on_check.set_index(["item_key", "system"])["passed"]
    failed = {key for key, ok in by_output.items() if not ok}
    passed = {key for key, ok in by_output.items() if ok}
    assert failed and passed

    page = items.browse_items(locked, items.ItemFilters(check="json-valid"))
    assert set(outputs(page)) == failed and page.n_outputs == len(failed)
    assert all("json-valid" in o.failed_checks for item in page.items for o in item.outputs)
    page = items.browse_items(locked, items.ItemFilters(check="json-valid", check_passed=True))
    assert set(outputs(page)) == passed
    assert all("json-valid" not in o.failed_checks for item in page.items for o in item.outputs)
    with pytest.raises(InputError, match="grader check 'nope' is not in study 'demo'"):
        items.browse_items(locked, items.ItemFilters(check="nope"))


def test_after_the_lock_disagreements_filter_and_show(locked, settings):
    judge = "example-llm-judge"
    rows = disagreements.disagreements(
        locked.store,
        "demo",
        disagreements.DisagreementFilters(judges=(judge,), kinds=("majority",)),
        settings,
    )
    expected = {(r.item_key, s) for r in rows.itertuples() for s in (r.system_x, r.system_y)}
    assert expected
    page = items.browse_items(locked, items.ItemFilters(disagreeing_judge=items.ANY_JUDGE))
    assert set(outputs(page)) == expected
    assert all(item.disagreements for item in page.items)
    assert all(judge in line for item in page.items for line in item.disagreements)
    named = items.browse_items(locked, items.ItemFilters(disagreeing_judge=judge))
    assert outputs(named) == outputs(page)
    with pytest.raises(InputError, match="judge 'baseline/longest' is not in study 'demo'"):
        items.browse_items(locked, items.ItemFilters(disagreeing_judge="baseline/longest"))


def test_after_the_lock_an_interim_look_is_recorded_once(locked):
    items.browse_items(locked, items.ItemFilters())
    looks = decision.interim_looks(locked)
    assert [look["actor"] for look in looks] == ["demo-admin"]
    # The same figures seen again by the same person add no look.
    items.browse_items(acting(locked.store, "demo", settings=locked.settings), items.ItemFilters())
    assert len(decision.interim_looks(locked)) == 1
