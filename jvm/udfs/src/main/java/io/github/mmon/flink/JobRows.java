package io.github.mmon.flink;

import java.util.Arrays;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.types.Row;

/**
 * The row types that cross between the job's steps, with their field names; `flink_job.rows` holds the
 * same lists on the Python side and the tests check that the two agree.
 */
public final class JobRows {

    /** A parsed request, as the parse step's view selects it (flink_job.parse.REQUEST_FIELDS): the parse
     * function's fields ({@link ParseRequest}: instances packed float64, labels the categorical values outside
     * the vocabularies, response true for a model response, whose instances are its predictions, n x 1, truth
     * true for a label message, whose instances are the request's true outputs, n x 1), the model version, then the record. Where the record came from is numbers, made text only for a dead letter
     * ({@link DeadLetters#source}): the source's name (a constant: the topic, or the input's label), the Kafka
     * partition (NULL for a file) and the Kafka offset or the file's line number. */
    public static final String[] REQUEST_FIELDS = {"reason", "request_id", "request_time_ms", "instances", "labels",
        "response", "truth", Contract.VERSION, "raw", "source_name", "source_partition", "source_position"};
    static final int REASON = index(REQUEST_FIELDS, "reason");
    static final int REQUEST_ID = index(REQUEST_FIELDS, "request_id");
    static final int REQUEST_TIME_MS = index(REQUEST_FIELDS, "request_time_ms");
    static final int INSTANCES = index(REQUEST_FIELDS, "instances");
    static final int LABELS = index(REQUEST_FIELDS, "labels");
    static final int RESPONSE = index(REQUEST_FIELDS, "response");
    static final int TRUTH = index(REQUEST_FIELDS, "truth");
    static final int VERSION = index(REQUEST_FIELDS, Contract.VERSION);
    static final int RAW = index(REQUEST_FIELDS, "raw");
    static final int SOURCE_NAME = index(REQUEST_FIELDS, "source_name");
    static final int SOURCE_PARTITION = index(REQUEST_FIELDS, "source_partition");
    static final int SOURCE_POSITION = index(REQUEST_FIELDS, "source_position");

    /** An output record: kind (stats, outlier, drift, dead_letter, ...), Kafka key, JSON payload. */
    public static final String[] RECORD_FIELDS = {"kind", "k", "payload"};
    public static final TypeInformation<Row> RECORD =
            Types.ROW_NAMED(RECORD_FIELDS, Types.STRING, Types.STRING, Types.STRING);

    /** A sub-batch, as {@link RequestRouter} builds it: a shard's columns of some instances of one window,
     * row-major little-endian float64, and their model version (its type is flink_job.windows.SUB_BATCH_ROW). */
    public static final String[] SUB_BATCH_FIELDS = {"shard", "window_start", "count", "packed", "labels",
        Contract.VERSION};

    private JobRows() {
    }

    /** The position of {@code name} in {@code fields}: the field constants are derived from the name lists,
     * never numbered beside them. */
    static int index(String[] fields, String name) {
        for (int i = 0; i < fields.length; i++) {
            if (fields[i].equals(name)) {
                return i;
            }
        }
        throw new IllegalArgumentException("no field " + name + " in " + Arrays.toString(fields));
    }
}
