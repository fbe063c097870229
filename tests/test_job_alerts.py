"""Drift control and alert episodes end to end: an embedded run of a seeded 300-feature Gaussian model
(`streams.wide`'s training set, baseline and spec, five histogram metrics and ``outlier_rate`` at ``auto``: 1,800
tests a window)
over a stream drawn fresh from the model: 40 null windows, a stage of 6 windows in which 10 features shift by
+1 sd, then 14 null windows. The model verdict's false alarms on the null windows stay within q (a binomial
bound), the drift windows' false discovery proportion is reported, and each shifted feature gets exactly one
episode, opened then closed, while the calm features get none."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import stats

from contract import formats

from streams import iris, wide

from devtools.processes import live_start_ms

from embedded_run import EXAMPLE, run_mmon
from kafka_jobs import kafka_spec, latest_checkpoint, polled, produce, run_until, start, stats_consumer, write_spec

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

WIDTH, SHIFTED, SEED = 300, 10, 5
WINDOW_MS, PER_WINDOW = 3_000, 150
STAGES = (("null", 40), ("shift", 6), ("null", 14))  # windows per stage
START_MS = 1_800_000_000_000


def _stream(training: np.ndarray, rng: np.random.Generator) -> tuple[list[str], dict[int, str]]:
    """The lines (one instance each, evenly spread over each window) and each window's stage, by window start."""
    mean, std = training.mean(axis=0), training.std(axis=0, ddof=1)
    lines, stage_of = [], {}
    window = 0
    for stage, windows in STAGES:
        for _ in range(windows):
            start = START_MS + window * WINDOW_MS
            rows = rng.normal(mean, std, (PER_WINDOW, WIDTH))
            if stage == "shift":
                rows[:, :SHIFTED] += std[:SHIFTED]
            times = start + (np.arange(PER_WINDOW) * WINDOW_MS) // PER_WINDOW
            lines += [formats.encode(formats.THESIS, f"r{window}-{i}", int(t), [np.round(row, 6).tolist()])
                      for i, (t, row) in enumerate(zip(times, rows))]
            stage_of[start] = stage
            window += 1
    return lines, stage_of


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alerts")
    model = wide.make_model(WIDTH, seed=SEED, work=tmp, template=EXAMPLE, instances=5, span_s=1.0)
    spec = yaml.safe_load(model.spec_path.read_text())
    spec["window"].update(duration=f"{WINDOW_MS}ms", watermark_delay="500ms")
    spec["drift"]["metrics"]["outlier_rate"] = {"threshold": "auto"}
    training = np.loadtxt(model.spec_path.parent / "training.csv", delimiter=",", skiprows=1)
    lines, stage_of = _stream(training, np.random.default_rng(SEED))
    input_path = tmp / "input.jsonl"
    input_path.write_text("\n".join(lines) + "\n")
    return {**run_mmon(spec, input_path, tmp), "stage_of": stage_of,
            "shifted": {f"f{j}" for j in range(SHIFTED)}}


def test_model_verdict_false_alarms_on_null_windows_stay_within_q(run):
    verdicts = {r["window_start"]: r for r in run["model_drift"]}
    assert set(verdicts) == set(run["stage_of"])
    null = [verdicts[start] for start, stage in run["stage_of"].items() if stage == "null"]
    alarms = sum(r["drift"] for r in null)
    q = null[0]["q"]
    assert all(r["tests"] == WIDTH * len(run["metrics"]) for r in null)
    assert stats.binomtest(alarms, len(null), q, alternative="greater").pvalue > 0.01, (alarms, len(null))
    assert all(verdicts[start]["drift"] for start, stage in run["stage_of"].items() if stage == "shift")
    assert all((r["p_value"] <= q) == r["drift"] for r in run["model_drift"])


def test_false_discovery_proportion_in_the_drift_windows(run):
    shifted_windows = [start for start, stage in run["stage_of"].items() if stage == "shift"]
    proportions = []
    for start in shifted_windows:
        found = [r for r in run["drift"] if r["window_start"] == start and r["discovery"]]
        false = [r for r in found if r["feature"] not in run["shifted"]]
        proportions.append(len(false) / len(found))
        assert {r["feature"] for r in found} >= run["shifted"]
    print(f"false discovery proportion per drift window: {np.round(proportions, 3).tolist()}, "
          f"mean {np.mean(proportions):.3f} (q = {run['model_drift'][0]['q']})")
    assert np.mean(proportions) <= 0.1


def test_outlier_rate_finds_the_shifted_tails(run):
    """A +1 sd shift puts about 2.3 % of the values beyond +3 sd (0.13 % before), 3.4 of a window's 150: outlier_rate
    is discovered for 25 of the 60 (shifted feature, shift window) pairs in this run, and hardly ever in the null
    windows (16,200 tests there: 1 in this run, 5 values of 150 beyond the bounds)."""
    records = [r for r in run["drift"] if r["metric"] == "outlier_rate" and r["discovery"]]
    null = [r for r in records if run["stage_of"][r["window_start"]] == "null"]
    shifted = [r for r in records if run["stage_of"][r["window_start"]] == "shift"]
    assert len(null) <= 2, null
    assert sum(r["feature"] in run["shifted"] for r in shifted) >= 0.9 * len(shifted)
    assert len(shifted) >= SHIFTED / 4 * sum(stage == "shift" for stage in run["stage_of"].values())


