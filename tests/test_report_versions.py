"""`mmon report`'s versions section (issue 22) on a synthetic run whose comparison records come from
`udfs.comparison` on seeded windows: a candidate that never predicts one class and is less accurate."""
from __future__ import annotations

import numpy as np

from contract.spec import parse_spec

from udfs import comparison
from udfs.window_drift import MetricRule

from report import page
from report.outputs import RunOutputs, frames

from test_report import _Tags

START, WINDOW_MS, WINDOWS = 1_800_000_000_000, 15_000, 8
RULES = [MetricRule("js", None, 0.01), MetricRule("chi2", None, 0.01)]


def _records(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    """Stats rows (for the window span) and comparison records: windows 2-5 hold the canary."""
    stats, compared = [], []
    for i in range(WINDOWS):
        window = {"window_start": START + i * WINDOW_MS, "window_end": START + (i + 1) * WINDOW_MS}
        stats.append({**window, "feature": "x", "count": 300, "missing": 0, "mean": 2.0, "p25": 1.0, "p50": 2.0,
                      "p75": 3.0, "histogram": {"edges": [0.0, 2.0, 4.0], "counts": [150, 150], "underflow": 0,
                                                "overflow": 0}})
        if not 2 <= i <= 5:
            continue
        stable, candidate = rng.multinomial(210, [0.45, 0.35, 0.2]), rng.multinomial(90, [0.65, 0.35, 0.0])
        for feature, pair in (("prediction", (stable, candidate)), ("x", (stable, rng.multinomial(90, [0.45, 0.35, 0.2])))):
            for result in comparison.histogram_drift(*pair, RULES, draws=2000):
                compared.append({"kind": "drift", **window, "feature": feature, "metric": result.metric,
                                 "value": result.value, "threshold": result.threshold, "flagged": result.flagged,
                                 "stable_count": int(pair[0].sum()), "candidate_count": int(pair[1].sum())})
        accuracy = comparison.accuracy_difference(208, 210, 72, 90, 0.01)
        compared.append({"kind": "performance", **window, "metric": "accuracy", "stable": accuracy.stable,
                         "candidate": accuracy.candidate, "delta": accuracy.delta, "ci_low": accuracy.ci_low,
                         "ci_high": accuracy.ci_high, "verdict": accuracy.verdict, "final": True})
    return stats, compared


def _spec(versions: dict):
    return parse_spec({"model": {"name": "m"}, "input": {"features": ["x"]}, "baseline": "unused.json",
                       "drift": {"emit_all": True, "metrics": {"js": {}, "chi2": {}}}, "versions": versions})


def test_the_versions_section_says_what_the_comparison_records_found():
    stats, compared = _records(np.random.default_rng(5))
    outputs = RunOutputs(**frames({"stats": stats, "comparison": compared}), summary=None, source="synthetic")
    tags = _Tags(page.render(outputs, _spec({"stable": "v1", "candidate": "v2"}), {}))
    section = tags.having("data-candidate", "section")
    assert section == [{"id": "versions", "data-stable": "v1", "data-candidate": "v2", "data-windows": "4"}]
    flagged = {(r["feature"], r["window_start"]) for r in compared if r.get("flagged")}
    rows = {row["data-feature"]: row["data-windows"].split() for row in tags.classed("versions-column")}
    assert {(feature, int(start)) for feature, starts in rows.items() for start in starts} == flagged
    assert "prediction" in rows
    assert "worse in 4 windows" in tags.text_by_id["versions-finding"]
    assert len(tags.classed("versions-plot")) == 1


def test_no_versions_section_without_the_two_versions():
    stats, _ = _records(np.random.default_rng(5))
    outputs = RunOutputs(**frames({"stats": stats}), summary=None, source="synthetic")
    assert not _Tags(page.render(outputs, _spec({}), {})).having("data-candidate", "section")
