package io.github.mmon.flink;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;

/**
 * The event-time step of the job, in one operator chained to the parse step: every parsed request is
 * either dead-lettered (its parse reason, or {@code late}) or accepted; an accepted request's instances
 * are checked against the outlier bounds ({@link OutlierRules}) and appended to its window's buffer, which
 * leaves as sub-batches ({@code (shard, window_start, count, packed)}, one per shard of feature columns),
 * each already paired with its shard's key ({@code (key, sub-batch)}, the form PyFlink's keyed streams
 * take), so no Python key selector runs between this operator and the windows.
 *
 * <p>Why one operator: the late check and the window that the instances go to use the same watermark,
 * this operator's own. A buffer is emitted when the watermark passes its window's end, <em>before</em> the
 * watermark is forwarded, so downstream windows always receive it on time: no instance that passed the
 * late check can be dropped by a window, however long the input was idle. Buffers also leave early when
 * they reach {@code flushValues} values (bounded memory at any width); the buffers of open windows are
 * part of the checkpoint (operator state), so a restore resumes them.
 *
 * <p>Alerts and dead letters go to the side output {@link #RECORDS} as {@code (kind, k, payload)} rows: no
 * Python runs in this task. When covariance is on ({@link RouterSettings#wholeMatrix}), shard 0's sub-batches
 * carry every column: its window state folds the matrix into the covariance and its own columns into
 * their statistics, so the matrix needs no second path into Python.
 * Counters (metric group {@code mmon}, and job accumulators of the same names for embedded runs) keep
 * the accounting: {@code records_read = requests_accepted + records dead-lettered}, and every accepted
 * instance is packed into exactly one window.
 */
public class RequestRouter extends AbstractStreamOperator<Row> implements OneInputStreamOperator<Row, Row> {

    public static final OutputTag<Row> RECORDS = new OutputTag<>("records", JobRows.RECORD) {};

    private final RouterSettings settings;
    private final OutlierRules rules;
    private final DeadLetters deadLetters;

    private transient long watermark;
    private transient TreeMap<Long, WindowBuffer> buffers;
    private transient ListState<byte[]> checkpointed;
    private transient Tally recordsRead;
    private transient Tally requestsAccepted;
    private transient Tally instancesAccepted;

    public RequestRouter(RouterSettings settings, OutlierRules rules, DeadLetters deadLetters) {
        this.settings = settings;
        this.rules = rules;
        this.deadLetters = deadLetters;
    }

    @Override
    public void open() throws Exception {
        super.open();
        watermark = Long.MIN_VALUE;
        MetricGroup group = getMetricGroup().addGroup("mmon");
        recordsRead = tally(group, Contract.RECORDS_READ);
        requestsAccepted = tally(group, Contract.REQUESTS_ACCEPTED);
        instancesAccepted = tally(group, Contract.INSTANCES_ACCEPTED);
    }

    /** A counter of the metric group and a job accumulator of the same name (read by embedded runs). */
    private Tally tally(MetricGroup group, String name) {
        LongCounter total = new LongCounter();
        getRuntimeContext().addAccumulator(name, total);
        return new Tally(group.counter(name), total);
    }

    private record Tally(Counter metric, LongCounter total) {
        void add(long n) {
            metric.inc(n);
            total.add(n);
        }
    }

    @Override
    public void processElement(StreamRecord<Row> element) {
        Row request = element.getValue();
        recordsRead.add(1);
        String reason = (String) request.getField(JobRows.REASON);
        long time = element.getTimestamp();
        if (reason == null && time <= watermark) {
            reason = Contract.LATE;
        }
        if (reason != null) {
            output.collect(RECORDS, new StreamRecord<>(deadLetters.row(reason, request), time));
            return;
        }
        accept(request, time);
    }

