package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.apache.flink.table.data.StringData;
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
