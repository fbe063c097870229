package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.typeinfo.BasicArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;

/** {@link RequestRouter}s under Flink's operator harness, opened and closed together, and their outputs. */
final class RouterHarness implements AutoCloseable {

    static final TypeInformation<Row> KEYED_SUB_BATCH = Types.ROW(Types.INT, Types.ROW(Types.INT, Types.LONG,
            Types.INT, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO, BasicArrayTypeInfo.STRING_ARRAY_TYPE_INFO,
            Types.STRING));

    private final List<OneInputStreamOperatorTestHarness<Row, Row>> opened = new ArrayList<>();

    /** A router with {@code settings} and {@code rules}, restored from {@code restored} unless null, opened. */
    OneInputStreamOperatorTestHarness<Row, Row> opened(RouterSettings settings, OutlierRules rules,
                                                       OperatorSubtaskState restored) throws Exception {
        RequestRouter router = new RequestRouter(settings, rules, new DeadLetters(1_000));
        OneInputStreamOperatorTestHarness<Row, Row> opening =
                new OneInputStreamOperatorTestHarness<>(router, Outputs.serializer(Rows.REQUEST_TYPE));
        opening.setup(Outputs.serializer(KEYED_SUB_BATCH));
        if (restored != null) {
            opening.initializeState(restored);
        }
        opening.open();
        opened.add(opening);
        return opening;
    }

    @Override
    public void close() throws Exception {
        for (OneInputStreamOperatorTestHarness<Row, Row> each : opened) {
            each.close();
        }
    }

    /** Rules that flag nothing, for {@code columns} columns. */
    static OutlierRules noRules(String... columns) {
        return new OutlierRules("m", columns, new String[0], new String[0], new double[0][], new double[0][],
                new boolean[columns.length], "unseen");
    }

    static void send(OneInputStreamOperatorTestHarness<Row, Row> to, Row row) throws Exception {
        to.processElement(row, (Long) row.getField(JobRows.REQUEST_TIME_MS));
    }

    /** A sub-batch as expected: under {@code key}, for {@code shard} of the window at {@code windowStart} (of
     * {@code windowMs}), {@code count} instances of the test rows' version, these values and labels. */
    static void assertSubBatch(StreamRecord<Row> out, long windowMs, int key, int shard, long windowStart, int count,
                               double[] values, String... labels) {
        assertSubBatch(out, windowMs, key, shard, windowStart, count, Rows.VERSION, values, labels);
    }

    /** A sub-batch as expected, of model {@code version}. */
    static void assertSubBatch(StreamRecord<Row> out, long windowMs, int key, int shard, long windowStart, int count,
                               String version, double[] values, String... labels) {
        assertEquals(windowStart + windowMs - 1, out.getTimestamp());
        assertEquals(key, out.getValue().getField(0));
        Row subBatch = (Row) out.getValue().getField(1);
        assertEquals(shard, subBatch.getField(0));
        assertEquals(windowStart, subBatch.getField(1));
        assertEquals(count, subBatch.getField(2));
        assertArrayEquals(values, Rows.unpacked((byte[]) subBatch.getField(3)));
        assertArrayEquals(labels, (String[]) subBatch.getField(4));
        assertEquals(version, subBatch.getField(5));
    }
}
