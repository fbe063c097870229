package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class JobRowsTest {

    @Test
    void requestFieldConstantsArePositionsOfTheirNames() {
        int[] constants = {JobRows.REASON, JobRows.REQUEST_ID, JobRows.REQUEST_TIME_MS, JobRows.INSTANCES,
            JobRows.LABELS, JobRows.RESPONSE, JobRows.TRUTH, JobRows.VERSION, JobRows.RAW, JobRows.SOURCE_NAME,
            JobRows.SOURCE_PARTITION, JobRows.SOURCE_POSITION};
        String[] names = {"reason", "request_id", "request_time_ms", "instances", "labels", "response", "truth",
            "version", "raw", "source_name", "source_partition", "source_position"};
        for (int i = 0; i < names.length; i++) {
            assertEquals(names[i], JobRows.REQUEST_FIELDS[constants[i]]);
        }
        assertEquals(names.length, JobRows.REQUEST_FIELDS.length);
    }

    @Test
    void anAbsentNameIsAnError() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> JobRows.index(JobRows.RECORD_FIELDS, "reason"));
        assertEquals("no field reason in [kind, k, payload]", error.getMessage());
    }
}
