package io.github.mmon.flink;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * {@code mmon_pack_rows(f0, f1, ..., fk)}: the group's feature vectors as one BYTES value, row-major
 * little-endian float64 ({@code numpy.frombuffer(b, "<f8").reshape(-1, k + 1)} reads it without a copy).
 *
 * <p>The sub-batch step ships each window slice of instances to Python this way: one byte string instead
 * of one ARRAY of boxed doubles per feature, so Python spends no time per value on conversion.
 */
@FunctionHint(accumulator = @DataTypeHint(value = "RAW", bridgedTo = PackRows.Rows.class), output = @DataTypeHint("BYTES"))
public class PackRows extends AggregateFunction<byte[], PackRows.Rows> {

    /** The accumulator: values appended row by row. */
    public static final class Rows {
        double[] values = new double[256];
        int size;

        void add(double value) {
            if (size == values.length) {
                values = Arrays.copyOf(values, size * 2);
            }
            values[size++] = value;
        }
    }

    @Override
    public Rows createAccumulator() {
        return new Rows();
    }

    public void accumulate(Rows acc, Double... row) {
        for (Double value : row) {
            acc.add(value == null ? Double.NaN : value);
        }
    }

    public void merge(Rows acc, Iterable<Rows> others) {
        for (Rows other : others) {
            for (int i = 0; i < other.size; i++) {
                acc.add(other.values[i]);
            }
        }
    }

    @Override
    public byte[] getValue(Rows acc) {
        ByteBuffer buffer = ByteBuffer.allocate(acc.size * Double.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        buffer.asDoubleBuffer().put(acc.values, 0, acc.size);
        return buffer.array();
    }
}
