package io.github.mmon.flink;

import static io.github.mmon.flink.Contract.*;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.types.Row;

/**
 * The job's last step before its sinks: appends to each {@code (kind, k, payload)} output row the
 * wall-clock epoch ms at which it leaves the job ({@code detected_at} for outliers, {@code at} for dead
 * letters, {@code emitted_at} otherwise) and counts it in the {@code mmon} metric group. It runs once per
 * output record, in the JVM, so alerts and dead letters never meet Python. The kinds and reasons are
 * {@link Contract}'s; {@code flink_job.metrics} documents the metrics. The metrics of a model's results (outliers,
 * drift values, performance, label coverage) are per model version: each under a {@code version} group, the
 * record's own (empty for a record without one).
 */
public class Egress extends RichMapFunction<Row, Row> {

    private static final ObjectMapper JSON = new ObjectMapper();

    private transient MetricGroup group;
    private transient Counter lateEvents;
    private transient Counter parseErrors;
    private transient Counter driftAlerts;
    private transient Map<String, Counter> outliersByVersionAndFeature;
    private transient Map<String, Counter> deadLettersByReason;
    private transient Map<String, long[]> gauges;

    @Override
    public void open(OpenContext context) {
        group = getRuntimeContext().getMetricGroup().addGroup("mmon");
        lateEvents = group.counter("late_events");
        parseErrors = group.counter("parse_errors");
        driftAlerts = group.counter("drift_alerts");
        outliersByVersionAndFeature = new HashMap<>();
        deadLettersByReason = new HashMap<>();
        gauges = new HashMap<>();
    }

    @Override
    public Row map(Row row) throws IOException {
        String kind = (String) row.getField(0);
        String key = (String) row.getField(1);
        String payload = (String) row.getField(2);
        String field = "emitted_at";
        if (OUTLIERS.equals(kind)) {
            field = "detected_at";
            String feature = key.substring(key.indexOf('/') + 1);
            String version = versionOf(JSON.readTree(payload));
            outliersByVersionAndFeature.computeIfAbsent(version + "\u0000" + feature,
                    f -> group.addGroup(VERSION, version).addGroup("feature", feature).counter(OUTLIERS)).inc();
        } else if (DEAD_LETTER.equals(kind)) {
            field = "at";
            deadLettersByReason.computeIfAbsent(key, r -> group.addGroup("reason", r).counter(DEAD_LETTER)).inc();
            (LATE.equals(key) ? lateEvents : parseErrors).inc();
        } else if (DRIFT.equals(kind)) {
            trackDrift(payload);
        } else if (PERFORMANCE.equals(kind)) {
            trackPerformance(payload);
        } else if (ALERTS.equals(kind)) {
            trackAlert(payload);
        }
        return Row.of(kind, key, stamp(payload, field, System.currentTimeMillis()));
    }

    /** The JSON object {@code payload} with {@code "field":ms} appended. */
    static String stamp(String payload, String field, long ms) {
        return payload.substring(0, payload.length() - 1) + ",\"" + field + "\":" + ms + "}";
    }

    /** A record's model version ({@code ""} when it names none). */
    private static String versionOf(JsonNode record) {
        JsonNode version = record.get(VERSION);
        return version == null || version.isNull() ? "" : version.asText();
    }

    /** The last value (x 1e6, as the Python job reported it) per (version, feature, metric), and the alert count. */
    private void trackDrift(String payload) throws IOException {
        JsonNode record = JSON.readTree(payload);
        String version = versionOf(record);
        String feature = record.get("feature").asText();
        String metric = record.get("metric").asText();
        gauge(version + "\u0000" + feature + "\u0000" + metric, "drift_value_micros", VERSION, version, "feature",
                feature, "metric", metric)[0] = Math.round(record.get("value").asDouble() * 1e6);
        if (record.get("drift").asBoolean()) {
            driftAlerts.inc();
        }
    }

    /** Of the latest performance record of each version and metric (and class): its value x 1e6 (a number: not the
     * confusion matrix, nor a value not yet defined), whether it is alerted (1 or 0), and the version's label
     * coverage x 1e6. */
    private void trackPerformance(String payload) throws IOException {
        JsonNode record = JSON.readTree(payload);
        String version = versionOf(record);
        String metric = record.get("metric").asText();
        String label = record.has("class") ? record.get("class").asText() : "";
        String key = "performance\u0000" + version + "\u0000" + metric + "\u0000" + label;
        JsonNode value = record.get("value");
        if (value != null && value.isNumber()) {
            gauge(key, "performance_value_micros", VERSION, version, "metric", metric, "class", label)[0] =
                    Math.round(value.asDouble() * 1e6);
        }
        gauge(key + "\u0000alert", "performance_alert", VERSION, version, "metric", metric, "class", label)[0] =
                record.get("alert").asBoolean() ? 1 : 0;
        JsonNode coverage = record.get("coverage");
        if (coverage != null && coverage.isNumber()) {
            gauge("label_coverage\u0000" + version, "label_coverage_micros", VERSION, version)[0] =
                    Math.round(coverage.asDouble() * 1e6);
        }
    }

    /** Per model, version and feature, 1 while an alert episode is open (its open and update events), 0 once it
     * closed; the model's own episodes under the feature "". */
    private void trackAlert(String payload) throws IOException {
        JsonNode record = JSON.readTree(payload);
        String model = record.get("model").asText();
        JsonNode feature = record.get("feature");
        String name = feature == null || feature.isNull() ? "" : feature.asText();
        String version = versionOf(record);
        gauge("alert\u0000" + model + "\u0000" + version + "\u0000" + name, "alert_active", "model", model, VERSION,
                version, "feature", name)[0] =
                "close".equals(record.get("event").asText()) ? 0 : 1;
    }

    /** The cell of the gauge {@code name} under {@code key}, registered on first use in the groups given as
     * (name, value) pairs: set it to report a new value. */
    private long[] gauge(String key, String name, String... groups) {
        return gauges.computeIfAbsent(key, k -> {
            long[] holder = new long[1];
            MetricGroup at = group;
            for (int i = 0; i + 1 < groups.length; i += 2) {
                at = at.addGroup(groups[i], groups[i + 1]);
            }
            at.gauge(name, (Gauge<Long>) () -> holder[0]);
            return holder;
        });
    }
}
