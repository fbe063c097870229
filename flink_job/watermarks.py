"""Event time: the rowtime column's watermark, the late-event rule and source idleness (all JVM side).

The watermark trails the largest request time seen by ``watermark_delay + allowed_lateness``. Folding
the allowed lateness into the watermark makes one rule exact for every downstream window: a record is
late iff its time is at or behind the watermark *of the operator that assigns it to its window*, the
Java ``RequestRouter`` of `flink_job.windows`, which emits a window's instances before it forwards the
watermark that closes the window. So the late check and the windows cannot disagree, whatever gaps
(idle sources, restarts) the stream has. Records the parse step rejects (``future_time`` among them)
get no request time in the rowtime column, so they never move the watermark.
"""
from __future__ import annotations

from contract.spec import WindowSpec

ROWTIME = "rowtime"


def interval_sql(millis: int) -> str:
    """A SQL day-time interval of ``millis`` milliseconds."""
    return f"INTERVAL '{millis // 1000}.{millis % 1000:03d}' SECOND"


def watermark_clause(window: WindowSpec) -> str:
    """The DDL clause: bounded out-of-orderness of ``watermark_delay + allowed_lateness``."""
    return f"WATERMARK FOR {ROWTIME} AS {ROWTIME} - {interval_sql(window.watermark_delay + window.allowed_lateness)}"


def idleness_options(window: WindowSpec) -> dict[str, str]:
    """Table options making a silent source split stop holding the watermark back (0 = never)."""
    return {"table.exec.source.idle-timeout": f"{int(window.idle_timeout)} ms"}
