package io.github.mmon.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The halves of a {@code LINE<TAB>text} line of the embedded source's numbered input:
 * {@code mmon_line_text(line)} ({@link Text}) and {@code mmon_line_number(line)} ({@link Number}). The
 * split works on the UTF-8 bytes, where SQL's {@code POSITION}/{@code SUBSTR} count characters through
 * the whole record, twice, for every record. A line without a tab is all text.
 */
public final class NumberedLine {

    private NumberedLine() {}

    /** The bytes of {@code line} after ({@code after}) or before its first tab. */
    static StringData part(StringData line, boolean after) {
        if (line == null) {
            return null;
        }
        byte[] bytes = line.toBytes();
        int tab = 0;
        while (tab < bytes.length && bytes[tab] != '\t') {
            tab++;
        }
        if (tab == bytes.length) {
            return after ? line : StringData.fromString("");
        }
        return after ? StringData.fromBytes(bytes, tab + 1, bytes.length - tab - 1) : StringData.fromBytes(bytes, 0, tab);
    }

    /** {@code mmon_line_text(line)}: the record after the tab. */
    public static final class Text extends ScalarFunction {
        public @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData eval(
                @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData line) {
            return part(line, true);
        }
    }

    /** {@code mmon_line_number(line)}: the line number before the tab. */
    public static final class Number extends ScalarFunction {
        public @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData eval(
                @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData line) {
            return part(line, false);
        }
    }
}
