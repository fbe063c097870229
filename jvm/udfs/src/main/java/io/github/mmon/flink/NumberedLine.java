package io.github.mmon.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.binary.BinaryStringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The halves of a {@code LINE<TAB>text} line of the embedded source's numbered input:
 * {@code mmon_line_text(line)} ({@link Text}) and {@code mmon_line_number(line)} ({@link Number}, a
 * BIGINT: dead letters alone turn it into text). The split works on the UTF-8 bytes in place, where SQL's
 * {@code POSITION}/{@code SUBSTR} count characters through the whole record, twice, for every record; the
 * text is a view of the line's bytes, not a copy (a line may be tens of megabytes: it is dead-lettered
 * {@code too_large} unparsed, and each copy of it would cost the heap its size again).
 * A line without a tab is all text, and has no number.
 */
public final class NumberedLine {

    private NumberedLine() {}

    /** The index of the first tab in {@code line}'s bytes, or their number when there is none. */
    static int tab(BinaryStringData line) {
        int size = line.getSizeInBytes();
        int tab = 0;
        while (tab < size && line.byteAt(tab) != '\t') {
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
            BinaryStringData bytes = (BinaryStringData) line;
            int tab = tab(bytes);
            int size = bytes.getSizeInBytes();
            return tab == size ? line
                    : BinaryStringData.fromAddress(bytes.getSegments(), bytes.getOffset() + tab + 1, size - tab - 1);
        }
    }

    /** {@code mmon_line_number(line)}: the decimal number before the tab (NULL for a line without one). */
    public static final class Number extends ScalarFunction {
        public Long eval(@DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData line) {
            if (line == null) {
                return null;
            }
            BinaryStringData bytes = (BinaryStringData) line;
            int tab = tab(bytes);
            if (tab == 0 || tab == bytes.getSizeInBytes()) {
                return null;
            }
            long number = 0;
            for (int i = 0; i < tab; i++) {
                int digit = bytes.byteAt(i) - '0';
                if (digit < 0 || digit > 9) {
                    return null;
                }
                number = number * 10 + digit;
            }
            return number;
        }
    }
}
