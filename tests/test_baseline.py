"""The Iris baseline reproduces the thesis's Table 3.3.1; JSON and thesis-format round trips; the CLI."""
import json
from pathlib import Path

import numpy as np
import pytest

from udfs import baseline_cli
from udfs.baseline import MAX_SAMPLE, Baseline, BaselineError, FeatureBaseline, training_sample
from udfs.histogram import default_bin_count, quantile_edges
from udfs.stats import BlockStats

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# Thesis Table 3.3.1: count, avg, sample stddev, min, max
TABLE_3_3_1 = {
    "sepal_length": (120, 5.845, 0.86857843, 4.4, 7.9),
    "sepal_width": (120, 3.065, 0.42715594, 2.0, 4.4),
    "petal_length": (120, 3.7391667, 1.8221004, 1.0, 6.9),
    "petal_width": (120, 1.1966667, 0.7820393, 0.1, 2.5),
}


@pytest.fixture(scope="module")
def iris():
    return Baseline.from_csv(IRIS / "iris_training.csv", features=FEATURES)


@pytest.fixture(scope="module")
def iris_columns():
    data = np.genfromtxt(IRIS / "iris_training.csv", delimiter=",", names=True)
    return {name: data[name] for name in FEATURES}


def test_reproduces_thesis_table_3_3_1(iris):
    assert list(iris.features) == FEATURES
    for name, (count, mean, std, lo, hi) in TABLE_3_3_1.items():
        feature = iris.features[name]
        assert feature.count == count
        assert feature.mean == pytest.approx(mean, abs=5e-8)
        assert feature.std == pytest.approx(std, abs=5e-8)
        assert (feature.min, feature.max) == (lo, hi)


def test_percentiles_sample_and_quantile_histogram(iris, iris_columns):
    for name, values in iris_columns.items():
        feature = iris.features[name]
        assert [feature.p25, feature.p50, feature.p75] == pytest.approx(np.percentile(values, [25, 50, 75]))
        assert feature.binning == "quantile" and feature.sample.tolist() == sorted(values)
        assert feature.edges.tolist() == quantile_edges(values, 14).tolist() and feature.edges[0] == feature.min
        assert feature.edges[-1] == np.nextafter(feature.max, np.inf)
        assert not np.isin(feature.edges[1:], values).any()  # inner edges between training values
        assert feature.counts.sum() == 120 and feature.counts.min() >= 1
        layout = feature.histogram_counts()
        assert layout[0] == layout[-1] == 0 and len(layout) == len(feature.edges) + 1


def test_equal_width_histogram(iris_columns):
    for name, values in iris_columns.items():
        feature = FeatureBaseline.from_values(values, 20, "equal-width")
        assert feature.binning == "equal-width"
        assert len(feature.edges) == 21 and feature.edges[0] == feature.min
        assert feature.edges[-1] == np.nextafter(feature.max, np.inf)
        np.testing.assert_allclose(np.diff(feature.edges)[:-1], (feature.max - feature.min) / 20)
        assert feature.counts.sum() == 120 and feature.counts[-1] == (values >= feature.edges[-2]).sum()
        assert feature.counts[-1] >= 1  # the maximum is in the last bin, not in overflow
        layout = feature.histogram_counts()
        assert layout[0] == layout[-1] == 0 and len(layout) == len(feature.edges) + 1


def test_window_stats_on_the_training_data_reproduce_the_baseline_histogram(iris, iris_columns):
    for name, values in iris_columns.items():
        stats = BlockStats([iris.features[name].edges])
        stats.update(np.asarray(values, dtype=float).reshape(-1, 1))
        assert stats.histogram_counts()[0].tolist() == iris.features[name].histogram_counts().tolist()


def test_committed_example_baseline_is_current(iris):
    committed = Baseline.load(IRIS / "baseline.json")
    assert committed.fingerprint == iris.fingerprint


def test_save_load_round_trip(iris, tmp_path):
    path = tmp_path / "b.json"
    iris.save(path)
    document = json.loads(path.read_text())
    assert document["format"] == "mmon-baseline" and document["version"] == 2
    loaded = Baseline.load(path)
    for name in FEATURES:
        a, b = iris.features[name], loaded.features[name]
        assert (a.count, a.mean, a.std, a.min, a.max, a.p25, a.p50, a.p75) == (b.count, b.mean, b.std, b.min, b.max, b.p25, b.p50, b.p75)
        assert a.edges.tolist() == b.edges.tolist() and a.counts.tolist() == b.counts.tolist()
        assert a.sample.tolist() == b.sample.tolist() and b.binning == "quantile"
    assert loaded.fingerprint == iris.fingerprint


def test_a_version_1_baseline_is_refused_with_the_command_that_regenerates_it(tmp_path):
    path = tmp_path / "old.json"
    path.write_text('{"format": "mmon-baseline", "version": 1, "features": {}}')
    with pytest.raises(BaselineError, match="version 1 baseline .* regenerate it: mmon baseline"):
        Baseline.load(path)


def test_default_bin_count_is_moores_rule_clipped():
    assert [default_bin_count(m) for m in (10, 100, 120, 1000, 2000, 3000, 10_000)] == [5, 13, 14, 32, 42, 49, 50]
    assert default_bin_count(100) == round(2 * 100 ** 0.4)


