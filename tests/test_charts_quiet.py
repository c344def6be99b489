"""Charts over empty or partial data print nothing to the server's log: every field a chart
encodes has its type stated, so altair never guesses one from an empty column."""

import warnings
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app.services import data, studies
from tests.acting import lock_on_win_rate, person, token_for
from tests.conftest import write

PAGES = Path(__file__).resolve().parent.parent / "review_app" / "app_pages"
CHART_PAGES = ("calibration.py", "results.py", "scorecard.py", "disagreements.py", "quality.py")


def open_quietly(page: str, token: str) -> list[str]:
    at = AppTest.from_file(str(PAGES / page), default_timeout=60)
    at.query_params["token"] = token
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        at.run()
    assert not at.exception, (page, at.exception)
    return [f"{page}: {w.message}" for w in caught if "vegalite type" in str(w.message)]


def test_a_study_without_votes_draws_no_chart_with_guessed_types(store, tmp_path):
    admin = person(store, "ada")
    rows = "item_id,prompt,system,output\n" + "".join(
        f"q{i},Question {i}?,{s},answer {i} {s}\n" for i in range(3) for s in ("base", "tuned")
    )
    data.import_outputs(store, write(tmp_path / "o.csv", rows), "e", actor=admin)
    studies.create_study(store, "s", "e", [("tuned", "base")], actor=admin)
    token = token_for(store, "ada")
    assert [w for page in CHART_PAGES for w in open_quietly(page, token)] == []


@pytest.mark.parametrize("locked", [False, True])
def test_the_demo_draws_no_chart_with_guessed_types(demo_store, locked):
    if locked:
        lock_on_win_rate(demo_store)
    token = demo_store.demo_links["demo-admin"].split("token=")[1]
    assert [w for page in CHART_PAGES for w in open_quietly(page, token)] == []
