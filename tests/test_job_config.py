"""`mmon run` refuses bad configuration with one clear line naming the field, before any JVM starts;
and the plan-time pieces (intervals, shards, outlier bounds) are exact. No Flink here."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from contract import spec as config
from contract.spec import ConfigError, load_spec, shard_count

from udfs import drift as drift_math
from udfs import performance as realised
from udfs import two_sample
from udfs.baseline import Baseline

from flink_job import drift, outliers, watermarks, windows
from flink_job import main as run_main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "iris" / "monitor.yaml"


def _write_spec(tmp_path: Path, edit, example: Path = EXAMPLE) -> Path:
    """``example`` (the Iris spec unless given) edited by ``edit``, its baseline an absolute path."""
    spec = yaml.safe_load(example.read_text())
    spec["baseline"] = str(example.parent / spec["baseline"])
    edit(spec)
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _set(path: str, value):
    def edit(spec):
        *parents, leaf = path.split(".")
        node = spec
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return edit


@pytest.mark.parametrize("field, value, message", [
    ("window.duration", "fifteen", "window.duration: expected a duration"),
    ("window.watermark_delay", -1, "window.watermark_delay: must be a whole, non-negative"),
    ("input.format", "xml", "input.format: must be one of thesis, kserve-v1, oip-v2"),
    ("input.features", [], "input.features: at least one feature is required"),
    ("outliers.sigma", -2, "outliers.sigma: must be > 0, got -2"),
    ("drift.metrics", {"euclid": {"threshold": 1}}, "drift.metrics.euclid: unknown metric"),
    ("drift.metrics", {"kl": {"threshold": "high"}}, "drift.metrics.kl.threshold:"),
    ("job.parallelism", 0, "job.parallelism: must be >= 1"),
    ("job.delivery_guarantee", "twice", "job.delivery_guarantee: must be one of"),
    ("window.tumbling", True, "window.tumbling: unknown field"),
])
def test_each_bad_field_is_named_in_one_line(tmp_path, capsys, field, value, message):
    config = _write_spec(tmp_path, _set(field, value))
    assert run_main.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmon run: ") and message in err
    assert "\n" not in err


@pytest.mark.parametrize("field, value, message", [
    ("outliers.sigma", float("nan"), "outliers.sigma: must be a finite number, got nan"),
    ("outliers.sigma", float("-inf"), "outliers.sigma: must be a finite number, got -inf"),
    ("drift.metrics", {"kl": {"threshold": float("nan")}}, "drift.metrics.kl.threshold: must be a finite number, got nan"),
    ("drift.metrics", {"kl": {"threshold": float("inf")}}, "drift.metrics.kl.threshold: must be a finite number, got inf"),
    ("drift.metrics", {"kl": {"false_alarm_rate": float("nan")}},
     "drift.metrics.kl.false_alarm_rate: must be a finite number, got nan"),
    ("drift.metrics", {"kl": {"false_alarm_rate": 1}}, "drift.metrics.kl.false_alarm_rate: must be > 0 and < 1, got 1"),
    ("drift.metrics", {"kl": {"false_alarm_rate": 0}}, "drift.metrics.kl.false_alarm_rate: must be > 0 and < 1, got 0"),
    ("output", {"type": "numeric", "join_timeout": "99999999999999999999s"},
     "output.join_timeout: must be > 0ms and <= 1d, got 99999999999999991611392ms"),
    ("output", {"type": "numeric", "join_timeout": "86400001ms"},
     "output.join_timeout: must be > 0ms and <= 1d, got 86400001ms"),
    ("job.checkpoint_interval", "0s", "job.checkpoint_interval: must be >= 100ms and <= 365d, got 0ms"),
    ("job.checkpoint_interval", "99ms", "job.checkpoint_interval: must be >= 100ms and <= 365d, got 99ms"),
    ("window.duration", "99999999999999999999s", "window.duration: must be > 0ms and <= 365d, got 9999"),
    ("window.watermark_delay", float("nan"), "window.watermark_delay: must be a whole, non-negative number"),
    ("window.idle_timeout", float("inf"), "window.idle_timeout: must be a whole, non-negative number"),
    ("window.max_future_skew", 10 ** 400, "window.max_future_skew: must be >= 0ms and <= 365d, got 1"),
    ("job.parallelism", 10 ** 30, f"job.parallelism: must be >= 1 and <= 32768 (Flink's largest), got {10 ** 30}"),
])
def test_numbers_are_finite_and_in_range_and_durations_bounded(tmp_path, capsys, field, value, message):
    """Issue 20: `sigma: .nan` turned sigma alerts off without a word; `join_timeout: 99999999999999999999s` and
    `checkpoint_interval: 0s` passed. Each is refused in one line that starts with the field's path."""
    config = _write_spec(tmp_path, _set(field, value))
    assert run_main.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mmon run: {message}"), err
    assert "\n" not in err


