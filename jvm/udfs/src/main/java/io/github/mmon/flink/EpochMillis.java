package io.github.mmon.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code mmon_epoch_ms(ts)}: the epoch milliseconds of a {@code TIMESTAMP_LTZ(3)} (the Kafka record
 * timestamp), exactly, and in any session time zone. Flink SQL has no cast for it (numeric casts of
 * TIMESTAMP_LTZ are disabled), and formatting the time as text to parse it back cost two string
 * conversions per record. The value arrives in Flink's internal form, whose millisecond field is the answer.
 */
public class EpochMillis extends ScalarFunction {

    public Long eval(@DataTypeHint(value = "TIMESTAMP_LTZ(3)", bridgedTo = TimestampData.class) TimestampData time) {
        return time == null ? null : time.getMillisecond();
    }
}
