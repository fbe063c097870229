package io.github.mmon.flink;

import static io.github.mmon.flink.Rows.instances;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Queue;

import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link LabelJoin} under Flink's keyed operator harness: requests of two numeric features and a categorical
 * output (classes "a", "b", "c"), as the response join leaves them: the predictions last. */
class LabelJoinTest {

    private static final long MAX_DELAY = 10_000;
    private static final double NAN = Double.NaN;
    /** Two instances predicted "a" and the unseen "x". */
    private static final double[][] PREDICTED = instances(new double[] {1, 2, 0}, new double[] {3, 4, -1});

    private KeyedOneInputStreamOperatorTestHarness<String, Row, Row> harness;

    private static KeyedOneInputStreamOperatorTestHarness<String, Row, Row> opened(
            long maxDelayMs, FeatureSchema schema, OperatorSubtaskState restored) throws Exception {
        return JoinHarness.opened(new LabelJoin(Rows.REQUEST_TYPE, schema, maxDelayMs), restored);
    }

    private void open(long maxDelayMs) throws Exception {
        harness = opened(maxDelayMs, ResponseJoinTest.schema(true), null);
    }

    /** The harness closed and a new one, under {@code maxDelayMs} and {@code schema}, restored from its snapshot. */
    private void restart(long maxDelayMs, FeatureSchema schema) throws Exception {
        OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);
        harness.close();
        harness = opened(maxDelayMs, schema, snapshot);
    }

    @AfterEach
    void close() throws Exception {
        harness.close();
    }

    /** A label record: the true values of a request's instances, coded like the output column. */
    static Row label(String id, long timeMs, double[] truth, String... labels) {
        Row row = Rows.response(id, timeMs, truth, labels);
        row.setField(JobRows.RESPONSE, false);
        row.setField(JobRows.TRUTH, true);
        return row;
    }

    private void send(Row row) throws Exception {
        harness.processElement(row, (Long) row.getField(JobRows.REQUEST_TIME_MS));
    }

    /** The main output since the last look: requests passed on, labels rejected. */
    private List<StreamRecord<Row>> passed() {
        return Outputs.records(harness);
    }

    /** The side output since the last look: arrival and joined rows. */
    private List<Row> labelled() {
        Queue<StreamRecord<Row>> queue = harness.getSideOutput(LabelJoin.LABELLED);
        List<Row> rows = new ArrayList<>();
        if (queue != null) {
            queue.forEach(record -> rows.add(record.getValue()));
            queue.clear();
        }
        return rows;
    }

    private long joinedTotal() {
        return (Long) harness.getEnvironment().getAccumulatorRegistry().getUserMap()
                .get(Contract.LABELS_JOINED).getLocalValue();
    }

    /** {@code watermark} in; the watermarks that came out. */
    private List<Long> watermark(long watermark) throws Exception {
        harness.processWatermark(watermark);
        return Outputs.watermarks(harness);
    }

    private static void assertArrival(Row row, long time, int predictions) {
        assertEquals(Row.of(time, predictions, null, null, null, Rows.VERSION), row);
    }

    private static void assertJoined(Row row, long time, double[] predicted, double[] truth, String... labels) {
        assertEquals(time, row.getField(LabelJoin.TIME));
        assertEquals(0, row.getField(LabelJoin.PREDICTIONS));
        assertArrayEquals(predicted, Rows.unpacked((byte[]) row.getField(LabelJoin.PREDICTED)));
        assertArrayEquals(truth, Rows.unpacked((byte[]) row.getField(LabelJoin.TRUTH)));
        assertArrayEquals(labels.length == 0 ? null : labels, (String[]) row.getField(LabelJoin.LABELS));
        assertEquals(Rows.VERSION, row.getField(LabelJoin.VERSION));
    }

    private static void assertRejected(StreamRecord<Row> out, String reason, String id, long time) {
        assertEquals(reason, out.getValue().getField(JobRows.REASON));
        assertEquals(id, out.getValue().getField(JobRows.REQUEST_ID));
        assertEquals(true, out.getValue().getField(JobRows.TRUTH));
        assertEquals(time, out.getTimestamp());
    }

    /** The one request passed on since the last look, unchanged. */
    private void assertPassedOn(Row request) {
        List<StreamRecord<Row>> out = passed();
        assertEquals(1, out.size(), out.toString());
        assertEquals(request, out.get(0).getValue());
        assertEquals(request.getField(JobRows.REQUEST_TIME_MS), out.get(0).getTimestamp());
    }

    @Test
    void aRequestPassesOnUnchangedAndItsLabelsJoinItsPredictions() throws Exception {
        open(MAX_DELAY);
        Row request = Rows.request("r1", 1_000, PREDICTED, "x");
        send(request);
        assertPassedOn(request);
        assertArrival(labelled().get(0), 1_000, 2);
        send(label("r1", 5_000, new double[] {0, 1}));
        assertTrue(passed().isEmpty());  // the label record is consumed
        List<Row> joined = labelled();
        assertEquals(1, joined.size());
        assertJoined(joined.get(0), 1_000, new double[] {0, -1}, new double[] {0, 1}, "x");
        assertEquals(1L, joinedTotal());
        watermark(100_000);
        assertTrue(passed().isEmpty() && labelled().isEmpty());  // its timer went with it
    }

    @Test
    void aLabelBeforeItsPredictionWaitsForIt() throws Exception {
        open(MAX_DELAY);
        send(label("r1", 900, new double[] {2, -1}, "x"));
        assertTrue(passed().isEmpty() && labelled().isEmpty());
        send(Rows.request("r1", 1_000, PREDICTED, "x"));
        passed();
        List<Row> out = labelled();
        assertEquals(2, out.size());
        assertArrival(out.get(0), 1_000, 2);
        assertJoined(out.get(1), 1_000, new double[] {0, -1}, new double[] {2, -1}, "x");  // one "x" for both
        watermark(100_000);
        assertTrue(passed().isEmpty() && labelled().isEmpty());
    }

    @Test
    void theUnseenValuesOfPredictionsAndLabelsShareOneLabelArrayEachTextOnce() throws Exception {
        open(MAX_DELAY);
        send(Rows.request("r1", 1_000, instances(new double[] {-1, 2, -2}, new double[] {3, 4, -2}), "u", "x"));
        send(label("r1", 2_000, new double[] {-1, -2}, "z", "x"));
        List<Row> out = labelled();
        assertJoined(out.get(1), 1_000, new double[] {-1, -1}, new double[] {-2, -1}, "x", "z");
    }

    @Test
    void aRequestWithoutLabelsIsReleasedAtItsDeadlineWithNothingMore() throws Exception {
        open(MAX_DELAY);
        send(Rows.request("r1", 1_000, instances(new double[] {1, 2, NAN}, new double[] {3, 4, 1})));
        passed();
        assertArrival(labelled().get(0), 1_000, 1);  // one instance without a prediction
        watermark(11_000);
        assertTrue(passed().isEmpty() && labelled().isEmpty());
        send(label("r1", 12_000, new double[] {0, 1}));  // too late: its request is gone
        assertTrue(labelled().isEmpty());
        watermark(21_999);
        assertTrue(passed().isEmpty());
        watermark(22_000);
        assertRejected(passed().get(0), "unmatched_label", "r1", 12_000);
        assertEquals(0L, joinedTotal());
    }

    @Test
    void aLabelForAnIdNeverSeenIsUnmatchedAtItsDeadline() throws Exception {
        open(MAX_DELAY);
        send(label("nobody", 3_000, new double[] {1}));
        watermark(12_999);
        assertTrue(passed().isEmpty());
        watermark(13_000);
        List<StreamRecord<Row>> out = passed();
        assertEquals(1, out.size());
        assertRejected(out.get(0), "unmatched_label", "nobody", 3_000);
    }

    @Test
    void aSecondLabelBeforeTheRequestDeadLettersTheFirst() throws Exception {
        open(MAX_DELAY);
        send(label("r1", 900, new double[] {0, 0}));
        send(label("r1", 950, new double[] {1, 1}));
        assertRejected(passed().get(0), "unmatched_label", "r1", 900);
        send(Rows.request("r1", 1_000, PREDICTED, "x"));
        assertJoined(labelled().get(1), 1_000, new double[] {0, -1}, new double[] {1, 1}, "x");
    }

    @Test
    void aLabelOfAnotherCountIsDeadLetteredAndTheRequestWaitsOnForItsLabels() throws Exception {
        open(MAX_DELAY);
        send(Rows.request("r1", 1_000, PREDICTED, "x"));
        passed();
        labelled();
        send(label("r1", 2_000, new double[] {0, 1, 2}));
        assertRejected(passed().get(0), "wrong_label_count", "r1", 2_000);
        assertTrue(labelled().isEmpty());
        send(label("r1", 3_000, new double[] {1, 1}));
        assertJoined(labelled().get(0), 1_000, new double[] {0, -1}, new double[] {1, 1}, "x");
        assertEquals(1L, joinedTotal());
    }

    @Test
    void aLabelWaitingForARequestOfAnotherCountIsDeadLetteredWhenItComes() throws Exception {
        open(MAX_DELAY);
        send(label("r1", 900, new double[] {1}));
        send(Rows.request("r1", 1_000, PREDICTED, "x"));
        List<StreamRecord<Row>> out = passed();
        assertEquals(2, out.size());
        assertEquals("r1", out.get(0).getValue().getField(JobRows.REQUEST_ID));
        assertNull(out.get(0).getValue().getField(JobRows.REASON));
        assertRejected(out.get(1), "wrong_label_count", "r1", 900);
        assertEquals(1, labelled().size());  // the arrival alone: the request waits for its labels
    }

    @Test
    void theWatermarkIsNeverHeld() throws Exception {
        open(MAX_DELAY);
        send(Rows.request("r1", 1_000, PREDICTED, "x"));
        send(label("r2", 1_500, new double[] {1}));
        assertEquals(List.of(5_000L), watermark(5_000));
        assertEquals(List.of(10_500L), watermark(10_500));
    }

    @Test
    void aLateRequestPassesOnForTheRouterToDeadLetterAndALabelWaitingForItIsLateToo() throws Exception {
        open(MAX_DELAY);
        send(label("r1", 4_500, new double[] {0, 0}));
        watermark(5_000);
        Row request = Rows.request("r1", 4_000, PREDICTED, "x");
        send(request);
        List<StreamRecord<Row>> out = passed();
        assertEquals(2, out.size());
        assertEquals(request, out.get(0).getValue());
        assertRejected(out.get(1), Contract.LATE, "r1", 4_500);
        assertTrue(labelled().isEmpty());  // not monitored: no arrival
        watermark(100_000);
        assertTrue(passed().isEmpty());
    }

    @Test
    void aRepeatedRequestIdReleasesTheEarlierRequest() throws Exception {
        open(MAX_DELAY);
        send(Rows.request("r1", 1_000, PREDICTED, "x"));
        send(Rows.request("r1", 2_000, instances(new double[] {5, 6, 2})));
        labelled();
        send(label("r1", 3_000, new double[] {1}));
        assertJoined(labelled().get(0), 2_000, new double[] {2}, new double[] {1});
    }

    @Test
    void rejectedRecordsPassStraightThrough() throws Exception {
        open(MAX_DELAY);
        Row rejected = Rows.rejected("bad_instance", "r1", 1_000L);
        send(rejected);
        assertEquals(rejected, passed().get(0).getValue());
        assertTrue(labelled().isEmpty());
    }

    @Test
    void aNumericOutputKeepsNegativeValuesAndHasNoLabels() throws Exception {
        harness = opened(MAX_DELAY, ResponseJoinTest.schema(false), null);
        send(Rows.request("r1", 1_000, instances(new double[] {1, 2, -2.5}), "x"));
        send(label("r1", 2_000, new double[] {-1}));
        assertJoined(labelled().get(1), 1_000, new double[] {-2.5}, new double[] {-1});
    }

    @Test
    void waitingRowsKeepTheirDeadlinesThroughARestoreUnderAnotherMaxDelay() throws Exception {
        open(MAX_DELAY);
        send(Rows.request("r1", 1_000, PREDICTED, "x"));
        send(label("orphan", 2_000, new double[] {1}));
        passed();
        labelled();
        restart(5 * MAX_DELAY, ResponseJoinTest.schema(true));
        assertEquals(List.of(10_999L), watermark(10_999));
        send(label("r1", 10_999, new double[] {1, 1}));  // still waiting: it joins
        assertJoined(labelled().get(0), 1_000, new double[] {0, -1}, new double[] {1, 1}, "x");
        watermark(12_000);  // the orphan's deadline under the old max_delay
        assertRejected(passed().get(0), "unmatched_label", "orphan", 2_000);
        send(Rows.request("r2", 13_000, PREDICTED, "x"));  // waits under the new one
        watermark(62_999);
        send(label("r2", 63_000, new double[] {0, 0}));
        assertJoined(labelled().get(1), 13_000, new double[] {0, -1}, new double[] {0, 0}, "x");
    }

    @Test
    void aRequestReleasedAtItsRestoredDeadlineUnderALongerMaxDelay() throws Exception {
        open(MAX_DELAY);
        send(Rows.request("r1", 1_000, PREDICTED, "x"));
        restart(5 * MAX_DELAY, ResponseJoinTest.schema(true));
        watermark(11_000);
        send(label("r1", 11_500, new double[] {1, 1}));
        assertTrue(labelled().isEmpty());  // released at 11,000: the label waits, unmatched in the end
        watermark(61_500);
        assertRejected(passed().get(0), "unmatched_label", "r1", 11_500);
    }

    @Test
    void waitingCodesRestoredUnderAnotherVocabularyAreMovedToItByText() throws Exception {
        open(MAX_DELAY);
        send(Rows.request("r1", 1_000, PREDICTED, "x"));  // "a" and the unseen "x"
        send(label("r2", 1_100, new double[] {2, -1}, "x"));  // "c" and "x"
        FeatureSchema changed = new FeatureSchema(new String[] {"f0", "f1"}, new String[] {"numeric", "numeric"},
                new String[2][], "y", "categorical", new String[] {"x", "c", "a"});
        restart(MAX_DELAY, changed);
        send(label("r1", 2_000, new double[] {1, 0}));
        assertJoined(labelled().get(0), 1_000, new double[] {2, 0}, new double[] {1, 0});
        send(Rows.request("r2", 2_100, instances(new double[] {1, 2, 2}, new double[] {3, 4, -1}), "q"));
        assertJoined(labelled().get(1), 2_100, new double[] {2, -1}, new double[] {1, 0}, "q");
    }

    /** The state a waiting prediction costs, as checkpointed: a one-instance request (two features, its prediction
     * a class of the vocabulary) under a 13-character id, with its deadline and timer. */
    @Test
    void aWaitingPredictionCostsUnderTwoHundredBytesOfCheckpointedState() throws Exception {
        open(MAX_DELAY);
        long empty = harness.snapshot(1L, 1L).getStateSize();
        int waiting = 10_000;
        for (int i = 0; i < waiting; i++) {
            send(Rows.request(String.format("req-%09d", i), 1_000 + i, instances(new double[] {1, 2, i % 3})));
        }
        long bytes = (harness.snapshot(2L, 2L).getStateSize() - empty) / waiting;
        System.out.println("LabelJoin: " + bytes + " bytes of checkpointed state per waiting prediction");
        assertTrue(bytes < 200, bytes + " bytes");
    }
}