def test_the_bounds_themselves_are_accepted(tmp_path):
    spec = load_spec(_write_spec(tmp_path, lambda s: s.update(output={"type": "numeric", "join_timeout": "24h"})
                                 or s["job"].update(checkpoint_interval="100ms", parallelism=32_768)
                                 or s["drift"].update(metrics={"kl": {"threshold": 0, "false_alarm_rate": 0.999}})))
    assert (spec.output.join_timeout, spec.job.checkpoint_interval, spec.job.parallelism) == (86_400_000, 100, 32_768)
    assert (spec.drift.metrics["kl"].threshold, spec.drift.metrics["kl"].false_alarm_rate) == (0.0, 0.999)
    assert load_spec(_write_spec(tmp_path, _set("window.duration", "8760h"))).window.duration == 365 * 86_400_000
    assert load_spec(_write_spec(tmp_path, _set("window.duration", "365d"))).window.duration == 365 * 86_400_000


@pytest.mark.parametrize("text, millis", [("7d", 7 * 86_400_000), ("1.5d", 129_600_000), (" 2 d ", 172_800_000),
                                          ("36h", 129_600_000), ("1d", 86_400_000)])
def test_durations_read_days(text, millis):
    """Issue 21: ``ground_truth.max_delay`` is days; every duration reads ``d``, and a whole number of days is
    written in days (the messages', the reference's and the CRD's bounds)."""
    assert config.Duration.parse(text, "x") == millis
    assert config.duration_text(millis) == {129_600_000: "36h"}.get(millis, text.strip().replace(" ", ""))


# ------------------------------------------------------------------ issue 21: ground_truth and the label topics

PENGUINS = EXAMPLE.parent.parent / "penguins" / "monitor.yaml"


def _penguins(tmp_path: Path, edit) -> Path:
    """The penguins spec (categorical output ``prediction``) edited."""
    return _write_spec(tmp_path, edit, PENGUINS)


def test_ground_truth_defaults_and_round_trip(tmp_path):
    spec = load_spec(_penguins(tmp_path, lambda s: s.update(ground_truth={})))
    assert spec.ground_truth == config.GroundTruthSpec(max_delay=7 * 86_400_000, metrics=("accuracy",),
                                                       false_alarm_rate=0.01, update_interval=10_000)
    assert (spec.kafka.topics.labels, spec.kafka.topics.performance) == (None, "performance")
    assert config.parse_spec(json.loads(json.dumps(config.spec_to_dict(spec)))) == spec
    assert load_spec(_penguins(tmp_path, lambda s: None)).ground_truth is None
    numeric = load_spec(_write_spec(tmp_path, lambda s: s.update(output={"type": "numeric"}, ground_truth={})))
    assert numeric.ground_truth.metrics == ("mae",)  # a numeric output's default
    chosen = load_spec(_penguins(tmp_path, lambda s: s.update(ground_truth={
        "max_delay": "90d", "metrics": ["f1_macro", "confusion", "accuracy"], "false_alarm_rate": 0.001,
        "update_interval": "1m"}) or s["kafka"]["topics"].update(labels="penguins-labels", performance="perf")))
    assert (chosen.ground_truth.max_delay, chosen.ground_truth.metrics, chosen.ground_truth.update_interval) == (
        90 * 86_400_000, ("f1_macro", "confusion", "accuracy"), 60_000)
    assert (chosen.kafka.topics.labels, chosen.kafka.topics.performance) == ("penguins-labels", "perf")


def test_ground_truth_metrics_are_the_output_types_own():
    assert config.GROUND_TRUTH_METRICS == {
        "categorical": ("accuracy", "precision", "recall", "f1", "f1_macro", "confusion"),
        "numeric": ("mae", "rmse", "bias")}
    assert all(set(config.DEFAULT_GROUND_TRUTH_METRICS[kind]) <= set(names)
               for kind, names in config.GROUND_TRUTH_METRICS.items())


