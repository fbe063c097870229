package io.github.mmon.flink;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.Map;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.types.Row;

/**
 * The embedded job's sink: appends each {@code (kind, k, payload)} row's payload as one line to its
 * kind's file in a directory ({@code stats.jsonl}, {@code outliers.jsonl}, ...). Each line is one
 * unbuffered write, so a reader of a file sees whole lines while the job runs. Run it with parallelism 1.
 */
public class JsonlFileSink implements Sink<Row> {

    private final String directory;
    private final HashMap<String, String> fileByKind;

    public JsonlFileSink(String directory, Map<String, String> fileByKind) {
        this.directory = directory;
        this.fileByKind = new HashMap<>(fileByKind);
    }

    @Override
    public SinkWriter<Row> createWriter(WriterInitContext context) throws IOException {
        return new Writer(Paths.get(directory), fileByKind);
    }

    private static final class Writer implements SinkWriter<Row> {

        private final Map<String, OutputStream> files = new HashMap<>();

        Writer(Path directory, Map<String, String> fileByKind) throws IOException {
            Files.createDirectories(directory);
            for (Map.Entry<String, String> entry : fileByKind.entrySet()) {
                files.put(entry.getKey(), new FileOutputStream(directory.resolve(entry.getValue()).toFile()));
            }
        }

        @Override
        public void write(Row row, Context context) throws IOException {
            OutputStream file = files.get((String) row.getField(0));
            if (file == null) {
                throw new IOException("no output file for kind " + row.getField(0));
            }
            file.write((row.getField(2) + "\n").getBytes(StandardCharsets.UTF_8));
        }

        @Override
        public void flush(boolean endOfInput) {
            // every line is written through at once
        }

        @Override
        public void close() throws IOException {
            for (OutputStream file : files.values()) {
                file.close();
            }
        }
    }
}
