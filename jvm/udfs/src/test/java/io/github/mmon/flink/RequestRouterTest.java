package io.github.mmon.flink;

import static io.github.mmon.flink.Rows.instances;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.AbstractStreamOperatorTestHarness;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link RequestRouter} under Flink's operator harness: three columns (the middle one categorical) in two shards,
 * columns [0, 2) under key 7 and [2, 3) under key 3, windows of one second. */
class RequestRouterTest {

    private static final long WINDOW = 1_000;
    private static final OutlierRules NO_RULES = RouterHarness.noRules("a", "b", "c");

    private final RouterHarness routers = new RouterHarness();
    private OneInputStreamOperatorTestHarness<Row, Row> harness;

    private static final ColumnLayout COLUMNS = new ColumnLayout(new String[] {"a", "b", "c"},
            new boolean[] {false, true, false}, new String[][] {null, {"p", "q"}, null});
    private static final long ROOMY = 1 << 20;

    private static RouterSettings settings(boolean wholeMatrix, long flushBytes) {
        return new RouterSettings(COLUMNS, WINDOW, new int[] {0, 2, 3}, new int[] {7, 3}, wholeMatrix, flushBytes);
    }

    private OneInputStreamOperatorTestHarness<Row, Row> opened(RouterSettings settings, OutlierRules rules,
                                                               OperatorSubtaskState restored) throws Exception {
        return routers.opened(settings, rules, restored);
    }

    private void open() throws Exception {
        harness = opened(settings(false, ROOMY), NO_RULES, null);
    }

    @AfterEach
    void close() throws Exception {
        routers.close();
    }

    private static void send(OneInputStreamOperatorTestHarness<Row, Row> to, Row row) throws Exception {
        RouterHarness.send(to, row);
    }

    private void send(Row row) throws Exception {
        send(harness, row);
    }

    private List<StreamRecord<Row>> subBatches() {
        return Outputs.records(harness);
    }

    /** The side output (alerts and dead letters) so far. */
    private List<Row> records() {
        List<Row> rows = new ArrayList<>();
        harness.getSideOutput(RequestRouter.RECORDS).forEach(record -> rows.add(record.getValue()));
        return rows;
    }

    private static void assertSubBatch(StreamRecord<Row> out, int key, int shard, long windowStart, int count,
                                       double[] values, String... labels) {
        RouterHarness.assertSubBatch(out, WINDOW, key, shard, windowStart, count, values, labels);
    }

    private long accumulated(String name) {
        return (Long) harness.getEnvironment().getAccumulatorRegistry().getUserMap().get(name).getLocalValue();
    }

    @Test
    void aClosedWindowLeavesAsOneSubBatchPerShardUnderItsKeyBeforeTheWatermark() throws Exception {
        open();
        send(Rows.request("r1", 100, instances(new double[] {1, 2, 3}, new double[] {4, 5, 6})));
        send(Rows.request("r2", 900, instances(new double[] {7, 8, 9})));
        harness.processWatermark(998);
        assertTrue(subBatches().isEmpty());
        assertEquals(List.of(998L), Outputs.watermarks(harness));
        harness.processWatermark(999);
        List<Object> out = new ArrayList<>(harness.getOutput());
        assertInstanceOf(Watermark.class, out.get(2));  // after the window's sub-batches
        List<StreamRecord<Row>> subBatches = subBatches();
        assertEquals(2, subBatches.size());
        assertSubBatch(subBatches.get(0), 7, 0, 0, 3, new double[] {1, 2, 4, 5, 7, 8});
        assertSubBatch(subBatches.get(1), 3, 1, 0, 3, new double[] {3, 6, 9});
    }

    @Test
    void windowsCloseInOrderOfTheirStart() throws Exception {
        open();
        send(Rows.request("r3", 2_500, instances(new double[] {3, 3, 3})));
        send(Rows.request("r1", 500, instances(new double[] {1, 1, 1})));
        send(Rows.request("r2", 1_999, instances(new double[] {2, 2, 2})));
        harness.processWatermark(1_998);
        List<StreamRecord<Row>> first = subBatches();
        assertEquals(2, first.size());
        assertSubBatch(first.get(0), 7, 0, 0, 1, new double[] {1, 1});
        harness.processWatermark(5_000);
        List<StreamRecord<Row>> rest = subBatches();
        assertEquals(4, rest.size());
        assertSubBatch(rest.get(0), 7, 0, 1_000, 1, new double[] {2, 2});
        assertSubBatch(rest.get(3), 3, 1, 2_000, 1, new double[] {3});
    }

