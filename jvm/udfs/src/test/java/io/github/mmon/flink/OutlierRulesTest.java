package io.github.mmon.flink;

import static io.github.mmon.flink.Rows.instances;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/** {@link OutlierRules}: two rules over two numeric features and a categorical one (unseen values flagged). */
class OutlierRulesTest {

    private static final double INF = Double.POSITIVE_INFINITY;
    private static final OutlierRules RULES = new OutlierRules("iris", new String[] {"x", "y", "kind"},
            new String[] {"sigma_low", "below_min"}, new String[] {"sigma_high", "above_max"},
            new double[][] {{-1, -1, -INF}, {-2, -INF, -INF}}, new double[][] {{1, 1, INF}, {2, INF, INF}},
            new boolean[] {false, false, true}, "unseen");

    /** The alerts of one request (at 1,000 ms) as {@code key payload} lines. */
    private static List<String> alerts(double[][] values, String... labels) {
        Row request = Rows.request("r1", 1_000, values, labels);
        List<String> alerts = new ArrayList<>();
        RULES.check(request, (byte[]) request.getField(JobRows.INSTANCES), values.length, labels,
                alert -> alerts.add(alert.getField(0) + " " + alert.getField(1) + " " + alert.getField(2)));
        return alerts;
    }

    private static String payload(String feature, String rule, String value, String threshold) {
        return "{\"model\":\"iris\",\"version\":\"1\",\"request_id\":\"r1\",\"feature\":\"" + feature + "\",\"rule\":\"" + rule
                + "\",\"request_time\":1000,\"value\":" + value + ",\"threshold\":" + threshold + "}";
    }

    @Test
    void eachRuleFlagsEachFeatureOutsideItsBounds() {
        assertEquals(List.of("outliers iris/x " + payload("x", "sigma_high", "1.5", "1.0"),
                "outliers iris/y " + payload("y", "sigma_low", "-7.0", "-1.0"),
                "outliers iris/x " + payload("x", "sigma_low", "-3.0", "-1.0"),
                "outliers iris/x " + payload("x", "below_min", "-3.0", "-2.0")),
                alerts(instances(new double[] {0, 0, 0}, new double[] {1.5, -7, 0}, new double[] {-3, 0, 1})));
    }

    @Test
    void valuesOnTheBoundsAndMissingValuesAreNotOutliers() {
        assertEquals(List.of(), alerts(instances(new double[] {1, -1, 2}, new double[] {Double.NaN, Double.NaN,
            Double.NaN})));
    }

    @Test
    void anUnseenCategoryIsFlaggedWithItsTextAndNoThreshold() {
        assertEquals(List.of("outliers iris/kind " + payload("kind", "unseen", "\"purple\"", "null"),
                "outliers iris/kind " + payload("kind", "unseen", "\"teal\"", "null")),
                alerts(instances(new double[] {0, 0, -2}, new double[] {0, 0, 3}, new double[] {0, 0, -1}),
                        "teal", "purple"));
    }
}
