package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.apache.flink.core.memory.MemorySegment;
import org.apache.flink.core.memory.MemorySegmentFactory;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.binary.BinaryStringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/** The one-line SQL and map functions: {@link NumberedLine}, {@link EpochMillis}, {@link OutputRows}. */
class SmallFunctionsTest {

    private static Long number(String line) {
        return new NumberedLine.Number().eval(line == null ? null : StringData.fromString(line));
    }

    private static String text(String line) {
        StringData text = new NumberedLine.Text().eval(line == null ? null : StringData.fromString(line));
        return text == null ? null : text.toString();
    }

    @Test
    void aNumberedLineSplitsAtItsFirstTab() {
        assertEquals(1234L, number("1234\t{\"a\":\"\t\"}"));
        assertEquals("{\"a\":\"\t\"}", text("1234\t{\"a\":\"\t\"}"));
        assertEquals("ünïcode", text("7\tünïcode"));
    }

    @Test
    void aLineWithoutANumberHasNoneAndIsAllText() {
        assertNull(number("{\"a\":1}"));
        assertEquals("{\"a\":1}", text("{\"a\":1}"));
        assertNull(number("\tx"));
        assertNull(number("12a\tx"));
        assertNull(number(null));
        assertNull(text(null));
    }

    @Test
    void theTextIsAViewOfTheLinesBytesNotACopyAcrossSegmentsToo() {
        byte[] bytes = "42\t{\"a\":\"\u00fc\"}".getBytes(StandardCharsets.UTF_8);
        BinaryStringData line = BinaryStringData.fromBytes(bytes);
        BinaryStringData text = (BinaryStringData) new NumberedLine.Text().eval(line);
        assertSame(line.getSegments()[0], text.getSegments()[0]);
        assertEquals("{\"a\":\"\u00fc\"}", text.toString());
        MemorySegment[] halves = {MemorySegmentFactory.wrap(Arrays.copyOfRange(bytes, 0, 5)),
                                  MemorySegmentFactory.wrap(Arrays.copyOfRange(bytes, 5, bytes.length))};
        BinaryStringData split = BinaryStringData.fromAddress(halves, 0, bytes.length);  // the line over two segments
        assertEquals("{\"a\":\"\u00fc\"}", new NumberedLine.Text().eval(split).toString());
        assertEquals(42L, new NumberedLine.Number().eval(split));
    }

    @Test
    void epochMillisOfAKafkaTimestamp() {
        assertEquals(1_700_000_000_123L, new EpochMillis().eval(TimestampData.fromEpochMillis(1_700_000_000_123L)));
        assertNull(new EpochMillis().eval(null));
    }

    @Test
    void outputRowsJoinTheKeyFields() {
        OutputRows rows = new OutputRows(0, new int[] {2, 1}, 3);
        assertEquals(Row.of("stats", "sepal_length/iris", "{}"), rows.map(Row.of("stats", "iris", "sepal_length", "{}")));
        assertEquals(Row.of("drift", "", "{}"), new OutputRows(0, new int[0], 1).map(Row.of("drift", "{}")));
    }
}
