"""threshold: auto: calibrated to a two-sample null, cached, and with the false-alarm rate it promises."""
import pickle
from pathlib import Path

import numpy as np
import pytest

from udfs import calibration, drift
from udfs.baseline import Baseline

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris"


@pytest.fixture(scope="module")
def iris():
    return Baseline.load(IRIS / "baseline.json")


@pytest.fixture(scope="module")
def js_4000(iris):
    return calibration.drift_thresholds(iris, "js", 4000, 0.01)


def _null_draws(feature, window_size, draws, seed):
    """Fresh two-sample null draws (a seed the calibration never uses)."""
    slots = feature.histogram_counts() + drift.DEFAULT_PSEUDO_COUNT
    pi = slots / slots.sum()
    rng = np.random.default_rng(seed)
    return rng.multinomial(window_size, pi, size=draws), rng.multinomial(feature.count, pi, size=draws)


def test_js_thresholds_on_iris_are_two_sample_not_one_sample(iris, js_4000):
    assert list(js_4000) == list(iris.features)
    for name, threshold in js_4000.items():
        feature = iris.features[name]
        exact = feature.histogram_counts()  # the naive null: the baseline histogram taken as exact
        windows = np.random.default_rng(1).multinomial(4000, exact / exact.sum(), size=2000)
        one_sample = np.quantile(drift.js_divergence(windows, exact), 0.99)
        assert 0.03 < threshold < 0.1, (name, threshold)
        assert threshold > 10 * one_sample, (name, threshold, one_sample)


@pytest.mark.parametrize("window_size", [48, 3000])  # between grid points: interpolated
def test_false_alarm_rate_is_as_promised(iris, window_size):
    feature_name = "petal_length"
    threshold = calibration.drift_thresholds(iris, "js", window_size, 0.01)[feature_name]
    windows, baselines = _null_draws(iris.features[feature_name], window_size, 6000, seed=window_size)
    rate = np.mean(drift.js_divergence(windows, baselines) > threshold)
    assert 0.004 <= rate <= 0.02, rate


def test_thresholds_shrink_with_window_size_and_are_cached(iris, js_4000):
    sizes = [1, 10, 100, 1000, 4000, 10**7]
    curve = [calibration.drift_thresholds(iris, "js", n)["sepal_length"] for n in sizes]
    assert all(a > b for a, b in zip(curve[:4], curve[1:4])), curve
    assert curve[3] >= curve[4] >= curve[5] > 0.5 * curve[4], curve
    assert calibration.drift_thresholds(iris, "js", 4000) == js_4000


def test_a_calibrated_metric_is_never_simulated_again(iris, js_4000, monkeypatch):
    def no_simulation(*args):
        raise AssertionError("calibration simulated again instead of using its cache")

    monkeypatch.setattr(calibration, "_feature_grid", no_simulation)
    for n in range(1000, 1100):
        calibration.drift_thresholds(iris, "js", n)
    assert calibration.drift_thresholds(iris, "js", 4000) == js_4000


def test_threshold_curves_ship_to_workers_and_read_as_drift_thresholds(iris):
    """The job calibrates once in the client and pickles the curves into the drift UDF."""
    curves = pickle.loads(pickle.dumps(calibration.threshold_curves(iris, "kl", 0.05)))
    for window_size in (1, 4, 37, 4096, 50_000, 10**6):
        assert curves.at(window_size) == calibration.drift_thresholds(iris, "kl", window_size, 0.05)
    assert curves.at(4) == {name: pytest.approx(values[0], rel=1e-12) for name, values in curves.values.items()}
    with pytest.raises(ValueError, match="window_size"):
        curves.at(0)


def test_calibration_is_seeded_and_reproducible(iris, js_4000):
    calibration._cache.clear()
    assert calibration.drift_thresholds(iris, "js", 4000) == js_4000


def test_normalized_wasserstein_is_unit_free(iris):
    plain = calibration.drift_thresholds(iris, "wasserstein", 2000)
    normalized = calibration.drift_thresholds(iris, "wasserstein", 2000, normalize=True)
    for name, feature in iris.features.items():
        assert normalized[name] == pytest.approx(plain[name] / feature.std, rel=1e-9)


def test_a_drifted_window_exceeds_the_threshold(iris, js_4000):
    """The drift stage's map x -> mean + std + 1.5 (x - mean) on a 4,000-value window is flagged."""
    rng = np.random.default_rng(11)
    columns = np.genfromtxt(IRIS / "iris_training.csv", delimiter=",", names=True)
    for name, threshold in js_4000.items():
        feature = iris.features[name]
        window = rng.choice(columns[name], 4000) + rng.normal(0, 0.05 * feature.std, 4000)
        drifted = feature.mean + feature.std + 1.5 * (window - feature.mean)
        counts = np.bincount(np.searchsorted(feature.edges, drifted, "right"), minlength=len(feature.edges) + 1)
        assert drift.js_divergence(counts, feature.histogram_counts()) > 3 * threshold


def test_bad_arguments(iris):
    with pytest.raises(ValueError, match="unknown drift metric"):
        calibration.drift_thresholds(iris, "emd", 100)
    with pytest.raises(ValueError, match="wasserstein only"):
        calibration.drift_thresholds(iris, "kl", 100, normalize=True)
    with pytest.raises(ValueError, match="window_size"):
        calibration.drift_thresholds(iris, "js", 0)
    with pytest.raises(ValueError, match="false_alarm_rate"):
        calibration.drift_thresholds(iris, "js", 100, 1.5)