def assert_refused_in_one_line(path: Path, capsys, message: str) -> None:
    """The spec at ``path`` fails with ``message`` when loaded, and `mmon run` exits 2 saying it in one line."""
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(message), caught.value
    assert run_main.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mmon run: {message}") and "\n" not in err, err


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("output"), "ground_truth: needs an output section"),
    (lambda s: s["ground_truth"].update(metrics=["mae"]),
     "ground_truth.metrics[0]: 'mae' applies to a numeric output, and output 'prediction' is categorical "
     "(for a categorical output: accuracy, precision, recall, f1, f1_macro, confusion)"),
    (lambda s: s["ground_truth"].update(metrics=["accuracy", "auc"]), "ground_truth.metrics[1]: unknown metric 'auc'"),
    (lambda s: s["ground_truth"].update(metrics=["f1", "f1"]), "ground_truth.metrics[1]: 'f1' is listed twice"),
    (lambda s: s["ground_truth"].update(metrics=[]), "ground_truth.metrics: at least one metric is required"),
    (lambda s: s["ground_truth"].update(metrics="accuracy"), "ground_truth.metrics: expected a list"),
    (lambda s: s["ground_truth"].update(max_delay="91d"),
     "ground_truth.max_delay: must be > 0ms and <= 90d (each waiting prediction is kept in state), got 91d"),
    (lambda s: s["ground_truth"].update(max_delay=0), "ground_truth.max_delay: must be > 0ms and <= 90d"),
    (lambda s: s["ground_truth"].update(max_delay="a week"), "ground_truth.max_delay: expected a duration"),
    (lambda s: s["ground_truth"].update(update_interval="0s"), "ground_truth.update_interval: must be > 0ms and <= 1d"),
    (lambda s: s["ground_truth"].update(false_alarm_rate=1), "ground_truth.false_alarm_rate: must be > 0 and < 1, got 1"),
    (lambda s: s["ground_truth"].update(horizon="7d"), "ground_truth.horizon: unknown field"),
    (lambda s: s["kafka"]["topics"].update(labels=""), "kafka.topics.labels: expected a non-empty string"),
])
def test_each_bad_ground_truth_field_is_named_in_one_line(tmp_path, capsys, edit, message):
    path = _penguins(tmp_path, lambda s: s.update(ground_truth={"metrics": ["accuracy"]}) or edit(s))
    assert_refused_in_one_line(path, capsys, message)


def test_a_numeric_output_takes_the_numeric_metrics(tmp_path):
    spec = load_spec(_write_spec(tmp_path, lambda s: s.update(output={"type": "numeric"},
                                                               ground_truth={"metrics": ["rmse", "bias", "mae"]})))
    assert spec.ground_truth.metrics == ("rmse", "bias", "mae")
    with pytest.raises(ConfigError, match=r"^ground_truth\.metrics\[0\]: 'accuracy' applies to a categorical output"):
        load_spec(_write_spec(tmp_path, lambda s: s.update(output={"type": "numeric"}, ground_truth={})
                              or s["ground_truth"].update(metrics=["accuracy"])))


def test_versions_defaults_and_round_trip(tmp_path):
    """Issue 22: at most 4 versions, the kserve-v1 version in the endpoint attribute, no comparison by default."""
    spec = load_spec(_write_spec(tmp_path, lambda s: None))
    assert spec.versions == config.VersionsSpec(max=4, cloudevent_attribute="endpoint", stable=None, candidate=None,
                                                min_count=30)
    chosen = load_spec(_write_spec(tmp_path, _set("versions", {"max": 2, "stable": "default", "candidate": "canary",
                                                               "min_count": 50, "cloudevent_attribute": "component"})))
    assert chosen.versions == config.VersionsSpec(2, "component", "default", "canary", 50)
    assert config.parse_spec(json.loads(json.dumps(config.spec_to_dict(chosen)))).versions == chosen.versions


