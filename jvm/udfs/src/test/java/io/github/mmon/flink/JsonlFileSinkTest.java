package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JsonlFileSinkTest {

    @Test
    void eachPayloadIsOneLineOfItsKindsFile(@TempDir Path directory) throws Exception {
        Path out = directory.resolve("out");
        JsonlFileSink sink = new JsonlFileSink(out.toString(), Map.of("stats", "stats.jsonl", "drift", "drift.jsonl"));
        try (SinkWriter<Row> writer = sink.createWriter(null)) {
            writer.write(Row.of("stats", "k", "{\"n\":1}"), null);
            writer.write(Row.of("drift", "k", "{\"é\":2}"), null);
            writer.write(Row.of("stats", "k", "{\"n\":3}"), null);
            assertEquals(List.of("{\"n\":1}", "{\"n\":3}"), Files.readAllLines(out.resolve("stats.jsonl")));
            assertThrows(IOException.class, () -> writer.write(Row.of(Contract.OUTLIERS, "k", "{}"), null));
        }
        assertEquals(List.of("{\"é\":2}"), Files.readAllLines(out.resolve("drift.jsonl")));
    }
}
