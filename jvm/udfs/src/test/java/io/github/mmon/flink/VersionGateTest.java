package io.github.mmon.flink;

import static io.github.mmon.flink.Rows.instances;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.List;

import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.AbstractStreamOperatorTestHarness;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/** {@link VersionGate} under Flink's operator harness: the first versions pass, a record of a further one leaves
 * with the reason too_many_versions, and the versions admitted survive a restore on every subtask. */
class VersionGateTest {

    /** A gate of at most {@code maxVersions} versions, restored from {@code restored} unless null, opened. */
    static OneInputStreamOperatorTestHarness<Row, Row> opened(int maxVersions, OperatorSubtaskState restored)
            throws Exception {
        OneInputStreamOperatorTestHarness<Row, Row> harness = new OneInputStreamOperatorTestHarness<>(
                new VersionGate(maxVersions), Outputs.serializer(Rows.REQUEST_TYPE));
        harness.setup(Outputs.serializer(Rows.REQUEST_TYPE));
        if (restored != null) {
            harness.initializeState(restored);
        }
        harness.open();
        return harness;
    }

    private static Row of(String version, String id) {
        Row row = Rows.request(id, 100, instances(new double[] {1}));
        row.setField(JobRows.VERSION, version);
        return row;
    }

    /** The reasons the gate gave the rows it passed on (null: passed unchanged). */
    private static List<String> reasons(OneInputStreamOperatorTestHarness<Row, Row> gate, Row... rows)
            throws Exception {
        for (Row row : rows) {
            gate.processElement(row, 100L);
        }
        return Outputs.records(gate).stream().map(r -> (String) r.getValue().getField(JobRows.REASON)).toList();
    }

    @Test
    void theFirstVersionsPassAndARecordOfAFurtherOneIsRejected() throws Exception {
        try (OneInputStreamOperatorTestHarness<Row, Row> gate = opened(2, null)) {
            Row parseFailure = Rows.rejected("bad_json", null, 100L);
            List<String> reasons = reasons(gate, of("a", "r1"), of("b", "r2"), of("c", "r3"), of("a", "r4"),
                    parseFailure, of("c", "r5"));
            assertEquals(Arrays.asList(null, null, Contract.TOO_MANY_VERSIONS, null, "bad_json",
                    Contract.TOO_MANY_VERSIONS), reasons);
        }
    }

    @Test
    void theVersionsAdmittedAnywhereAreKnownToEverySubtaskAfterARestore() throws Exception {
        OperatorSubtaskState both;
        try (OneInputStreamOperatorTestHarness<Row, Row> first = opened(2, null);
             OneInputStreamOperatorTestHarness<Row, Row> second = opened(2, null)) {
            reasons(first, of("a", "r1"));
            reasons(second, of("b", "r2"));
            both = AbstractStreamOperatorTestHarness.repackageState(first.snapshot(1L, 1L), second.snapshot(1L, 1L));
        }
        try (OneInputStreamOperatorTestHarness<Row, Row> restored = opened(2, both)) {
            assertEquals(Arrays.asList(null, null, Contract.TOO_MANY_VERSIONS),
                    reasons(restored, of("b", "r3"), of("a", "r4"), of("c", "r5")));
        }
    }

    @Test
    void aRejectedRecordKeepsItsVersionAndTime() throws Exception {
        try (OneInputStreamOperatorTestHarness<Row, Row> gate = opened(1, null)) {
            gate.processElement(of("a", "r1"), 100L);
            gate.processElement(of("b", "r2"), 100L);
            StreamRecord<Row> rejected = Outputs.records(gate).get(1);
            assertEquals(100L, rejected.getTimestamp());
            assertEquals("b", rejected.getValue().getField(JobRows.VERSION));
            assertEquals("r2", rejected.getValue().getField(JobRows.REQUEST_ID));
        }
    }
}
