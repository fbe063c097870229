"""Event time: the rowtime column's watermark, the late-event rule and source idleness (all JVM side).

The watermark trails the largest request time seen by ``watermark_delay + allowed_lateness``. Folding
the allowed lateness into the watermark makes one rule exact for every downstream window: a record is
late iff ``rowtime <= CURRENT_WATERMARK(rowtime)`` at the source, and only records that are not late
reach the windows, so no window operator ever drops a record (a window whose last millisecond is at
or before the watermark is closed; a record after the watermark can only fall into an open window).
"""
from __future__ import annotations

from flink_job.config import WindowSpec

ROWTIME = "rowtime"


def interval_sql(millis: int) -> str:
    """A SQL day-time interval of ``millis`` milliseconds."""
    return f"INTERVAL '{millis // 1000}.{millis % 1000:03d}' SECOND"


def watermark_clause(window: WindowSpec) -> str:
    """The DDL clause: bounded out-of-orderness of ``watermark_delay + allowed_lateness``."""
    return f"WATERMARK FOR {ROWTIME} AS {ROWTIME} - {interval_sql(window.watermark_delay + window.allowed_lateness)}"


def late_sql() -> str:
    """TRUE for a record at or behind the current watermark (NULL watermark at start: not late)."""
    return f"COALESCE({ROWTIME} <= CURRENT_WATERMARK({ROWTIME}), FALSE)"


def idleness_options(window: WindowSpec) -> dict[str, str]:
    """Table options making a silent source split stop holding the watermark back (0 = never)."""
    return {"table.exec.source.idle-timeout": f"{int(window.idle_timeout)} ms"}
