package io.github.mmon.flink;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.types.Row;

/**
 * {@code (kind, k, payload)} output rows ({@link JobRows#RECORD}) from the rows of another step, in the JVM:
 * the kind and the payload one field each, the key the given fields joined with {@code /}. A Python map
 * here sent every per-feature stats and drift row through a Python worker and back.
 */
public class OutputRows implements MapFunction<Row, Row> {

    private final int kindField;
    private final int[] keyFields;
    private final int payloadField;

    public OutputRows(int kindField, int[] keyFields, int payloadField) {
        this.kindField = kindField;
        this.keyFields = keyFields;
        this.payloadField = payloadField;
    }

    @Override
    public Row map(Row row) {
        StringBuilder key = new StringBuilder();
        for (int i = 0; i < keyFields.length; i++) {
            key.append(i == 0 ? "" : "/").append(row.getField(keyFields[i]));
        }
        return Row.of(row.getField(kindField), key.toString(), row.getField(payloadField));
    }
}
