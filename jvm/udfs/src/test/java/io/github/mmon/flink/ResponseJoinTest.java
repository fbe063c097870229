package io.github.mmon.flink;

import static io.github.mmon.flink.Rows.instances;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link ResponseJoin} under Flink's keyed operator harness: requests of two features, a categorical output. */
class ResponseJoinTest {

    private static final long TIMEOUT = 1_000;
    private static final double NAN = Double.NaN;
    private static final double[][] TWO = instances(new double[] {1, 2}, new double[] {3, 4});

    private KeyedOneInputStreamOperatorTestHarness<String, Row, Row> harness;

    private static KeyedOneInputStreamOperatorTestHarness<String, Row, Row> opened(
            long timeoutMs, boolean categoricalOutput, OperatorSubtaskState restored) throws Exception {
        return opened(timeoutMs, schema(categoricalOutput), restored);
    }

    private static KeyedOneInputStreamOperatorTestHarness<String, Row, Row> opened(
            long timeoutMs, FeatureSchema schema, OperatorSubtaskState restored) throws Exception {
        return JoinHarness.opened(new ResponseJoin(Rows.REQUEST_TYPE, schema, timeoutMs, "unmatched_response",
                "wrong_prediction_count"), restored);
    }

    /** Two numeric features, then the output: categorical (classes "a", "b", "c") or numeric. */
    static FeatureSchema schema(boolean categoricalOutput) {
        return new FeatureSchema(new String[] {"f0", "f1"}, new String[] {"numeric", "numeric"}, new String[2][],
                "y", categoricalOutput ? "categorical" : "numeric", categoricalOutput ? new String[] {"a", "b", "c"} : null);
    }

    private void open(long timeoutMs) throws Exception {
        harness = opened(timeoutMs, true, null);
    }