@pytest.mark.parametrize("versions, message", [
    ({"max": 0}, "versions.max: must be >= 1 and <= 64 (each version keeps its own window state), got 0"),
    ({"max": 65}, "versions.max: must be >= 1 and <= 64"),
    ({"stable": "default"}, "versions.candidate: required with versions.stable"),
    ({"candidate": "canary"}, "versions.stable: required with versions.candidate"),
    ({"stable": "v1", "candidate": "v1"}, "versions.candidate: must differ from versions.stable, both are 'v1'"),
    ({"max": 1, "stable": "a", "candidate": "b"}, "versions.max: must be at least 2 to compare 'a' with 'b', got 1"),
    ({"min_count": 0}, "versions.min_count: must be >= 1, got 0"),
    ({"stable": ""}, "versions.stable: expected a non-empty string"),
    ({"canary": "x"}, "versions.canary: unknown field"),
])
def test_each_bad_versions_field_is_named_in_one_line(tmp_path, capsys, versions, message):
    path = _write_spec(tmp_path, _set("versions", versions))
    assert_refused_in_one_line(path, capsys, message)


def test_missing_files_are_clear_errors(tmp_path, capsys):
    assert run_main.main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read monitor spec" in capsys.readouterr().err
    config = _write_spec(tmp_path, _set("baseline", str(tmp_path / "missing.json")))
    assert run_main.main(["--config", str(config)]) == 2
    assert "baseline: no such file" in capsys.readouterr().err
    good = _write_spec(tmp_path, lambda spec: None)
    assert run_main.main(["--config", str(good), "--input", str(tmp_path / "none.jsonl")]) == 2
    assert "--input" in capsys.readouterr().err