def test_each_shifted_feature_gets_one_episode_and_calm_features_none(run):
    events = [e for e in run["alerts"] if e["scope"] == "feature"]
    assert run["summary"]["alert_episodes"] == SHIFTED + 1  # and the model's
    assert run["summary"]["drift_windows"] == sum(r["drift"] for r in run["model_drift"])
    assert {e["feature"] for e in events} == run["shifted"]
    first_shift = min(start for start, stage in run["stage_of"].items() if stage == "shift")
    for feature in run["shifted"]:
        kinds = [e["event"] for e in events if e["feature"] == feature]
        assert kinds[0] == "open" and kinds[-1] == "close" and kinds.count("open") == kinds.count("close") == 1
        opened = next(e for e in events if e["feature"] == feature)
        assert opened["first_window"] == first_shift and opened["window_start"] == first_shift + WINDOW_MS
    model = [e["event"] for e in run["alerts"] if e["scope"] == "model"]
    assert model == ["open"] + ["update"] * (model.count("update")) + ["close"]


@pytest.mark.kafka
@pytest.mark.timeout(900)
def test_an_open_episode_survives_a_restart_from_a_checkpoint(kafka_broker, tmp_path):
    """Exactly-once on Kafka, killed while the model's drift episode is open (its open event committed, so a checkpoint
    holds it) and restored: the restored job updates and closes that episode (its first window from before the kill)
    and never opens a second one; every subject's events alternate open, updates, close."""
    window_ms = 5_000
    spec, topics = kafka_spec(EXAMPLE, kafka_broker.bootstrap, window_ms, "exactly-once")
    config = write_spec(spec, tmp_path / "monitor.yaml")
    kafka_broker.create_topics(list(topics.values()), partitions=1)
    stream = iris.generate(seed=3, stage_size=200, rates=(10.0,) * 5, start_ms=live_start_ms())  # 20 s a stage
    lines = [(rid, t, formats.encode(formats.THESIS, rid, t, [row]))
             for rid, t, row in zip(stream.ids.tolist(), stream.time_ms.tolist(), stream.instances.tolist())]
    split = 2 * 200 + 150  # three quarters into the drift stage
    alerts_consumer = stats_consumer(kafka_broker.bootstrap, topics["alerts"])
    verdicts_consumer = stats_consumer(kafka_broker.bootstrap, topics["model_drift"])
    events, verdicts = [], []

    def poll():
        events.extend(polled(alerts_consumer))
        verdicts.extend(polled(verdicts_consumer))

    def model_open():
        return any(e["scope"] == "model" and e["event"] == "open" for e in events)

    checkpoints = tmp_path / "checkpoints"
    produce(kafka_broker.bootstrap, topics["inference"], lines[:split])
    job = start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "first.log")
    run_until(job, model_open, poll, tmp_path / "first.log")
    opened = next(e for e in events if e["scope"] == "model" and e["event"] == "open")
    flush_ms = lines[-1][1] + 6 * window_ms  # past the last window and the episodes' closing windows
    flush = ("flush", flush_ms, formats.encode(formats.THESIS, "flush", flush_ms, [stream.instances[0].tolist()]))
    produce(kafka_broker.bootstrap, topics["inference"], lines[split:] + [flush])
    last_window = lines[-1][1] // window_ms * window_ms
    restore = latest_checkpoint(checkpoints)
    job = start(config, kafka_broker.bootstrap, checkpoints, tmp_path / "second.log", restore=restore)
    try:
        run_until(job, lambda: (any(v["window_start"] == last_window for v in verdicts)  # both topics read to the end
                                and any(e["scope"] == "model" and e["event"] == "close" for e in events)),
                  poll, tmp_path / "second.log")
    finally:
        alerts_consumer.close()
        verdicts_consumer.close()
    model = [e for e in events if e["scope"] == "model"]
    assert [e["event"] for e in model][0] == "open" and [e["event"] for e in model].count("open") == 1
    assert [e["event"] for e in model][-1] == "close"
    assert all(e["first_window"] == opened["first_window"] for e in model)
    assert any(e["window_start"] > opened["window_start"] for e in model)  # events of the restored job
    for subject in {(e["scope"], e["feature"]) for e in events}:
        kinds = [e["event"] for e in events if (e["scope"], e["feature"]) == subject]
        assert all(a != "open" or b != "open" for a, b in zip(kinds, kinds[1:])), (subject, kinds)
        assert kinds.count("open") - kinds.count("close") in (0, 1), (subject, kinds)
