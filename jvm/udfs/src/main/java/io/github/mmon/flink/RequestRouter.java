package io.github.mmon.flink;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.Consumer;

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
 * their values and label text reach {@code flushBytes} (bounded memory at any width and with any number of
 * distinct categorical values); the buffers of open windows are part of the checkpoint (operator state), each
 * with the routing it was filled under ({@link WindowBuffer}), so a restore resumes them, under a changed spec
 * too: moved to the new columns by name, never read by position ({@link #restore}).
 *
 * <p>Alerts and dead letters go to the side output {@link #RECORDS} as {@code (kind, k, payload)} rows: no
 * Python runs in this task. When covariance is on ({@link RouterSettings#wholeMatrix}), shard 0's sub-batches
 * carry every column: its window state folds the matrix into the covariance and its own columns into
 * their statistics, so the matrix needs no second path into Python.
 *
 * <p>Every result is per model version: a window has a buffer per version (the request row's {@code version}), and
 * each sub-batch names its version, so the window state downstream keeps each version apart. How many versions
 * there can be is bounded before the joins ({@link VersionGate}: a record of a version beyond {@code versions.max}
 * arrives here with the reason {@code too_many_versions} and is dead-lettered).
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
    /** The open windows' buffers under this router's settings, by window start and version. */
    private transient TreeMap<Long, Map<String, WindowBuffer>> buffers;
    /** Restored buffers of open windows that must close under the routing they were filled with (see {@link
     * #restore}): empty but after a restore under a changed spec. */
    private transient TreeMap<Long, List<WindowBuffer>> earlier;
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
        String version = (String) request.getField(JobRows.VERSION);
        WindowBuffer buffer = buffers.computeIfAbsent(start, s -> new HashMap<>())
                .computeIfAbsent(version, v -> new WindowBuffer(settings, v));
        buffer.append(packed, labels);
        if (buffer.bytes() >= settings.flushBytes()) {
            emit(start, buffer);
            buffer.flushed();
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        watermark = Math.max(watermark, mark.getTimestamp());
        closeWindows(buffers, window -> window.getValue().values().forEach(buffer -> emit(window.getKey(), buffer)));
        closeWindows(earlier, restored -> restored.getValue().forEach(buffer -> emit(restored.getKey(), buffer)));
        super.processWatermark(mark);
    }

    /** Emits and removes the entries of {@code open} (by window start) whose window the watermark has passed. */
    private <T> void closeWindows(TreeMap<Long, T> open, Consumer<Map.Entry<Long, T>> emitted) {
        Iterator<Map.Entry<Long, T>> entries = open.entrySet().iterator();
        while (entries.hasNext()) {
            Map.Entry<Long, T> entry = entries.next();
            if (entry.getKey() + settings.windowMs() - 1 > watermark) {
                break;  // sorted by window start: the rest are later still
            }
            emitted.accept(entry);
            entries.remove();
        }
    }

    /** The open windows' buffers go into the checkpoint (operator state: one entry per buffer, with its routing).
     * Emitting them before the barrier instead would race with the Python operator chained after this one, whose
     * own pre-barrier flush may already have run: the instances would miss the checkpoint. */
    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        checkpointed.clear();
        for (Map.Entry<Long, Map<String, WindowBuffer>> entry : buffers.entrySet()) {
            for (WindowBuffer buffer : entry.getValue().values()) {
                checkpointed.add(buffer.toState(entry.getKey()));
            }
        }
        for (Map.Entry<Long, List<WindowBuffer>> entry : earlier.entrySet()) {
            for (WindowBuffer buffer : entry.getValue()) {
                checkpointed.add(buffer.toState(entry.getKey()));
            }
        }
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        buffers = new TreeMap<>();
        earlier = new TreeMap<>();
        ListState<byte[]> unrouted = context.getOperatorStateStore().getListState(
                new ListStateDescriptor<>("window-buffers", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        for (byte[] state : unrouted.get()) {
            restore(WindowBuffer.fromUnroutedState(state, settings));
        }
        unrouted.clear();
        checkpointed = context.getOperatorStateStore().getListState(
                new ListStateDescriptor<>("routed-window-buffers", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        for (byte[] state : checkpointed.get()) {
            restore(WindowBuffer.fromState(state, settings));
        }
    }

    /**
     * A restored buffer, by its routing: under this one, it resumes; under another (the spec changed), its
     * instances are moved to this one's columns by name, unless part of its window already left early: that part
     * is in the window state under the old routing's keys, so the rest is emitted under the old routing too, when
     * the window closes (the window's later instances then leave under the new routing, as a second record). A
     * restored window of another length is refused: it cannot be re-cut.
     */
    private void restore(WindowBuffer.Restored restored) {
        WindowBuffer buffer = restored.buffer();
        RouterSettings routing = buffer.routing();
        if (routing.windowMs() != settings.windowMs()) {
            throw new IllegalStateException(windowLengthChanged(routing.windowMs()));
        }
        if (routing.sameRouting(settings) || !buffer.flushedEarly()) {
            WindowBuffer resumed = routing.sameRouting(settings) ? buffer : buffer.remappedTo(settings);
            buffers.computeIfAbsent(restored.windowStart(), start -> new HashMap<>())
                    .merge(resumed.version(), resumed, WindowBuffer::absorb);
            return;
        }
        List<WindowBuffer> same = earlier.computeIfAbsent(restored.windowStart(), start -> new ArrayList<>());
        for (WindowBuffer other : same) {
            if (other.routing().sameRouting(routing) && Objects.equals(other.version(), buffer.version())) {
                other.absorb(buffer);
                return;
            }
        }
        same.add(buffer);
    }

    private String windowLengthChanged(long restoredMs) {
        return "the restored state holds open windows of " + restoredMs + " ms and window.duration is now "
                + settings.windowMs() + " ms: an open window cannot be re-cut. Drain the job under the old spec first "
                + "(flink stop --savepoint-path ... --drain JOB_ID emits the open windows), then start the new spec "
                + "without --restore-from (it resumes from the committed Kafka offsets)";
    }

    /** One sub-batch per shard (shard 0's with every column when covariance is on), stamped with the window's
     * last millisecond, under the buffer's own routing (its keys and shards), naming the buffer's version; nothing
     * for an empty buffer. */
    private void emit(long windowStart, WindowBuffer buffer) {
        if (buffer.instances() == 0) {
            return;
        }
        RouterSettings routing = buffer.routing();
        long timestamp = windowStart + routing.windowMs() - 1;
        int[] bounds = routing.shardBounds();
        for (int shard = 0; shard + 1 < bounds.length; shard++) {
            int to = shard == 0 && routing.wholeMatrix() ? routing.features() : bounds[shard + 1];
            byte[] columns = buffer.columns(bounds[shard], to);
            Row subBatch = Row.of(shard, windowStart, buffer.instances(), columns, buffer.labels(), buffer.version());
            output.collect(new StreamRecord<>(Row.of(routing.shardKeys()[shard], subBatch), timestamp));
        }
    }
}
