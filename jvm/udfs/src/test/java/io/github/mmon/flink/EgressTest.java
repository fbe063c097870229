package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.JobID;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.runtime.clusterframework.types.ResourceID;
import org.apache.flink.runtime.executiongraph.ExecutionAttemptID;
import org.apache.flink.runtime.metrics.groups.TaskMetricGroup;
import org.apache.flink.runtime.metrics.groups.TaskManagerMetricGroup;
import org.apache.flink.runtime.metrics.util.TestingMetricRegistry;
import org.apache.flink.runtime.operators.testutils.MockEnvironmentBuilder;
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

    /** The gauges an {@link Egress} registered, by name and the values of its groups' keys (e.g.
     * {@code performance_alert <metric>=f1 <class>=a}), after {@code rows} went through it. */
    private static Map<String, Object> gaugesAfter(Row... rows) throws Exception {
        Map<String, Object> gauges = new HashMap<>();
        TestingMetricRegistry registry = TestingMetricRegistry.builder().setRegisterConsumer((metric, name, group) -> {
            if (metric instanceof Gauge<?> gauge && name.matches("performance_.*|label_coverage_micros|alert_active")) {
                StringBuilder key = new StringBuilder(name);
                group.getAllVariables().entrySet().stream()
                        .filter(v -> v.getKey().matches("<(metric|class|version|model|feature)>"))
                        .sorted(Map.Entry.comparingByKey()).forEach(v -> key.append(' ').append(v.getKey())
                                .append('=').append(v.getValue()));
                gauges.put(key.toString(), gauge);
            }
        }).build();
        TaskMetricGroup task = TaskManagerMetricGroup.createTaskManagerMetricGroup(registry, "host", ResourceID.generate())
                .addJob(new JobID(), "job").addTask(ExecutionAttemptID.randomId(), "task");
        OneInputStreamOperatorTestHarness<Row, Row> harness = new OneInputStreamOperatorTestHarness<>(
                new StreamMap<>(new Egress()), Outputs.serializer(JobRows.RECORD),
                new MockEnvironmentBuilder().setMetricGroup(task).build());
        harness.setup(Outputs.serializer(JobRows.RECORD));
        harness.open();
        for (Row row : rows) {
            harness.processElement(row, 1L);
        }
        harness.close();
        Map<String, Object> values = new HashMap<>();
        gauges.forEach((key, gauge) -> values.put(key, ((Gauge<?>) gauge).getValue()));
        return values;
    }

    @Test
    void performanceRecordsSetTheGaugesOfTheirMetricAndClassAndTheLabelCoverage() throws Exception {
        Map<String, Object> gauges = gaugesAfter(
                Row.of(Contract.PERFORMANCE, "m/0/accuracy",
                        "{\"version\":\"1\",\"metric\":\"accuracy\",\"value\":0.5,\"coverage\":0.25,\"alert\":false}"),
                Row.of(Contract.PERFORMANCE, "m/0/f1/a",
                        "{\"version\":\"1\",\"metric\":\"f1\",\"class\":\"a\",\"value\":0.125,\"coverage\":0.25,"
                                + "\"alert\":true}"),
                Row.of(Contract.PERFORMANCE, "m/0/confusion",
                        "{\"version\":\"1\",\"metric\":\"confusion\",\"value\":[[1,0],[0,1]],\"coverage\":0.75,"
                                + "\"alert\":false}"),
                Row.of(Contract.PERFORMANCE, "m/15000/accuracy",
                        "{\"version\":\"1\",\"metric\":\"accuracy\",\"value\":0.75,\"coverage\":null,\"alert\":true}"),
                Row.of(Contract.PERFORMANCE, "m/15000/accuracy",
                        "{\"version\":\"canary\",\"metric\":\"accuracy\",\"value\":0.25,\"coverage\":0.5,"
                                + "\"alert\":false}"));
        assertEquals(Map.of("performance_value_micros <class>= <metric>=accuracy <version>=1", 750_000L,
                "performance_alert <class>= <metric>=accuracy <version>=1", 1L,
                "performance_value_micros <class>=a <metric>=f1 <version>=1", 125_000L,
                "performance_alert <class>=a <metric>=f1 <version>=1", 1L,
                "performance_alert <class>= <metric>=confusion <version>=1", 0L,
                "label_coverage_micros <version>=1", 750_000L,
                "performance_value_micros <class>= <metric>=accuracy <version>=canary", 250_000L,
                "performance_alert <class>= <metric>=accuracy <version>=canary", 0L,
                "label_coverage_micros <version>=canary", 500_000L), gauges);
    }

    @Test
    void alertEventsSetTheActiveGaugeOfTheirModelAndFeature() throws Exception {
        Map<String, Object> gauges = gaugesAfter(
                Row.of(Contract.ALERTS, "m/f1", "{\"model\":\"m\",\"version\":\"1\",\"event\":\"open\",\"feature\":\"f1\"}"),
                Row.of(Contract.ALERTS, "m/", "{\"model\":\"m\",\"version\":\"1\",\"event\":\"open\",\"feature\":null}"),
                Row.of(Contract.ALERTS, "m/f2", "{\"model\":\"m\",\"version\":\"1\",\"event\":\"open\",\"feature\":\"f2\"}"),
                Row.of(Contract.ALERTS, "m/f2", "{\"model\":\"m\",\"version\":\"1\",\"event\":\"update\",\"feature\":\"f2\"}"),
                Row.of(Contract.ALERTS, "m/f1", "{\"model\":\"m\",\"version\":\"1\",\"event\":\"close\",\"feature\":\"f1\"}"));
        assertEquals(Map.of("alert_active <feature>=f1 <model>=m <version>=1", 0L,
                "alert_active <feature>=f2 <model>=m <version>=1", 1L, "alert_active <feature>= <model>=m <version>=1", 1L),
                gauges);
    }
}