    private void accept(Row request, long time) {
        byte[] packed = (byte[]) request.getField(JobRows.INSTANCES);
        String[] labels = (String[]) request.getField(JobRows.LABELS);
        int n = packed.length / (Double.BYTES * settings.features());
        requestsAccepted.add(1);
        instancesAccepted.add(n);
        rules.check(request, packed, n, labels, alert -> output.collect(RECORDS, new StreamRecord<>(alert, time)));
        long start = time - Math.floorMod(time, settings.windowMs());
        WindowBuffer buffer = buffers.computeIfAbsent(start, s -> new WindowBuffer(settings));
        buffer.append(packed, labels);
        if (buffer.values() >= settings.flushValues()) {
            emit(start, buffers.remove(start));
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        watermark = Math.max(watermark, mark.getTimestamp());
        Iterator<Map.Entry<Long, WindowBuffer>> open = buffers.entrySet().iterator();
        while (open.hasNext()) {
            Map.Entry<Long, WindowBuffer> entry = open.next();
            if (entry.getKey() + settings.windowMs() - 1 > watermark) {
                break;  // sorted by window start: the rest are later still
            }
            emit(entry.getKey(), entry.getValue());
            open.remove();
        }
        super.processWatermark(mark);
    }

    /** The open windows' buffers go into the checkpoint (operator state: one entry per window). Emitting
     * them before the barrier instead would race with the Python operator chained after this one, whose
     * own pre-barrier flush may already have run: the instances would miss the checkpoint. */
    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        checkpointed.clear();
        for (Map.Entry<Long, WindowBuffer> entry : buffers.entrySet()) {
            checkpointed.add(entry.getValue().toState(entry.getKey()));
        }
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        checkpointed = context.getOperatorStateStore().getListState(
                new ListStateDescriptor<>("window-buffers", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        buffers = new TreeMap<>();
        for (byte[] state : checkpointed.get()) {
            WindowBuffer buffer = new WindowBuffer(settings);
            long start = buffer.fromState(state);
            buffers.merge(start, buffer, WindowBuffer::absorb);
        }
    }

    /** One sub-batch per shard (shard 0's with every column when covariance is on), stamped with the window's
     * last millisecond. */
    private void emit(long windowStart, WindowBuffer buffer) {
        long timestamp = windowStart + settings.windowMs() - 1;
        int[] bounds = settings.shardBounds();
        for (int shard = 0; shard + 1 < bounds.length; shard++) {
            int to = shard == 0 && settings.wholeMatrix() ? settings.features() : bounds[shard + 1];
            byte[] columns = buffer.columns(bounds[shard], to);
            Row subBatch = Row.of(shard, windowStart, buffer.instances(), columns, buffer.labels());
            output.collect(new StreamRecord<>(Row.of(settings.shardKeys()[shard], subBatch), timestamp));
        }
    }

    /** A window's instances so far, row-major float64, and the unseen category values its codes index
     * (a negative code {@code -(1 + j)} in a categorical column is {@code labels.get(j)}: the records'
     * own labels renumbered into the window's, each value once). */
    static final class WindowBuffer {
        private final int features;
        private final boolean[] categorical;
        private double[] values;
        private int size;
        private final ArrayList<String> labels = new ArrayList<>();
        private final HashMap<String, Integer> labelIndex = new HashMap<>();

        WindowBuffer(RouterSettings settings) {
            this.features = settings.features();
            this.categorical = settings.categorical();
            this.values = new double[Math.max(features, 1) * 64];
        }

        void append(byte[] packed, String[] recordLabels) {
            int n = packed.length / Double.BYTES;
            if (size + n > values.length) {
                values = java.util.Arrays.copyOf(values, Math.max(values.length * 2, size + n));
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

        int values() {
            return size;
        }

        String[] labels() {
            return labels.toArray(new String[0]);
        }

        /** This buffer's state entry: the window start, the values, then the labels (count, then each
         * as a length and its UTF-8 bytes), little-endian. */
        byte[] toState(long windowStart) {
            byte[][] encoded = new byte[labels.size()][];
            int labelBytes = 0;
            for (int j = 0; j < encoded.length; j++) {
                encoded[j] = labels.get(j).getBytes(StandardCharsets.UTF_8);
                labelBytes += Integer.BYTES + encoded[j].length;
            }
            ByteBuffer out = ByteBuffer.allocate(Long.BYTES + Integer.BYTES + size * Double.BYTES + Integer.BYTES
                    + labelBytes).order(ByteOrder.LITTLE_ENDIAN);
            out.putLong(windowStart);
            out.putInt(size);
            out.asDoubleBuffer().put(values, 0, size);
            out.position(out.position() + size * Double.BYTES);
            out.putInt(encoded.length);
            for (byte[] label : encoded) {
                out.putInt(label.length);
                out.put(label);
            }
            return out.array();
        }

        /** Restores a {@link #toState} entry into this buffer; returns its window start. */
        long fromState(byte[] state) {
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
            append(packed, stateLabels);
            return start;
        }

        /** This buffer with {@code other}'s values appended (two entries of one window after a rescale). */
        WindowBuffer absorb(WindowBuffer other) {
            append(other.columns(0, features), other.labels());
            return this;
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
            java.nio.DoubleBuffer doubles = out.asDoubleBuffer();
            for (int row = 0; row < rows; row++) {
                doubles.put(values, row * features + from, width);
            }
            return out.array();
        }
    }
}
