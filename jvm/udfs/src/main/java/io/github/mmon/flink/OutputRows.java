package io.github.mmon.flink;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.types.Row;

/**
 * {@code (kind, k, payload)} output rows ({@link JobRows#RECORD}) from the rows of another step, in the JVM:
 * the kind a constant or the row's field 0, the key the given fields joined with {@code /}, the payload one
 * field. A Python map here sent every per-feature stats and drift row through a Python worker and back.
 */
public class OutputRows implements MapFunction<Row, Row> {

    private final String kind;
    private final int[] keyFields;
    private final int payloadField;

    /** @param kind the output kind, or null for the row's own field 0 */
    public OutputRows(String kind, int[] keyFields, int payloadField) {
        this.kind = kind;
        this.keyFields = keyFields;
        this.payloadField = payloadField;
    }

    @Override
    public Row map(Row row) {
        StringBuilder key = new StringBuilder();
        for (int i = 0; i < keyFields.length; i++) {
            key.append(i == 0 ? "" : "/").append(row.getField(keyFields[i]));
        }
        String rowKind = kind != null ? kind : (String) row.getField(0);
        return Row.of(rowKind, key.toString(), row.getField(payloadField));
    }
}
