package io.github.mmon.flink;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;

/**
 * A window's instances in {@link RequestRouter}, row-major float64, under the routing they were filled with
 * ({@link RouterSettings}: what the columns are and where the window's sub-batches go), and the unseen category
 * values its codes index (a negative code {@code -(1 + j)} in a categorical column is {@code labels.get(j)}: the
 * records' own labels renumbered into the window's, each value once).
 *
 * <p>Its size is counted in bytes, values and label text alike ({@link #bytes}): the router flushes a buffer
 * that reaches its limit, after which the buffer starts empty (labels included, so each sub-batch carries only
 * its own) and remembers that part of its window has left ({@link #flushedEarly}): that part is then in the
 * window state downstream, under this routing's keys.
 *
 * <p>A buffer holds one model version's instances ({@link #version}): the router keeps a buffer per window and
 * version, and each sub-batch names its version, so that every window result is per version.
 */
final class WindowBuffer {

    /** What a label costs besides its characters (two bytes each): the String, its array, the map entries. */
    static final int LABEL_OVERHEAD = 96;

    private final RouterSettings routing;
    /** The model version of the instances (null: a buffer restored from a checkpoint written before versions). */
    private final String version;
    private final int features;
    private final boolean[] categorical;
    private double[] values;
    private int size;
    private final ArrayList<String> labels = new ArrayList<>();
    private final HashMap<String, Integer> labelIndex = new HashMap<>();
    private long labelBytes;
    private boolean flushedEarly;

    WindowBuffer(RouterSettings routing, String version) {
        this.routing = routing;
        this.version = version;
        this.features = routing.features();
        this.categorical = routing.categorical();
        this.values = new double[initialCapacity()];
    }

    private int initialCapacity() {
        return Math.max(features, 1) * 64;
    }

    RouterSettings routing() {
        return routing;
    }

    String version() {
        return version;
    }

    void append(byte[] packed, String[] recordLabels) {
        int n = packed.length / Double.BYTES;
        if (size + n > values.length) {
            values = Arrays.copyOf(values, Math.max(values.length * 2, size + n));
        }
        ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(values, size, n);
        if (recordLabels != null && recordLabels.length > 0) {
            renumber(size, size + n, recordLabels);
        }
        size += n;
    }

    /** The record's label codes in {@code values[from, to)} as codes into this window's labels. */
    private void renumber(int from, int to, String[] recordLabels) {
        int[] windowCode = new int[recordLabels.length];
        for (int j = 0; j < recordLabels.length; j++) {
            windowCode[j] = labelIndex.computeIfAbsent(recordLabels[j], label -> {
                labels.add(label);
                labelBytes += 2L * label.length() + LABEL_OVERHEAD;
                return labels.size() - 1;
            });
        }
        for (int k = from; k < to; k++) {
            double value = values[k];
            if (value < 0 && categorical[k % features]) {
                values[k] = Contract.labelCode(windowCode[Contract.labelIndex(value)]);
            }
        }
    }

    /** The memory the buffer's content takes: its values and its labels. */
    long bytes() {
        return (long) size * Double.BYTES + labelBytes;
    }

    /** Emptied after an early flush: what follows is the rest of the window. */
    void flushed() {
        size = 0;
        values = new double[initialCapacity()];
        labels.clear();
        labelIndex.clear();
        labelBytes = 0;
        flushedEarly = true;
    }

    /** Whether part of this window left before it closed (it is in the window state downstream). */
    boolean flushedEarly() {
        return flushedEarly;
    }

    String[] labels() {
        return labels.toArray(new String[0]);
    }

    int instances() {
        return size / features;
    }

    /** Columns {@code [from, to)} of every instance, row-major little-endian float64. */
    byte[] columns(int from, int to) {
        int width = to - from;
        int rows = instances();
        ByteBuffer out = ByteBuffer.allocate(rows * width * Double.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        if (width == features) {
            out.asDoubleBuffer().put(values, 0, size);
            return out.array();
        }
        DoubleBuffer doubles = out.asDoubleBuffer();
        for (int row = 0; row < rows; row++) {
            doubles.put(values, row * features + from, width);
        }
        return out.array();
    }

    /** This buffer with {@code other}'s values appended (two entries of one window, same routing, after a rescale). */
    WindowBuffer absorb(WindowBuffer other) {
        append(other.columns(0, features), other.labels());
        flushedEarly |= other.flushedEarly;
        return this;
    }

    /** This buffer's instances in the columns of {@code settings}, by name ({@link ColumnLayout#remapFrom}). */
    WindowBuffer remappedTo(RouterSettings settings) {
        ColumnLayout.Packed moved = settings.columns().remapFrom(routing.columns(), values, size, labels());
        WindowBuffer remapped = new WindowBuffer(settings, version);
        remapped.append(moved.packed(), moved.labels());
        remapped.flushedEarly = flushedEarly;
        return remapped;
    }

    /** A buffer read back from the checkpoint, with its window start. */
    record Restored(long windowStart, WindowBuffer buffer) {
    }

    /** This buffer's checkpoint entry: its routing ({@link RouterSettings#write}), the window start, whether
     * part of it left early, the values (little-endian float64), the labels and the version (last, so that an
     * entry written before versions reads as one without). */
    byte[] toState(long windowStart) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            routing.write(out);
            out.writeLong(windowStart);
            out.writeBoolean(flushedEarly);
            out.writeInt(size);
            out.write(columns(0, features));
            out.writeInt(labels.size());
            for (String label : labels) {
                ColumnLayout.writeString(out, label);
            }
            out.writeBoolean(version != null);
            if (version != null) {
                ColumnLayout.writeString(out, version);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** A {@link #toState} entry; its routing read with the flush size of {@code current}. */
    static Restored fromState(byte[] state, RouterSettings current) {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(state))) {
            RouterSettings routing = current.read(in);
            long start = in.readLong();
            boolean flushedEarly = in.readBoolean();
            byte[] packed = new byte[in.readInt() * Double.BYTES];
            in.readFully(packed);
            String[] stateLabels = new String[in.readInt()];
            for (int j = 0; j < stateLabels.length; j++) {
                stateLabels[j] = ColumnLayout.readString(in);
            }
            String version = in.available() > 0 && in.readBoolean() ? ColumnLayout.readString(in) : null;
            WindowBuffer buffer = new WindowBuffer(routing, version);
            buffer.flushedEarly = flushedEarly;
            buffer.append(packed, stateLabels);
            return new Restored(start, buffer);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** An entry of the checkpoints written before the routing was kept with the buffer (window start, values,
     * labels, little-endian): read as filled under {@code current}, as it then was. */
    static Restored fromUnroutedState(byte[] state, RouterSettings current) {
        ByteBuffer in = ByteBuffer.wrap(state).order(ByteOrder.LITTLE_ENDIAN);
        long start = in.getLong();
        byte[] packed = new byte[in.getInt() * Double.BYTES];
        in.get(packed);
        String[] stateLabels = new String[in.getInt()];
        for (int j = 0; j < stateLabels.length; j++) {
            byte[] label = new byte[in.getInt()];
            in.get(label);
            stateLabels[j] = new String(label, StandardCharsets.UTF_8);
        }
        WindowBuffer buffer = new WindowBuffer(current, null);
        buffer.append(packed, stateLabels);
        return new Restored(start, buffer);
    }
}