    @Test
    void aRequestAtOrBeforeTheWatermarkIsDeadLetteredLateAndTheAccountingAddsUp() throws Exception {
        open();
        harness.processWatermark(999);
        send(Rows.request("old", 999, instances(new double[] {1, 2, 3})));
        send(Rows.request("new", 1_000, instances(new double[] {1, 2, 3}, new double[] {4, 5, 6})));
        send(Rows.rejected("bad_json", null, 1_000L));
        List<Row> records = records();
        assertEquals(2, records.size());
        assertEquals(List.of("dead_letter", "late"), List.of(records.get(0).getField(0), records.get(0).getField(1)));
        assertEquals("bad_json", records.get(1).getField(1));
        assertEquals(3L, accumulated(Contract.RECORDS_READ));
        assertEquals(1L, accumulated(Contract.REQUESTS_ACCEPTED));
        assertEquals(2L, accumulated(Contract.INSTANCES_ACCEPTED));
    }

    @Test
    void aBufferLeavesEarlyWhenItHoldsFlushBytesOfValues() throws Exception {
        harness = opened(settings(false, 6 * Double.BYTES), NO_RULES, null);
        send(Rows.request("r1", 100, instances(new double[] {1, 2, 3})));
        assertTrue(subBatches().isEmpty());
        send(Rows.request("r2", 200, instances(new double[] {4, 5, 6})));
        List<StreamRecord<Row>> early = subBatches();
        assertEquals(2, early.size());
        assertSubBatch(early.get(1), 3, 1, 0, 2, new double[] {3, 6});
        send(Rows.request("r3", 300, instances(new double[] {7, 8, 9})));
        harness.processWatermark(999);
        List<StreamRecord<Row>> rest = subBatches();
        assertEquals(2, rest.size());
        assertSubBatch(rest.get(0), 7, 0, 0, 1, new double[] {7, 8});
    }

    @Test
    void withCovarianceShardZeroCarriesEveryColumn() throws Exception {
        harness = opened(settings(true, ROOMY), NO_RULES, null);
        send(Rows.request("r1", 100, instances(new double[] {1, 2, 3}, new double[] {4, 5, 6})));
        harness.processWatermark(999);
        List<StreamRecord<Row>> out = subBatches();
        assertSubBatch(out.get(0), 7, 0, 0, 2, new double[] {1, 2, 3, 4, 5, 6});
        assertSubBatch(out.get(1), 3, 1, 0, 2, new double[] {3, 6});
    }

    @Test
    void unseenValuesAreRenumberedIntoTheWindowsLabelsInCategoricalColumnsOnly() throws Exception {
        open();
        send(Rows.request("r1", 100, instances(new double[] {-1, -1, -1}), "a"));
        send(Rows.request("r2", 200, instances(new double[] {0, -1, 5}, new double[] {0, -2, -7}), "b", "a"));
        send(Rows.request("r3", 300, instances(new double[] {0, 1, 5})));
        harness.processWatermark(999);
        List<StreamRecord<Row>> out = subBatches();
        assertSubBatch(out.get(0), 7, 0, 0, 4, new double[] {-1, -1, 0, -2, 0, -1, 0, 1}, "a", "b");
        assertSubBatch(out.get(1), 3, 1, 0, 4, new double[] {-1, 5, -7, 5}, "a", "b");
    }

    @Test
    void outlierAlertsLeaveOnTheSideOutputAndTheRequestIsStillAccepted() throws Exception {
        OutlierRules rules = new OutlierRules("m", new String[] {"a", "b", "c"}, new String[] {"low"},
                new String[] {"high"}, new double[][] {{0, Double.NEGATIVE_INFINITY, 0}},
                new double[][] {{10, Double.POSITIVE_INFINITY, 10}}, new boolean[3], "unseen");
        harness = opened(settings(false, ROOMY), rules, null);
        send(Rows.request("r1", 100, instances(new double[] {11, 99, -1})));
        List<Row> alerts = records();
        assertEquals(List.of("m/a", "m/c"), List.of(alerts.get(0).getField(1), alerts.get(1).getField(1)));
        harness.processWatermark(999);
        assertEquals(2, subBatches().size());
    }

