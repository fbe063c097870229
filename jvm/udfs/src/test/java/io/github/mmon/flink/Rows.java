package io.github.mmon.flink;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import org.apache.flink.api.common.typeinfo.BasicArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;

/** Test rows of {@link JobRows#REQUEST_FIELDS}, as the parse step makes them, and their packed values. */
final class Rows {

    static final RowTypeInfo REQUEST_TYPE = new RowTypeInfo(new TypeInformation<?>[] {Types.STRING, Types.STRING,
        Types.LONG, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO, BasicArrayTypeInfo.STRING_ARRAY_TYPE_INFO,
        Types.BOOLEAN, Types.BOOLEAN, Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO, Types.STRING,
        Types.INT,
        Types.LONG},
            JobRows.REQUEST_FIELDS);

    /** The model version of the test rows. */
    static final String VERSION = "1";

    private Rows() {
    }

    /** An accepted request: its instances (one array each) and its labels (none: NULL, as the parse step). */
    static Row request(String id, long timeMs, double[][] instances, String... labels) {
        return row(null, id, timeMs, ParseRequest.packed(instances), labels, false);
    }

    /** An accepted response: one prediction per instance of its request. */
    static Row response(String id, long timeMs, double[] predictions, String... labels) {
        double[][] column = new double[predictions.length][];
        for (int i = 0; i < column.length; i++) {
            column[i] = new double[] {predictions[i]};
        }
        return row(null, id, timeMs, ParseRequest.packed(column), labels, true);
    }

    /** A record the parse step rejected. */
    static Row rejected(String reason, String id, Long timeMs) {
        return row(reason, id, timeMs, null, null, false);
    }

    private static Row row(String reason, String id, Long timeMs, byte[] packed, String[] labels, boolean response) {
        String[] none = labels == null || labels.length == 0 ? null : labels;
        byte[] raw = ("{\"id\":\"" + id + "\"}").getBytes(StandardCharsets.UTF_8);
        return Row.of(reason, id, timeMs, packed, none, response, false, reason == null ? VERSION : null, raw, "input",
                null, 7L);
    }

    static double[][] instances(double[]... instances) {
        return instances;
    }

    /** Little-endian float64 values, as {@link ParseRequest#packed} writes them. */
    static double[] unpacked(byte[] packed) {
        double[] values = new double[packed.length / Double.BYTES];
        ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(values);
        return values;
    }
}