def test_help_explains_the_modes(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_main.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--config", "--input", "--output", "--kafka", "--seed", "--stage-size"):
        assert option in text


@pytest.mark.parametrize("millis, sql", [(6000, "INTERVAL '6.000' SECOND"), (2500, "INTERVAL '2.500' SECOND"),
                                         (0, "INTERVAL '0.000' SECOND"), (15, "INTERVAL '0.015' SECOND")])
def test_interval_literals(millis, sql):
    assert watermarks.interval_sql(millis) == sql


@pytest.mark.parametrize("features, shards, bounds", [(4, 1, [0, 4]), (4, 2, [0, 2, 4]), (5, 2, [0, 2, 5]),
                                                     (1000, 3, [0, 333, 666, 1000])])
def test_shards_are_contiguous_nearly_equal_blocks(features, shards, bounds):
    assert windows.shard_bounds(features, shards) == bounds


def test_shard_count_defaults_to_the_parallelism_and_never_exceeds_the_features(tmp_path):
    two = load_spec(_write_spec(tmp_path, lambda s: s["job"].update(parallelism=2)))
    assert shard_count(two) == 2
    many = load_spec(_write_spec(tmp_path, lambda s: s["job"].update(shards=9)))
    assert shard_count(many) == len(many.input.features)
    with_output = load_spec(_write_spec(tmp_path, lambda s: s["job"].update(shards=9) or s.update(output={"type": "numeric"})))
    assert with_output.columns == (*with_output.input.names, "prediction") and shard_count(with_output) == 5


def test_metric_names_are_the_numeric_cores_list_without_importing_it():
    assert config.DRIFT_METRICS == drift_math.METRIC_NAMES
    assert config.HISTOGRAM_METRICS == tuple(drift_math.METRICS)
    assert config.TWO_SAMPLE_TESTS == tuple(drift_math.TESTS)
    assert config.NUMERIC_ONLY_METRICS == drift_math.NUMERIC_ONLY
    assert config.GROUND_TRUTH_METRICS == dict(realised.METRICS_BY_TYPE)
    assert set(typing.get_args(typing.get_type_hints(config.FeatureSpec)["type"])) == set(config.FEATURE_TYPES)
    assert set(typing.get_args(typing.get_type_hints(config.OutputSpec)["type"])) == set(config.FEATURE_TYPES)
    probe = "import json, sys, contract.spec; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert not {"numpy", "scipy", "udfs", "pyflink"} & set(loaded)


def test_two_sample_tests_are_opt_in(tmp_path):
    default = load_spec(_write_spec(tmp_path, lambda s: s["drift"].pop("metrics")))
    assert tuple(default.drift.metrics) == config.HISTOGRAM_METRICS
    assert windows.two_sample_tests(default) == ()
    both = load_spec(_write_spec(tmp_path, lambda s: s["drift"]["metrics"].update(cvm={"threshold": 0.3}, ks={})))
    assert windows.two_sample_tests(both) == ("ks", "cvm")


def test_drift_step_thresholds_the_window_steps_two_sample_statistics(tmp_path):
    spec = load_spec(_write_spec(tmp_path, lambda s: s["drift"].update(
        emit_all=True, metrics={"ks": {"false_alarm_rate": 0.05}, "cvm": {"threshold": 0.3}})))
    baseline = Baseline.load(spec.baseline)
    feature = spec.input.names[0]
    sample = baseline.features[feature].sample
    window = sample[::2] + 0.5
    tests = {"ks": float(two_sample.ks_statistic(two_sample.empirical_cdf(window), len(window), 0.0, sample)),
             "cvm": float(two_sample.cvm_statistic(two_sample.empirical_cdf(window), len(window), 0.0, sample))}
    empty_histogram = [0] * (len(baseline.features[feature].edges) + 1)
    rows = drift.WindowRows([feature], [0], [10], [len(window)], [0], [empty_histogram], [json.dumps(tests)])
    out = drift.drift_records(spec, rows, drift.evaluate(spec, drift.window_drift(spec, baseline), rows))
    records = {metric: json.loads(text) for metric, text in out[0]}
    assert set(records) == {"ks", "cvm"} and all(r["count"] == len(window) for r in records.values())
    assert records["ks"]["value"] == tests["ks"] and records["cvm"]["value"] == tests["cvm"]
    assert records["ks"]["threshold"] == float(two_sample.ks_threshold(len(sample), len(window), 0.05))
    assert records["cvm"]["threshold"] == 0.3
    assert records["ks"]["drift"] and records["ks"]["value"] > records["ks"]["threshold"]  # shifted by 0.5
    assert records["cvm"]["drift"] == (records["cvm"]["value"] > 0.3)


def test_watermark_folds_in_allowed_lateness(tmp_path):
    config = _write_spec(tmp_path, lambda s: s["window"].update(watermark_delay="6s", allowed_lateness="1500ms"))
    clause = watermarks.watermark_clause(load_spec(config).window)
    assert clause == "WATERMARK FOR rowtime AS rowtime - INTERVAL '7.500' SECOND"


def test_outlier_bounds_come_from_the_baseline_per_feature(tmp_path):
    config = _write_spec(tmp_path, lambda s: s["outliers"].update(sigma=2.5, range=True))
    spec = load_spec(config)
    baseline = Baseline.load(spec.baseline)
    sigma, extremes = outliers.rules(spec, baseline)
    assert (sigma.name_below, sigma.name_above, extremes.name_below, extremes.name_above) == ("sigma", "sigma", "min", "max")
    for j, name in enumerate(spec.input.names):
        feature = baseline.features[name]
        assert sigma.lower[j] == feature.mean - 2.5 * feature.std and sigma.upper[j] == feature.mean + 2.5 * feature.std
        assert (extremes.lower[j], extremes.upper[j]) == (feature.min, feature.max)


def test_missing_jar_says_run_make_setup(tmp_path, capsys, monkeypatch):
    from flink_job import jvm

    monkeypatch.setattr(jvm, "UDFS_JAR", tmp_path / "absent.jar")
    good = _write_spec(tmp_path, lambda spec: None)
    assert run_main.main(["--config", str(good)]) == 2
    err = capsys.readouterr().err
    assert "absent.jar" in err and "make setup" in err


@pytest.mark.parametrize("kafka, input_lines, preset, expected", [
    (False, 250_000, "", "-Xmx1g -XX:TieredStopAtLevel=1 -XX:+UseParallelGC"),
    (False, 1_000_000, "", "-Xmx1g -XX:+UseParallelGC"),
    (False, 250_000, "-Xmx2g -XX:+UseG1GC", "-Xmx2g -XX:+UseG1GC -XX:TieredStopAtLevel=1"),
    (False, 250_000, "-XX:TieredStopAtLevel=4", "-XX:TieredStopAtLevel=4 -Xmx1g -XX:+UseParallelGC"),
    (True, 0, "-Xmx3g", "-Xmx3g -XX:+UseParallelGC"),
    (True, 0, "", "-Xmx1g -XX:+UseParallelGC"),
    (True, 0, "-XX:+UseG1GC", "-XX:+UseG1GC -Xmx1g"),
])
def test_local_jvm_flags_by_mode_and_input_size_and_jvm_args_win(kafka, input_lines, preset, expected):
    from flink_job import jvm

    assert jvm.local_jvm_args(preset, kafka, input_lines) == expected


def test_prepare_local_jvm_sets_the_variables_pyflink_reads():
    from flink_job import jvm

    environ = {"JVM_ARGS": "-Xmx2g", "HADOOP_CLASSPATH": "/x.jar"}
    jvm.prepare_local_jvm(kafka=False, input_lines=10, prometheus=True, environ=environ)
    assert environ["JVM_ARGS"] == "-Xmx2g -XX:TieredStopAtLevel=1 -XX:+UseParallelGC"
    entries = environ["HADOOP_CLASSPATH"].split(os.pathsep)
    assert entries[0] == "/x.jar" and any("prometheus" in Path(e).name for e in entries[1:]), entries


def test_features_are_names_or_typed_entries_and_numeric_only_metrics_refuse_categorical_ones(tmp_path):
    typed = load_spec(_write_spec(tmp_path, lambda s: s["input"].update(
        features=["a", {"name": "b", "type": "categorical"}, {"name": "c"}])
        or s["drift"].update(metrics={"js": {}, "chi2": {}, "missing_rate": {}})))
    assert typed.input.names == ("a", "b", "c") and typed.input.categorical == ("b",)
    assert [f.type for f in typed.input.features] == ["numeric", "categorical", "numeric"]
    assert config.parse_spec(json.loads(json.dumps(config.spec_to_dict(typed)))) == typed
    with pytest.raises(ConfigError, match=r"drift\.metrics\.wasserstein: applies to numeric features only, and 'b'"):
        load_spec(_write_spec(tmp_path, lambda s: s["input"].update(features=["a", {"name": "b", "type": "categorical"}])))
    with pytest.raises(ConfigError, match=r"drift\.metrics\.ks: .* 'prediction' is categorical"):
        load_spec(_write_spec(tmp_path, lambda s: s.update(output={}) or s["drift"].update(metrics={"ks": {}})))
    with pytest.raises(ConfigError, match=r"input\.features\[1\]\.type: must be one of numeric, categorical"):
        load_spec(_write_spec(tmp_path, lambda s: s["input"].update(features=["a", {"name": "b", "type": "text"}])))
    with pytest.raises(ConfigError, match=r"output\.name: names must be unique"):
        load_spec(_write_spec(tmp_path, lambda s: s.update(output={"name": "sepal_length", "type": "numeric"})))
    with pytest.raises(ConfigError, match=r"output\.join_timeout: must be > 0ms"):
        load_spec(_write_spec(tmp_path, lambda s: s.update(output={"type": "numeric", "join_timeout": 0})))


@pytest.mark.parametrize("feature,message", [
    ("colour", r"input\.features\[1\]\.type: 'colour' is numeric in the spec and categorical in the baseline"),
    ("weight", r"input\.features: 'weight' is not in the baseline"),
])
def test_mmon_run_refuses_features_the_baseline_cannot_serve(tmp_path, capsys, feature, message):
    from udfs.baseline import Baseline

    from flink_job import main as run_main
    csv = tmp_path / "training.csv"
    csv.write_text("size,colour\n" + "".join(f"{i % 7 + 0.5},{'red' if i % 3 else 'blue'}\n" for i in range(40)))
    Baseline.from_csv(csv).save(tmp_path / "baseline.json")
    config = _write_spec(tmp_path, lambda s: s.update(baseline=str(tmp_path / "baseline.json"))
                         or s["input"].update(features=["size", feature]))
    assert run_main.main(["--config", str(config)]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_kafka_source_fetches_large_batches_unless_the_spec_says_otherwise():
    """The source's fetch sizes (issue 23: the consumer's 1 MiB per partition capped wide records' reads), each
    overridden by ``kafka.properties``."""
    import dataclasses

    from contract.spec import load_spec
    from flink_job import source

    spec = load_spec(EXAMPLE)
    ddl = source.kafka_source_ddl(spec, "127.0.0.1:9092")
    assert f"'properties.max.partition.fetch.bytes' = '{16 << 20}'" in ddl
    assert f"'properties.fetch.max.bytes' = '{64 << 20}'" in ddl
    tuned = dataclasses.replace(spec, kafka=dataclasses.replace(spec.kafka, properties={"max.partition.fetch.bytes": "1048576"}))
    ddl = source.kafka_source_ddl(tuned, "127.0.0.1:9092")
    assert "'properties.max.partition.fetch.bytes' = '1048576'" in ddl and str(16 << 20) not in ddl
