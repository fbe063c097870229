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
    for expected in ("window.duration", "drift.metrics.<name>.threshold", "kafka.topics.dead_letter", "job.metrics_port"):
        assert expected in paths
