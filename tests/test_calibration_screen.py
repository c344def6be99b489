"""The Calibration screen reads cleanly: every ceiling tile has its interval in view, no table
cell says None or nan and no column is empty throughout, the bias chart's axis has one title,
and the Disagreements screen never prints nan for a missing order."""

import json

import pandas as pd

from tests.test_calibration import open_page


def test_ceiling_tiles_show_their_intervals_and_tables_no_raw_missing_values(demo_store):
    at = open_page(demo_store, "calibration.py")
    assert not at.exception
    tiles = [m.label for m in at.metric]
    assert "Agreement w/o ties" in tiles and "Agreement w/ ties" in tiles
    captions = [c.value for c in at.caption]
    assert sum(c.startswith("95% CI [") for c in captions) >= 5
    for frame in (d.value for d in at.dataframe):
        cells = frame.astype(str).to_numpy().ravel().tolist()
        assert "None" not in cells and "nan" not in cells
        for column in frame.columns:
            assert not frame[column].map(lambda v: v is None or v == "").all(), column


def test_the_bias_chart_axis_has_one_title(demo_store):
    at = open_page(demo_store, "calibration.py")
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    bias = [s for s in specs if "layer" in s and any("yOffset" in str(x) for x in s["layer"])]
    assert bias, "no bias chart"
    titles = {
        layer["encoding"]["x"].get("title")
        for layer in bias[0]["layer"]
        if "x" in layer.get("encoding", {})
    }
    assert titles == {"share won (0.5 = no bias)"}


def test_a_missing_order_reads_as_a_dash_not_nan(demo_store):
    at = open_page(demo_store, "disagreements.py")
    assert not at.exception
    shown = " ".join(m.value for m in at.markdown)
    assert "first: nan" not in shown
    assert pd.isna(float("nan"))


def test_agreement_with_the_majority_gives_accuracy_and_f1_with_their_intervals(demo_store):
    """The confusion caption's accuracy and macro F1 carry 95% intervals over items, each
    around its estimate, and the accuracy's is the interval the statistics give it."""
    from review_app.services import calibration
    from tests.acting import looking

    report = calibration.calibration_report(looking(demo_store, "demo"))
    majority = report.calibration.overall.judges[0].vs_majority
    assert majority.accuracy_ci[0] <= majority.accuracy <= majority.accuracy_ci[1]
    assert majority.macro_f1_ci[0] <= majority.macro_f1 <= majority.macro_f1_ci[1]
    at = open_page(demo_store, "calibration.py")
    assert not at.exception
    (caption,) = [c.value for c in at.caption if "macro F1" in c.value]
    low, high = majority.accuracy_ci
    assert f"accuracy {majority.accuracy:.2f} [{low:.2f}, {high:.2f}]" in caption
    low, high = majority.macro_f1_ci
    assert f"macro F1 {majority.macro_f1:.2f} [{low:.2f}, {high:.2f}]" in caption
