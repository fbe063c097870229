"""The Iris baseline reproduces the thesis's Table 3.3.1; mixed CSVs (categorical columns, missing values,
the output column) against pandas; the model's performance on the baseline rows (--target) against
scikit-learn; JSON (version 3, and version 2 still read) and thesis-format round trips; the CLI."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from udfs import baseline as baseline_module
from udfs import baseline_cli
from udfs.baseline import MAX_SAMPLE, Baseline, BaselineError, CategoricalBaseline, FeatureBaseline, training_sample
from udfs.categorical import CategoricalStats
from udfs.histogram import default_bin_count, quantile_edges
from udfs.performance import ClassificationBaseline, RegressionBaseline
from udfs.stats import BlockStats

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris"
PENGUINS = Path(__file__).resolve().parents[1] / "examples" / "penguins"
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
    """The committed Iris baseline is a version 2 file: it loads as numeric features with nothing missing."""
    assert json.loads((IRIS / "baseline.json").read_text())["version"] == 2
    committed = Baseline.load(IRIS / "baseline.json")
    assert committed.fingerprint == iris.fingerprint
    assert committed.output is None and list(committed.columns) == FEATURES
    assert all(f.type == "numeric" and f.missing == 0 and f.missing_rate == 0 for f in committed.features.values())


def _mixed_frame(rows: int, seed: int) -> pd.DataFrame:
    """A numeric column with missing values, a categorical one (Zipf-like, some missing), integer codes and
    an output column of labels."""
    rng = np.random.default_rng(seed)
    size = rng.normal(10.0, 2.0, rows).round(3)
    size[rng.random(rows) < 0.1] = np.nan
    names = np.array([f"colour{i}" for i in range(12)], dtype=object)
    weights = 1.0 / np.arange(1, 13)
    colour = rng.choice(names, rows, p=weights / weights.sum())
    colour[rng.random(rows) < 0.05] = None
    return pd.DataFrame({"size": size, "colour": colour, "code": rng.integers(0, 6, rows),
                         "label": rng.choice(["yes", "no"], rows)})


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Missing cells written as NA or left empty, alternately."""
    text = frame.to_csv(index=False, na_rep="NA").splitlines()
    text = [line.replace("NA", "", 1) if i % 2 else line for i, line in enumerate(text)]
    path.write_text("\n".join(text) + "\n")
    return path


def _assert_frequencies(feature: CategoricalBaseline, column: pd.Series, max_categories: int) -> None:
    counts = sorted(column.value_counts().items(), key=lambda item: (-item[1], item[0]))
    assert feature.type == "categorical"
    assert (feature.count, feature.missing) == (column.notna().sum(), column.isna().sum())
    assert list(zip(feature.categories, feature.counts.tolist())) == counts[:max_categories]
    assert feature.other == sum(n for _, n in counts[max_categories:])
    assert list(feature.other_values) == [value for value, _ in counts[max_categories:]]
    assert (feature.distinct, feature.singletons) == (len(counts), sum(n == 1 for _, n in counts))


def test_mixed_csv_types_missing_values_and_frequencies_equal_pandas(tmp_path):
    frame = _mixed_frame(400, seed=1)
    path = _write_csv(frame, tmp_path / "mixed.csv")
    baseline = Baseline.from_csv(path, categorical=["code"], max_categories=4, output="label")
    size = baseline.features["size"]
    present = frame["size"].dropna().to_numpy()
    assert (size.type, size.count, size.missing) == ("numeric", len(present), frame["size"].isna().sum())
    assert size.missing_rate == frame["size"].isna().mean()
    assert size.mean == pytest.approx(np.nanmean(frame["size"]), rel=1e-12) and size.min == present.min()
    assert [size.p25, size.p50, size.p75] == np.nanpercentile(frame["size"], [25, 50, 75]).tolist()
    _assert_frequencies(baseline.features["colour"], frame["colour"], 4)
    _assert_frequencies(baseline.features["code"], frame["code"].astype(str), 4)
    assert list(baseline.features) == ["size", "colour", "code"]
    assert baseline.output.name == "label" and list(baseline.columns) == ["size", "colour", "code", "label"]
    _assert_frequencies(baseline.output.feature, frame["label"], 4)
    assert Baseline.from_csv(path, output="label").features["code"].type == "numeric"
    first = frame["colour"].dropna().index[0]
    with pytest.raises(BaselineError, match=f"column 'colour': numeric, but '{frame['colour'][first]}' on data row "
                                            f"{first + 1} is not a number"):
        Baseline.from_csv(path, numeric=["colour"])
    with pytest.raises(BaselineError, match="both categorical and numeric"):
        Baseline.from_csv(path, numeric=["code"], categorical=["code"])
    with pytest.raises(BaselineError, match="column 'size': need at least 2 present values, got 1"):
        Baseline.from_csv(_write_csv(frame.iloc[[0, 1]].assign(size=[1.0, np.nan]), tmp_path / "two.csv"))


