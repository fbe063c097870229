"""`mmon report`: the page of the session's embedded run (conftest `embedded_run`) checked against its
output files, the same page made from Kafka topics, the page of the penguins run (conftest `penguins_run`:
categorical features, missing values, the model's predictions) against its files, the same run with realised
performance records written beside it and a real run of the penguins example with ground truth (the model
performance section), synthetic runs for the
down-sampling and the flagged-only drift output, a synthetic 300-feature run folder for the features drawn in detail
(--max-features, --features) and the capped summary, and the page opened in headless Chromium with
networking disabled."""
from __future__ import annotations

import base64
import dataclasses
import io
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

import matplotlib.dates as matplotlib_dates
import numpy as np
import pytest
import yaml
from PIL import Image

from contract import outputs as output_names

from contract.spec import load_spec, parse_spec, spec_to_dict

from udfs.baseline import Baseline, FeatureBaseline

from report import figures, page
from report import findings as findings_module
from report.cli import main as report_main
from report.findings import SelectionError, find, select
from report.outputs import FILES, RunOutputs, frames, from_directory

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
    return subprocess.run([sys.executable, "-m", "mmon.cli", "report", *args], cwd=REPO, capture_output=True,
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
    """The (feature, window) pairs the page flags: discovered, or over a threshold that has no p-value."""
    return {(r["feature"], r["window_start"]) for r in drift if r.get("discovery", r["drift"])}


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
    assert counts["drift_alerts"] == sum(bool(r.get("discovery", r["drift"])) for r in embedded_run["drift"])
    assert counts.get("raw_flags", counts["drift_alerts"]) == summary["drift_alerts"] == sum(r["drift"] for r in embedded_run["drift"])
    assert counts["model_drift_windows"] == summary["drift_windows"] == sum(r["drift"] for r in embedded_run["model_drift"])
    assert counts["alert_episodes"] == summary["alert_episodes"] == sum(e["event"] == "open" for e in embedded_run["alerts"])
    assert counts["outliers"] == summary["outliers"] == len(embedded_run["outliers"])
    assert counts["dead_letters"] == summary["dead_letter"] == len(embedded_run["dead_letter"])
    [time_range] = tags.having("data-first", "dd")
    assert int(time_range["data-first"]) == min(r["window_start"] for r in stats)
    assert int(time_range["data-last"]) == max(r["window_end"] for r in stats)
    by_feature = {a["data-feature"]: int(a["data-value"]) for a in tags.having("data-value", "tr") if "data-feature" in a}
    assert by_feature == {f: Counter(r["feature"] for r in embedded_run["outliers"])[f] for f in embedded_run["features"]}
    by_reason = {a["data-reason"]: int(a["data-value"]) for a in tags.having("data-reason", "tr")}
    assert by_reason == Counter(r["reason"] for r in embedded_run["dead_letter"]) == Counter([*embedded_run["bad"], "late"])


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
    topics = {kind: f"report-{kind}-{suffix}" for kind in ("inference", *FILES)}  # every kind the report reads
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
    files = {**{kind: [name] for kind, name in FILES.items() if (out / name).is_file()},  # no performance.jsonl
             "stats": ["stats.jsonl", "covariance.jsonl"]}
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
    for css_class in ("timeline", "episode", "histograms", "alert-episode"):
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


WIDE_FEATURES, WIDE_WINDOWS, WIDE_WINDOW_MS, WIDE_START = 300, 10, 15_000, 1_800_000_000_000
WIDE_METRICS = ("wasserstein", "js", "psi")


@pytest.fixture(scope="module")
def wide_folder(tmp_path_factory) -> dict:
    """The output folder of a made-up 300-feature embedded run (the files' shapes as `mmon run` writes them,
    drift.emit_all false): 25 drifted features, each flagged in a known number of random windows by a known
    number of metrics, and a distinct outlier count per feature; with what the page must show."""
    rng = np.random.default_rng(11)
    out = tmp_path_factory.mktemp("wide-run")
    features = [f"f{i}" for i in range(WIDE_FEATURES)]
    drifted = {feature: (int(rng.integers(1, WIDE_WINDOWS + 1)), int(rng.integers(1, len(WIDE_METRICS) + 1)))
               for feature in rng.choice(features, 25, replace=False)}  # feature -> (windows, metrics per window)
    n_outliers = dict(zip(features, (int(n) for n in rng.permutation(WIDE_FEATURES))))
    baseline = {f: FeatureBaseline.from_values(rng.normal(size=400), bins=8) for f in features}
    Baseline(baseline, source="test").save(out / "baseline.json")
    spec = parse_spec({"model": {"name": "wide"}, "input": {"features": features},
                       "baseline": str(out / "baseline.json"), "window": {"duration": f"{WIDE_WINDOW_MS}ms"},
                       "drift": {"emit_all": False, "metrics": {m: {} for m in WIDE_METRICS}}})
    (out / "spec.json").write_text(json.dumps(spec_to_dict(spec), indent=2))
    stats, drift, outliers, flagged = [], [], [], {}
    for feature, (windows, metrics) in drifted.items():
        flagged[feature] = sorted(int(w) for w in rng.choice(WIDE_WINDOWS, windows, replace=False))
    for w in range(WIDE_WINDOWS):
        window = {"model": "wide", "window_start": WIDE_START + w * WIDE_WINDOW_MS,
                  "window_end": WIDE_START + (w + 1) * WIDE_WINDOW_MS}
        for feature in features:
            edges = baseline[feature].edges
            counts = rng.multinomial(100, [1 / (len(edges) - 1)] * (len(edges) - 1)).tolist()
            stats.append({**window, "feature": feature, "count": 100, "mean": 0.0, "stddev": 1.0, "min": -3.0,
                          "max": 3.0, "p25": -0.7, "p50": 0.0, "p75": 0.7, "iqr": 1.4,
                          "histogram": {"edges": edges.tolist(), "counts": counts, "underflow": 0, "overflow": 0}})
        for feature, (_, metrics) in drifted.items():
            if w in flagged[feature]:
                drift += [{**window, "feature": feature, "metric": metric, "value": 0.5, "threshold": 0.2,
                           "drift": True, "count": 100} for metric in WIDE_METRICS[:metrics]]
    for feature, n in n_outliers.items():
        for i in range(n):
            outliers.append({"model": "wide", "request_id": f"req-{feature}-{i}", "feature": feature, "value": 9.0,
                             "rule": "sigma", "threshold": 3.0,
                             "request_time": WIDE_START + int(rng.integers(WIDE_WINDOWS * WIDE_WINDOW_MS))})
    for name, records in (("stats", stats), ("drift", drift), ("outliers", outliers), ("dead_letter", [])):
        (out / FILES[name]).write_text("".join(json.dumps(r) + "\n" for r in records))
    instances = 100 * WIDE_WINDOWS
    (out / "summary.json").write_text(json.dumps({
        "instances": instances, "windows": WIDE_WINDOWS, "outliers": len(outliers), "drift_alerts": len(drift),
        "late": 0, "dead_letter": 0, "records_read": instances, "requests_accepted": instances,
        "instances_accepted": instances, "accounted": True}))
    index = {f: i for i, f in enumerate(features)}
    by_drift = sorted(drifted, key=lambda f: (-drifted[f][0], -drifted[f][0] * drifted[f][1], index[f]))
    others = sorted(set(features) - set(drifted), key=lambda f: (-n_outliers[f], index[f]))
    return {"dir": out, "features": features, "ranked": by_drift + others, "drifted": drifted, "flagged": flagged,
            "outliers": n_outliers, "drift": drift}


def _wide_report(wide_folder, tmp_path, *options: str) -> tuple[_Tags, str]:
    path = tmp_path / "wide.html"
    assert report_main([str(wide_folder["dir"]), "-o", str(path), *options]) == 0
    html = path.read_text()
    return _Tags(html), html


def _drawn_in_detail(tags: _Tags) -> dict[str, list[str]]:
    """Section -> the features it draws, in page order (each once)."""
    [selection] = tags.having("data-shown", "p")
    [statistics, outliers] = [a["data-features"].split() for a in tags.classed("features-plot")]
    return {"selection": selection["data-shown"].split(),
            "timelines": list(dict.fromkeys(a["data-feature"] for a in tags.classed("timeline"))),
            "histograms": [a["data-feature"] for a in tags.classed("histograms")],
            "statistics": statistics, "outliers": outliers}


@pytest.mark.parametrize("options, shown", [((), 20), (("--max-features", "30"), 30)])
def test_a_wide_run_draws_the_most_flagged_features_in_detail(wide_folder, tmp_path, capsys, options, shown):
    """Drifted features first (most flagged windows, then most alerts), then the others by outlier count,
    at most --max-features (default 20) of the 300; emit_all false: timelines and histograms exist for
    the flagged features alone."""
    tags, html = _wide_report(wide_folder, tmp_path, *options)
    expected = wide_folder["ranked"][:shown]
    flagged = [f for f in expected if f in wide_folder["drifted"]]
    assert len(flagged) == min(shown, 25)
    assert _drawn_in_detail(tags) == {"selection": expected, "timelines": flagged, "histograms": flagged,
                                      "statistics": expected, "outliers": expected}
    timelines = {(a["data-feature"], a["data-metric"]) for a in tags.classed("timeline")}
    assert timelines == {(r["feature"], r["metric"]) for r in wide_folder["drift"] if r["feature"] in expected}
    [selection] = tags.having("data-hidden", "p")
    assert int(selection["data-hidden"]) == WIDE_FEATURES - shown
    text = " ".join(tags.text_by_id["detail-selection"].split())
    assert f"{WIDE_FEATURES - shown} features are not drawn in detail" in text and "--features" in text
    assert f"--max-features {shown}" in text
    assert len(html.encode()) < 5_000_000
    assert "MB in" in capsys.readouterr().out


def test_a_wide_summary_counts_every_feature(wide_folder, tmp_path):
    """The counts equal the files'; the ranking lists every drifted feature and the next 20, the rest in
    one line whose counts complete the files'; the episodes table lists the longest ones."""
    tags, html = _wide_report(wide_folder, tmp_path)
    summary = json.loads((wide_folder["dir"] / "summary.json").read_text())
    counts = _counts(tags)
    assert counts == {"instances": summary["instances"], "windows": WIDE_WINDOWS,
                      "drift_alerts": len(wide_folder["drift"]), "outliers": sum(wide_folder["outliers"].values()),
                      "dead_letters": 0}
    rows = tags.classed("ranked")
    listed = 25 + page.TABLE_REST
    assert [a["data-feature"] for a in rows] == wide_folder["ranked"][:listed]
    assert all(int(a["data-value"]) == wide_folder["outliers"][a["data-feature"]] for a in rows)
    assert all(int(a["data-flagged"]) == len(wide_folder["flagged"].get(a["data-feature"], ())) for a in rows)
    [rest] = tags.having("data-features", "p")
    assert int(rest["data-features"]) == WIDE_FEATURES - listed and int(rest["data-flagged"]) == 0
    assert int(rest["data-outliers"]) + sum(int(a["data-value"]) for a in rows) == counts["outliers"]
    runs = [len(run) for windows in wide_folder["flagged"].values()
            for run in np.split(np.array(windows), np.flatnonzero(np.diff(windows) > 1) + 1)]
    episodes = tags.classed("episode")
    assert len(episodes) == min(len(runs), page.MAX_EPISODES)
    lengths = sorted(((int(a["data-end"]) - int(a["data-start"])) // WIDE_WINDOW_MS for a in episodes), reverse=True)
    assert lengths == sorted(runs, reverse=True)[:len(episodes)]
    if len(runs) > page.MAX_EPISODES:
        [line] = tags.having("data-episodes", "p")
        assert int(line["data-episodes"]) == len(runs)


def test_the_features_option_draws_exactly_those(wide_folder, tmp_path, capsys):
    drifted = sorted(wide_folder["drifted"], key=wide_folder["features"].index)
    calm = [f for f in wide_folder["features"] if f not in wide_folder["drifted"]]
    chosen = [calm[-1], drifted[0], calm[0], drifted[-1]]
    tags, _ = _wide_report(wide_folder, tmp_path, "--features", ",".join(chosen), "--max-features", "1")
    flagged = [f for f in chosen if f in wide_folder["drifted"]]
    assert _drawn_in_detail(tags) == {"selection": chosen, "timelines": flagged, "histograms": flagged,
                                      "statistics": chosen, "outliers": chosen}
    text = " ".join(tags.text_by_id["detail-selection"].split())
    assert f"chosen with --features: {', '.join(chosen)}" in text
    assert f"{WIDE_FEATURES - 4} features are not drawn in detail" in text
    assert report_main([str(wide_folder["dir"]), "-o", str(tmp_path / "x.html"), "--features", "f1,nope"]) == 2
    assert "no feature 'nope' in this run" in capsys.readouterr().err


def test_max_features_0_selects_every_feature_and_named_ones_are_kept_once(wide_folder):
    spec = load_spec(wide_folder["dir"] / "spec.json")
    findings = find(from_directory(wide_folder["dir"]), spec)
    assert [r.feature for r in findings.ranking] == wide_folder["ranked"]
    every = select(findings, 0)
    assert list(every.features) == wide_folder["ranked"] and every.hidden == 0 and not every.explicit
    named = select(findings, 5, ["f9", "f2", "f9"])
    assert named.features == ("f9", "f2") and named.hidden == WIDE_FEATURES - 2 and named.explicit
    with pytest.raises(SelectionError, match="no feature 'g1', 'g2' in this run"):
        select(findings, 5, ["f1", "g1", "g2"])


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


def _chromium_screenshot(page_path: Path, tmp_path: Path) -> Image.Image:
    """The page opened in headless Chromium with networking disabled, after checking that it logged nothing
    to the console and requested nothing: its 1280 x 2400 screenshot."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on PATH: `make setup` installs Debian's chromium when run as root "
                    "(or: apt-get install chromium)")
    screenshot, netlog = tmp_path / "report.png", tmp_path / "netlog.json"
    proc = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", f"--log-net-log={netlog}", "--window-size=1280,2400",
         f"--screenshot={screenshot}", page_path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and screenshot.is_file(), proc.stderr[-3000:]
    console, requests = _console_and_page_requests(proc.stderr, netlog)
    assert console == [] and requests == []
    return Image.open(screenshot)


@flink
def test_the_page_in_headless_chromium(report, tmp_path):
    pixels = np.asarray(_chromium_screenshot(report["path"], tmp_path).convert("L"))
    assert pixels.shape == (2400, 1280)
    assert (pixels < 200).mean() > 0.03  # text, tables and plots, not a blank page
    assert len(np.unique(pixels)) > 50



@pytest.fixture(scope="module")
def penguins_report(penguins_run, tmp_path_factory):
    """`mmon report` of the session's penguins run (conftest `penguins_run`): categorical features, missing
    values and the model's predictions."""
    path = tmp_path_factory.mktemp("penguins-report") / "report.html"
    proc = _mmon_report(str(penguins_run["output"]), "-o", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = path.read_text()
    return {"path": path, "html": html, "tags": _Tags(html)}


def _window_records(run: dict, feature: str) -> dict[int, dict]:
    return {r["window_start"]: r for r in run["stats"] if r["feature"] == feature}


@flink
def test_a_penguins_page_draws_every_column_and_its_flagged_windows(penguins_report, penguins_run):
    """Categorical columns and the prediction column: their timelines (missing_rate included), their
    flagged windows (drift.jsonl's) as category bars, the missing-share row, the joined responses."""
    tags, summary = penguins_report["tags"], penguins_run["summary"]
    spec = load_spec(penguins_run["output"] / "spec.json")
    baseline = penguins_run["baseline"].columns
    assert _counts(tags) == {"instances": summary["instances"], "windows": summary["windows"],
                             "drift_alerts": sum(r["discovery"] for r in penguins_run["drift"]),
                             "raw_flags": summary["drift_alerts"], "outliers": summary["outliers"],
                             "dead_letters": summary["dead_letter"],
                             "model_drift_windows": sum(r["drift"] for r in penguins_run["model_drift"]),
                             "alert_episodes": sum(e["event"] == "open" for e in penguins_run["alerts"])}
    timelines = {(a["data-feature"], a["data-metric"]) for a in tags.classed("timeline")}
    assert timelines == {(r["feature"], r["metric"]) for r in penguins_run["drift"]}
    assert len(timelines) == len(spec.columns) * len(spec.drift.metrics) == 7 * 5
    assert {f for f, m in timelines if m == "missing_rate"} == set(spec.columns)
    expected = _flagged_in_drift_file(penguins_run["drift"])
    assert {f for f, _ in expected} == {"island", "sex", "body_mass_g"}  # the three stages that change a column
    drawn = {(a["data-feature"], int(start)) for a in tags.classed("histograms") for start in a["data-windows"].split()}
    assert drawn == expected
    assert [a["data-categories"].split("\t") for a in tags.classed("categories")] == [
        [*baseline[f].categories, "other", "unseen"] for f in ("island", "sex")]  # body_mass_g: a histogram
    [statistics, _] = tags.classed("features-plot")
    assert statistics["data-features"].split() == [r.feature for r in find(from_directory(penguins_run["output"]),
                                                                           spec).ranking]
    with_missing = {r["feature"] for r in penguins_run["stats"] if r["missing"]} | {
        f for f, b in baseline.items() if b.missing}
    assert {"sex", "prediction"} <= with_missing
    assert statistics["data-missing"].split() == [f for f in statistics["data-features"].split() if f in with_missing]
    [joined] = tags.having("data-value", "span")
    assert int(joined["data-value"]) == summary["responses_joined"] == int(penguins_run["stream"].answered.sum())
    assert f"Responses joined to their requests: {summary['responses_joined']:,}" in " ".join(
        tags.text_by_id["accounting"].split())
    assert tags.having("data-balanced")[0]["data-balanced"] == "true"


@flink
@pytest.mark.parametrize("feature", ["island", "sex"])
def test_category_bars_are_the_window_and_baseline_shares(penguins_run, feature):
    """The bars drawn for each flagged window: the shares of stats.jsonl's histogram (categories, other,
    unseen) of the window's present values, beside the baseline's in the drift layout."""
    outputs = from_directory(penguins_run["output"])
    flagged = find(outputs, load_spec(penguins_run["output"] / "spec.json")).flagged[feature]
    starts = figures.chosen_windows(list(flagged))
    reference = penguins_run["baseline"].columns[feature]
    fig = figures.category_figure(figures.per_feature(outputs.stats, [feature])[feature], reference, flagged, starts)
    baseline_bars, window_bars, frames = fig.axes[0].collections
    slots = len(reference.categories) + 2
    assert len(window_bars.get_paths()) == len(baseline_bars.get_paths()) == slots * len(starts)
    assert len(frames.get_paths()) == len(starts)
    records = _window_records(penguins_run, feature)
    baseline_share = np.array([*reference.counts, reference.other - reference.other_unnamed,
                               reference.other_unnamed]) / reference.count
    unseen = 0
    for index, start in enumerate(starts):
        histogram = records[start]["histogram"]
        counts = np.array([*histogram["counts"], histogram["other"], histogram["unseen"]], dtype=float)
        share = counts / records[start]["count"]
        unseen += histogram["unseen"]
        heights = [np.ptp(path.vertices[:4, 1]) for path in window_bars.get_paths()[index * slots:(index + 1) * slots]]
        base = [np.ptp(path.vertices[:4, 1]) for path in baseline_bars.get_paths()[index * slots:(index + 1) * slots]]
        scale = figures._Panel.HEIGHT / max(share.max(), baseline_share.max())  # the panel's largest share
        np.testing.assert_allclose(np.array(heights) / scale, share, atol=1e-12)
        np.testing.assert_allclose(np.array(base) / scale, baseline_share, atol=1e-12)
    if feature == "island":  # the shifted stage's unseen island, drawn in its flagged windows
        assert unseen > 0
    else:  # sex is flagged by missing_rate: its shares stay near the baseline's
        assert all(records[s]["missing"] / (records[s]["missing"] + records[s]["count"]) > 0.25 for s in starts)


@flink
def test_categorical_statistics_are_the_shares_over_time(penguins_run):
    """The statistics over time: island's share of each category per window (34 windows: no bucketing),
    and each column's missing share, from stats.jsonl."""
    outputs = from_directory(penguins_run["output"])
    rows_of = figures.per_feature(outputs.stats, ["island", "sex", "body_mass_g"])
    records = _window_records(penguins_run, "island")
    starts, ends, shares = figures.category_share_lines(rows_of["island"].sort_values("window_start"))
    assert starts.tolist() == sorted(records) and len(starts) == penguins_run["summary"]["windows"] < figures.MAX_POINTS
    categories = penguins_run["baseline"].columns["island"].categories
    assert list(shares) == [*categories[:figures.TOP_CATEGORIES], "unseen"]
    for i, start in enumerate(starts):
        histogram, count = records[start]["histogram"], records[start]["count"]
        for name, line in shares.items():
            n = histogram["unseen"] if name == "unseen" else histogram["counts"][categories.index(name)]
            assert line[i] == pytest.approx(n / count)
    for feature in ("sex", "body_mass_g"):
        records = _window_records(penguins_run, feature)
        starts, _, missing = figures.missing_share_lines(rows_of[feature])
        expected = [records[s]["missing"] / (records[s]["missing"] + records[s]["count"]) for s in starts]
        np.testing.assert_allclose(missing, expected, rtol=1e-12)
    assert max(missing_share for missing_share in figures.missing_share_lines(rows_of["sex"])[2]) > 0.3


ALERT_BELOW = 0.7  # the made-up records' alert: a window's accuracy below this
PERFORMANCE_BASELINE = 0.9
LABELLED_AT = (15, 36, 54)  # of a window's 60 predictions, those labelled at each revision


def _performance_records(windows: list[tuple[int, int]], classes: list[str], alerted: int, recovering: int,
                         seed: int = 5) -> tuple[list[dict], dict]:
    """Performance records in the record format of `contract.outputs` (kind ``performance``, the fields
    flink_job.performance writes: model, window_start, window_end, metric, class, value, labelled, predictions,
    coverage, baseline, alert, final, revision), computed with numpy from made-up predictions and labels of 60
    instances per window, labelled in three steps (`LABELLED_AT`: revisions 0, 1, 2; the last window's last one
    not final, its labels still coming): accuracy, recall per class and the confusion matrix. Window ``alerted``
    is wrong 60 % of the time; window ``recovering`` has its 9 wrong predictions labelled first, so its first
    revision is alerted and its later ones not; the others are wrong 5 % of the time. Returns the records
    (revision by revision, as the job emits them) and what numpy says of each window's last revision."""
    rng = np.random.default_rng(seed)
    records, latest = [], {"accuracy": [], "alert": [], "labelled": [], "recall": {c: [] for c in classes}}
    by_revision: list[list[dict]] = [[] for _ in LABELLED_AT]
    for index, (start, end) in enumerate(windows):
        predicted = rng.integers(len(classes), size=60)
        wrong = np.arange(60) < 9 if index == recovering else rng.random(60) < (0.6 if index == alerted else 0.05)
        truth = np.where(wrong, (predicted + 1 + rng.integers(len(classes) - 1, size=60)) % len(classes), predicted)
        for revision, k in enumerate(LABELLED_AT):
            p, t = predicted[:k], truth[:k]
            accuracy = float(np.mean(p == t))
            common = {"model": "penguins", "window_start": start, "window_end": end, "labelled": k, "predictions": 60,
                      "coverage": k / 60, "final": revision == len(LABELLED_AT) - 1 and index < len(windows) - 1,
                      "revision": revision}
            rows = [{**common, "metric": "accuracy", "value": accuracy, "baseline": PERFORMANCE_BASELINE,
                     "alert": accuracy < ALERT_BELOW}]
            recall = {c: float(np.mean(p[t == i] == i)) if np.any(t == i) else None for i, c in enumerate(classes)}
            rows += [{**common, "metric": "recall", "class": c, "value": v, "baseline": PERFORMANCE_BASELINE,
                      "alert": False} for c, v in recall.items()]
            confusion = np.zeros((len(classes), len(classes)), dtype=int)
            np.add.at(confusion, (t, p), 1)
            rows.append({**common, "metric": "confusion", "classes": classes, "value": confusion.tolist(),
                         "baseline": None, "alert": False})
            by_revision[revision] += rows
        latest["accuracy"].append(accuracy)
        latest["alert"].append(accuracy < ALERT_BELOW)
        latest["labelled"].append(LABELLED_AT[-1])
        for c in classes:
            latest["recall"][c].append(recall[c])
    records = [r for rows in by_revision for r in rows]
    return records, latest


def _check_performance_findings(findings, windows: list[tuple[int, int]], classes: list[str], latest: dict,
                                alerted: int) -> None:
    """The findings of `_performance_records`' records equal what numpy says: per metric the windows, the
    alerted ones (the last revision's alert: not the recovering window's first), last values, coverage."""
    starts = [start for start, _ in windows]
    assert [s.name for s in findings.performance] == ["accuracy", *(f"recall ({c})" for c in classes)]
    accuracy = findings.performance[0]
    assert accuracy.windows == len(windows) and accuracy.revisions == len(windows) * len(LABELLED_AT)
    assert accuracy.alerted == tuple(s for s, hit in zip(starts, latest["alert"]) if hit) == (starts[alerted],)
    assert accuracy.last_start == starts[-1] and accuracy.last_value == latest["accuracy"][-1]
    assert accuracy.baseline == PERFORMANCE_BASELINE
    assert accuracy.coverage == pytest.approx(sum(latest["labelled"]) / (60 * len(windows)))
    assert accuracy.final == len(windows) - 1
    for series, c in zip(findings.performance[1:], classes):
        values = [v for v in latest["recall"][c] if v is not None]
        assert series.label == c and series.alerted == () and series.last_value == values[-1]
    assert findings.performance_flagged == {starts[alerted]: ("accuracy",)}
    assert findings.performance_alerts == 1
    [episode] = findings.performance_episodes
    assert (episode.start_ms, episode.end_ms, episode.windows, episode.metrics) == (
        starts[alerted], windows[alerted][1], 1, {"accuracy": 1})


def _check_performance_section(tags: _Tags, windows: list[tuple[int, int]], latest: dict, alerted: int) -> None:
    rows = {(a["data-metric"], a["data-class"]): a for a in tags.classed("performance-metric")}
    accuracy = rows.pop(("accuracy", ""))
    assert int(accuracy["data-windows"]) == len(windows)
    assert accuracy["data-alerted"].split() == [str(windows[alerted][0])]
    assert float(accuracy["data-last"]) == latest["accuracy"][-1]
    assert float(accuracy["data-baseline"]) == PERFORMANCE_BASELINE
    assert float(accuracy["data-coverage"]) == pytest.approx(sum(latest["labelled"]) / (60 * len(windows)))
    assert {metric for metric, _ in rows} == {"recall"}  # the confusion matrix has no row
    assert _counts(tags)["performance_alerts"] == 1
    text = " ".join(tags.text_by_id["performance-finding"].split())
    assert f"worse than its baseline by more than chance in 1 of {len(windows)} windows" in text
    assert len(tags.classed("performance-plot")) == 1


def test_performance_records_make_a_model_performance_section():
    """A synthetic run with performance records (`_performance_records`): the findings and the section say what
    numpy says; the same run without them has no section."""
    outputs, spec = _synthetic(30, emit_all=True)
    windows = sorted(set(zip(outputs.stats["window_start"], outputs.stats["window_end"])))
    records, latest = _performance_records(windows, ["a", "b", "c"], alerted=7, recovering=3)
    with_performance = dataclasses.replace(outputs, performance=frames({"performance": records})["performance"])
    _check_performance_findings(find(with_performance, spec), windows, ["a", "b", "c"], latest, alerted=7)
    tags = _Tags(page.render(with_performance, spec, {}))
    _check_performance_section(tags, windows, latest, alerted=7)
    assert not tags.classed("output-timeline")  # the spec has no output
    without = _Tags(page.render(outputs, spec, {}))
    assert not without.classed("performance-metric") and "performance-finding" not in without.text_by_id
    assert "performance_alerts" not in _counts(without)
    assert tags.classed("timeline") == without.classed("timeline")


def test_the_performance_figure_draws_the_latest_values_revisions_and_alerts():
    outputs, spec = _synthetic(12, emit_all=True)
    windows = sorted(set(zip(outputs.stats["window_start"], outputs.stats["window_end"])))
    records, latest = _performance_records(windows, ["a", "b"], alerted=4, recovering=1)
    performance = frames({"performance": records})["performance"]
    findings = find(dataclasses.replace(outputs, performance=performance), spec)
    fig = figures.performance_figure(performance, findings.performance, findings.first_ms, findings.last_ms,
                                     findings.window_ms)
    accuracy_axes, recall_axes = [ax for ax in fig.axes if ax.get_ylabel() in ("accuracy", "recall")]
    lines = {line.get_gid(): line for line in accuracy_axes.get_lines()}
    np.testing.assert_array_equal(lines["value"].get_ydata(), latest["accuracy"])
    assert len(lines["revisions"].get_ydata()) == len(windows) * (len(LABELLED_AT) - 1)
    np.testing.assert_array_equal(lines["alerted"].get_ydata(), [latest["accuracy"][4]])
    assert list(lines["baseline"].get_ydata()) == [PERFORMANCE_BASELINE] * 2
    assert [line.get_label() for line in recall_axes.get_lines() if line.get_gid() == "value"] == ["recall (a)",
                                                                                                   "recall (b)"]
    coverage = [p for ax in fig.axes for p in ax.patches if p.get_gid() == "coverage"]
    assert len(coverage) == 2  # a band behind each metric's axes
    np.testing.assert_allclose(coverage[0].get_data().values, [LABELLED_AT[-1] / 60] * len(windows))


@flink
def test_a_penguins_run_with_performance_records(penguins_run, penguins_report, tmp_path):
    """The session's penguins run folder copied with a performance.jsonl beside its outputs (records written by
    `_performance_records` in the record format of contract.outputs, computed with numpy over the run's own
    windows and the model's classes: the job's own records need a labelled stream): `mmon report` loads them, its
    findings and its model performance section say what numpy says, and the prediction column's drift timelines
    stand beside the performance. The run as the job wrote it, without the file, has no such section; nor has
    the copy with an empty file."""
    run = tmp_path / "run"
    shutil.copytree(penguins_run["output"], run)
    windows = sorted({(r["window_start"], r["window_end"]) for r in penguins_run["stats"]})
    classes = list(penguins_run["baseline"].columns["prediction"].categories)
    records, latest = _performance_records(windows, classes, alerted=20, recovering=5)
    performance_file = run / output_names.FILE_NAMES[output_names.PERFORMANCE]
    performance_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    spec = load_spec(run / "spec.json")
    outputs = from_directory(run)
    assert len(outputs.performance) == len(records)
    _check_performance_findings(find(outputs, spec), windows, classes, latest, alerted=20)

    path = tmp_path / "report.html"
    proc = _mmon_report(str(run), "-o", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tags = _Tags(path.read_text())
    _check_performance_section(tags, windows, latest, alerted=20)
    [section] = [a for name, a in tags.tags if name == "section" and a.get("id") == "performance"]
    assert section["data-output"] == spec.output.name == "prediction"
    beside = {(a["data-feature"], a["data-metric"]) for a in tags.classed("output-timeline")}
    assert beside == {("prediction", r["metric"]) for r in penguins_run["drift"] if r["feature"] == "prediction"}
    assert len(beside) == len(spec.drift.metrics)
    without = penguins_report["tags"]
    assert {k: v for k, v in _counts(tags).items() if k != "performance_alerts"} == _counts(without)
    assert not from_directory(penguins_run["output"]).performance.shape[0]
    assert "performance" not in {a.get("id") for _, a in without.tags}
    assert not without.classed("performance-metric") and not without.classed("output-timeline")

    performance_file.write_text("")
    assert report_main([str(run), "-o", str(tmp_path / "empty.html")]) == 0
    empty = _Tags((tmp_path / "empty.html").read_text())
    assert "performance" not in {a.get("id") for _, a in empty.tags}
    assert _counts(empty) == _counts(without)
    assert empty.classed("timeline") == without.classed("timeline")


@pytest.fixture(scope="module")
def labelled_penguins_run(tmp_path_factory):
    """A real embedded run of the penguins example with ground truth (examples/penguins/ground-truth.yaml) over the
    staged penguins stream with its label messages (`streams.penguins.generate(labels=True)`: a concept stage whose
    model is wrong a third of the time, labels seconds to hours late, 5 % never); its outputs as `run_mmon` loads
    them, with the stream."""
    from embedded_run import PENGUINS_SEED, PENGUINS_STAGE_SIZE, run_mmon

    from streams import penguins

    example = REPO / "examples" / "penguins" / "ground-truth.yaml"
    spec = yaml.safe_load(example.read_text())
    spec["baseline"] = str(example.parent / spec["baseline"])
    spec["job"]["metrics_port"] = 0
    tmp = tmp_path_factory.mktemp("labelled-penguins")
    stream = penguins.generate(seed=PENGUINS_SEED, stage_size=PENGUINS_STAGE_SIZE, format=spec["input"]["format"],
                               labels=True)
    penguins.write_jsonl(stream, tmp / "penguins-labelled.jsonl")
    return {**run_mmon(spec, tmp / "penguins-labelled.jsonl", tmp), "stream": stream}


@flink
def test_the_report_of_a_real_run_with_ground_truth(labelled_penguins_run, tmp_path):
    """The job's own performance records: each window's accuracy in the findings, the table and the figure is
    numpy's over the stream's answered and labelled requests of that window (the job's records are final at the
    end of the bounded input); the concept stage's windows are far below the first stage's; the coverage is the
    labelled share of the answered requests; the prediction column's drift stands beside."""
    run, stream = labelled_penguins_run, labelled_penguins_run["stream"]
    assert run["performance"], "the job wrote performance records"
    window_ms = run["window_ms"]
    answered, labelled = stream.response_ms >= 0, stream.label_ms >= 0
    scored = answered & labelled
    starts = stream.time_ms - stream.time_ms % window_ms
    right = np.array(stream.predictions, dtype=object) == np.array(stream.truth, dtype=object)
    windows = np.unique(starts[answered])
    accuracy = np.array([right[scored & (starts == w)].mean() for w in windows])
    coverage = scored.sum() / answered.sum()

    spec = load_spec(run["output"] / "spec.json")
    outputs = from_directory(run["output"])
    assert len(outputs.performance) == len(run["performance"])
    findings = find(outputs, spec)
    series = {s.name: s for s in findings.performance}
    assert set(series) == set(spec.ground_truth.metrics) == {"accuracy", "f1_macro"}
    s = series["accuracy"]
    assert s.windows == s.final == len(windows)
    assert s.revisions == sum(r["metric"] == "accuracy" for r in run["performance"])
    assert s.last_start == windows[-1] and s.last_value == pytest.approx(accuracy[-1], abs=1e-12)
    assert s.coverage == pytest.approx(coverage)
    assert s.alerted == tuple(r["window_start"] for r in run["performance"]
                              if r["metric"] == "accuracy" and r["final"] and r["alert"])
    concept, first = (next(st for st in stream.stages if st.kind == kind) for kind in ("concept", "normal"))
    inside = lambda stage: (windows >= stage.first_ms) & (windows + window_ms <= stage.end_ms)
    assert accuracy[inside(concept)].max() < 0.8 < 0.95 < accuracy[inside(first)].min()

    fig = figures.performance_figure(outputs.performance, findings.performance, findings.first_ms, findings.last_ms,
                                     findings.window_ms)
    [accuracy_axes] = [ax for ax in fig.axes if ax.get_ylabel() == "accuracy"]
    [line] = [line for line in accuracy_axes.get_lines() if line.get_gid() == "value"]
    np.testing.assert_allclose(line.get_ydata(), accuracy, atol=1e-12)

    path = tmp_path / "report.html"
    proc = _mmon_report(str(run["output"]), "-o", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tags = _Tags(path.read_text())
    rows = {a["data-metric"]: a for a in tags.classed("performance-metric")}
    assert set(rows) == {"accuracy", "f1_macro"}
    assert int(rows["accuracy"]["data-windows"]) == len(windows)
    assert float(rows["accuracy"]["data-last"]) == pytest.approx(accuracy[-1], abs=1e-12)
    assert float(rows["accuracy"]["data-coverage"]) == pytest.approx(coverage)
    assert len(tags.classed("performance-plot")) == 1
    assert {a["data-feature"] for a in tags.classed("output-timeline")} == {"prediction"}
    assert _counts(tags)["performance_alerts"] == findings.performance_alerts
    [joined] = [attrs for tag, attrs in tags.tags if attrs.get("id") == "labels-joined"]
    assert int(joined["data-value"]) == run["summary"]["labels_joined"] == int(labelled.sum())


# --- false-discovery control: discoveries, the model's verdict, alert episodes ---------------------------

ALERT_WINDOWS, ALERT_WINDOW_MS, ALERT_START = 12, 60_000, 1_800_000_000_000
DRIFTED_WINDOWS = range(3, 8)  # feature a: discovered in these windows
FALSE_ALARM_WINDOWS = (1, 9)  # feature b: over its threshold there, but no discovery


def _window(w: int) -> dict:
    return {"model": "m", "window_start": ALERT_START + w * ALERT_WINDOW_MS,
            "window_end": ALERT_START + (w + 1) * ALERT_WINDOW_MS}


def _alert_event(event: str, scope: str, feature, first: int, last: int) -> dict:
    return {"event": event, "scope": scope, "feature": feature, "metrics": ["js"] if feature else [],
            "first_window": _window(first)["window_start"], "last_window": _window(last)["window_start"],
            "windows": last - first + 1}


@pytest.fixture(scope="module")
def alerts_folder(tmp_path_factory) -> Path:
    """A made-up run folder of two features with p-values and discoveries on its drift records, the model's
    verdict per window and alert episodes: feature a discovered in `DRIFTED_WINDOWS` (an episode opened at its
    second window, closed three windows after its last), feature b over its threshold in `FALSE_ALARM_WINDOWS`
    without a discovery; the model's episode still open at the end."""
    out = tmp_path_factory.mktemp("alerts-run")
    rng = np.random.default_rng(5)
    baseline = {f: FeatureBaseline.from_values(rng.normal(size=400), bins=4) for f in ("a", "b")}
    Baseline(baseline, source="test").save(out / "baseline.json")
    spec = parse_spec({"model": {"name": "m"}, "input": {"features": ["a", "b"]}, "baseline": str(out / "baseline.json"),
                       "window": {"duration": f"{ALERT_WINDOW_MS}ms"}, "drift": {"metrics": {"js": {}}}})
    (out / "spec.json").write_text(json.dumps(spec_to_dict(spec)))
    stats, drift, verdicts = [], [], []
    for w in range(ALERT_WINDOWS):
        discovered = w in DRIFTED_WINDOWS
        for feature in ("a", "b"):
            edges = baseline[feature].edges
            stats.append({**_window(w), "feature": feature, "count": 100, "missing": 0, "mean": 0.0, "p25": -0.7,
                          "p50": 0.0, "p75": 0.7, "histogram": {"edges": edges.tolist(), "counts": [25] * 4,
                                                                "underflow": 0, "overflow": 0}})
            over = discovered if feature == "a" else w in FALSE_ALARM_WINDOWS
            p_value = (1e-4 if discovered else 0.008) if over else 0.5
            drift.append({**_window(w), "feature": feature, "metric": "js", "value": 0.3 if over else 0.01,
                          "threshold": 0.1, "drift": over, "count": 100, "p_value": p_value,
                          "discovery": over and feature == "a"})
        verdicts.append({**_window(w), "tests": 2, "discoveries": int(discovered), "features": ["a"] * discovered,
                         "drift": discovered, "p_value": 2e-4 if discovered else 0.9})
    events = [_alert_event("open", "feature", "a", 3, 4), _alert_event("open", "model", None, 3, 4),
              *(_alert_event("update", scope, feature, 3, w) for w in (5, 6, 7)
                for scope, feature in (("feature", "a"), ("model", None))),
              _alert_event("close", "feature", "a", 3, 7)]
    for kind, records in (("stats", stats), ("drift", drift), ("outliers", []), ("dead_letter", []),
                          (output_names.MODEL_DRIFT, verdicts), (output_names.ALERTS, events)):
        (out / FILES[kind]).write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def _starts(windows) -> list[int]:
    return [_window(w)["window_start"] for w in windows]


def test_discoveries_replace_the_raw_flags_and_episodes_come_from_the_events(alerts_folder):
    outputs = from_directory(alerts_folder)
    findings = find(outputs, load_spec(alerts_folder / "spec.json"))
    assert findings.flagged == {"a": {start: ("js",) for start in _starts(DRIFTED_WINDOWS)}}
    assert (findings.drift_alerts, findings.raw_flags) == (len(DRIFTED_WINDOWS), len(DRIFTED_WINDOWS) + 2)
    assert [(r.feature, r.flagged_windows) for r in findings.ranking] == [("a", 5), ("b", 0)]
    assert findings.model_verdicts == findings_module.ModelVerdicts(
        ALERT_WINDOWS, tuple(_starts(DRIFTED_WINDOWS)), 2 * ALERT_WINDOWS, len(DRIFTED_WINDOWS))
    model, feature = findings.alert_episodes
    assert (model.scope, model.feature, model.name, model.closed) == ("model", None, "model", False)
    assert (feature.scope, feature.feature, feature.closed, feature.metrics) == ("feature", "a", True, ("js",))
    assert [feature.first_window, feature.last_window, feature.windows] == [*_starts([3, 7]), 5]


def test_events_of_two_episodes_of_one_feature_make_two():
    events = [_alert_event("open", "feature", "a", 0, 1), _alert_event("close", "feature", "a", 0, 2),
              _alert_event("open", "feature", "c", 4, 5), _alert_event("open", "feature", "a", 6, 7)]
    for order in (events, events[::-1]):  # a topic's partitions interleave them
        episodes = findings_module.alert_episodes(frames({output_names.ALERTS: order})[output_names.ALERTS])
        assert [(e.feature, e.first_window, e.last_window, e.closed) for e in episodes] == [
            ("a", *_starts([0, 2]), True), ("c", *_starts([4, 5]), False), ("a", *_starts([6, 7]), False)]
    assert figures.episode_rows(episodes) == ["a", "c"]  # a: 4 windows in episodes, c: 2


def test_the_alerts_figure_draws_the_verdicts_and_the_episodes(alerts_folder):
    outputs = from_directory(alerts_folder)
    findings = find(outputs, load_spec(alerts_folder / "spec.json"))
    fig = figures.alerts_figure(outputs.model_drift, findings.alert_episodes, findings.first_ms, findings.last_ms,
                                findings.window_ms)
    verdicts, bars = fig.axes
    steps = {patch.get_gid(): patch.get_data().values for patch in verdicts.patches}
    expected = np.isin(np.arange(ALERT_WINDOWS), DRIFTED_WINDOWS).astype(float)
    np.testing.assert_array_equal(steps["discoveries"], expected)
    np.testing.assert_array_equal(steps["model-drift"], expected)
    assert [label.get_text() for label in bars.get_yticklabels()] == ["model", "a"]
    drawn = {(patch.get_gid(), round(patch.get_y() + patch.get_height() / 2)): patch for patch in bars.patches}
    assert set(drawn) == {("open", 0), ("closed", 1)}
    for patch in drawn.values():
        start, end = _times_of(patch.get_x()), _times_of(patch.get_x() + patch.get_width())
        assert (start, end) == (_window(3)["window_start"], _window(7)["window_end"])
    assert drawn[("open", 0)].get_hatch() == "///" and drawn[("closed", 1)].get_hatch() is None


def _times_of(date_number: float) -> int:
    """A matplotlib date number as epoch ms."""
    return int(round((date_number - matplotlib_dates.date2num(np.datetime64(0, "ms"))) * 86_400_000))


def test_the_page_shows_discoveries_the_verdict_and_the_episodes(alerts_folder, tmp_path):
    path = tmp_path / "alerts.html"
    assert report_main([str(alerts_folder), "-o", str(path)]) == 0
    tags = _Tags(path.read_text())
    counts = _counts(tags)
    assert (counts["drift_alerts"], counts["raw_flags"]) == (5, 7)
    assert (counts["model_drift_windows"], counts["alert_episodes"]) == (5, 2)
    [verdict] = tags.having("data-drifted", "p")
    assert verdict["data-drifted"].split() == [str(s) for s in _starts(DRIFTED_WINDOWS)]
    assert int(verdict["data-windows"]) == ALERT_WINDOWS
    rows = [(a["data-scope"], a["data-feature"], int(a["data-first"]), int(a["data-last"]), int(a["data-windows"]),
             a["data-closed"]) for a in tags.classed("alert-episode")]
    assert rows == [("model", "", *_starts([3, 7]), 5, "false"), ("feature", "a", *_starts([3, 7]), 5, "true")]
    [figure] = tags.having("data-rows", "figure")
    assert figure["data-rows"].split("\t") == ["model", "a"]
    assert {a["data-feature"] for a in tags.classed("episode")} == {"a"}  # b's threshold crossings are not flags
    assert "control-note" in tags.text_by_id


def test_a_run_from_before_the_control_has_no_alert_section(alerts_folder, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(alerts_folder, older)
    for kind in (output_names.MODEL_DRIFT, output_names.ALERTS):
        (older / FILES[kind]).unlink()
    drift = [json.loads(line) for line in (older / FILES["drift"]).read_text().splitlines()]
    (older / FILES["drift"]).write_text("".join(json.dumps({k: v for k, v in r.items() if k not in ("p_value", "discovery")})
                                                + "\n" for r in drift))
    assert report_main([str(older), "-o", str(older / "report.html")]) == 0
    tags = _Tags((older / "report.html").read_text())
    assert _counts(tags)["drift_alerts"] == 7 and "raw_flags" not in _counts(tags)
    assert not tags.classed("alert-episode") and not tags.having("data-rows", "figure")
    assert {a["data-feature"] for a in tags.classed("episode")} == {"a", "b"}


def test_the_alerts_page_in_headless_chromium(alerts_folder, tmp_path):
    path = tmp_path / "alerts.html"
    assert report_main([str(alerts_folder), "-o", str(path)]) == 0
    pixels = np.asarray(_chromium_screenshot(path, tmp_path).convert("RGB")).astype(int)
    html = path.read_text()
    figure_src = re.search(r'<figure id="alerts-plot"[^>]*><img src="data:image/png;base64,([^"]+)"', html).group(1)
    drawn = np.asarray(Image.open(io.BytesIO(base64.b64decode(figure_src))).convert("RGB")).astype(int)
    red = lambda image: (np.abs(image - [0xD6, 0x27, 0x28]).sum(axis=-1) < 60).sum()
    assert red(drawn) > 500  # the model's drifted windows and the closed episode's bar
    assert red(pixels) >= red(drawn)  # the browser drew the figure (and the overview's reds) on the page
