package io.github.mmon.flink;

import static io.github.mmon.flink.Rows.instances;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link RequestRouter} restored under a changed spec (issue 20): open windows move to the new columns by name,
 * a window part of which already left is closed under the routing it was filled with, a window of another length
 * or a column of another type is refused; and buffers leave early by bytes, label text included.
 */
class RequestRouterUpgradeTest {

    private static final long WINDOW = 1_000;
    private static final long ROOMY = 1 << 20;
    private static final double NAN = Double.NaN;
    private static final String[] PQ = {"p", "q"};
    /** Before: a, b (categorical: p, q), c, d in shards [a, b] under key 7 and [c, d] under key 3. */
    private static final RouterSettings BEFORE = new RouterSettings(layout(new String[] {"a", "b", "c", "d"},
            new String[][] {null, PQ, null, null}), WINDOW, new int[] {0, 2, 4}, new int[] {7, 3}, false, ROOMY);
    /** After c is dropped: a, b, d in shards [a, b] under key 11 and [d] under key 5. */
    private static final RouterSettings WITHOUT_C = new RouterSettings(layout(new String[] {"a", "b", "d"},
            new String[][] {null, PQ, null}), WINDOW, new int[] {0, 2, 3}, new int[] {11, 5}, false, ROOMY);

    private final RouterHarness routers = new RouterHarness();
    private OneInputStreamOperatorTestHarness<Row, Row> harness;

    /** Columns named {@code names}; those with a vocabulary are categorical. */
    private static ColumnLayout layout(String[] names, String[][] vocabularies) {
        boolean[] categorical = new boolean[names.length];
        for (int j = 0; j < names.length; j++) {
            categorical[j] = vocabularies[j] != null;
        }
        return new ColumnLayout(names, categorical, vocabularies);
    }

    private static RouterSettings flushingAt(RouterSettings settings, long flushBytes) {
        return new RouterSettings(settings.columns(), settings.windowMs(), settings.shardBounds(), settings.shardKeys(),
                settings.wholeMatrix(), flushBytes);
    }

    @AfterEach
    void close() throws Exception {
        routers.close();
    }

    private void open(RouterSettings settings, OperatorSubtaskState restored) throws Exception {
        harness = routers.opened(settings, RouterHarness.noRules(settings.columns().names()), restored);
    }

    /** The harness snapshotted, and a new router with {@code settings} restored from it. */
    private void restart(RouterSettings settings) throws Exception {
        open(settings, harness.snapshot(1L, 1L));
    }

    private void send(String id, long time, double[]... values) throws Exception {
        RouterHarness.send(harness, Rows.request(id, time, instances(values)));
    }

    private List<StreamRecord<Row>> subBatches() {
        return Outputs.records(harness);
    }

    private static void assertSubBatch(StreamRecord<Row> out, int key, int shard, int count, double[] values,
                                       String... labels) {
        RouterHarness.assertSubBatch(out, WINDOW, key, shard, 0, count, values, labels);
    }

    @Test
    void anOpenWindowRestoredWithoutAFeatureKeepsTheOthersByName() throws Exception {
        open(BEFORE, null);
        send("r1", 100, new double[] {1, 0, 30, 4}, new double[] {2, 1, 31, 5});
        restart(WITHOUT_C);
        RouterHarness.send(harness, Rows.request("r2", 200, instances(new double[] {3, 1, 6})));
        harness.processWatermark(999);
        List<StreamRecord<Row>> out = subBatches();
        assertEquals(2, out.size());
        assertSubBatch(out.get(0), 11, 0, 3, new double[] {1, 0, 2, 1, 3, 1});
        assertSubBatch(out.get(1), 5, 1, 3, new double[] {4, 5, 6});  // never c's 30, 31
    }

    @Test
    void reorderedAddedAndGrownColumnsAreFilledByNameAndCategoriesRecodedByText() throws Exception {
        open(BEFORE, null);
        RouterHarness.send(harness, Rows.request("r1", 100, instances(new double[] {1, -1, 3, 4}), "z"));
        send("r2", 200, new double[] {2, 1, 5, 6});
        RouterSettings after = new RouterSettings(layout(new String[] {"d", "e", "b", "a"},
                new String[][] {null, null, {"q", "z", "p"}, null}), WINDOW, new int[] {0, 4}, new int[] {9}, false, ROOMY);
        restart(after);
        harness.processWatermark(999);
        // b: "z" (a label before) is now code 1, "q" (code 1 before) code 0; e (new) is missing
        assertSubBatch(subBatches().get(0), 9, 0, 2, new double[] {4, NAN, 1, 1, 6, NAN, 0, 2});
    }

    @Test
    void aCategoryNotInTheNewVocabularyBecomesALabelOfTheWindow() throws Exception {
        open(BEFORE, null);
        send("r1", 100, new double[] {1, 0, 3, 4});
        RouterSettings after = new RouterSettings(layout(new String[] {"a", "b"}, new String[][] {null, {"q"}}),
                WINDOW, new int[] {0, 2}, new int[] {9}, false, ROOMY);
        restart(after);
        harness.processWatermark(999);
        assertSubBatch(subBatches().get(0), 9, 0, 1, new double[] {1, -1}, "p");
    }

