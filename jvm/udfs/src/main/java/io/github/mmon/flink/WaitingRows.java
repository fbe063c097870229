package io.github.mmon.flink;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.types.Row;

/**
 * What the joins keyed by request id ({@link LabelJoin}) share about the rows waiting in their state: the columns
 * those rows were written under, kept beside them in the checkpoint (union operator state: every subtask reads it
 * whole on a restore), a waiting row moved to other columns by name ({@link ColumnLayout#remapFrom}), and the
 * packed float64 values and label arrays rows carry.
 */
final class WaitingRows {

    private WaitingRows() {
    }

    /** The union list state {@code name} of an operator's column layouts. */
    static ListState<byte[]> columnsState(StateInitializationContext context, String name) throws Exception {
        return context.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>(name, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
    }

    /** The layouts last written to {@code state} (null when it holds none: a fresh start). */
    static ColumnLayout[] restored(ListState<byte[]> state) throws Exception {
        ColumnLayout[] found = null;
        for (byte[] entry : state.get()) {
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(entry))) {
                List<ColumnLayout> layouts = new ArrayList<>();
                while (in.available() > 0) {
                    layouts.add(ColumnLayout.read(in));
                }
                found = layouts.toArray(new ColumnLayout[0]);
            }
        }
        return found;
    }

    /** {@code layouts} into {@code state}, for the next checkpoint. */
    static void save(ListState<byte[]> state, ColumnLayout... layouts) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            for (ColumnLayout layout : layouts) {
                layout.write(out);
            }
        }
        state.update(List.of(bytes.toByteArray()));
    }

    /** A copy of {@code row} with its values (field {@code values}, packed) and their labels (field {@code labels})
     * moved from the columns {@code from} to {@code to}, by name and category text. */
    static Row remapped(Row row, int values, int labels, ColumnLayout from, ColumnLayout to) {
        double[] unpacked = unpacked((byte[]) row.getField(values));
        ColumnLayout.Packed moved = to.remapFrom(from, unpacked, unpacked.length, (String[]) row.getField(labels));
        Row copy = Row.copy(row);
        copy.setField(values, moved.packed());
        copy.setField(labels, moved.labels().length == 0 ? null : moved.labels());
        return copy;
    }

    /** {@code first} then {@code second} (either may be null or empty: the other as it is). */
    static String[] concatenated(String[] first, String[] second) {
        if (second == null || second.length == 0) {
            return first;
        }
        if (first == null || first.length == 0) {
            return second;
        }
        String[] both = Arrays.copyOf(first, first.length + second.length);
        System.arraycopy(second, 0, both, first.length, second.length);
        return both;
    }

    /** Little-endian float64 values, as {@link ParseRequest#packed} writes them. */
    static byte[] packed(double[] values) {
        ByteBuffer out = ByteBuffer.allocate(values.length * Double.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        out.asDoubleBuffer().put(values);
        return out.array();
    }

    /** The values of {@link #packed} bytes. */
    static double[] unpacked(byte[] packed) {
        double[] values = new double[packed.length / Double.BYTES];
        ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(values);
        return values;
    }
}
