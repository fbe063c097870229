package io.github.mmon.flink;

import java.io.IOException;
import java.util.Arrays;
import java.util.function.UnaryOperator;

import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.BasicArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
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
import org.apache.flink.util.OutputTag;

/**
 * The join of each request's predictions to its true labels by request id, in event time, after the response
 * join (the predictions are the request's last column) and before the router.
 *
 * <p>Keyed by request id. A request passes on unchanged, at once (the router monitors it as ever), and its
 * predictions wait in keyed state for its labels until its deadline, its time plus {@code maxDelayMs}; a label
 * record ({@code truth}: its instances are the request's true values, n x 1, coded like the output column) waits
 * for its request until its own time plus {@code maxDelayMs}, so a label may come before its prediction. Each
 * deadline is stored with the waiting row: a restore under another {@code max_delay} keeps it.
 *
 * <p>On the side output {@link #LABELLED} go, per accepted request, an <em>arrival</em> row when it passes (its time
 * and the number of its instances with a prediction: every window then knows its predictions at once, so its label
 * coverage is exact at any time) and a <em>joined</em> row when its labels come (its predictions and true values,
 * float64, their negative codes indexing one label array). A request released at its deadline emits nothing more.
 * A label record is consumed when joined (counted in {@code labels_joined}); one that finds no request by its
 * deadline (never seen, or already released), or a second one waiting under the same id, is forwarded rejected
 * {@code unmatched_label}, one whose count is not its request's instance count {@code wrong_label_count} (its
 * request waits on), for the router to dead-letter and count like any other record.
 *
 * <p>Unlike the response join, this operator never holds the watermark: labels come days later. A request behind
 * the watermark is the router's to dead-letter {@code late}: it is not kept, and a label waiting for it is late
 * with it. The checkpoint keeps, besides the keyed rows and their deadlines, the output column's layout: restored
 * under another vocabulary, the waiting codes are moved to it by their text ({@link ColumnLayout#remapFrom}).
 */
public class LabelJoin extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<Row, Row>, Triggerable<String, VoidNamespace> {

    /** A side-output row: {@code request_time_ms}; {@code predictions}, an arrival row's count of instances with a
     * prediction (0 in a joined row); {@code predicted} and {@code truth}, a joined row's n values each (float64,
     * little-endian; null in an arrival row); {@code labels}, the texts their negative codes index (or null);
     * {@code version}, the request's model version (performance is per version). */
    public static final String[] LABELLED_FIELDS = {"request_time_ms", "predictions", "predicted", "truth", "labels",
        Contract.VERSION};
    public static final TypeInformation<Row> LABELLED_ROW = Types.ROW_NAMED(LABELLED_FIELDS, Types.LONG, Types.INT,
            PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
            BasicArrayTypeInfo.STRING_ARRAY_TYPE_INFO, Types.STRING);
    public static final OutputTag<Row> LABELLED = new OutputTag<>("labelled", LABELLED_ROW) {};
    static final int TIME = 0;
    static final int PREDICTIONS = 1;
    static final int PREDICTED = 2;
    static final int TRUTH = 3;
    static final int LABELS = 4;
    static final int VERSION = 5;

    private final TypeInformation<Row> rowType;
    private final ColumnLayout outputColumn;
    private final int columns;
    private final long maxDelayMs;

    /** The request's predictions, as a {@link #LABELLED_ROW} without truth, waiting for its labels. */
    private transient ValueState<Row> prediction;
    /** A label record waiting for its request. */
    private transient ValueState<Row> label;
    /** When the row waiting under this key leaves: its time plus the max_delay it began to wait under. */
    private transient ValueState<Long> deadline;
    private transient InternalTimerService<VoidNamespace> timers;
    private transient long watermark;
    private transient ColumnLayout restoredColumn;
    private transient ListState<byte[]> columnState;
    private transient Counter joinedMetric;
    private transient LongCounter joinedTotal;

    /**
     * @param rowType the parsed records' row type (the label records wait in state as they came)
     * @param schema  the monitored columns: the features, then the output, whose predictions and labels are joined
     */
    public LabelJoin(TypeInformation<Row> rowType, FeatureSchema schema, long maxDelayMs) {
        this.rowType = rowType;
        this.outputColumn = ColumnLayout.output(schema);
        this.columns = ColumnLayout.columns(schema).width();
        this.maxDelayMs = maxDelayMs;
    }

