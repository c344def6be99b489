"""The `review-app stats` renderer called directly: the CLI prints exactly what it renders, in text
and JSON, and its estimate and table formatting stay as the CLI has always printed them."""

from __future__ import annotations

import json

import pytest

from review_app import stats_text
from review_app.cli import main
from review_app.errors import InputError
from review_app.services import calibration, rubric_iteration
from tests.acting import acting, looking


def rendered(store, settings, split: str, fmt: str, test_looks: int | None = None) -> str:
    report = calibration.calibration_report(looking(store, "demo", settings), split)
    preferences = calibration.self_preference(looking(store, "demo", settings), split)
    pointwise = calibration.pointwise_scores(looking(store, "demo"), split)
    return stats_text.render_stats(report, preferences, pointwise, split, fmt, test_looks)


def test_the_cli_prints_what_the_renderer_renders(demo_store, settings, capsys):
    # The demo's judge was imported: its agreement is shown to the admin the renderer reads as.
    admin = ["--token", demo_store.demo_links["demo-admin"].split("token=")[1]]
    for fmt, flags in (("text", []), ("json", ["--json"])):
        assert main([*admin, "stats", "--study", "demo", *flags]) == 0
        assert capsys.readouterr().out == rendered(demo_store, settings, "all", fmt) + "\n"

    text = rendered(demo_store, settings, "all", "text").splitlines()
    document = json.loads(rendered(demo_store, settings, "all", "json"))
    assert text[0] == (
        f"study demo: {document['n_comparisons']} comparisons, {document['n_votes']} votes"
    )
    assert text[1:3] == ["", "humans (the ceiling a judge is measured against)"]
    strict = stats_text.fmt_estimate(document["humans"]["agreement_strict"])
    assert text[3] == f"  {'strict agreement':24} {strict}"
    assert text[12] == "" and text[13].split()[:3] == ["judge", "vs", "ceiling"]
    first = document["judges"][0]
    assert (
        text[14].startswith(f"{first['judge']}  ")
        and f"  {first['vs_ceiling']['verdict']}  " in text[14]
    )
    assert document["split"] == "all"
    assert list(document)[-3:] == ["split", "self_preference", "pointwise_scores"]


def test_a_split_study_names_its_part_and_the_looks_at_test(demo_store, settings, capsys):
    rubric_iteration.make_split(acting(demo_store, "demo", "demo-admin", settings=settings), 0.3, 5)
    admin = ["--token", demo_store.demo_links["demo-admin"].split("token=")[1]]
    assert main([*admin, "stats", "--study", "demo", "--split", "dev"]) == 0
    out = capsys.readouterr().out
    assert out == rendered(demo_store, settings, "dev", "text") + "\n"
    assert out.startswith("study demo (dev part of the split): ")
    assert "test looked at" not in out

    text = rendered(demo_store, settings, "test", "text", test_looks=3).splitlines()
    assert text[0].startswith("study demo (test part of the split): ")
    assert text[1] == "test looked at 3 times"
    assert json.loads(rendered(demo_store, settings, "dev", "json", test_looks=3))["split"] == "dev"


def test_estimates_and_tables_are_formatted_as_the_cli_prints_them():
    assert stats_text.fmt_estimate(None) == "-"
    assert stats_text.fmt_estimate({"value": None, "ci": None, "n": 0}) == "-"
    assert stats_text.fmt_estimate({"value": 0.5, "ci": None, "n": 4}) == "0.50 n=4"
    assert stats_text.fmt_estimate({"value": 0.714, "ci": [0.6, 0.81], "n": 40}) == (
        "0.71 [0.60,0.81] n=40"
    )
    assert stats_text.text_table(["judge", "n"], [["a", "10"], ["longer", ""]]) == [
        "judge   n",
        "a       10",
        "longer",
    ]


def test_an_unknown_format_is_refused(demo_store, settings):
    with pytest.raises(InputError, match="choose one of text, json"):
        rendered(demo_store, settings, "all", "yaml")