def test_lumped_values_past_the_named_bound_are_the_baselines_unseen(monkeypatch):
    """Two categories, two lumped values named, the rest forgotten: a window of the training data puts them
    in unseen, where the baseline's own histogram has them too."""
    monkeypatch.setattr(baseline_module, "MAX_OTHER_VALUES", 2)
    values = ["b"] * 5 + ["a"] * 4 + ["c"] * 3 + ["d"] * 2 + ["f", "e", None, "a"]
    feature = CategoricalBaseline.from_values(values, max_categories=2)
    assert (feature.categories, feature.counts.tolist()) == (("a", "b"), [5, 5])  # a tie goes by value
    assert (feature.other, feature.other_values, feature.other_unnamed) == (7, ("c", "d"), 2)
    assert (feature.distinct, feature.singletons, feature.missing) == (6, 2, 1)
    assert feature.histogram_counts().tolist() == [5, 5, 5, 2]
    codes, dictionary = pd.factorize(np.array(values, dtype=object))
    window = CategoricalStats(feature.layout())
    window.update(dictionary, codes.astype(np.int32))
    assert window.histogram_counts().tolist() == feature.histogram_counts().tolist()


def test_version_4_round_trip_with_output(tmp_path):
    baseline = Baseline.from_csv(_write_csv(_mixed_frame(300, seed=2), tmp_path / "mixed.csv"), output="label")
    baseline.save(tmp_path / "b.json")
    document = json.loads((tmp_path / "b.json").read_text())
    assert document["version"] == 4 and document["output"]["name"] == "label"
    assert {name: f["type"] for name, f in document["features"].items()} == {
        "size": "numeric", "colour": "categorical", "code": "numeric"}
    loaded = Baseline.load(tmp_path / "b.json")
    for name, column in baseline.columns.items():
        assert loaded.columns[name].to_dict() == column.to_dict()
    assert loaded.fingerprint == baseline.fingerprint
    assert Baseline(baseline.features).fingerprint != baseline.fingerprint  # the output counts
    with pytest.raises(BaselineError, match="output 'size' is also a feature"):
        Baseline(baseline.features, output=baseline_module.OutputBaseline("size", baseline.output.feature))


def test_save_load_round_trip(iris, tmp_path):
    path = tmp_path / "b.json"
    iris.save(path)
    document = json.loads(path.read_text())
    assert document["format"] == "mmon-baseline" and document["version"] == 4
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
    ('{"format": "mmon-baseline", "version": 3, "features": {"x": {"count": 3}}}', "features.x: type must be one of"),
    ('{"format": "mmon-baseline", "version": 3, "features": {"x": {"type": "categorical", "count": 3, "missing": 0, '
     '"distinct": 1, "singletons": 0, "categories": ["a"], "counts": [2], "other": 0, "other_values": [], '
     '"other_unnamed": 0}}}', "count must be the categories' counts plus other"),
    ('{"format": "mmon-baseline", "version": 3, "features": {"x": {"type": "categorical", "count": 3, "missing": 0, '
     '"distinct": 2, "singletons": 0, "categories": ["a"], "counts": [2], "other": 1, "other_values": ["a"], '
     '"other_unnamed": 0}}}', "must be distinct"),
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
    printed = capsys.readouterr().out
    size = out.stat().st_size
    assert "sepal_length" in printed and f"size {size / 1e6:.2f} MB ({size / 1e3 / 4:.1f} kB a column), loads in" in printed
    only = tmp_path / "one.json"
    assert baseline_cli.main([str(IRIS / "iris_training.csv"), "--features", "petal_width", "-o", str(only)]) == 0
    assert list(Baseline.load(only).features) == ["petal_width"]


