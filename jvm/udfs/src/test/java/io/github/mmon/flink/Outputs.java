package io.github.mmon.flink;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.AbstractStreamOperatorTestHarness;
import org.apache.flink.types.Row;

/** What an operator under a test harness emitted, taken out of the harness's output queue. */
final class Outputs {

    private Outputs() {
    }

    static <T> TypeSerializer<T> serializer(TypeInformation<T> type) {
        return type.createSerializer(new SerializerConfigImpl());
    }

    /** The records emitted since the last call, in order (taken out of the queue). */
    static List<StreamRecord<Row>> records(AbstractStreamOperatorTestHarness<Row> harness) {
        List<StreamRecord<Row>> records = new ArrayList<>();
        for (StreamRecord<?> record : taken(harness, StreamRecord.class)) {
            records.add(new StreamRecord<>((Row) record.getValue(), record.getTimestamp()));
        }
        return records;
    }

    /** The watermarks emitted since the last call, in order (taken out of the queue). */
    static List<Long> watermarks(AbstractStreamOperatorTestHarness<Row> harness) {
        List<Long> watermarks = new ArrayList<>();
        for (Watermark mark : taken(harness, Watermark.class)) {
            watermarks.add(mark.getTimestamp());
        }
        return watermarks;
    }

    private static <T> List<T> taken(AbstractStreamOperatorTestHarness<Row> harness, Class<T> kind) {
        List<T> taken = new ArrayList<>();
        harness.getOutput().removeIf(out -> kind.isInstance(out) && taken.add(kind.cast(out)));
        return taken;
    }
}