    @Test
    void aWindowPartOfWhichLeftEarlyClosesUnderItsOwnRoutingAndLaterInstancesUnderTheNew() throws Exception {
        open(flushingAt(BEFORE, 8 * Double.BYTES), null);
        send("r1", 100, new double[] {1, 0, 30, 4}, new double[] {2, 1, 31, 5});  // 8 values: leaves early
        assertEquals(2, subBatches().size());
        send("r2", 150, new double[] {3, 0, 32, 6});
        restart(WITHOUT_C);
        RouterHarness.send(harness, Rows.request("r3", 200, instances(new double[] {9, 1, 9})));
        harness.processWatermark(999);
        List<StreamRecord<Row>> out = subBatches();
        assertEquals(4, out.size());
        assertSubBatch(out.get(0), 11, 0, 1, new double[] {9, 1});
        assertSubBatch(out.get(1), 5, 1, 1, new double[] {9});
        assertSubBatch(out.get(2), 7, 0, 1, new double[] {3, 0});  // the old keys and shards: the rest of r1's part
        assertSubBatch(out.get(3), 3, 1, 1, new double[] {32, 6});
    }

    @Test
    void aWindowOfAnotherLengthIsRefusedWithTheWayForward() throws Exception {
        open(BEFORE, null);
        send("r1", 100, new double[] {1, 0, 3, 4});
        OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);
        RouterSettings shorter = new RouterSettings(BEFORE.columns(), WINDOW / 4, BEFORE.shardBounds(),
                BEFORE.shardKeys(), false, ROOMY);
        Exception refused = assertThrows(Exception.class, () -> open(shorter, snapshot));
        String message = rootMessage(refused);
        assertTrue(message.contains("1000 ms") && message.contains("window.duration is now 250 ms")
                && message.contains("--drain"), message);
    }

    @Test
    void aColumnOfAnotherTypeIsRefused() throws Exception {
        open(BEFORE, null);
        send("r1", 100, new double[] {1, 0, 3, 4});
        OperatorSubtaskState snapshot = harness.snapshot(1L, 1L);
        RouterSettings numericB = new RouterSettings(layout(new String[] {"a", "b"}, new String[][] {null, null}),
                WINDOW, new int[] {0, 2}, new int[] {9}, false, ROOMY);
        String message = rootMessage(assertThrows(Exception.class, () -> open(numericB, snapshot)));
        assertTrue(message.contains("column b was categorical and is now numeric"), message);
    }

    private static String rootMessage(Throwable thrown) {
        Throwable cause = thrown;
        while (cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause.getMessage();
    }

    @Test
    void aBufferLeavesEarlyByTheBytesOfItsLabelsAndEachSubBatchCarriesOnlyItsOwn() throws Exception {
        String first = "x".repeat(100);
        String second = "y".repeat(100);
        String third = "z".repeat(100);
        long twoLabels = 2 * (2 * 100 + WindowBuffer.LABEL_OVERHEAD) + 2 * 4 * Double.BYTES;
        open(flushingAt(BEFORE, twoLabels), null);
        RouterHarness.send(harness, Rows.request("r1", 100, instances(new double[] {1, -1, 3, 4}), first));
        assertTrue(subBatches().isEmpty());
        RouterHarness.send(harness, Rows.request("r2", 200, instances(new double[] {1, -1, 3, 4}), second));
        List<StreamRecord<Row>> early = subBatches();
        assertSubBatch(early.get(0), 7, 0, 2, new double[] {1, -1, 1, -2}, first, second);
        RouterHarness.send(harness, Rows.request("r3", 300, instances(new double[] {1, -1, 3, 4}), third));
        harness.processWatermark(999);
        assertSubBatch(subBatches().get(0), 7, 0, 1, new double[] {1, -1}, third);
    }

    @Test
    void aBufferCheckpointedBeforeRoutingsWereKeptIsReadUnderTheCurrentOne() {
        WindowBuffer.Restored restored = WindowBuffer.fromUnroutedState(
                ByteBuffer.allocate(8 + 4 + 32 + 4 + 4 + 2).order(ByteOrder.LITTLE_ENDIAN).putLong(2_000).putInt(4)
                        .putDouble(1).putDouble(-1).putDouble(3).putDouble(4).putInt(1).putInt(2)
                        .put("é".getBytes(StandardCharsets.UTF_8)).array(), BEFORE);
        assertEquals(2_000, restored.windowStart());
        assertEquals(1, restored.buffer().instances());
        assertArrayEquals(new double[] {1, -1, 3, 4}, Rows.unpacked(restored.buffer().columns(0, 4)));
        assertArrayEquals(new String[] {"é"}, restored.buffer().labels());
        assertTrue(restored.buffer().routing().sameRouting(BEFORE));
    }
}
