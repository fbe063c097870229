package io.github.mmon.flink;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.types.Row;

/** A row's first {@code n} fields: the JVM output's records as the job's (kind, k, payload) output rows. */
public class FirstFields implements MapFunction<Row, Row> {

    private final int n;

    public FirstFields(int n) {
        this.n = n;
    }

    @Override
    public Row map(Row row) {
        Row out = new Row(row.getKind(), n);
        for (int i = 0; i < n; i++) {
            out.setField(i, row.getField(i));
        }
        return out;
    }
}