    @Override
    public void open() throws Exception {
        super.open();
        prediction = getPartitionedState(new ValueStateDescriptor<>("prediction", LABELLED_ROW));
        label = getPartitionedState(new ValueStateDescriptor<>("label", rowType));
        deadline = getPartitionedState(new ValueStateDescriptor<>("deadline", Types.LONG));
        timers = getInternalTimerService("label-join", VoidNamespaceSerializer.INSTANCE, this);
        joinedMetric = getMetricGroup().addGroup("mmon").counter(Contract.LABELS_JOINED);
        joinedTotal = new LongCounter();
        getRuntimeContext().addAccumulator(Contract.LABELS_JOINED, joinedTotal);
        watermark = Long.MIN_VALUE;
        if (restoredColumn != null && !restoredColumn.equals(outputColumn)) {
            ColumnLayout from = restoredColumn;
            remapAll("prediction", LABELLED_ROW, kept -> WaitingRows.remapped(kept, PREDICTED, LABELS, from, outputColumn));
            remapAll("label", rowType,
                    waiting -> WaitingRows.remapped(waiting, JobRows.INSTANCES, JobRows.LABELS, from, outputColumn));
        }
    }

    /** Every row kept under {@code name} replaced by {@code moved} of it. */
    private void remapAll(String name, TypeInformation<Row> type, UnaryOperator<Row> moved) throws Exception {
        getKeyedStateBackend().applyToAllKeys(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                new ValueStateDescriptor<>(name, type), (key, state) -> state.update(moved.apply(state.value())));
    }

