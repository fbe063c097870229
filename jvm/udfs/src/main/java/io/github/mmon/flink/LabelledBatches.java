package io.github.mmon.flink;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.api.common.typeinfo.BasicArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * The {@link LabelJoin}'s side-output rows gathered into one batch per tumbling window of the request's time and
 * model version, so that the performance step (Python, keyed by window and version) is called per window, version
 * and batch, never per request.
 *
 * <p>A batch holds the window's new predictions (the arrival rows' counts) and its newly joined pairs (predicted and
 * true values, float64, their negative codes renumbered into the batch's own label array). The batches leave at
 * each watermark, before it (so a window's final record, due at a watermark, has every pair joined before it), and
 * at the latest {@code flushMs} of processing time after their first row (a quiet stream moves no watermark), and
 * before each checkpoint barrier: nothing pending is in a checkpoint, so this operator keeps no state. Its output
 * goes through a keyed exchange, so what it emits before the barrier is processed downstream before the barrier.
 */
public class LabelledBatches extends AbstractStreamOperator<Row> implements OneInputStreamOperator<Row, Row> {

    /** A window's batch of one version: its start, new predictions, number of pairs, predicted and true values
     * (float64 each), the labels their negative codes index (null when none), the version. */
    public static final String[] BATCH_FIELDS = {"window_start", "predictions", "count", "predicted", "truth", "labels",
        Contract.VERSION};
    public static final TypeInformation<Row> BATCH_ROW = Types.ROW_NAMED(BATCH_FIELDS, Types.LONG, Types.LONG,
            Types.INT, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
            PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO, BasicArrayTypeInfo.STRING_ARRAY_TYPE_INFO,
            Types.STRING);
    /** {@code (window_start/version, batch)}: the form PyFlink's keyed streams take, keyed by window and version. */
    public static final TypeInformation<Row> KEYED_BATCH_ROW = Types.ROW(Types.STRING, BATCH_ROW);

    private final long windowMs;
    private final long flushMs;

    /** The pending batches by window start, then version. */
    private transient TreeMap<Long, Map<String, Batch>> pending;
    private transient boolean flushDue;

    public LabelledBatches(long windowMs, long flushMs) {
        this.windowMs = windowMs;
        this.flushMs = flushMs;
    }

    @Override
    public void open() throws Exception {
        super.open();
        pending = new TreeMap<>();
        flushDue = false;
    }

    @Override
    public void processElement(StreamRecord<Row> element) {
        Row row = element.getValue();
        long time = (Long) row.getField(LabelJoin.TIME);
        long start = time - Math.floorMod(time, windowMs);
        String version = (String) row.getField(LabelJoin.VERSION);
        pending.computeIfAbsent(start, s -> new HashMap<>()).computeIfAbsent(version, v -> new Batch()).add(row);
        if (!flushDue) {
            flushDue = true;
            long now = getProcessingTimeService().getCurrentProcessingTime();
            getProcessingTimeService().registerTimer(now + flushMs, at -> flush());
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        flush();
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        flush();
    }

    @Override
    public void finish() throws Exception {
        flush();
        super.finish();
    }

    /** Every pending batch out, in window order, stamped with its window's last millisecond, keyed by its window
     * start and version. */
    private void flush() {
        for (Map.Entry<Long, Map<String, Batch>> entry : pending.entrySet()) {
            long start = entry.getKey();
            for (Map.Entry<String, Batch> batch : entry.getValue().entrySet()) {
                Row row = batch.getValue().row(start, batch.getKey());
                output.collect(new StreamRecord<>(Row.of(start + "/" + batch.getKey(), row), start + windowMs - 1));
            }
        }
        pending.clear();
        flushDue = false;
    }

    /** A window's rows so far. */
    private static final class Batch {
        private long predictions;
        private int count;
        private final ByteArrayOutputStream predicted = new ByteArrayOutputStream();
        private final ByteArrayOutputStream truth = new ByteArrayOutputStream();
        private final List<String> labels = new ArrayList<>();
        private final Map<String, Integer> labelIndex = new HashMap<>();

        void add(Row row) {
            predictions += (Integer) row.getField(LabelJoin.PREDICTIONS);
            byte[] values = (byte[]) row.getField(LabelJoin.PREDICTED);
            if (values == null) {
                return;
            }
            String[] rowLabels = (String[]) row.getField(LabelJoin.LABELS);
            count += values.length / Double.BYTES;
            append(predicted, values, rowLabels);
            append(truth, (byte[]) row.getField(LabelJoin.TRUTH), rowLabels);
        }

        /** {@code values} appended to {@code to}, each negative code (there are some only when the row has labels:
         * a categorical output) renumbered into this batch's labels. */
        private void append(ByteArrayOutputStream to, byte[] values, String[] rowLabels) {
            if (rowLabels == null) {
                to.writeBytes(values);
                return;
            }
            double[] codes = WaitingRows.unpacked(values);
            for (int i = 0; i < codes.length; i++) {
                if (codes[i] < 0) {
                    String text = rowLabels[Contract.labelIndex(codes[i])];
                    codes[i] = Contract.labelCode(labelIndex.computeIfAbsent(text, t -> {
                        labels.add(t);
                        return labels.size() - 1;
                    }));
                }
            }
            to.writeBytes(WaitingRows.packed(codes));
        }

        Row row(long start, String version) {
            return Row.of(start, predictions, count, predicted.toByteArray(), truth.toByteArray(),
                    labels.isEmpty() ? null : labels.toArray(new String[0]), version);
        }
    }
}