def test_cli_mixed_csv_with_an_output_column(tmp_path, capsys):
    path = _write_csv(_mixed_frame(200, seed=3), tmp_path / "mixed.csv")
    out = tmp_path / "baseline.json"
    assert baseline_cli.main([str(path), "--categorical", "code", "--max-categories", "3", "--output-column",
                              "label", "-o", str(out)]) == 0
    loaded = Baseline.load(out)
    assert [f.type for f in loaded.columns.values()] == ["numeric", "categorical", "categorical", "categorical"]
    assert len(loaded.features["colour"].categories) == 3 and loaded.output.name == "label"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].endswith("3 features (1 numeric, 2 categorical), quantile bins; output label (categorical)")
    colour = loaded.features["colour"]
    assert f"missing {colour.missing} ({colour.missing_rate:.1%})  3 categories: {colour.categories[0]} " in printed[2]
    assert f"other {colour.other}" in printed[2] and printed[4].split()[:2] == ["label", "categorical"]
    assert baseline_cli.main([str(path), "--max-categories", "0"]) == 2


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert baseline_cli.main([str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x.json")]) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n2,3\n")
    assert baseline_cli.main([str(bad), "--numeric", "b", "-o", str(tmp_path / "x.json")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [f"mmon baseline: cannot read {tmp_path / 'missing.csv'}: No such file or directory",
                      f"mmon baseline: {bad}: column 'b': numeric, but 'x' on data row 1 is not a number"]
    with pytest.raises(SystemExit) as exit_info:
        baseline_cli.main(["--help"])
    assert exit_info.value.code == 0


def test_cli_target_records_the_penguin_models_performance(tmp_path, capsys):
    """species is the truth, prediction the model's output: the confusion matrix and accuracy are
    scikit-learn's, the section survives a round trip, and the species column is no feature."""
    from sklearn.metrics import accuracy_score, confusion_matrix
    out = tmp_path / "baseline.json"
    assert baseline_cli.main([str(PENGUINS / "training.csv"), "--target", "species", "--output-column", "prediction",
                              "-o", str(out)]) == 0
    frame = pd.read_csv(PENGUINS / "training.csv")
    loaded = Baseline.load(out)
    performance = loaded.performance
    assert isinstance(performance, ClassificationBaseline) and performance.target == "species"
    assert "species" not in loaded.columns and performance.labelled == len(frame) and performance.unscored == 0
    expected = confusion_matrix(frame["species"], frame["prediction"], labels=list(performance.classes))
    assert performance.confusion.tolist() == expected.tolist()
    document = json.loads(out.read_text())["performance"]
    assert document["accuracy"] == accuracy_score(frame["species"], frame["prediction"])
    assert document["confusion"] == expected.tolist() and document["classes"] == ["Adelie", "Gentoo", "Chinstrap"]
    assert loaded.fingerprint == Baseline.from_csv(PENGUINS / "training.csv", output="prediction",
                                                   target="species").fingerprint
    assert "performance of prediction against species: accuracy 1  f1_macro 1  over 258 rows" in capsys.readouterr().out


def test_a_baseline_without_a_performance_section_still_loads_as_before(tmp_path):
    """A version 3 file from before --target (the penguins baseline less its section): no performance, and
    the fingerprint of the same columns built without a target."""
    document = json.loads((PENGUINS / "baseline.json").read_text())
    document.pop("performance", None)
    (tmp_path / "old.json").write_text(json.dumps(document))
    old = Baseline.load(tmp_path / "old.json")
    assert old.performance is None and old.output.name == "prediction"
    assert old.fingerprint == Baseline.from_csv(PENGUINS / "training.csv", output="prediction",
                                                features=list(old.features)).fingerprint
    assert old.fingerprint != Baseline.from_csv(PENGUINS / "training.csv", output="prediction",
                                                target="species").fingerprint  # the section counts


def test_numeric_target_keeps_residual_metrics_and_sample(tmp_path, monkeypatch):
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error
    monkeypatch.setattr(baseline_module, "MAX_SAMPLE", 100)
    rng = np.random.default_rng(8)
    frame = _mixed_frame(300, seed=8).assign(truth=rng.normal(5, 1, 300).round(4))
    frame["guess"] = (frame["truth"] + rng.normal(0.2, 0.5, 300)).round(4)
    frame.loc[rng.random(300) < 0.05, "guess"] = np.nan
    baseline = Baseline.from_csv(_write_csv(frame, tmp_path / "numeric.csv"), output="guess", target="truth")
    assert list(baseline.columns) == ["size", "colour", "code", "label", "guess"]
    performance, scored = baseline.performance, frame.dropna(subset=["guess"])
    assert isinstance(performance, RegressionBaseline) and performance.unscored == frame["guess"].isna().sum()
    metrics = performance.metrics()
    assert metrics["mae"] == pytest.approx(mean_absolute_error(scored["truth"], scored["guess"]), rel=1e-12)
    assert metrics["rmse"] == pytest.approx(root_mean_squared_error(scored["truth"], scored["guess"]), rel=1e-12)
    assert metrics["bias"] == pytest.approx((scored["guess"] - scored["truth"]).mean(), rel=1e-9)
    assert performance.residuals.tolist() == training_sample(scored["guess"] - scored["truth"]).tolist()
    baseline.save(tmp_path / "b.json")
    assert Baseline.load(tmp_path / "b.json").fingerprint == baseline.fingerprint


def test_target_errors(tmp_path, capsys):
    path = _write_csv(_mixed_frame(50, seed=9), tmp_path / "mixed.csv")
    with pytest.raises(BaselineError, match="a target .* needs an output column"):
        Baseline.from_csv(path, target="label")
    with pytest.raises(BaselineError, match="no column 'truth'"):
        Baseline.from_csv(path, output="label", target="truth")
    with pytest.raises(BaselineError, match="column 'colour': numeric, but"):
        Baseline.from_csv(path, output="size", target="colour")
    with pytest.raises(BaselineError, match="performance: must be a mapping with a type"):
        (tmp_path / "bad.json").write_text(json.dumps({**json.loads((PENGUINS / "baseline.json").read_text()),
                                                        "performance": {"type": "ordinal"}}))
        Baseline.load(tmp_path / "bad.json")
    assert baseline_cli.main([str(path), "--target", "label", "-o", str(tmp_path / "x.json")]) == 1
    assert capsys.readouterr().err.strip() == "mmon baseline: a target (the labels) needs an output column (the model's predictions)"


def _continuous_and_discrete(rows: int, width: int, seed: int) -> pd.DataFrame:
    """``width`` continuous columns written with ten significant digits (as `streams.wide` writes them) and
    one discrete column (one decimal: ties)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(rng.uniform(-5, 5, width), rng.uniform(0.5, 3, width), (rows, width)),
                         columns=[f"f{j}" for j in range(width)])
    return frame.assign(discrete=rng.normal(5, 1, rows).round(1))


def test_a_continuous_column_is_kept_at_float32_a_discrete_one_at_float64(tmp_path):
    path = tmp_path / "t.csv"
    frame = _continuous_and_discrete(500, 1, seed=11)
    frame.to_csv(path, index=False, float_format="%.10g")
    values = pd.read_csv(path)
    built = Baseline.from_csv(path)
    continuous, discrete = built.features["f0"], built.features["discrete"]
    rounded = values["f0"].to_numpy().astype(np.float32).astype(float)
    assert continuous.sample_dtype == "float32" and continuous.sample.tolist() == sorted(rounded)
    assert continuous.mean == pytest.approx(rounded.mean(), rel=1e-15) and continuous.max == rounded.max()
    assert continuous.edges.tolist() == quantile_edges(rounded, default_bin_count(500)).tolist()
    assert discrete.sample_dtype == "float64" and discrete.sample.tolist() == sorted(values["discrete"])
    exact = Baseline.from_csv(path, sample_dtype="float64").features["f0"]
    assert exact.sample_dtype == "float64" and exact.sample.tolist() == sorted(values["f0"])
    built.save(tmp_path / "b.json")
    document = json.loads((tmp_path / "b.json").read_text())
    assert document["version"] == 4 and set(document["features"]["f0"]["sample"]) == {"dtype", "data"}
    loaded = Baseline.load(tmp_path / "b.json")
    for name in ("f0", "discrete"):
        a, b = built.features[name], loaded.features[name]
        assert a.sample.tobytes() == b.sample.tobytes() and a.edges.tobytes() == b.edges.tobytes()
        assert a.sample_dtype == b.sample_dtype
    assert loaded.fingerprint == built.fingerprint
    with pytest.raises(BaselineError, match="column 'f0': unknown sample dtype 'float16'"):
        Baseline.from_csv(path, sample_dtype="float16")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_encoded_arrays_are_exact_for_any_floats(dtype):
    rng = np.random.default_rng(12)
    info = np.finfo(dtype)
    special = [0.0, -0.0, info.tiny, -info.tiny, info.smallest_subnormal, info.max, -info.max, 1.0, -1.0]
    for values in (np.sort(rng.normal(0, 3, 1000)), rng.standard_cauchy(777), np.array(special), np.array([])):
        typed = values.astype(dtype)
        decoded, decoded_dtype = baseline_module.decode_array(baseline_module.encode_array(typed.astype(float), dtype))
        assert decoded_dtype == dtype and decoded.astype(dtype).view(f"u{typed.itemsize}").tolist() == \
            typed.view(f"u{typed.itemsize}").tolist()  # bit for bit, signed zeros included


def test_b85decode_equals_the_standard_librarys():
    import base64
    rng = np.random.default_rng(13)
    for size in [*range(12), 4001]:
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        text = base64.b85encode(data).decode()
        assert baseline_module.b85decode(text) == base64.b85decode(text) == data
    with pytest.raises(ValueError, match="bad base85 character"):
        baseline_module.b85decode("abc\"e")


def _as_version_3(document: dict) -> dict:
    """The version 3 form of a version 4 document: every encoded array a JSON list of numbers."""
    def plain(entry):
        return {key: baseline_module.decode_array(value)[0].tolist() if isinstance(value, dict) else value
                for key, value in entry.items()}
    return {**document, "version": 3, "features": {name: plain(entry) for name, entry in document["features"].items()}}


def test_a_wide_baseline_is_under_a_quarter_of_its_version_3_size_and_reads_the_same(tmp_path):
    """100 continuous features of 2,000 rows with ten significant digits (`streams.wide`'s model): the
    version 4 file is under a quarter of the version 3 one (28 kB a feature), and the version 3 file of the
    same values loads to the same baseline."""
    path = tmp_path / "wide.csv"
    _continuous_and_discrete(2000, 100, seed=14).drop(columns="discrete").to_csv(path, index=False, float_format="%.10g")
    Baseline.from_csv(path).save(tmp_path / "v4.json")
    old = _as_version_3(json.loads((tmp_path / "v4.json").read_text()))
    (tmp_path / "v3.json").write_text(json.dumps(old, indent=2))
    v3_size, v4_size = (tmp_path / "v3.json").stat().st_size, (tmp_path / "v4.json").stat().st_size
    assert v3_size / 100 > 25_000 and v4_size / v3_size < 0.25
    new, reread = Baseline.load(tmp_path / "v4.json"), Baseline.load(tmp_path / "v3.json")
    assert reread.fingerprint == new.fingerprint
    assert all(new.features[name].sample.tolist() == reread.features[name].sample.tolist() for name in new.features)


@pytest.mark.parametrize("sample, message", [
    ({"dtype": "float16", "data": ""}, "features.x: unknown dtype 'float16'"),
    ({"dtype": "float32", "data": "ab\"cd"}, "features.x: bad base85 character"),
    ({"dtype": "float32", "data": "abcde"}, "features.x: bad compressed data"),
    ({"dtype": "float32"}, "features.x: missing field 'data'"),
])
def test_a_damaged_encoded_sample_is_refused_naming_the_feature(tmp_path, sample, message):
    document = json.loads((IRIS / "baseline.json").read_text())
    entry = {**document["features"]["sepal_length"], "type": "numeric", "missing": 0, "sample": sample}
    (tmp_path / "bad.json").write_text(json.dumps({**document, "version": 4, "features": {"x": entry}}))
    with pytest.raises(BaselineError, match=message):
        Baseline.load(tmp_path / "bad.json")