    /** The output column the waiting codes were written under, read back on a restore. */
    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        columnState = WaitingRows.columnsState(context, "label-join-column");
        ColumnLayout[] restored = WaitingRows.restored(columnState);
        restoredColumn = restored == null ? null : restored[0];
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        WaitingRows.save(columnState, outputColumn);
    }

    @Override
    public void processElement(StreamRecord<Row> element) throws Exception {
        Row row = element.getValue();
        if (row.getField(JobRows.REASON) != null || Boolean.TRUE.equals(row.getField(JobRows.RESPONSE))) {
            output.collect(element);
        } else if (Boolean.TRUE.equals(row.getField(JobRows.TRUTH))) {
            onLabel(row, element.getTimestamp());
        } else {
            output.collect(element);
            onRequest(row, element.getTimestamp());
        }
    }

    private void onRequest(Row row, long time) throws Exception {
        Row waitingLabel = label.value();
        if (prediction.value() != null || waitingLabel != null) {  // a repeated id releases the earlier request
            stopWaiting();
        }
        if (time <= watermark) {  // late: the router dead-letters it, and the label waiting for it is late too
            if (waitingLabel != null) {
                rejected(waitingLabel, Contract.LATE);
            }
            return;
        }
        Row kept = kept(row, time);
        output.collect(LABELLED, new StreamRecord<>(arrival(kept), time));
        if (waitingLabel == null || !joined(kept, waitingLabel)) {
            prediction.update(kept);
            startWaiting(time);
        }
    }

    private void onLabel(Row row, long time) throws Exception {
        Row kept = prediction.value();
        if (kept != null) {
            if (joined(kept, row)) {
                stopWaiting();
            }
            return;  // another count: the label is dead-lettered, the request waits on for its labels
        }
        Row earlier = label.value();
        if (earlier != null) {  // a second label before its request: the first is unmatched
            stopWaiting();
            rejected(earlier, Contract.UNMATCHED_LABEL);
        }
        label.update(Row.copy(row));  // object reuse: the incoming row may be overwritten by the next record
        startWaiting(time);
    }

    /** The labels of {@code labelRow} joined to {@code kept}: the joined row out, or the label dead-lettered
     * {@code wrong_label_count} (false) when it does not hold one value per instance. */
    private boolean joined(Row kept, Row labelRow) {
        byte[] predicted = (byte[]) kept.getField(PREDICTED);
        byte[] truth = (byte[]) labelRow.getField(JobRows.INSTANCES);
        if (truth.length != predicted.length) {
            rejected(labelRow, Contract.WRONG_LABEL_COUNT);
            return false;
        }
        long time = (Long) kept.getField(TIME);
        output.collect(LABELLED, new StreamRecord<>(labelled(kept, truth, (String[]) labelRow.getField(JobRows.LABELS)),
                time));
        joinedMetric.inc();
        joinedTotal.add(1);
        return true;
    }

    /** The row under the current key waits until its time plus max_delay: that deadline is kept. */
    private void startWaiting(long time) throws IOException {
        long due = time + maxDelayMs;
        deadline.update(due);
        timers.registerEventTimeTimer(VoidNamespace.INSTANCE, due);
    }

    /** Nothing waits under the current key any more. */
    private void stopWaiting() throws IOException {
        Long due = deadline.value();
        if (due != null) {
            timers.deleteEventTimeTimer(VoidNamespace.INSTANCE, due);
        }
        deadline.clear();
        prediction.clear();
        label.clear();
    }

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        Long due = deadline.value();
        if (due == null || due != timer.getTimestamp()) {
            return;
        }
        Row waitingLabel = label.value();
        stopWaiting();  // a waiting request is released: its window counted its predictions when it passed
        if (waitingLabel != null) {
            rejected(waitingLabel, Contract.UNMATCHED_LABEL);
        }
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) {
    }

    /** Timers first, then the watermark, forwarded as it came: nothing here holds it. */
    @Override
    public void processWatermark(Watermark mark) throws Exception {
        watermark = Math.max(watermark, mark.getTimestamp());
        super.processWatermark(mark);
    }

    private void rejected(Row labelRow, String reason) {
        Row rejected = Row.copy(labelRow);
        rejected.setField(JobRows.REASON, reason);
        output.collect(new StreamRecord<>(rejected, (Long) labelRow.getField(JobRows.REQUEST_TIME_MS)));
    }

    /** What waits of a request: its time, its instances with a prediction, its predictions (the last column), the
     * labels their negative codes index (those alone, each once) and its version. */
    private Row kept(Row request, long time) {
        double[] values = WaitingRows.unpacked((byte[]) request.getField(JobRows.INSTANCES));
        int n = values.length / columns;
        double[] predicted = new double[n];
        int present = 0;
        for (int i = 0; i < n; i++) {
            predicted[i] = values[i * columns + columns - 1];
            present += Double.isNaN(predicted[i]) ? 0 : 1;
        }
        ColumnLayout.Packed packed = compacted(predicted, (String[]) request.getField(JobRows.LABELS));
        return Row.of(time, present, packed.packed(), null, packed.labels(), request.getField(JobRows.VERSION));
    }

    /** The arrival row of {@code kept}: its time, number of predictions and version. */
    private static Row arrival(Row kept) {
        return Row.of(kept.getField(TIME), kept.getField(PREDICTIONS), null, null, null, kept.getField(VERSION));
    }

    /** The joined row: {@code kept}'s predictions and the true values {@code truth}, under one label array. */
    private Row labelled(Row kept, byte[] truth, String[] truthLabels) {
        double[] predicted = WaitingRows.unpacked((byte[]) kept.getField(PREDICTED));
        double[] trueValues = WaitingRows.unpacked(truth);
        String[] predictedLabels = (String[]) kept.getField(LABELS);
        int n = predicted.length;
        int offset = predictedLabels == null ? 0 : predictedLabels.length;
        double[] both = Arrays.copyOf(predicted, 2 * n);
        for (int i = 0; i < n; i++) {  // a label's code -(1 + j) -> -(1 + offset + j), after the prediction's labels
            both[n + i] = outputColumn.isCategorical(0) && trueValues[i] < 0 ? trueValues[i] - offset : trueValues[i];
        }
        ColumnLayout.Packed packed = compacted(both, WaitingRows.concatenated(predictedLabels, truthLabels));
        byte[] values = packed.packed();
        return Row.of(kept.getField(TIME), 0, Arrays.copyOf(values, n * Double.BYTES),
                Arrays.copyOfRange(values, n * Double.BYTES, values.length), packed.labels(), kept.getField(VERSION));
    }

    /** Output values with only the labels their codes index, each text once (null labels when none). */
    private ColumnLayout.Packed compacted(double[] values, String[] labels) {
        ColumnLayout.Packed packed = outputColumn.remapFrom(outputColumn, values, values.length, labels);
        return new ColumnLayout.Packed(packed.packed(), packed.labels().length == 0 ? null : packed.labels());
    }
}
