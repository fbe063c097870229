package io.github.mmon.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code mmon_request_time_ms(raw, format, n_features, message_time, default_id, default_time_ms,
 * max_future_skew_ms, wall_clock)}: the request time in epoch ms for the source's rowtime column, or NULL for a record
 * that is dead-lettered (so that no rejected time, a far-future one least of all, moves the watermark). Computed columns cannot refer to each
 * other, so the source calls this and the parse step calls {@link ParseRequest} on the same record;
 * {@link RequestParser#parse} memoises the last record per thread, so the JSON is still parsed once.
 */
public class RequestTimeMs extends ScalarFunction {

    public Long eval(@DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData raw, String format,
                     Integer nFeatures, Boolean messageTime, String defaultId, Long defaultTimeMs,
                     Long maxFutureSkewMs, Boolean wallClock) {
        ParsedRequest parsed = RequestParser.parse(raw, format, nFeatures, messageTime, defaultId, defaultTimeMs,
                maxFutureSkewMs, wallClock);
        return parsed.reason() == null ? parsed.timeMs() : null;
    }
}