    @Test
    void openWindowsSurviveASnapshotAndRestore() throws Exception {
        open();
        send(Rows.request("r1", 100, instances(new double[] {1, -1, 3}), "é"));
        send(Rows.request("r2", 1_100, instances(new double[] {4, 5, 6})));
        OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);
        harness = opened(settings(false, ROOMY), NO_RULES, snapshot);
        send(Rows.request("r3", 200, instances(new double[] {7, -1, 9}), "z"));
        harness.processWatermark(1_999);
        List<StreamRecord<Row>> out = subBatches();
        assertEquals(4, out.size());
        assertSubBatch(out.get(0), 7, 0, 0, 2, new double[] {1, -1, 7, -2}, "é", "z");
        assertSubBatch(out.get(3), 3, 1, 1_000, 1, new double[] {6});
    }

    /** A request of {@code version}. */
    private static Row versioned(String version, String id, long time, double[]... instances) {
        Row row = Rows.request(id, time, instances);
        row.setField(JobRows.VERSION, version);
        return row;
    }

    /** The sub-batches of {@code out} of {@code version}, in order. */
    private static List<StreamRecord<Row>> ofVersion(List<StreamRecord<Row>> out, String version) {
        return out.stream().filter(r -> version.equals(((Row) r.getValue().getField(1)).getField(5))).toList();
    }

    @Test
    void eachVersionOfAWindowHasItsOwnBufferAndLeavesAsSubBatchesNamingIt() throws Exception {
        open();
        send(versioned("stable", "r1", 100, new double[] {1, 0, 3}, new double[] {4, 1, 6}));
        send(versioned("canary", "r2", 200, new double[] {7, 1, 9}));
        send(versioned("stable", "r3", 300, new double[] {10, 0, 12}));
        OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);  // each version's buffer checkpointed apart
        harness = opened(settings(false, ROOMY), NO_RULES, snapshot);
        send(versioned("canary", "r4", 400, new double[] {13, 0, 15}));
        harness.processWatermark(999);
        List<StreamRecord<Row>> out = subBatches();
        assertEquals(4, out.size());
        List<StreamRecord<Row>> stable = ofVersion(out, "stable");
        List<StreamRecord<Row>> canary = ofVersion(out, "canary");
        RouterHarness.assertSubBatch(stable.get(0), WINDOW, 7, 0, 0, 3, "stable", new double[] {1, 0, 4, 1, 10, 0});
        RouterHarness.assertSubBatch(stable.get(1), WINDOW, 3, 1, 0, 3, "stable", new double[] {3, 6, 12});
        RouterHarness.assertSubBatch(canary.get(0), WINDOW, 7, 0, 0, 2, "canary", new double[] {7, 1, 13, 0});
        RouterHarness.assertSubBatch(canary.get(1), WINDOW, 3, 1, 0, 2, "canary", new double[] {9, 15});
    }

    @Test
    void aRecordOfAVersionPastTheGateIsDeadLetteredWithItsVersionAndCounted() throws Exception {
        open();
        try (OneInputStreamOperatorTestHarness<Row, Row> gate = VersionGateTest.opened(1, null)) {
            for (Row row : List.of(versioned("stable", "r1", 100, new double[] {1, 0, 3}),
                    versioned("canary", "r2", 200, new double[] {7, 1, 9}))) {
                gate.processElement(row, (Long) row.getField(JobRows.REQUEST_TIME_MS));
            }
            for (StreamRecord<Row> passed : Outputs.records(gate)) {
                send(passed.getValue());
            }
        }
        List<Row> records = records();
        assertEquals(1, records.size());
        assertEquals(List.of("dead_letter", Contract.TOO_MANY_VERSIONS),
                List.of(records.get(0).getField(0), records.get(0).getField(1)));
        assertTrue(((String) records.get(0).getField(2)).endsWith(",\"version\":\"canary\"}"));
        assertEquals(2L, accumulated(Contract.RECORDS_READ));
        assertEquals(1L, accumulated(Contract.REQUESTS_ACCEPTED));
        harness.processWatermark(999);
        assertEquals(List.of(1, 1), subBatches().stream().map(r -> ((Row) r.getValue().getField(1)).getField(2)).toList());
    }

    @Test
    void twoSubtasksBuffersOfOneWindowMergeOnRestore() throws Exception {
        OneInputStreamOperatorTestHarness<Row, Row> first = opened(settings(false, ROOMY), NO_RULES, null);
        OneInputStreamOperatorTestHarness<Row, Row> second = opened(settings(false, ROOMY), NO_RULES, null);
        send(first, Rows.request("r1", 100, instances(new double[] {1, -1, 1}), "x"));
        send(second, Rows.request("r2", 200, instances(new double[] {2, -1, 2}), "y"));
        send(second, Rows.request("r3", 300, instances(new double[] {3, -1, 3}), "x"));
        OperatorSubtaskState both = AbstractStreamOperatorTestHarness.repackageState(first.snapshot(1L, 1L),
                second.snapshot(1L, 1L));
        harness = opened(settings(false, ROOMY), NO_RULES,
                AbstractStreamOperatorTestHarness.repartitionOperatorState(both, 128, 2, 1, 0));
        harness.processWatermark(999);
        Row shardZero = (Row) subBatches().get(0).getValue().getField(1);
        assertEquals(3, shardZero.getField(2));
        double[] values = Rows.unpacked((byte[]) shardZero.getField(3));
        String[] labels = (String[]) shardZero.getField(4);
        Set<String> instances = new HashSet<>();
        for (int i = 0; i < values.length; i += 2) {  // the order of the two entries is the restore's
            instances.add(values[i] + " " + labels[(int) (-1 - values[i + 1])]);
        }
        assertEquals(Set.of("1.0 x", "2.0 y", "3.0 x"), instances);
        assertEquals(2, labels.length);
    }
}
