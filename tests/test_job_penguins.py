"""The penguins example end to end, embedded: categorical features, missing values and the model's predictions.

One `mmon run` of examples/penguins/monitor.yaml (the session's ``penguins_run``, conftest.py) over the
staged penguins stream (`streams.penguins`:
normal / island mix shifted / sex missing in 40 % / body mass +1 sd / normal; instances as objects keyed by
name, with nulls and absent keys; the responses interleaved, some before their requests, some never, some
answering no request). Every figure is recomputed here from the stream with pandas and `udfs`: per window,
the categorical counts (`value_counts`), the missing counts of every column, the prediction column as the
join must build it, the drift values (`udfs.drift` on the same category histograms); the unseen islands
alerted once each; the orphan responses dead-lettered ``unmatched_response``; the accounting.
"""
from __future__ import annotations

import pandas as pd
import pytest

from contract import formats

from udfs import drift as drift_math

from streams import penguins

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

CATEGORICAL = ("island", "sex")


def _stats(run: dict, feature: str) -> dict[int, dict]:
    return {r["window_start"]: r for r in run["stats"] if r["feature"] == feature}


def test_run_prints_its_summary_and_accounts_for_every_record(penguins_run):
    summary, stream = penguins_run["summary"], penguins_run["stream"]
    assert "mmon run: done." in penguins_run["stdout"]
    assert summary["accounted"], summary
    assert summary["requests_accepted"] == len(stream) and summary["instances"] == len(stream)
    assert summary["responses_joined"] == int(stream.answered.sum())
    dead = pd.Series([d["reason"] for d in penguins_run["dead_letter"]]).value_counts().to_dict()
    assert dead == {formats.UNMATCHED_RESPONSE: len(stream.orphan_ids)}
    assert summary["records_read"] + summary["responses_joined"] == len(stream.lines)


def test_categorical_counts_equal_pandas_value_counts_per_window(penguins_run):
    expected = penguins_run["expected"]
    for feature in (*CATEGORICAL, "prediction"):
        stats = _stats(penguins_run, feature)
        assert set(stats) == set(expected["window_start"])
        for start, window in expected.groupby("window_start"):
            record = stats[start]
            counts = window[feature].value_counts()
            assert record["count"] == int(counts.sum()) and record["missing"] == int(window[feature].isna().sum())
            assert record["distinct"] == len(counts) and record["exact"] is True
            top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
            assert record["top"] == [[value, int(n)] for value, n in top]
            baseline = penguins_run["baseline"].columns[feature]
            histogram = record["histogram"]
            assert histogram["categories"] == list(baseline.categories)
            assert histogram["counts"] == [int(counts.get(c, 0)) for c in baseline.categories]
            unseen = int(counts[~counts.index.isin(baseline.vocabulary)].sum())
            assert histogram["unseen"] == record["unseen"] == unseen


def test_missing_counts_are_exact_for_numeric_columns_too(penguins_run):
    expected = penguins_run["expected"]
    for feature in ("bill_length_mm", "body_mass_g"):
        stats = _stats(penguins_run, feature)
        for start, window in expected.groupby("window_start"):
            values = window[feature].astype(float)
            assert stats[start]["missing"] == int(values.isna().sum())
            assert stats[start]["count"] == int(values.notna().sum())
            assert stats[start]["mean"] == pytest.approx(values.mean(), rel=1e-9)


def test_categorical_drift_equals_udfs_drift_on_the_window_histograms(penguins_run):
    baseline = penguins_run["baseline"]
    checked = 0
    for record in penguins_run["drift"]:
        column = baseline.columns[record["feature"]]
        stats = _stats(penguins_run, record["feature"])[record["window_start"]]
        if record["metric"] == "missing_rate":
            total = stats["count"] + stats["missing"]
            assert record["value"] == pytest.approx(drift_math.missing_rate(stats["missing"], total, column.missing_rate))
            continue
        if column.type != "categorical":
            continue
        histogram = stats["histogram"]
        observed = [*histogram["counts"], histogram["other"], histogram["unseen"]]
        assert record["value"] == pytest.approx(drift_math.compute(record["metric"], observed,
                                                                   column.histogram_counts()), rel=1e-9)
        checked += 1
    assert checked > 100


def _flagged_windows(run: dict, feature: str, metrics) -> set[int]:
    return {r["window_start"] for r in run["drift"] if r["feature"] == feature and r["metric"] in metrics and r["drift"]}


def _windows_inside(run: dict, kinds) -> set[int]:
    """Windows whose every instance lies in a stage of these kinds."""
    expected = run["expected"]
    stage_kind = {info.number: info.kind for info in run["stream"].stages}
    inside = expected.groupby("window_start")["stage"].agg(lambda s: all(stage_kind[v] in kinds for v in s))
    return set(inside[inside].index)


def test_the_shifted_island_mix_is_flagged_in_its_stage_and_not_elsewhere(penguins_run):
    histogram_metrics = ("js", "psi", "hellinger", "chi2")
    flagged = _flagged_windows(penguins_run, "island", histogram_metrics)
    shifted = _windows_inside(penguins_run, ("island_mix",))
    others = _windows_inside(penguins_run, ("normal", "sex_missing", "body_mass"))
    assert len(shifted) >= 3 and shifted <= flagged
    assert not flagged & others
    missing_flags = _flagged_windows(penguins_run, "sex", ("missing_rate",))
    assert _windows_inside(penguins_run, ("sex_missing",)) <= missing_flags
    assert not missing_flags & _windows_inside(penguins_run, ("normal", "island_mix", "body_mass"))


def test_every_unseen_island_is_alerted_once(penguins_run):
    stream = penguins_run["stream"]
    unseen = [o for o in penguins_run["outliers"] if o["rule"] == "unseen"]
    expected_ids = sorted(stream.ids[stream.unseen].tolist())
    assert sorted(o["request_id"] for o in unseen) == expected_ids
    assert {(o["feature"], o["value"]) for o in unseen} == {("island", penguins.UNSEEN_ISLAND)}
    assert all(o["threshold"] is None for o in unseen)
