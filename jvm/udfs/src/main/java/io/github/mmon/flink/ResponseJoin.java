package io.github.mmon.flink;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.util.TreeMap;
import java.util.function.Consumer;

import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * The join of each response to its request by id, in event time, before the router: the request leaves
 * with its predictions as one more column (the output column, last), so everything after it (outliers,
 * windows, drift) treats the predictions as one more feature.
 *
 * <p>Keyed by request id. A request waits in keyed state for its response, a response for its request;
 * whichever comes second releases the request at once. A request whose response has not come when the
 * watermark passes its time plus {@code timeoutMs} leaves with a missing (NaN) prediction per instance; a
 * response without a request by then leaves as a record with the reason {@code unmatched_response}, which the
 * router dead-letters; a response whose number of predictions is not its request's number of instances is
 * dead-lettered {@code wrong_prediction_count} and the request's predictions count as missing. A request that
 * comes when the watermark has passed its time leaves at once, for the router to dead-letter {@code late}, and a
 * response that was waiting for it is dead-lettered {@code late} too (never counted as joined). Rejected
 * records and label records ({@code truth}: for the {@link LabelJoin} after this operator) pass straight through.
 *
 * <p>Why this operator holds the watermark back: a request released later keeps its own time, so the
 * watermark this operator forwards stays below the earliest request still waiting (never further back than
 * {@code timeoutMs}); the router after it then never finds a released request late. When responses come
 * promptly the hold is their latency; when they never come it is the timeout.
 *
 * <p>The checkpoint keeps, besides the waiting rows and their deadlines, the columns they were parsed under (the
 * features of a request, the output of a response, {@link ColumnLayout}): restored under a spec whose features
 * or vocabularies changed, each waiting row is moved to the new columns by name ({@link #open}).
 */
public class ResponseJoin extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<Row, Row>, Triggerable<String, VoidNamespace> {

    private final TypeInformation<Row> rowType;
    private final int features;
    private final boolean categoricalOutput;
    private final ColumnLayout requestColumns;
    private final ColumnLayout responseColumns;
    private final long timeoutMs;
    private final String unmatchedReason;
    private final String wrongCountReason;

    private transient ValueState<Row> request;
    private transient ValueState<Row> response;
    /** When the row waiting under this key (a request or a response) leaves: its time plus the timeout it began
     * to wait under, kept so that a restore under another timeout still releases it when its timer fires. */
    private transient ValueState<Long> deadline;
    private transient InternalTimerService<VoidNamespace> timers;
    /** The times of the requests waiting on this subtask (a multiset): the watermark stays below the first. */
    private transient TreeMap<Long, Integer> waiting;
    /** The last watermark forwarded: a request at or before it is late already and is not held. */
    private transient long forwarded;
    /** The columns of the rows waiting in the checkpoint ({@code [request, response]}); null before a restore. */
    private transient ColumnLayout[] restoredColumns;
    private transient ListState<byte[]> columnsState;
    private transient Counter joinedMetric;
    private transient LongCounter joinedTotal;

    /**
     * @param rowType the parsed records' row type (kept in state)
     * @param schema  the features (the requests' columns: every instance carries every feature) and the output
     *                (the responses' column: category codes, negative ones indexing the record's labels, or numbers)
     */
    public ResponseJoin(TypeInformation<Row> rowType, FeatureSchema schema, long timeoutMs,
                        String unmatchedReason, String wrongCountReason) {
        this.rowType = rowType;
        this.requestColumns = ColumnLayout.features(schema);
        this.responseColumns = ColumnLayout.output(schema);
        this.features = requestColumns.width();
        this.categoricalOutput = responseColumns.isCategorical(0);
        this.timeoutMs = timeoutMs;
        this.unmatchedReason = unmatchedReason;
        this.wrongCountReason = wrongCountReason;
    }

    /** Keys a parsed record by its request id (a rejected record without one: the empty key; it is never held). */
    public static final class ByRequestId implements KeySelector<Row, String> {
        @Override
        public String getKey(Row row) {
            Object id = row.getField(JobRows.REQUEST_ID);
            return id == null ? "" : (String) id;
        }
    }

    @Override
    public void open() throws Exception {
        super.open();
        request = getPartitionedState(new ValueStateDescriptor<>("request", rowType));
        response = getPartitionedState(new ValueStateDescriptor<>("response", rowType));
        deadline = getPartitionedState(new ValueStateDescriptor<>("deadline", Types.LONG));
        timers = getInternalTimerService("response-join", VoidNamespaceSerializer.INSTANCE, this);
        joinedMetric = getMetricGroup().addGroup("mmon").counter(Contract.RESPONSES_JOINED);
        joinedTotal = new LongCounter();
        getRuntimeContext().addAccumulator(Contract.RESPONSES_JOINED, joinedTotal);
        waiting = new TreeMap<>();
        forwarded = Long.MIN_VALUE;
        // after a restore: the requests that were waiting hold the watermark again, and every waiting row is in
        // this spec's columns (moved by name when they changed)
        boolean moved = restoredColumns != null && !(restoredColumns[0].equals(requestColumns)
                && restoredColumns[1].equals(responseColumns));
        forEachWaiting("request", moved ? restoredColumns[0] : null, requestColumns, row -> hold(time(row)));
        forEachWaiting("response", moved ? restoredColumns[1] : null, responseColumns, row -> { });
    }

    /** Every row waiting under {@code name}, moved from the columns {@code from} to {@code to} unless {@code from}
     * is null, then passed to {@code restored}. */
    private void forEachWaiting(String name, ColumnLayout from, ColumnLayout to,
                                Consumer<Row> restored) throws Exception {
        getKeyedStateBackend().applyToAllKeys(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                new ValueStateDescriptor<>(name, rowType), (key, state) -> {
                    Row row = state.value();
                    if (row != null && from != null) {
                        row = WaitingRows.remapped(row, JobRows.INSTANCES, JobRows.LABELS, from, to);
                        state.update(row);
                    }
                    if (row != null) {
                        restored.accept(row);
                    }
                });
    }

    /** The columns of the waiting rows, read back on a restore (union state: every subtask reads it whole). */
    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        columnsState = WaitingRows.columnsState(context, "waiting-columns");
        restoredColumns = WaitingRows.restored(columnsState);
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        WaitingRows.save(columnsState, requestColumns, responseColumns);
    }

    @Override
    public void processElement(StreamRecord<Row> element) throws Exception {
        Row row = element.getValue();
        if (row.getField(JobRows.REASON) != null || Boolean.TRUE.equals(row.getField(JobRows.TRUTH))) {
            output.collect(element);  // rejected records, and label records (for the label join after this one)
            return;
        }
        if (Boolean.TRUE.equals(row.getField(JobRows.RESPONSE))) {
            onResponse(row, element.getTimestamp());
        } else {
            onRequest(row, element.getTimestamp());
        }
    }

    private void onRequest(Row row, long time) throws Exception {
        Row earlier = request.value();
        if (earlier != null) {  // the same id again: the earlier request goes on without its prediction
            deadline.clear();
            releaseWithoutPredictions(earlier);
        }
        Row waitingResponse = response.value();
        if (waitingResponse != null) {
            response.clear();
            timers.deleteEventTimeTimer(VoidNamespace.INSTANCE, deadlineOf(waitingResponse));
            deadline.clear();
        }
        if (time <= forwarded) {  // late already: the router dead-letters it, and its response is late with it
            if (waitingResponse != null) {
                rejected(waitingResponse, Contract.LATE);
            }
            output.collect(new StreamRecord<>(withPredictions(row, null, null), time));
            return;
        }
        if (waitingResponse != null) {
            join(row, waitingResponse, time);
            return;
        }
        request.update(copy(row));
        hold(time);
        startWaiting(time);
    }

    private void onResponse(Row row, long time) throws Exception {
        Row waitingRequest = request.value();
        if (waitingRequest != null) {
            long requestTime = time(waitingRequest);
            request.clear();
            release(requestTime);
            timers.deleteEventTimeTimer(VoidNamespace.INSTANCE, deadlineOf(waitingRequest));
            deadline.clear();
            join(waitingRequest, row, requestTime);
            return;
        }
        Row earlier = response.value();
        if (earlier != null) {  // a second response to the same id before its request: the first is unmatched
            timers.deleteEventTimeTimer(VoidNamespace.INSTANCE, deadlineOf(earlier));
            rejected(earlier, unmatchedReason);
        }
        response.update(copy(row));
        startWaiting(time);
    }

    /** The row just stored under the current key waits until its time plus the timeout: that deadline is kept. */
    private void startWaiting(long time) throws IOException {
        long due = time + timeoutMs;
        deadline.update(due);
        timers.registerEventTimeTimer(VoidNamespace.INSTANCE, due);
    }

    /** The deadline of the row waiting under the current key (state from before deadlines were kept has none:
     * its time plus the current timeout, as then). */
    private long deadlineOf(Row waiting) throws IOException {
        Long due = deadline.value();
        return due != null ? due : time(waiting) + timeoutMs;
    }

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        Row waitingRequest = request.value();
        if (waitingRequest != null && deadlineOf(waitingRequest) == timer.getTimestamp()) {
            request.clear();
            deadline.clear();
            releaseWithoutPredictions(waitingRequest);
        }
        Row waitingResponse = response.value();
        if (waitingResponse != null && deadlineOf(waitingResponse) == timer.getTimestamp()) {
            response.clear();
            deadline.clear();
            rejected(waitingResponse, unmatchedReason);
        }
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) {
    }

    /** Timers first (they release requests at their own times), then the watermark, held below the first
     * request still waiting. */
    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (getTimeServiceManager().isPresent()) {
            getTimeServiceManager().get().advanceWatermark(mark);
        }
        long held = waiting.isEmpty() ? mark.getTimestamp() : Math.min(mark.getTimestamp(), waiting.firstKey() - 1);
        forwarded = Math.max(forwarded, held);
        output.emitWatermark(new Watermark(forwarded));
    }

    private void join(Row requestRow, Row responseRow, long requestTime) {
        byte[] predictions = (byte[]) responseRow.getField(JobRows.INSTANCES);
        if (predictions.length != instances(requestRow) * Double.BYTES) {
            rejected(responseRow, wrongCountReason);
            output.collect(new StreamRecord<>(withPredictions(requestRow, null, null), requestTime));
            return;
        }
        joinedMetric.inc();
        joinedTotal.add(1);
        output.collect(new StreamRecord<>(withPredictions(requestRow, predictions,
                (String[]) responseRow.getField(JobRows.LABELS)), requestTime));
    }

    private void releaseWithoutPredictions(Row waitingRequest) {
        long requestTime = time(waitingRequest);
        release(requestTime);
        output.collect(new StreamRecord<>(withPredictions(waitingRequest, null, null), requestTime));
    }

    private void rejected(Row responseRow, String reason) {
        Row rejected = copy(responseRow);
        rejected.setField(JobRows.REASON, reason);
        output.collect(new StreamRecord<>(rejected, time(responseRow)));
    }

    private int instances(Row requestRow) {
        return ((byte[]) requestRow.getField(JobRows.INSTANCES)).length / Double.BYTES / features;
    }

    /**
     * The request with the prediction column appended: {@code predictions} (one per instance, the response's
     * codes, its unseen labels after the request's) or, when null, NaN (missing) for every instance.
     */
    Row withPredictions(Row requestRow, byte[] predictions, String[] responseLabels) {
        byte[] packed = (byte[]) requestRow.getField(JobRows.INSTANCES);
        int n = packed.length / Double.BYTES / features;
        DoubleBuffer in = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
        DoubleBuffer predicted = predictions == null ? null
                : ByteBuffer.wrap(predictions).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
        String[] labels = (String[]) requestRow.getField(JobRows.LABELS);
        int offset = labels == null ? 0 : labels.length;
        ByteBuffer out = ByteBuffer.allocate(n * (features + 1) * Double.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        DoubleBuffer doubles = out.asDoubleBuffer();
        double[] instance = new double[features];
        for (int i = 0; i < n; i++) {
            in.get(instance);
            doubles.put(instance);
            double value = predicted == null ? Double.NaN : predicted.get(i);
            doubles.put(categoricalOutput && value < 0 ? value - offset : value);  // -(1 + j) -> -(1 + offset + j)
        }
        Row joined = copy(requestRow);
        joined.setField(JobRows.INSTANCES, out.array());
        joined.setField(JobRows.LABELS, WaitingRows.concatenated(labels, predictions == null ? null : responseLabels));
        return joined;
    }

    private static long time(Row row) {
        return (Long) row.getField(JobRows.REQUEST_TIME_MS);
    }

    private static Row copy(Row row) {
        return Row.copy(row);  // object reuse: the incoming row may be overwritten by the next record
    }

    private void hold(long time) {
        waiting.merge(time, 1, Integer::sum);
    }

    private void release(long time) {
        waiting.computeIfPresent(time, (t, count) -> count == 1 ? null : count - 1);
    }
}
