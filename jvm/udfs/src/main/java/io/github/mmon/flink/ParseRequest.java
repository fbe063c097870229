package io.github.mmon.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.types.Row;

/**
 * {@code mmon_parse(raw, format, n_features, message_time, default_id, default_time_ms)}: one inference-log
 * record as {@code ROW<reason, request_id, time_ms, instances>} (see {@link RequestParser}). The JSON is
 * parsed once; the instances come back as an array of feature vectors for {@code UNNEST}.
 */
public class ParseRequest extends ScalarFunction {

    public static final String RESULT_TYPE =
            "ROW<reason STRING, request_id STRING, time_ms BIGINT, instances ARRAY<ARRAY<DOUBLE>>>";

    public @DataTypeHint(RESULT_TYPE) Row eval(@DataTypeHint(value = "STRING", bridgedTo = StringData.class)
                                               StringData raw, String format, Integer nFeatures,
                                               Boolean messageTime, String defaultId, Long defaultTimeMs) {
        ParsedRequest parsed = RequestParser.parse(raw, format, nFeatures, messageTime, defaultId, defaultTimeMs);
        return Row.of(parsed.reason(), parsed.requestId(), parsed.timeMs(), boxed(parsed.instances()));
    }

    private static Double[][] boxed(double[][] instances) {
        if (instances == null) {
            return null;
        }
        Double[][] out = new Double[instances.length][];
        for (int i = 0; i < instances.length; i++) {
            out[i] = new Double[instances[i].length];
            for (int j = 0; j < instances[i].length; j++) {
                out[i][j] = instances[i][j];
            }
        }
        return out;
    }
}
