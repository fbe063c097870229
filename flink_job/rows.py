"""The row types that cross between the job's steps (and between Python and the JVM), one definition each.

``jvm/udfs/.../JobRows.java`` holds the same field names for the Java side; tests/test_contract_java.py
checks that the two agree.
"""
from __future__ import annotations

from pyflink.common import Types

from contract import outputs

from flink_job.watermarks import ROWTIME

POSITION_FIELDS = ("source_name", "source_partition", "source_position")
PARSED_FIELDS = {"reason": "reason", "request_id": "request_id", "request_time_ms": "time_ms",
                 "instances": "instances", "labels": "labels", "response": "response", "truth": "truth"}
"""The view's fields taken from ``mmon_parse``'s result, by the result's field names."""
VERSION = outputs.VERSION
"""The model version of a record (`contract.formats.version_of`, else the spec's ``model.version``)."""
REQUEST_FIELDS = (*PARSED_FIELDS, VERSION, "raw", *POSITION_FIELDS, ROWTIME)
"""The parsed request row, in the order the Java router reads it (``JobRows.REQUEST_FIELDS``, then rowtime).
``raw`` is the record's UTF-8 bytes, kept for dead letters: turning every record into a Java string on
its way out of SQL cost as much as parsing it, at 128 features. `POSITION_FIELDS` are the source's
columns of the same names (`flink_job.source`), the reference ``DeadLetters.java`` writes."""

OUTPUT_ROW = Types.ROW_NAMED(["kind", "k", "payload"], [Types.STRING(), Types.STRING(), Types.STRING()])
SUB_BATCH_ROW = Types.ROW_NAMED(["shard", "window_start", "count", "packed", "labels", VERSION],
                                [Types.INT(), Types.LONG(), Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE()),
                                 Types.BASIC_ARRAY(Types.STRING()), Types.STRING()])
"""A sub-batch: a shard's columns of ``count`` instances of one window (``packed``, row-major float64), the
window's ``labels``, the unseen category values that negative codes in its categorical columns index, and the
model ``version`` of its instances (null only from a router checkpoint written before versions)."""
KEYED_SUB_BATCH_ROW = Types.ROW([Types.INT(), SUB_BATCH_ROW])  # (shard key, sub-batch): see `shard_keys`
STATS_ROW = Types.ROW_NAMED(
    ["kind", "model", "feature", "window_start", "window_end", "count", "missing", "histogram", "payload", "tests",
     VERSION],
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.LONG(), Types.LONG(), Types.LONG(), Types.LONG(),
     Types.BASIC_ARRAY(Types.LONG()), Types.STRING(), Types.STRING(), Types.STRING()])
"""A closed window's record: one per column (kind ``stats``: key columns, the present values' ``count`` and
the ``missing`` ones, the drift-layout histogram, the stats record as JSON and ``tests``, a JSON object of
two-sample statistic by test name, `two_sample_tests`; ``{}`` when none is configured, a null statistic for
a column without values), and one per enabled matrix (kind ``covariance``: ``feature`` names the matrix, no
histogram); ``version``: the model version whose instances the window holds (every result is per version)."""
