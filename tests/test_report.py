"""`mmon report`: the page of the session's embedded run (conftest `embedded_run`) checked against its
output files, the same page made from Kafka topics, synthetic runs for the down-sampling and the
flagged-only drift output, and the page opened in headless Chromium with networking disabled."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from flink_job.config import parse_spec
from report import figures, page
from report.cli import main as report_main
from report.outputs import FILES, RunOutputs, frames

from embedded_run import WINDOW_MS

REPO = Path(__file__).resolve().parent.parent
flink = pytest.mark.flink


class _Tags(HTMLParser):
    """Every start tag with its attributes, in document order, and the text of each ``<p id=...>``."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text_by_id: dict[str, str] = {}
        self._paragraph: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "p" and "id" in dict(attrs):
            self._paragraph = dict(attrs)["id"]
            self.text_by_id[self._paragraph] = ""

    def handle_endtag(self, tag):
        if tag == "p":
            self._paragraph = None

    def handle_data(self, data):
        if self._paragraph:
            self.text_by_id[self._paragraph] += data

    def having(self, attribute: str, tag: str | None = None) -> list[dict]:
        return [attrs for name, attrs in self.tags if attribute in attrs and tag in (None, name)]

    def classed(self, css_class: str) -> list[dict]:
        return [attrs for _, attrs in self.tags if css_class in attrs.get("class", "").split()]


