package io.github.mmon.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code mmon_request_time_ms(raw, format, message_time, default_id, default_time_ms, max_future_skew_ms,
 * wall_clock, max_record_bytes)}, constructed with the {@link FeatureSchema} of {@link ParseRequest}: the request (or response) time in epoch ms for the source's rowtime column, or NULL for a record
 * that is dead-lettered (so that no rejected time, a far-future one least of all, moves the watermark). Computed columns cannot refer to each
 * other, so the source calls this and the parse step calls {@link ParseRequest} on the same record;
 * {@link RequestParser#parse} memoises the last record per thread, so the JSON is still parsed once.
 */
public class RequestTimeMs extends ScalarFunction {

    private final FeatureSchema schema;

    public RequestTimeMs(FeatureSchema schema) {
        this.schema = schema;
    }

    public Long eval(@DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData raw, String format,
                     Boolean messageTime, String defaultId, Long defaultTimeMs, Long maxFutureSkewMs,
                     Boolean wallClock, Integer maxRecordBytes) {
        ParsedRequest parsed = RequestParser.parse(raw, schema, format, messageTime, defaultId, defaultTimeMs,
                maxFutureSkewMs, wallClock, maxRecordBytes);
        return parsed.reason() == null ? parsed.timeMs() : null;
    }
}
