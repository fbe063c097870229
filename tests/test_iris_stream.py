"""The staged Iris stream: reproducibility, stage contents, arrival rates, labels and wire formats."""
import csv
import hashlib
import subprocess
import sys

import numpy as np
import pytest

from contract import formats

from udfs.baseline import Baseline

from streams import iris

SMALL = 2_000  # stage size where a full-size stream is not needed


@pytest.fixture(scope="module")
def stream():
    return iris.generate()


@pytest.fixture(scope="module")
def baseline():
    return Baseline.from_csv(iris.DEFAULT_TRAINING,
                             features=["sepal_length", "sepal_width", "petal_length", "petal_width"])


@pytest.fixture(scope="module")
def mu_sigma(baseline):
    mu = np.array([f.mean for f in baseline.features.values()])
    sigma = np.array([f.std for f in baseline.features.values()])
    return mu, sigma


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shape_and_order(stream):
    n = 5 * iris.DEFAULT_STAGE_SIZE
    assert stream.instances.shape == (n, 4) and stream.instances.dtype == np.float64
    assert stream.time_ms.dtype == np.int64 and stream.stage.dtype == np.int8
    assert stream.outlier_feature.dtype == np.int8
    assert stream.feature_names == ("sepal_length", "sepal_width", "petal_length", "petal_width")
    assert stream.ids[0] == "req-000000000" and stream.ids[-1] == f"req-{n - 1:09d}"
    assert len(set(stream.ids.tolist())) == n
    assert np.all(np.diff(stream.time_ms) >= 0) and stream.time_ms[0] >= iris.DEFAULT_START_MS
    assert np.array_equal(np.bincount(stream.stage), [0] + [iris.DEFAULT_STAGE_SIZE] * 5)
    assert np.array_equal(stream.instances, np.round(stream.instances, iris.DECIMALS))


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    paths = [tmp_path / name for name in ("a.jsonl", "b.jsonl", "c.jsonl")]
    for path, seed in zip(paths, (7, 7, 8)):
        iris.write_jsonl(iris.generate(seed=seed, stage_size=SMALL), path)
    assert _sha256(paths[0]) == _sha256(paths[1])
    assert _sha256(paths[0]) != _sha256(paths[2])