def test_quantile_edges_on_ties_are_strictly_increasing_between_values():
    values = np.array([1, 1, 2, 2, 2, 3, 5, 5, 5, 5], dtype=float)
    # quantiles 1/4, 2/4, 3/4 (inverted CDF) are 2, 2, 5: edges midway below 2 and 5
    assert quantile_edges(values, 4).tolist() == [1.0, 1.5, 4.0, np.nextafter(5.0, np.inf)]
    discrete = np.random.default_rng(3).poisson(2.0, 5000).astype(float)
    edges, atoms = quantile_edges(discrete, 50), np.unique(discrete)
    assert np.all(np.diff(edges) > 0) and len(edges) - 1 < len(atoms)  # rare atoms share the last bin
    assert np.isin(edges[1:-1], (atoms[:-1] + atoms[1:]) / 2).all()  # each inner edge midway between atoms
    assert quantile_edges(np.full(7, 3.0), 5).tolist() == [3.0, np.nextafter(3.0, np.inf)]
    continuous = np.random.default_rng(4).normal(size=1000)
    counts, _ = np.histogram(continuous, quantile_edges(continuous, 10))
    assert counts.tolist() == [99] + [100] * 8 + [101]


def test_training_sample_is_all_values_or_a_seeded_subsample():
    values = np.random.default_rng(5).normal(size=MAX_SAMPLE + 500)
    sample = training_sample(values)
    assert len(sample) == MAX_SAMPLE and np.all(np.diff(sample) >= 0) and np.isin(sample, values).all()
    assert sample.tolist() == training_sample(values).tolist()
    assert training_sample(values[:50]).tolist() == sorted(values[:50])


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"format": "other"}', "not an mmon-baseline document"),
    ('{"format": "mmon-baseline", "version": 9, "features": {}}', "unsupported baseline version 9"),
    ('{"format": "mmon-baseline", "version": 2, "features": {"x": {"count": 3}}}', "features.x: missing field 'mean'"),
])
def test_load_rejects_bad_documents_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=message):
        Baseline.load(path)


def test_from_thesis_format_counts_and_frequencies():
    descriptive = {"f": {"count": 10.0, "avg": 2.0, "mean": 0.3, "stddev": 1.0, "min": 0.0, "max": 3.9}}
    labels = {"0.0": 2.0, "1.0": 4.0, "2.0": 3.0, "3.0": 1.0}
    baseline = Baseline.from_thesis_format(descriptive, {"f": labels})
    feature = baseline.features["f"]
    assert feature.mean == 2.0  # "avg", not the thesis's broken "mean" aggregator
    assert feature.edges.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert feature.counts.tolist() == [2.0, 4.0, 3.0, 1.0]
    # no raw values: the sample is the histogram's quantiles at (i + 1/2) / 10
    assert feature.sample.tolist() == pytest.approx([0.25, 0.75, 1.125, 1.375, 1.625, 1.875, 2 + 1 / 6, 2.5,
                                                     2 + 5 / 6, 3.5])
    # linear within bins: cumulative shares 0.2, 0.6, 0.9, 1.0 put p25 an eighth into [1, 2)
    assert [feature.p25, feature.p50, feature.p75] == pytest.approx([1.125, 1.75, 2.5])
    frequencies = {label: value / 10.0 for label, value in labels.items()}
    same = Baseline.from_thesis_format(descriptive, {"f": frequencies}).features["f"]
    np.testing.assert_allclose(same.counts, feature.counts)
    labels_10 = {"10.0": 1.0, "2.0": 1.0, "6.0": 1.0}  # numeric, not lexicographic, order
    assert Baseline.from_thesis_format(descriptive, {"f": labels_10}).features["f"].edges.tolist() == [2.0, 6.0, 10.0, 14.0]
    with pytest.raises(BaselineError, match="no histogram for feature 'f'"):
        Baseline.from_thesis_format(descriptive, {})


def test_cli_writes_the_baseline(tmp_path, capsys):
    out = tmp_path / "baseline.json"
    assert baseline_cli.main([str(IRIS / "iris_training.csv"), "--label", "species", "--bins", "10",
                              "--binning", "equal-width", "-o", str(out)]) == 0
    loaded = Baseline.load(out)
    assert list(loaded.features) == FEATURES and len(loaded.features["sepal_width"].edges) == 11
    assert loaded.features["sepal_width"].binning == "equal-width"
    assert "sepal_length" in capsys.readouterr().out
    only = tmp_path / "one.json"
    assert baseline_cli.main([str(IRIS / "iris_training.csv"), "--features", "petal_width", "-o", str(only)]) == 0
    assert list(Baseline.load(only).features) == ["petal_width"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert baseline_cli.main([str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x.json")]) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n2,3\n")
    assert baseline_cli.main([str(bad), "-o", str(tmp_path / "x.json")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [f"mmon baseline: cannot read {tmp_path / 'missing.csv'}: No such file or directory",
                      f"mmon baseline: {bad}: column 'b' is not numeric on every row"]
    with pytest.raises(SystemExit) as exit_info:
        baseline_cli.main(["--help"])
    assert exit_info.value.code == 0
