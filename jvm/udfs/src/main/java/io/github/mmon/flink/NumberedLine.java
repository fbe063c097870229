package io.github.mmon.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The halves of a {@code LINE<TAB>text} line of the embedded source's numbered input:
 * {@code mmon_line_text(line)} ({@link Text}) and {@code mmon_line_number(line)} ({@link Number}, a
 * BIGINT: dead letters alone turn it into text). The split works on the UTF-8 bytes, where SQL's
 * {@code POSITION}/{@code SUBSTR} count characters through the whole record, twice, for every record.
 * A line without a tab is all text, and has no number.
 */
public final class NumberedLine {

    private NumberedLine() {}

    /** The index of the first tab in {@code bytes}, or their length when there is none. */
    static int tab(byte[] bytes) {
        int tab = 0;
        while (tab < bytes.length && bytes[tab] != '\t') {
            tab++;
        }
        return tab;
    }

    /** {@code mmon_line_text(line)}: the record after the tab. */
    public static final class Text extends ScalarFunction {
        public @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData eval(
                @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData line) {
            if (line == null) {
                return null;
            }
            byte[] bytes = line.toBytes();
            int tab = tab(bytes);
            return tab == bytes.length ? line : StringData.fromBytes(bytes, tab + 1, bytes.length - tab - 1);
        }
    }

    /** {@code mmon_line_number(line)}: the decimal number before the tab (NULL for a line without one). */
    public static final class Number extends ScalarFunction {
        public Long eval(@DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData line) {
            if (line == null) {
                return null;
            }
            byte[] bytes = line.toBytes();
            int tab = tab(bytes);
            if (tab == 0 || tab == bytes.length) {
                return null;
            }
            long number = 0;
            for (int i = 0; i < tab; i++) {
                int digit = bytes[i] - '0';
                if (digit < 0 || digit > 9) {
                    return null;
                }
                number = number * 10 + digit;
            }
            return number;
        }
    }
}
