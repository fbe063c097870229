package io.github.mmon.flink;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.types.Row;

/** A join keyed by request id ({@link ResponseJoin}, {@link LabelJoin}) under Flink's keyed operator harness. */
final class JoinHarness {

    private JoinHarness() {
    }

    /** {@code join} keyed by request id over rows of {@link Rows#REQUEST_TYPE}, restored from {@code restored}
     * unless null, opened. */
    static KeyedOneInputStreamOperatorTestHarness<String, Row, Row> opened(
            OneInputStreamOperator<Row, Row> join, OperatorSubtaskState restored) throws Exception {
        KeyedOneInputStreamOperatorTestHarness<String, Row, Row> harness =
                new KeyedOneInputStreamOperatorTestHarness<>(join, new ResponseJoin.ByRequestId(), Types.STRING);
        harness.setup(Outputs.serializer(Rows.REQUEST_TYPE));
        if (restored != null) {
            harness.initializeState(restored);
        }
        harness.open();
        return harness;
    }
}
