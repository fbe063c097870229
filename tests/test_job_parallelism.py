"""The job gives the same records at parallelism 1 and 2: the session's 128-feature run (tests/embedded_run.py:
parallelism 2, the window state in 3 shards) against the same input and spec at parallelism 1. Records are
compared without their wall-clock field; window means and standard deviations may differ by the order
their sub-batches are summed in, nothing else may differ at all (counts, min, max, percentiles,
histograms, drift values and thresholds, outlier alerts, dead letters and their sources)."""
from __future__ import annotations

import copy

import pytest

from contract import outputs

from embedded_run import run_mmon

pytestmark = [pytest.mark.flink, pytest.mark.timeout(600)]

WALL_CLOCK = {outputs.STATS: "emitted_at", outputs.DRIFT: "emitted_at", outputs.OUTLIERS: "detected_at",
              outputs.DEAD_LETTER: "at"}
KEYS = {outputs.STATS: ("feature", "window_start"), outputs.DRIFT: ("feature", "window_start", "metric"),
        outputs.OUTLIERS: ("request_id", "feature", "value"), outputs.DEAD_LETTER: ("source",)}
SUMMED = {"stats": ("mean", "stddev")}
NOT_COMPARED = ("job_seconds", "instances_per_s")  # summary figures of the wall clock


@pytest.fixture(scope="module")
def serial_run(wide_run, tmp_path_factory):
    spec = copy.deepcopy(wide_run["spec"])
    assert spec["job"]["parallelism"] == 2
    spec["job"]["parallelism"] = 1
    return run_mmon(spec, wide_run["input_path"], tmp_path_factory.mktemp("serial"))


def _records(run: dict, kind: str) -> list[dict]:
    """The run's records of ``kind`` without their wall-clock field, sorted by `KEYS`."""
    records = [{k: v for k, v in r.items() if k != WALL_CLOCK[kind]} for r in run[kind]]
    return sorted(records, key=lambda r: tuple(r[k] for k in KEYS[kind]))


@pytest.mark.parametrize("kind", list(KEYS))
def test_parallelism_1_and_2_give_the_same_records(wide_run, serial_run, kind):
    parallel, serial = _records(wide_run, kind), _records(serial_run, kind)
    assert serial, "the run has records of every kind"
    assert [[r[k] for k in KEYS[kind]] for r in parallel] == [[r[k] for k in KEYS[kind]] for r in serial]
    summed = SUMMED.get(kind, ())
    for a, b in zip(parallel, serial):
        assert {k: v for k, v in a.items() if k not in summed} == {k: v for k, v in b.items() if k not in summed}
        assert [a[k] for k in summed] == pytest.approx([b[k] for k in summed], rel=1e-12)


def test_parallelism_1_and_2_give_the_same_summary(wide_run, serial_run):
    parallel, serial = ({k: v for k, v in run["summary"].items() if k not in NOT_COMPARED}
                        for run in (wide_run, serial_run))
    assert parallel == serial and serial["accounted"] is True


@pytest.fixture(scope="module")
def gateway_jvm():
    """A JVM through PyFlink's gateway (a table environment starts it)."""
    from pyflink.table import EnvironmentSettings, TableEnvironment
    TableEnvironment.create(EnvironmentSettings.in_streaming_mode())


@pytest.mark.parametrize("parallelism,shards", [(2, 2), (2, 3), (4, 4), (4, 9), (8, 8)])
def test_shard_keys_spread_the_shards_over_every_window_subtask(gateway_jvm, parallelism, shards):
    from flink_job import java_functions, windows
    keys = windows.shard_keys(shards, parallelism)
    subtasks = [java_functions.subtask_of_key(k, windows.MAX_PARALLELISM, parallelism) for k in keys]
    assert len(set(keys)) == shards
    assert subtasks == [s % parallelism for s in range(shards)]  # every subtask busy, shards dealt round
    plain = {java_functions.subtask_of_key(s, windows.MAX_PARALLELISM, parallelism) for s in range(shards)}
    if (parallelism, shards) == (2, 2):
        assert plain == {0}  # the plain shard numbers would have crowded onto one subtask
