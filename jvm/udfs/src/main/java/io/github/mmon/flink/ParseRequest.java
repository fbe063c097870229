package io.github.mmon.flink;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.types.Row;

/**
 * {@code mmon_parse(raw, format, message_time, default_id, default_time_ms, max_future_skew_ms, wall_clock,
 * max_record_bytes)}:
 * one inference-log record as {@code ROW<reason, request_id, time_ms, instances, labels, response, truth, version>} (see
 * {@link RequestParser}), read by the {@link FeatureSchema} the function is constructed with (it is registered
 * as an instance). The JSON is parsed once; the values come back packed, row-major float64 (n x k for a
 * request, n x 1 for a response or a label message: {@code truth} true, its values the request's true
 * outputs), as {@link RequestRouter} and Python read them, with the record's labels (the categorical values
 * outside the vocabularies, coded {@code -(1 + j)}; NULL when it has none).
 *
 * <p>Not deterministic: the {@code future_time} check reads the wall clock (or the thread's latest accepted
 * time). That is also what keeps the planner from calling it once per field the view selects from its
 * result: a deterministic call was inlined into each of the four field accesses (four calls per record).
 */
public class ParseRequest extends ScalarFunction {

    public static final String RESULT_TYPE =
            "ROW<reason STRING, request_id STRING, time_ms BIGINT, instances BYTES, labels ARRAY<STRING>, "
                    + "response BOOLEAN, truth BOOLEAN, version STRING>";

    private final FeatureSchema schema;

    public ParseRequest(FeatureSchema schema) {
        this.schema = schema;
    }

    public @DataTypeHint(RESULT_TYPE) Row eval(@DataTypeHint(value = "STRING", bridgedTo = StringData.class)
                                               StringData raw, String format, Boolean messageTime,
                                               String defaultId, Long defaultTimeMs, Long maxFutureSkewMs,
                                               Boolean wallClock, Integer maxRecordBytes) {
        ParsedRequest parsed = RequestParser.parse(raw, schema, format, messageTime, defaultId, defaultTimeMs,
                maxFutureSkewMs, wallClock, maxRecordBytes);
        String[] labels = parsed.labels();  // none (the usual case) as NULL: an empty array costs a conversion
        return Row.of(parsed.reason(), parsed.requestId(), parsed.timeMs(), packed(parsed.instances()),
                labels == null || labels.length == 0 ? null : labels, parsed.response(), parsed.truth(), parsed.version());
    }

    @Override
    public boolean isDeterministic() {
        return false;
    }

    /** The instances row-major as little-endian float64 (numpy.frombuffer(b, "<f8") reads them). */
    static byte[] packed(double[][] instances) {
        if (instances == null) {
            return null;
        }
        int width = instances.length == 0 ? 0 : instances[0].length;
        ByteBuffer out = ByteBuffer.allocate(instances.length * width * Double.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        DoubleBuffer doubles = out.asDoubleBuffer();
        for (double[] instance : instances) {
            doubles.put(instance);
        }
        return out.array();
    }
}
