"""The README's configuration reference is generated from the monitor-spec dataclasses; keep them equal."""
import re
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- config-reference:[^>]*-->\n(.*?)<!-- /config-reference -->", re.S)


def test_readme_config_reference_is_current():
    generated = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_reference.py")],
                               check=True, capture_output=True, text=True).stdout.strip()
    section = MARKER.search((ROOT / "README.md").read_text())
    assert section, "README lacks the config-reference markers"
    assert section.group(1).strip() == generated, "README config reference is stale: rerun scripts/config_reference.py"


def test_reference_lists_every_leaf_field():
    reference = runpy.run_path(str(ROOT / "scripts" / "config_reference.py"))
    paths = [row[0] for row in reference["rows"](reference["MonitorSpec"])]
    for expected in ("window.duration", "drift.metrics.<name>.threshold", "kafka.topics.dead_letter", "job.metrics_port",
                     "input.features", "input.features[].name", "input.features[].type", "output",
                     "output.name", "output.type", "output.join_timeout", "stats.top_k", "outliers.unseen"):
        assert expected in paths


def test_reference_renders_lists_of_entries_and_optional_sections():
    reference = runpy.run_path(str(ROOT / "scripts" / "config_reference.py"))
    by_path = {row[0]: row for row in reference["rows"](reference["MonitorSpec"])}
    assert by_path["input.features"][1] == "list of name or {name, type}"
    assert by_path["input.features[].type"][1] == "`numeric` \\| `categorical`"
    assert by_path["output"][1:3] == ("optional section: the fields below", "absent")
    assert by_path["output.join_timeout"][2] == "`30s`"


def test_reference_rows_have_four_cells():
    """A bare | in a doc string would split its cell: every row of the table has exactly four."""
    table = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_reference.py")],
                           check=True, capture_output=True, text=True).stdout.strip().splitlines()
    for line in table:
        assert len(re.split(r"(?<!\\)\|", line.strip().strip("|"))) == 4, line
