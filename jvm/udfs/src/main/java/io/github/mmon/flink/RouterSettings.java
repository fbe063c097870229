package io.github.mmon.flink;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.util.Arrays;

/**
 * What {@link RequestRouter} needs to know of the spec: the columns of an instance ({@code columns}: the
 * features, then the output when responses are joined; which are categorical, where a negative code indexes
 * the record's labels, and their vocabularies), the window length, the shard boundaries ({@code shardBounds[s]}
 * to {@code shardBounds[s + 1]} are shard {@code s}'s columns), the key each shard's sub-batches go under
 * ({@code shardKeys[s]}, chosen so that the shards spread evenly over the window subtasks and so that another
 * shard layout gets other keys), whether shard 0 carries every column (covariance needs the whole matrix), and
 * the early-flush size: a window buffer whose values and label text reach {@code flushBytes} leaves early.
 *
 * <p>All but the flush size is the <em>routing</em> a window buffer was filled and is emitted under, written
 * with it into the checkpoint ({@link #write}), so that a restore under another spec can tell what the
 * restored values mean ({@link #sameRouting}).
 */
public record RouterSettings(ColumnLayout columns, long windowMs, int[] shardBounds, int[] shardKeys, boolean wholeMatrix,
                             long flushBytes) implements Serializable {

    public int features() {
        return columns.width();
    }

    public boolean[] categorical() {
        return columns.categorical();
    }

    /** Whether a buffer filled under {@code other} is emitted the same way under these settings. */
    boolean sameRouting(RouterSettings other) {
        return columns.equals(other.columns) && windowMs == other.windowMs && wholeMatrix == other.wholeMatrix
                && Arrays.equals(shardBounds, other.shardBounds) && Arrays.equals(shardKeys, other.shardKeys);
    }

    void write(DataOutputStream out) throws IOException {
        columns.write(out);
        out.writeLong(windowMs);
        writeInts(out, shardBounds);
        writeInts(out, shardKeys);
        out.writeBoolean(wholeMatrix);
    }

    /** Routing written by {@link #write}, with this flush size. */
    RouterSettings read(DataInputStream in) throws IOException {
        return new RouterSettings(ColumnLayout.read(in), in.readLong(), readInts(in), readInts(in), in.readBoolean(),
                flushBytes);
    }

    private static void writeInts(DataOutputStream out, int[] values) throws IOException {
        out.writeInt(values.length);
        for (int value : values) {
            out.writeInt(value);
        }
    }

    private static int[] readInts(DataInputStream in) throws IOException {
        int[] values = new int[in.readInt()];
        for (int i = 0; i < values.length; i++) {
            values[i] = in.readInt();
        }
        return values;
    }
}
