package io.github.mmon.flink;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.util.function.Consumer;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.types.Row;

/**
 * The per-instance outlier test: rule {@code r} flags feature {@code j} of an instance when its value is
 * below {@code lower[r][j]} (reported as {@code belowName[r]}) or above {@code upper[r][j]}
 * ({@code aboveName[r]}). The bounds come from {@code udfs.outliers} (Python) at build time; a rule that
 * does not apply to a feature has infinite bounds. One pass over the instance per rule, no per-feature
 * expression, so the cost and the plan do not grow with the width beyond the loop itself. A column with
 * {@code unseen[j]} set holds category codes: a negative code is a value the baseline never saw, reported
 * once per instance as rule {@code unseenName} with the value's text (NaN, a missing value, never is).
 */
public final class OutlierRules implements Serializable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final String model;
    private final String[] features;
    private final String[] belowName;
    private final String[] aboveName;
    private final double[][] lower;
    private final double[][] upper;
    private final boolean[] unseen;
    private final String unseenName;

    public OutlierRules(String model, String[] features, String[] belowName, String[] aboveName,
                        double[][] lower, double[][] upper, boolean[] unseen, String unseenName) {
        this.model = model;
        this.features = features;
        this.belowName = belowName;
        this.aboveName = aboveName;
        this.lower = lower;
        this.upper = upper;
        this.unseen = unseen;
        this.unseenName = unseenName;
    }

    /** Emits one {@code (kind, model/feature, payload)} alert per violated (rule, feature) of each instance. */
    void check(Row request, byte[] packed, int instances, String[] labels, Consumer<Row> alerts) {
        DoubleBuffer values = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
        int width = features.length;
        if (labels != null && labels.length > 0) {
            checkUnseen(request, values, instances, labels, alerts);
        }
        for (int i = 0; i < instances; i++) {
            for (int r = 0; r < lower.length; r++) {
                for (int j = 0; j < width; j++) {
                    double value = values.get(i * width + j);
                    if (value < lower[r][j]) {
                        alerts.accept(alert(request, j, value, belowName[r], lower[r][j]));
                    } else if (value > upper[r][j]) {
                        alerts.accept(alert(request, j, value, aboveName[r], upper[r][j]));
                    }
                }
            }
        }
    }

    /** Unseen values exist only where a record has labels: the check costs nothing on other records. */
    private void checkUnseen(Row request, DoubleBuffer values, int instances, String[] labels, Consumer<Row> alerts) {
        int width = features.length;
        for (int i = 0; i < instances; i++) {
            for (int j = 0; j < width; j++) {
                double value = values.get(i * width + j);
                if (unseen[j] && value < 0) {
                    ObjectNode payload = payload(request, j, unseenName);
                    payload.put("value", labels[Contract.labelIndex(value)]);
                    payload.putNull("threshold");
                    alerts.accept(Row.of(Contract.OUTLIERS, model + "/" + features[j], payload.toString()));
                }
            }
        }
    }

    private Row alert(Row request, int feature, double value, String rule, double threshold) {
        ObjectNode payload = payload(request, feature, rule);
        payload.put("value", value);
        payload.put("threshold", threshold);
        return Row.of(Contract.OUTLIERS, model + "/" + features[feature], payload.toString());
    }

    /** An alert's fields in the order every alert has them; {@code value} and {@code threshold} follow. */
    private ObjectNode payload(Row request, int feature, String rule) {
        ObjectNode payload = JSON.createObjectNode();
        payload.put("model", model);
        payload.put(Contract.VERSION, (String) request.getField(JobRows.VERSION));
        payload.put("request_id", (String) request.getField(JobRows.REQUEST_ID));
        payload.put("feature", features[feature]);
        payload.put("rule", rule);
        payload.put("request_time", (Long) request.getField(JobRows.REQUEST_TIME_MS));
        return payload;
    }
}
