package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@link LabelledBatches} under Flink's operator harness: windows of one second, a flush after 200 ms. */
class LabelledBatchesTest {

    private static final long WINDOW = 1_000;
    private static final long FLUSH = 200;

    private OneInputStreamOperatorTestHarness<Row, Row> harness;

    @BeforeEach
    void open() throws Exception {
        harness = new OneInputStreamOperatorTestHarness<>(new LabelledBatches(WINDOW, FLUSH),
                Outputs.serializer(LabelJoin.LABELLED_ROW));
        harness.setup(Outputs.serializer(LabelledBatches.KEYED_BATCH_ROW));
        harness.open();
    }

    @AfterEach
    void close() throws Exception {
        harness.close();
    }

    private void send(Row row) throws Exception {
        harness.processElement(row, (Long) row.getField(LabelJoin.TIME));
    }

    private static Row arrival(long time, int predictions) {
        return arrival(time, predictions, Rows.VERSION);
    }

    private static Row arrival(long time, int predictions, String version) {
        return Row.of(time, predictions, null, null, null, version);
    }

    private static Row joined(long time, double[] predicted, double[] truth, String... labels) {
        return joined(Rows.VERSION, time, predicted, truth, labels);
    }

    private static Row joined(String version, long time, double[] predicted, double[] truth, String... labels) {
        return Row.of(time, 0, WaitingRows.packed(predicted), WaitingRows.packed(truth), labels.length == 0 ? null : labels,
                version);
    }

    private static void assertBatch(StreamRecord<Row> out, long start, long predictions, double[] predicted,
                                    double[] truth, String... labels) {
        assertBatch(out, start, Rows.VERSION, predictions, predicted, truth, labels);
    }

    private static void assertBatch(StreamRecord<Row> out, long start, String version, long predictions,
                                    double[] predicted, double[] truth, String... labels) {
        assertEquals(start + WINDOW - 1, out.getTimestamp());
        assertEquals(start + "/" + version, out.getValue().getField(0));
        Row batch = (Row) out.getValue().getField(1);
        assertEquals(start, batch.getField(0));
        assertEquals(version, batch.getField(6));
        assertEquals(predictions, batch.getField(1));
        assertEquals(predicted.length, batch.getField(2));
        assertArrayEquals(predicted, Rows.unpacked((byte[]) batch.getField(3)));
        assertArrayEquals(truth, Rows.unpacked((byte[]) batch.getField(4)));
        assertArrayEquals(labels.length == 0 ? null : labels, (String[]) batch.getField(5));
    }

    @Test
    void eachWindowsRowsLeaveAsOneBatchBeforeTheWatermarkInWindowOrder() throws Exception {
        send(arrival(1_500, 2));
        send(joined(200, new double[] {0, -1}, new double[] {-1, 1}, "x"));
        send(arrival(1_700, 3));
        send(joined(1_100, new double[] {1}, new double[] {-1}, "y"));
        send(joined(1_900, new double[] {-1}, new double[] {-2}, "x", "y"));
        assertTrue(Outputs.records(harness).isEmpty());
        harness.processWatermark(1_950);
        assertEquals(List.of(1_950L), Outputs.watermarks(harness));
        List<StreamRecord<Row>> out = Outputs.records(harness);
        assertEquals(2, out.size());
        assertBatch(out.get(0), 0, 0, new double[] {0, -1}, new double[] {-1, 1}, "x");
        // each text once in the window's labels: "y" first (from 1,100), then "x"
        assertBatch(out.get(1), 1_000, 5, new double[] {1, -2}, new double[] {-1, -1}, "y", "x");
    }

    @Test
    void eachVersionOfAWindowLeavesAsABatchOfItsOwnUnderItsOwnKey() throws Exception {
        send(arrival(1_100, 2, "canary"));
        send(arrival(1_200, 1, "stable"));
        send(joined("canary", 1_100, new double[] {-1}, new double[] {0}, "x"));
        send(joined("stable", 1_200, new double[] {2}, new double[] {-1}, "y"));
        send(joined("canary", 1_300, new double[] {1}, new double[] {-1}, "z"));
        harness.processWatermark(1_999);
        List<StreamRecord<Row>> out = Outputs.records(harness);
        assertEquals(2, out.size());
        StreamRecord<Row> canary = out.get(0).getValue().getField(0).equals("1000/canary") ? out.get(0) : out.get(1);
        StreamRecord<Row> stable = canary == out.get(0) ? out.get(1) : out.get(0);
        assertBatch(canary, 1_000, "canary", 2, new double[] {-1, 1}, new double[] {0, -2}, "x", "z");
        assertBatch(stable, 1_000, "stable", 1, new double[] {2}, new double[] {-1}, "y");
    }

    @Test
    void aNumericOutputsNegativeValuesAreValuesNotCodes() throws Exception {
        send(joined(100, new double[] {-2.5, 3}, new double[] {-1, 2}));
        harness.processWatermark(100);
        assertBatch(Outputs.records(harness).get(0), 0, 0, new double[] {-2.5, 3}, new double[] {-1, 2});
    }

    @Test
    void batchesLeaveAfterTheFlushDelayWhenNoWatermarkComes() throws Exception {
        harness.setProcessingTime(1_000);
        send(arrival(100, 1));
        harness.setProcessingTime(1_199);
        assertTrue(Outputs.records(harness).isEmpty());
        harness.setProcessingTime(1_200);
        assertBatch(Outputs.records(harness).get(0), 0, 1, new double[0], new double[0]);
        send(arrival(200, 4));  // a new delay starts with the next row
        harness.setProcessingTime(1_400);
        assertBatch(Outputs.records(harness).get(0), 0, 4, new double[0], new double[0]);
    }

    @Test
    void pendingBatchesLeaveBeforeACheckpointBarrierAndAtTheEndOfTheInput() throws Exception {
        send(arrival(100, 1));
        harness.prepareSnapshotPreBarrier(1L);
        assertBatch(Outputs.records(harness).get(0), 0, 1, new double[0], new double[0]);
        send(arrival(2_100, 2));
        harness.getOperator().finish();
        assertBatch(Outputs.records(harness).get(0), 2_000, 2, new double[0], new double[0]);
    }
}
