package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;

import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

class DeadLettersTest {

    private static final String SHA256_OF_NOTHING = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    private static Row request(String raw, Integer partition) {
        Row row = Rows.rejected("bad_json", null, null);
        row.setField(JobRows.RAW, raw == null ? null : raw.getBytes(StandardCharsets.UTF_8));
        row.setField(JobRows.SOURCE_NAME, "iris-inference");
        row.setField(JobRows.SOURCE_PARTITION, partition);
        row.setField(JobRows.SOURCE_POSITION, 42L);
        return row;
    }

    @Test
    void aDeadLetterCarriesTheRawRecordItsLengthDigestAndSource() {
        Row row = new DeadLetters(10).row("bad_json", request("abc", 3));
        assertEquals(Row.of("dead_letter", "bad_json", "{\"reason\":\"bad_json\",\"raw\":\"abc\",\"raw_bytes\":3,"
                + "\"raw_sha256\":\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\","
                + "\"truncated\":false,\"source\":\"iris-inference/3/42\"}"), row);
    }

    @Test
    void aDeadLetterOfARecordReadCarriesItsVersion() {
        Row row = request("{}", null);
        row.setField(JobRows.VERSION, "canary");
        assertEquals("{\"reason\":\"too_many_versions\",\"raw\":\"{}\",\"raw_bytes\":2,\"raw_sha256\":\""
                + DeadLetters.sha256("{}".getBytes(StandardCharsets.UTF_8)) + "\",\"truncated\":false,"
                + "\"source\":\"iris-inference:42\",\"version\":\"canary\"}",
                new DeadLetters(64).row(Contract.TOO_MANY_VERSIONS, row).getField(2));
    }

    @Test
    void aLongRecordIsCutAndMarkedTruncatedAndNoRecordIsEmpty() {
        byte[] raw = "{\"id\":1}".getBytes(StandardCharsets.UTF_8);
        assertEquals("{\"reason\":\"late\",\"raw\":\"{\\\"id\",\"raw_bytes\":8,\"raw_sha256\":\"" + DeadLetters.sha256(raw)
                + "\",\"truncated\":true,\"source\":\"iris-inference:42\"}",
                new DeadLetters(4).row("late", request("{\"id\":1}", null)).getField(2));
        assertEquals("{\"reason\":\"bad_json\",\"raw\":\"\",\"raw_bytes\":0,\"raw_sha256\":\"" + SHA256_OF_NOTHING
                + "\",\"truncated\":false,\"source\":\"iris-inference:42\"}",
                new DeadLetters(4).row("bad_json", request(null, null)).getField(2));
    }

    @Test
    void theCutEndsOnACharacter() {
        byte[] bytes = "aé€".getBytes(StandardCharsets.UTF_8);  // 1 + 2 + 3 bytes
        assertEquals("a", DeadLetters.cut(bytes, 2));
        assertEquals("aé", DeadLetters.cut(bytes, 3));
        assertEquals("aé", DeadLetters.cut(bytes, 5));
        assertEquals("aé€", DeadLetters.cut(bytes, 6));
        assertEquals("", DeadLetters.cut(bytes, 0));
    }
}
