package io.github.mmon.flink;

import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.types.Row;

/**
 * Keeps the job's JVM output rows whose first field (the kind) is, or with {@code keep = false} is not,
 * the given kind: splits sub-batches from alert and dead-letter records without a Python call per row.
 */
public class KindFilter implements FilterFunction<Row> {

    private final String kind;
    private final boolean keep;

    public KindFilter(String kind, boolean keep) {
        this.kind = kind;
        this.keep = keep;
    }

    @Override
    public boolean filter(Row row) {
        return kind.equals(row.getField(0)) == keep;
    }
}