    /** The harness closed and a new one, with {@code timeoutMs}, restored from its snapshot. */
    private void restart(long timeoutMs) throws Exception {
        OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);
        harness.close();
        harness = opened(timeoutMs, true, snapshot);
    }

    @AfterEach
    void close() throws Exception {
        harness.close();
    }

    private void send(Row row) throws Exception {
        harness.processElement(row, (Long) row.getField(JobRows.REQUEST_TIME_MS));
    }

    private List<StreamRecord<Row>> records() {
        return Outputs.records(harness);
    }

    /** The one record emitted since the last look. */
    private StreamRecord<Row> only() {
        List<StreamRecord<Row>> records = records();
        assertEquals(1, records.size(), records.toString());
        return records.get(0);
    }

    /** {@code watermark} in; the watermarks that came out. */
    private List<Long> watermark(long watermark) throws Exception {
        harness.processWatermark(watermark);
        return Outputs.watermarks(harness);
    }

    private static void assertJoined(StreamRecord<Row> out, long time, double... values) {
        assertEquals(time, out.getTimestamp());
        assertNull(out.getValue().getField(JobRows.REASON));
        assertArrayEquals(values, Rows.unpacked((byte[]) out.getValue().getField(JobRows.INSTANCES)));
    }

    private static void assertDeadLetter(StreamRecord<Row> out, String reason, String id, long time) {
        assertEquals(reason, out.getValue().getField(JobRows.REASON));
        assertEquals(id, out.getValue().getField(JobRows.REQUEST_ID));
        assertEquals(time, out.getTimestamp());
    }

    private long joinedTotal() {
        return (Long) harness.getEnvironment().getAccumulatorRegistry().getUserMap()
                .get(Contract.RESPONSES_JOINED).getLocalValue();
    }

    @Test
    void aResponseReleasesItsWaitingRequestWithThePredictionsAsTheLastColumn() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        assertTrue(records().isEmpty());
        send(Rows.response("r1", 1_400, new double[] {2, 0}));
        assertJoined(only(), 1_000, 1, 2, 2, 3, 4, 0);
        assertEquals(1L, joinedTotal());
    }

    @Test
    void aResponseBeforeItsRequestWaitsForIt() throws Exception {
        open(TIMEOUT);
        send(Rows.response("r1", 900, new double[] {1, 1}));
        send(Rows.request("r1", 1_000, TWO));
        assertJoined(only(), 1_000, 1, 2, 1, 3, 4, 1);
        watermark(5_000);
        assertTrue(records().isEmpty());  // the response's timer was deleted: no unmatched_response later
    }

    @Test
    void aRequestWithoutResponseLeavesAtItsTimeoutWithMissingPredictions() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        assertEquals(List.of(999L), watermark(1_999));
        assertTrue(records().isEmpty());
        harness.processWatermark(2_000);
        assertJoined(only(), 1_000, 1, 2, NAN, 3, 4, NAN);
        assertEquals(0L, joinedTotal());
    }

    @Test
    void aResponseWithoutRequestIsDeadLetteredUnmatchedAtItsTimeout() throws Exception {
        open(TIMEOUT);
        send(Rows.response("orphan", 1_000, new double[] {1}));
        assertEquals(List.of(1_999L), watermark(1_999));  // a waiting response holds nothing
        harness.processWatermark(2_000);
        StreamRecord<Row> out = only();
        assertDeadLetter(out, "unmatched_response", "orphan", 1_000);
        assertEquals(true, out.getValue().getField(JobRows.RESPONSE));
    }

    @Test
    void aResponseWithAnotherCountIsDeadLetteredAndItsRequestHasMissingPredictions() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        send(Rows.response("r1", 1_100, new double[] {1, 0, 1}));
        List<StreamRecord<Row>> out = records();
        assertEquals(2, out.size());
        assertDeadLetter(out.get(0), "wrong_prediction_count", "r1", 1_100);
        assertJoined(out.get(1), 1_000, 1, 2, NAN, 3, 4, NAN);
    }

    @Test
    void theWatermarkStaysBelowTheEarliestWaitingRequest() throws Exception {
        open(10 * TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        send(Rows.request("r2", 3_000, TWO));
        assertEquals(List.of(999L), watermark(2_500));
        send(Rows.response("r1", 2_600, new double[] {0, 0}));
        assertEquals(List.of(2_700L), watermark(2_700));
        assertEquals(List.of(2_999L), watermark(3_500));
        send(Rows.response("r2", 3_600, new double[] {0, 0}));
        assertEquals(List.of(3_700L), watermark(3_700));
        assertEquals(2, records().size());
    }

    @Test
    void theResponsesUnseenLabelsFollowTheRequests() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, instances(new double[] {-1, 2}, new double[] {5, -1}), "x"));
        send(Rows.response("r1", 1_100, new double[] {-2, 1}, "y", "z"));
        Row out = only().getValue();
        assertArrayEquals(new double[] {-1, 2, -3, 5, -1, 1}, Rows.unpacked((byte[]) out.getField(JobRows.INSTANCES)));
        assertArrayEquals(new String[] {"x", "y", "z"}, (String[]) out.getField(JobRows.LABELS));
    }

    @Test
    void aNumericOutputKeepsNegativePredictions() throws Exception {
        harness = opened(TIMEOUT, false, null);
        send(Rows.request("r1", 1_000, TWO, "x"));
        send(Rows.response("r1", 1_100, new double[] {-2.5, -1}));
        assertJoined(only(), 1_000, 1, 2, -2.5, 3, 4, -1);
    }

    @Test
    void labelRecordsPassStraightThroughForTheLabelJoin() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        Row label = LabelJoinTest.label("r1", 1_100, new double[] {1, 0});
        send(label);
        assertEquals(label, only().getValue());
        send(Rows.response("r1", 1_200, new double[] {2, 0}));
        assertJoined(only(), 1_000, 1, 2, 2, 3, 4, 0);  // the request was not taken for a repeated one
    }

    @Test
    void rejectedRecordsPassStraightThrough() throws Exception {
        open(TIMEOUT);
        send(Rows.rejected("bad_instance", "r1", 1_000L));
        assertDeadLetter(only(), "bad_instance", "r1", 1_000);
        assertEquals(List.of(5_000L), watermark(5_000));
    }

    @Test
    void aRequestAlreadyBehindTheWatermarkLeavesAtOnceAndHoldsNothing() throws Exception {
        open(TIMEOUT);
        watermark(5_000);
        send(Rows.request("late", 4_000, TWO));
        assertJoined(only(), 4_000, 1, 2, NAN, 3, 4, NAN);
        assertEquals(List.of(6_000L), watermark(6_000));
    }

    @Test
    void aResponseWhoseRequestComesLateIsDeadLetteredLateAndNotCountedAsJoined() throws Exception {
        open(TIMEOUT);
        send(Rows.response("r1", 1_500, new double[] {1, 0}));
        assertEquals(List.of(1_200L), watermark(1_200));  // a waiting response holds nothing
        send(Rows.request("r1", 1_000, TWO));  // behind the watermark: the router dead-letters it late
        List<StreamRecord<Row>> out = records();
        assertEquals(2, out.size());
        assertDeadLetter(out.get(0), Contract.LATE, "r1", 1_500);
        assertEquals(true, out.get(0).getValue().getField(JobRows.RESPONSE));
        assertJoined(out.get(1), 1_000, 1, 2, NAN, 3, 4, NAN);
        assertEquals(0L, joinedTotal());
        watermark(10_000);
        assertTrue(records().isEmpty());  // its timer went with it: no unmatched_response later
    }

    @Test
    void aRepeatedRequestIdReleasesTheEarlierRequestWithoutPredictions() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        send(Rows.request("r1", 1_200, instances(new double[] {7, 8})));
        assertJoined(only(), 1_000, 1, 2, NAN, 3, 4, NAN);
        assertEquals(List.of(1_199L), watermark(1_500));
        send(Rows.response("r1", 1_300, new double[] {1}));
        assertJoined(only(), 1_200, 7, 8, 1);
    }

    @Test
    void aSecondResponseBeforeTheRequestDeadLettersTheFirst() throws Exception {
        open(TIMEOUT);
        send(Rows.response("r1", 1_000, new double[] {0, 0}));
        send(Rows.response("r1", 1_100, new double[] {1, 1}));
        assertDeadLetter(only(), "unmatched_response", "r1", 1_000);
        send(Rows.request("r1", 1_200, TWO));
        assertJoined(only(), 1_200, 1, 2, 1, 3, 4, 1);
        watermark(10_000);
        assertTrue(records().isEmpty());
    }

    @Test
    void waitingRequestsAndResponsesSurviveASnapshotAndRestore() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        send(Rows.response("r2", 1_500, new double[] {1}));
        restart(TIMEOUT);
        assertEquals(List.of(999L), watermark(1_200));  // the hold rebuilt from the restored state
        send(Rows.response("r1", 1_300, new double[] {0, 1}));
        assertJoined(only(), 1_000, 1, 2, 0, 3, 4, 1);
        assertEquals(List.of(2_500L), watermark(2_500));
        assertDeadLetter(only(), "unmatched_response", "r2", 1_500);
    }

    @Test
    void aRequestSnapshottedUnderOneTimeoutLeavesAtItsDeadlineWhenRestoredUnderALongerOne() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        restart(5 * TIMEOUT);
        assertEquals(List.of(999L), watermark(1_999));
        harness.processWatermark(2_000);
        assertJoined(only(), 1_000, 1, 2, NAN, 3, 4, NAN);
        assertEquals(List.of(2_000L), Outputs.watermarks(harness));  // the hold is gone: output goes on
        send(Rows.request("r2", 3_000, TWO));  // a new request waits under the new timeout
        assertEquals(List.of(2_999L), watermark(7_999));
        harness.processWatermark(8_000);
        assertJoined(only(), 3_000, 1, 2, NAN, 3, 4, NAN);
    }

    @Test
    void aRequestSnapshottedUnderOneTimeoutLeavesAtItsDeadlineWhenRestoredUnderAShorterOne() throws Exception {
        open(5 * TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        send(Rows.response("orphan", 1_000, new double[] {1}));
        restart(TIMEOUT);
        assertEquals(List.of(999L), watermark(5_999));
        assertTrue(records().isEmpty());
        harness.processWatermark(6_000);
        List<StreamRecord<Row>> out = records();
        assertEquals(2, out.size());
        assertJoined(out.get(0), 1_000, 1, 2, NAN, 3, 4, NAN);
        assertDeadLetter(out.get(1), "unmatched_response", "orphan", 1_000);
        assertEquals(List.of(6_000L), Outputs.watermarks(harness));
    }

    @Test
    void waitingRowsRestoredUnderOtherColumnsAreMovedToThemByName() throws Exception {
        open(TIMEOUT);
        send(Rows.request("r1", 1_000, TWO));
        send(Rows.response("r2", 1_100, new double[] {-1}, "d"));
        OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);
        harness.close();
        String[] numeric = {"numeric", "numeric", "numeric"};
        FeatureSchema changed = new FeatureSchema(new String[] {"f1", "g", "f0"}, numeric, new String[3][], "y",
                "categorical", new String[] {"d", "a", "b", "c"});
        harness = opened(TIMEOUT, changed, snapshot);
        send(Rows.response("r1", 1_200, new double[] {0, 3}));
        assertJoined(only(), 1_000, 2, NAN, 1, 0, 4, NAN, 3, 3);  // f1, g (new: missing), f0, then y
        send(Rows.request("r2", 1_300, instances(new double[] {5, 6, 7})));
        assertJoined(only(), 1_300, 5, 6, 7, 0);  // the waiting response's "d", a label before, is class 0 now
    }
}
