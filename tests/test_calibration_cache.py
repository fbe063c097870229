"""The calibration cache: curves computed once per (baseline, metric, rate, normalize, calibration source),
read back equal to `udfs.calibration.threshold_curves`, any dataclass of arrays stored by field name without
pickle, and a damaged file recomputed."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from udfs import baseline_cli, calibration, calibration_cache
from udfs.baseline import Baseline

IRIS = Path(__file__).resolve().parents[1] / "examples" / "iris"


@pytest.fixture(scope="module")
def iris():
    return Baseline.load(IRIS / "baseline.json")


def _equal(a: calibration.ThresholdCurves, b: calibration.ThresholdCurves) -> bool:
    return list(a.values) == list(b.values) and all(np.array_equal(a.values[n], b.values[n]) for n in a.values)


def test_curves_are_written_once_and_read_back_from_the_file(iris, tmp_path):
    computed = calibration.threshold_curves(iris, "psi", 0.01)
    first = calibration_cache.threshold_curves(iris, "psi", 0.01, folder=tmp_path)
    path = tmp_path / calibration_cache.file_name(iris, "psi", 0.01, False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name] and _equal(first, computed)
    assert path.name.startswith(f"{iris.fingerprint}-psi-0.01-raw-{calibration_cache.CALIBRATION_VERSION}")
    planted = calibration.ThresholdCurves({name: values * 2 for name, values in computed.values.items()})
    calibration_cache.save_fields(planted, path)
    assert _equal(calibration_cache.threshold_curves(iris, "psi", 0.01, folder=tmp_path), planted)  # read, not run


def test_every_input_of_the_calibration_is_in_the_key(iris):
    names = {calibration_cache.file_name(baseline, metric, rate, normalize) for baseline, metric, rate, normalize in [
        (iris, "wasserstein", 0.01, False), (iris, "wasserstein", 0.01, True), (iris, "wasserstein", 0.05, False),
        (iris, "kl", 0.01, False), (Baseline(dict(list(iris.features.items())[:2])), "wasserstein", 0.01, False)]}
    assert len(names) == 5


def test_a_damaged_file_is_computed_again_and_replaced(iris, tmp_path):
    path = tmp_path / calibration_cache.file_name(iris, "js", 0.01, False)
    path.write_bytes(b"PK\x03\x04 not a zip archive")
    curves = calibration_cache.threshold_curves(iris, "js", 0.01, folder=tmp_path)
    assert _equal(curves, calibration.threshold_curves(iris, "js", 0.01))
    assert _equal(calibration_cache.load_fields(calibration.ThresholdCurves, path), curves)


@dataclasses.dataclass(frozen=True)
class _Fields:
    by_name: dict
    grid: np.ndarray
    rate: float
    label: str
    empty: dict


def test_any_dataclass_of_arrays_round_trips_by_field_name_without_pickle(tmp_path):
    original = _Fields({"a b": np.arange(3.0), "ü": np.eye(2)}, np.linspace(0, 1, 5), 0.01, "kl", {})
    calibration_cache.save_fields(original, tmp_path / "x.npz")
    loaded = calibration_cache.load_fields(_Fields, tmp_path / "x.npz")
    assert list(loaded.by_name) == ["a b", "ü"] and np.array_equal(loaded.by_name["ü"], np.eye(2))
    assert np.array_equal(loaded.grid, original.grid) and (loaded.rate, loaded.label, loaded.empty) == (0.01, "kl", {})
    assert isinstance(loaded.rate, float)
    with pytest.raises(TypeError, match="stored only by pickle"):
        calibration_cache.save_fields(_Fields({}, np.zeros(1), 0.0, "x", {"k": [object()]}), tmp_path / "y.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]  # no temporary file left behind


def test_the_cache_sits_beside_a_local_baseline_else_in_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration_cache.CACHE_ENV, str(tmp_path / "shared"))
    assert calibration_cache.folder_for(tmp_path / "b.json") == tmp_path / "b.json.calibration"
    assert calibration_cache.folder_for("https://example.org/b.json") == tmp_path / "shared"
    assert (tmp_path / "shared").is_dir()


def test_mmon_baseline_calibrate_caches_what_a_default_spec_needs(tmp_path, capsys):
    out = tmp_path / "baseline.json"
    assert baseline_cli.main([str(IRIS / "iris_training.csv"), "--label", "species", "-o", str(out), "--calibrate"]) == 0
    assert "calibrated wasserstein, kl, js, psi, hellinger in" in capsys.readouterr().out
    loaded = Baseline.load(out)
    folder = tmp_path / "baseline.json.calibration"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        calibration_cache.file_name(loaded, metric, 0.01, False) for metric in ("wasserstein", "kl", "js", "psi", "hellinger"))
    cached = calibration_cache.load_fields(calibration.ThresholdCurves, folder / calibration_cache.file_name(loaded, "kl", 0.01, False))
    assert _equal(cached, calibration.threshold_curves(loaded, "kl", 0.01))


def test_columns_that_share_a_null_share_one_array_after_a_read(tmp_path):
    """Twenty columns of one shape of data (equal quantile-bin counts) share one null; read back from the cache they
    still do, so the curves pickle to the size the calibration made (they travel pickled with the drift step)."""
    import pickle

    rng = np.random.default_rng(5)
    csv = tmp_path / "training.csv"
    np.savetxt(csv, rng.normal(size=(500, 20)), delimiter=",", header=",".join(f"f{j}" for j in range(20)), comments="")
    baseline = Baseline.from_csv(csv)
    computed = calibration.threshold_curves(baseline, "js", 0.01)
    calibration_cache.threshold_curves(baseline, "js", 0.01, folder=tmp_path)
    read = calibration_cache.threshold_curves(baseline, "js", 0.01, folder=tmp_path)
    assert len({id(null) for null in computed.nulls.values()}) == 1
    assert len({id(null) for null in read.nulls.values()}) == 1
    assert all(np.array_equal(read.nulls[name], computed.nulls[name]) for name in computed.nulls)
    assert len(pickle.dumps(read)) < 1.2 * len(pickle.dumps(computed))
