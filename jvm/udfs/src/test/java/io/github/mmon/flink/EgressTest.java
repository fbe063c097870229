package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.apache.flink.streaming.api.operators.StreamMap;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/** {@link Egress} as the job runs it (a map operator): each output row stamped with the time it leaves. */
class EgressTest {

    @Test
    void stampAppendsAFieldToTheObject() {
        assertEquals("{\"a\":1,\"at\":5}", Egress.stamp("{\"a\":1}", "at", 5));
    }

    @Test
    void eachKindIsStampedUnderItsOwnField() throws Exception {
        OneInputStreamOperatorTestHarness<Row, Row> harness = new OneInputStreamOperatorTestHarness<>(
                new StreamMap<>(new Egress()),
                Outputs.serializer(JobRows.RECORD));
        harness.setup(Outputs.serializer(JobRows.RECORD));
        harness.open();
        long before = System.currentTimeMillis();
        harness.processElement(Row.of(Contract.OUTLIERS, "iris/x", "{\"v\":1}"), 1L);
        harness.processElement(Row.of("dead_letter", "late", "{\"v\":2}"), 2L);
        harness.processElement(Row.of("drift", "iris/x",
                "{\"feature\":\"x\",\"metric\":\"psi\",\"value\":0.25,\"drift\":true}"), 3L);
        harness.processElement(Row.of("stats", "iris/x", "{\"v\":4}"), 4L);
        long after = System.currentTimeMillis();
        List<Row> out = harness.extractOutputValues();
        harness.close();
        List<String> fields = List.of("detected_at", "at", "emitted_at", "emitted_at");
        for (int i = 0; i < out.size(); i++) {
            String payload = (String) out.get(i).getField(2);
            String prefix = ",\"" + fields.get(i) + "\":";
            long stamped = Long.parseLong(payload.substring(payload.lastIndexOf(prefix) + prefix.length(),
                    payload.length() - 1));
            assertTrue(before <= stamped && stamped <= after, payload);
        }
        assertEquals(4, out.size());
        assertEquals(Row.of("dead_letter", "late"), Row.project(out.get(1), new int[] {0, 1}));
    }
}