def test_cli_writes_the_same_bytes_as_the_api(tmp_path):
    out = tmp_path / "cli.jsonl"
    proc = subprocess.run([sys.executable, "-m", "mmon.cli", "stream", "--seed", "3", "--stage-size", "500",
                           "--start", "1700000000000", "--format", "kserve-v1", "-o", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2500 requests" in proc.stderr and proc.stderr.count("\n") == 1
    api = tmp_path / "api.jsonl"
    expected = iris.generate(seed=3, stage_size=500, start_ms=1_700_000_000_000)
    iris.write_jsonl(expected, api, "kserve-v1")
    assert _sha256(out) == _sha256(api)
    iris.write_labels(expected, tmp_path / "api.labels.csv")
    assert _sha256(tmp_path / "cli.jsonl.labels.csv") == _sha256(tmp_path / "api.labels.csv")


@pytest.mark.parametrize("stage", [2, 4])
def test_outlier_stages_hold_ten_percent_one_feature_each(stream, mu_sigma, stage):
    mu, sigma = mu_sigma
    rows = stream.stage == stage
    labels = stream.outlier_feature[rows]
    assert abs(np.mean(labels >= 0) - 0.10) <= 0.005
    z = np.abs(stream.instances[rows] - mu) / sigma
    beyond = z > 3.5 - 1e-3  # values are rounded to 4 decimals
    flagged = labels >= 0
    assert np.all(beyond[flagged].sum(axis=1) == 1)
    assert np.array_equal(np.argmax(beyond[flagged], axis=1), labels[flagged])
    assert np.all(z[flagged].max(axis=1) <= 6.0 + 1e-3)
    assert not beyond[~flagged].any()
    counts = np.bincount(labels[flagged], minlength=4)  # the feature is chosen uniformly
    assert np.all(np.abs(counts / counts.sum() - 0.25) < 0.03)
    signs = np.sign((stream.instances[rows] - mu)[flagged, labels[flagged]])
    assert abs(np.mean(signs > 0) - 0.5) < 0.04


def test_no_outliers_outside_stages_2_and_4(stream):
    assert np.all(stream.outlier_feature[np.isin(stream.stage, [1, 3, 5])] == -1)


def test_normal_stages_match_the_baseline(stream, mu_sigma):
    mu, sigma = mu_sigma
    for stage in (1, 5):
        x = stream.instances[stream.stage == stage]
        assert np.all(np.abs(x.mean(axis=0) - mu) < 0.02 * sigma)
        # resampling keeps the population spread sqrt((n-1)/n) sigma; jitter adds 0.05 sigma in quadrature
        expected = sigma * np.sqrt(119 / 120 + 0.05 ** 2)
        assert np.all(np.abs(x.std(axis=0) / expected - 1) < 0.02)


def test_drift_stage_moves_one_sigma_and_widens(stream, mu_sigma):
    mu, sigma = mu_sigma
    x = stream.instances[stream.stage == 3]
    assert np.all(np.abs(x.mean(axis=0) - (mu + sigma)) < 0.03 * sigma)
    expected = 1.5 * sigma * np.sqrt(119 / 120 + 0.05 ** 2)
    assert np.all(np.abs(x.std(axis=0) / expected - 1) < 0.02)


def test_arrivals_are_poisson_at_the_stage_rates(stream):
    boundaries = iris.stage_boundaries_ms(stream)
    assert len(boundaries) == 6 and boundaries[0] == stream.time_ms[0]
    for stage, rate in enumerate(iris.DEFAULT_RATES, start=1):
        times = stream.time_ms[stream.stage == stage]
        assert boundaries[stage - 1] == times[0] and times[-1] < boundaries[stage]
        gaps = np.diff(times)
        assert abs(gaps.mean() / (1000 / rate) - 1) < 0.02
        assert 0.93 < gaps.std() / gaps.mean() < 1.07  # exponential gaps: coefficient of variation 1


def test_labels_file_matches_the_stream(tmp_path):
    small = iris.generate(seed=11, stage_size=SMALL)
    path = tmp_path / "labels.csv"
    iris.write_labels(small, path)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == small.ids.tolist()
    assert [int(r["stage"]) for r in rows] == small.stage.tolist()
    assert [int(r["outlier_feature"]) for r in rows] == small.outlier_feature.tolist()
    assert sum(int(r["outlier_feature"]) >= 0 for r in rows) == 2 * round(0.1 * SMALL)


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_written_lines_decode_to_the_stream(tmp_path, fmt):
    small = iris.generate(seed=5, stage_size=200)
    path = tmp_path / f"{fmt}.jsonl"
    iris.write_jsonl(small, path, fmt)
    lines = path.read_text().splitlines()
    assert len(lines) == len(small)
    parsed = [formats.decode(fmt, line, n_features=4) for line in lines]
    assert [p.request_id for p in parsed] == small.ids.tolist()
    assert [p.time_ms for p in parsed] == small.time_ms.tolist()
    assert np.array_equal(np.array([p.instances[0] for p in parsed]), small.instances)


def test_custom_rates_and_start():
    s = iris.generate(seed=1, stage_size=SMALL, rates=(1000, 1000, 1000, 1000, 1000), start_ms=10**12)
    assert s.time_ms[0] >= 10**12
    assert abs((s.time_ms[-1] - 10**12) / (5 * SMALL) - 1.0) < 0.05  # ~1 ms per request


def test_bad_input_gives_a_one_line_error(tmp_path, capsys):
    assert iris.main(["--training", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mmon stream: error: training CSV not found") and err.count("\n") == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,species\n1,x,0\n2,3,1\n")
    assert iris.main(["--training", str(bad), "-o", str(tmp_path / "x")]) == 1
    assert "numeric" in capsys.readouterr().err
    assert iris.main(["--rates", "1,2,3", "-o", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err == "mmon stream: error: need 5 positive rates, got [1.0, 2.0, 3.0]\n"
    assert iris.main(["--stage-size", "0", "-o", str(tmp_path / "x")]) == 1
    assert "stage size must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        iris.main(["--rates", "fast"])
    assert exited.value.code == 2
    with pytest.raises(ValueError, match="5 positive rates"):
        iris.generate(rates=(1, 2, 3, 4, 0))