def _mmon_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flink_job.cli", "report", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def report(embedded_run, tmp_path_factory):
    """`mmon report` of the embedded run's folder (its saved spec.json gives the spec and baseline)."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    proc = _mmon_report(str(embedded_run["output"]), "-o", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = path.read_text()
    return {"path": path, "html": html, "tags": _Tags(html), "stdout": proc.stdout}


def _counts(tags: _Tags) -> dict[str, int]:
    return {attrs["data-count"]: int(attrs["data-value"]) for attrs in tags.having("data-count", "dd")}


def _flagged_in_drift_file(drift: list[dict]) -> set[tuple[str, int]]:
    return {(r["feature"], r["window_start"]) for r in drift if r["drift"]}


@flink
def test_the_page_is_one_self_contained_file(report):
    html = report["html"]
    assert f"wrote {report['path']}" in report["stdout"]
    assert not re.search(r"<script|<link|@import|url\(", html, re.I)
    sources = re.findall(r'\ssrc="([^"]*)"', html)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    assert not re.search(r'href="(?!#)', html)
    assert len(html.encode()) < 3_000_000


@flink
def test_one_timeline_per_feature_and_metric(report, embedded_run):
    timelines = [(a["data-feature"], a["data-metric"]) for a in report["tags"].classed("timeline")]
    spec = yaml.safe_load(embedded_run["spec_path"].read_text())
    expected = {(f, m) for f in spec["input"]["features"] for m in spec["drift"]["metrics"]}
    assert len(timelines) == len(set(timelines)) == len(expected) == 4 * 7
    assert set(timelines) == expected == {(r["feature"], r["metric"]) for r in embedded_run["drift"]}
    assert "incomplete-timelines" not in report["html"]  # the run's spec has emit_all


@flink
def test_flagged_windows_are_those_of_drift_jsonl(report, embedded_run):
    expected = _flagged_in_drift_file(embedded_run["drift"])
    assert expected, "the embedded run's drift stage is flagged"
    episodes = {(a["data-feature"], start) for a in report["tags"].classed("episode")
                for start in range(int(a["data-start"]), int(a["data-end"]), WINDOW_MS)}
    assert episodes == expected
    drawn = {(a["data-feature"], int(start)) for a in report["tags"].classed("histograms")
             for start in a["data-windows"].split()}
    assert max(Counter(f for f, _ in expected).values()) <= figures.MAX_HISTOGRAMS  # so every one is drawn
    assert drawn == expected


@flink
def test_summary_counts_equal_the_files(report, embedded_run):
    counts, tags = _counts(report["tags"]), report["tags"]
    summary, stats = embedded_run["summary"], embedded_run["stats"]
    n_instances = sum(len(rows) for _, _, rows in embedded_run["requests"])
    assert counts["instances"] == summary["instances"] == n_instances
    assert counts["windows"] == summary["windows"] == len({r["window_start"] for r in stats})
    assert counts["drift_alerts"] == summary["drift_alerts"] == sum(r["drift"] for r in embedded_run["drift"])
    assert counts["outliers"] == summary["outliers"] == len(embedded_run["outliers"])
    assert counts["dead_letters"] == summary["dead_letter"] == len(embedded_run["dead"])
    [time_range] = tags.having("data-first", "dd")
    assert int(time_range["data-first"]) == min(r["window_start"] for r in stats)
    assert int(time_range["data-last"]) == max(r["window_end"] for r in stats)
    by_feature = {a["data-feature"]: int(a["data-value"]) for a in tags.having("data-value", "tr") if "data-feature" in a}
    assert by_feature == {f: Counter(r["feature"] for r in embedded_run["outliers"])[f] for f in embedded_run["features"]}
    by_reason = {a["data-reason"]: int(a["data-value"]) for a in tags.having("data-reason", "tr")}
    assert by_reason == Counter(r["reason"] for r in embedded_run["dead"]) == Counter([*embedded_run["bad"], "late"])


@flink
def test_accounting_line_adds_up(report, embedded_run):
    summary = embedded_run["summary"]
    [line] = report["tags"].having("data-balanced", "p")
    assert line["data-balanced"] == "true"
    text = " ".join(report["tags"].text_by_id["accounting"].split())
    assert (f"records read {summary['records_read']:,} = requests accepted {summary['requests_accepted']:,} "
            f"+ dead-lettered {summary['dead_letter']:,}") in text
    assert f"instances accepted {summary['instances_accepted']:,} = instances in windows {summary['instances']:,}" in text


def _kafka_spec(embedded_run, bootstrap: str, tmp: Path) -> tuple[Path, dict]:
    spec = yaml.safe_load(embedded_run["spec_path"].read_text())
    suffix = uuid.uuid4().hex[:8]
    topics = {kind: f"report-{kind}-{suffix}" for kind in ("inference", "stats", "outliers", "drift", "dead_letter")}
    spec["kafka"].update(bootstrap_servers=bootstrap, topics=topics)
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, topics


@flink
@pytest.mark.kafka
def test_report_from_kafka_topics_equals_the_folder_report(report, embedded_run, kafka_broker, tmp_path):
    """The run's output files produced into the spec's topics (two partitions each; the covariance records
    into the stats topic as the job does), plus records written three hours ago that --since 1h skips."""
    from kafka import KafkaProducer

    spec_path, topics = _kafka_spec(embedded_run, kafka_broker.bootstrap, tmp_path)
    kafka_broker.create_topics([topics[kind] for kind in FILES], partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=5)
    now_ms, out = int(time.time() * 1000), embedded_run["output"]
    files = {**{kind: [name] for kind, name in FILES.items()}, "stats": ["stats.jsonl", "covariance.jsonl"]}
    stale = {**embedded_run["stats"][0], "feature": "stale_feature"}
    producer.send(topics["stats"], value=json.dumps(stale).encode(), timestamp_ms=now_ms - 3 * 3_600_000)
    for kind, names in files.items():
        for line in (line for name in names for line in (out / name).read_text().splitlines()):
            producer.send(topics[kind], value=line.encode(), timestamp_ms=now_ms)
    producer.flush()
    producer.close()

    path = tmp_path / "kafka.html"
    proc = _mmon_report("--kafka", kafka_broker.bootstrap, "--config", str(spec_path), "--since", "1h", "-o", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tags = _Tags(path.read_text())
    assert _counts(tags) == _counts(report["tags"])
    for css_class in ("timeline", "episode", "histograms"):
        assert tags.classed(css_class) == report["tags"].classed(css_class), css_class
    assert "stale_feature" not in path.read_text()
    assert not tags.having("data-balanced")  # the job's read counts are not in the topics


def _synthetic(n_windows: int, emit_all: bool, flagged_every: int = 50) -> tuple[RunOutputs, object]:
    """A run of ``n_windows`` one-minute windows of two features and one drift metric (every
    ``flagged_every``-th window flagged), with the spec it claims to come from."""
    features, edges, start = ("a", "b"), [0.0, 1.0, 2.0, 3.0, 4.0], 1_800_000_000_000
    rng = np.random.default_rng(3)
    stats, drift = [], []
    for i in range(n_windows):
        window = {"window_start": start + i * 60_000, "window_end": start + (i + 1) * 60_000, "count": 100}
        for feature in features:
            counts = rng.multinomial(100, [0.25] * 4).tolist()
            stats.append({**window, "feature": feature, "mean": 2.0, "p25": 1.0, "p50": 2.0, "p75": 3.0,
                          "histogram": {"edges": edges, "counts": counts, "underflow": 0, "overflow": 0}})
            flagged = i % flagged_every == 0
            if flagged or emit_all:
                drift.append({**window, "feature": feature, "metric": "js", "value": 0.2 if flagged else 0.01,
                              "threshold": 0.1, "drift": flagged})
    spec = parse_spec({"model": {"name": "m"}, "input": {"features": list(features)}, "baseline": "unused.json",
                       "drift": {"emit_all": emit_all, "metrics": {"js": {}}}})
    outputs = RunOutputs(**frames({"stats": stats, "drift": drift}), summary=None, source="synthetic")
    return outputs, spec


def test_a_long_run_is_down_sampled():
    outputs, spec = _synthetic(5_000, emit_all=True)
    html = page.render(outputs, spec, {})
    tags = _Tags(html)
    assert len(tags.classed("timeline")) == 2
    assert len(html.encode()) < 2_000_000
    assert _counts(tags)["instances"] == 5_000 * 100
    drawn = [len(a["data-windows"].split()) for a in tags.classed("histograms")]
    assert drawn == [figures.MAX_HISTOGRAMS] * 2  # of 100 flagged windows each


def test_buckets_keep_short_runs_whole_and_bound_long_ones():
    assert figures.buckets(7).tolist() == list(range(7))
    long = figures.buckets(20_000)
    assert len(np.unique(long)) == figures.MAX_POINTS and np.all(np.diff(long) >= 0)
    assert np.bincount(long).min() == 20_000 // figures.MAX_POINTS
    assert figures.chosen_windows(list(range(100)), 5) == [0, 25, 50, 74, 99]


def test_flagged_only_drift_output_is_said_on_the_page():
    outputs, spec = _synthetic(120, emit_all=False, flagged_every=10)
    tags = _Tags(page.render(outputs, spec, {}))
    assert "incomplete-timelines" in tags.text_by_id
    assert len(tags.classed("timeline")) == 2
    assert len(tags.classed("episode")) == 2 * 12


def test_outputs_without_windows_make_a_page_that_says_so():
    outputs, spec = _synthetic(0, emit_all=True)
    tags = _Tags(page.render(outputs, spec, {}))
    assert "no-windows" in tags.text_by_id
    assert _counts(tags) == {"instances": 0, "windows": 0, "drift_alerts": 0, "outliers": 0, "dead_letters": 0}


@pytest.mark.parametrize("argv, message", [
    ([], "give an output folder DIR or --kafka"),
    (["--kafka", "127.0.0.1:9", "--config", "examples/iris/monitor.yaml", "somewhere"], "one of them"),
    (["--kafka", "127.0.0.1:9"], "--kafka needs --config"),
    (["tests", "--since", "1h"], "use it with --kafka"),
    (["tests", "--config", "examples/iris/monitor.yaml"], "not the output folder of `mmon run`"),
    (["tests"], "no saved spec"),
])
def test_unusable_arguments_exit_2_with_the_reason(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert report_main(argv) == 2
    assert message in capsys.readouterr().err


def _console_and_page_requests(log: str, netlog: Path) -> tuple[list[str], list[str]]:
    """The page's console messages (Chromium logs them as INFO:CONSOLE) and the network requests made
    for the page (their isolation key is the page's file:// site; the browser's own are not)."""
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    events = json.loads(netlog.read_text())["events"]
    requests = [e["params"]["url"] for e in events
                if str(e.get("params", {}).get("network_isolation_key", "")).startswith("file://")
                and "url" in e["params"]]
    return console, requests


@flink
def test_the_page_in_headless_chromium(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on PATH: `make setup` installs Debian's chromium when run as root "
                    "(or: apt-get install chromium)")
    screenshot, netlog = tmp_path / "report.png", tmp_path / "netlog.json"
    proc = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", f"--log-net-log={netlog}", "--window-size=1280,2400",
         f"--screenshot={screenshot}", report["path"].resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and screenshot.is_file(), proc.stderr[-3000:]
    console, requests = _console_and_page_requests(proc.stderr, netlog)
    assert console == [] and requests == []
    pixels = np.asarray(Image.open(screenshot).convert("L"))
    assert pixels.shape == (2400, 1280)
    assert (pixels < 200).mean() > 0.03  # text, tables and plots, not a blank page
    assert len(np.unique(pixels)) > 50
