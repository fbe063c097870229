package io.github.mmon.flink;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the packed values of a piece of state mean: its columns' names in order, which are categorical, and
 * each categorical column's vocabulary (a code {@code k >= 0} is {@code vocabulary[k]}; a negative code
 * {@code -(1 + j)} is the state's own label {@code j}). State written under one layout is read under another
 * only through {@link #remapFrom}: by column name, never by position, so a spec change that adds, removes or
 * reorders features, or grows a vocabulary, moves each value to its column and re-codes each category by its
 * text. A column whose type changed cannot be carried over ({@link IllegalStateException}).
 */
public final class ColumnLayout implements Serializable {

    private static final long serialVersionUID = 1L;

    private final String[] names;
    private final boolean[] categorical;
    private final String[][] vocabularies;
    private transient Map<String, Integer>[] codes;

    public ColumnLayout(String[] names, boolean[] categorical, String[][] vocabularies) {
        if (categorical.length != names.length || vocabularies.length != names.length) {
            throw new IllegalArgumentException("a type and a vocabulary for each column");
        }
        this.names = names.clone();
        this.categorical = categorical.clone();
        this.vocabularies = new String[names.length][];
        for (int j = 0; j < names.length; j++) {
            this.vocabularies[j] = categorical[j] && vocabularies[j] != null ? vocabularies[j].clone() : new String[0];
        }
    }

    /** The request's columns of {@code schema}: its features. */
    public static ColumnLayout features(FeatureSchema schema) {
        String[] names = new String[schema.width()];
        boolean[] categorical = new boolean[names.length];
        String[][] vocabularies = new String[names.length][];
        for (int j = 0; j < names.length; j++) {
            names[j] = schema.name(j);
            categorical[j] = Contract.CATEGORICAL.equals(schema.type(j));
            vocabularies[j] = schema.vocabulary(j);
        }
        return new ColumnLayout(names, categorical, vocabularies);
    }

    /** The response's column of {@code schema}: its output (null without one). */
    public static ColumnLayout output(FeatureSchema schema) {
        if (!schema.hasOutput()) {
            return null;
        }
        return new ColumnLayout(new String[] {schema.outputName()},
                new boolean[] {Contract.CATEGORICAL.equals(schema.outputType())}, new String[][] {schema.outputVocabulary()});
    }

    /** The monitored columns of {@code schema}: its features, then its output when it has one. */
    public static ColumnLayout columns(FeatureSchema schema) {
        ColumnLayout features = features(schema);
        ColumnLayout output = output(schema);
        if (output == null) {
            return features;
        }
        String[] names = Arrays.copyOf(features.names, features.width() + 1);
        boolean[] categorical = Arrays.copyOf(features.categorical, names.length);
        String[][] vocabularies = Arrays.copyOf(features.vocabularies, names.length);
        names[features.width()] = output.names[0];
        categorical[features.width()] = output.categorical[0];
        vocabularies[features.width()] = output.vocabularies[0];
        return new ColumnLayout(names, categorical, vocabularies);
    }

    public int width() {
        return names.length;
    }

    public String[] names() {
        return names.clone();
    }

    public boolean[] categorical() {
        return categorical.clone();
    }

    boolean isCategorical(int j) {
        return categorical[j];
    }

    private int indexOf(String name) {
        for (int j = 0; j < names.length; j++) {
            if (names[j].equals(name)) {
                return j;
            }
        }
        return -1;
    }

    @SuppressWarnings("unchecked")
    private int code(int j, String value) {
        if (codes == null) {
            Map<String, Integer>[] built = new Map[names.length];
            for (int c = 0; c < names.length; c++) {
                built[c] = new HashMap<>();
                for (String entry : vocabularies[c]) {
                    built[c].putIfAbsent(entry, built[c].size());
                }
            }
            codes = built;
        }
        Integer code = codes[j].get(value);
        return code == null ? -1 : code;
    }

    /** Values and the labels their negative codes index: a record's instances or a window's buffer. */
    public record Packed(byte[] packed, String[] labels) {
    }

    /**
     * {@code values[0, size)} (row-major instances written under {@code from}, negative codes indexing
     * {@code labels}) in this layout: each column taken from {@code from}'s column of the same name (missing,
     * NaN, when {@code from} has none), each category re-coded by its text (in this vocabulary, or else as a
     * label of the result). Throws {@link IllegalStateException} for a column whose type differs.
     */
    public Packed remapFrom(ColumnLayout from, double[] values, int size, String[] labels) {
        int[] source = sources(from);
        int rows = size / Math.max(from.width(), 1);
        ByteBuffer out = ByteBuffer.allocate(rows * width() * Double.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        List<String> outLabels = new ArrayList<>();
        Map<String, Integer> outIndex = new HashMap<>();
        for (int row = 0; row < rows; row++) {
            for (int j = 0; j < width(); j++) {
                double value = source[j] < 0 ? Double.NaN : values[row * from.width() + source[j]];
                if (categorical[j] && !Double.isNaN(value)) {
                    String text = value >= 0 ? from.vocabularies[source[j]][(int) value] : labels[Contract.labelIndex(value)];
                    int code = code(j, text);
                    value = code >= 0 ? code : Contract.labelCode(outIndex.computeIfAbsent(text, t -> {
                        outLabels.add(t);
                        return outLabels.size() - 1;
                    }));
                }
                out.putDouble(value);
            }
        }
        return new Packed(out.array(), outLabels.toArray(new String[0]));
    }

    /** Per column of this layout, its position in {@code from} (-1: none). */
    private int[] sources(ColumnLayout from) {
        int[] source = new int[width()];
        for (int j = 0; j < width(); j++) {
            source[j] = from.indexOf(names[j]);
            if (source[j] >= 0 && from.categorical[source[j]] != categorical[j]) {
                throw new IllegalStateException("column " + names[j] + " was " + type(from.categorical[source[j]])
                        + " and is now " + type(categorical[j]) + ": its values in the restored state cannot be read as "
                        + "the new type (drain the job with stop-with-savepoint --drain before the change, or start "
                        + "without state)");
            }
        }
        return source;
    }

    private static String type(boolean categorical) {
        return categorical ? Contract.CATEGORICAL : Contract.NUMERIC;
    }

    void write(DataOutputStream out) throws IOException {
        out.writeInt(names.length);
        for (int j = 0; j < names.length; j++) {
            writeString(out, names[j]);
            out.writeBoolean(categorical[j]);
            out.writeInt(vocabularies[j].length);
            for (String value : vocabularies[j]) {
                writeString(out, value);
            }
        }
    }

    static ColumnLayout read(DataInputStream in) throws IOException {
        int width = in.readInt();
        String[] names = new String[width];
        boolean[] categorical = new boolean[width];
        String[][] vocabularies = new String[width][];
        for (int j = 0; j < width; j++) {
            names[j] = readString(in);
            categorical[j] = in.readBoolean();
            vocabularies[j] = new String[in.readInt()];
            for (int k = 0; k < vocabularies[j].length; k++) {
                vocabularies[j][k] = readString(in);
            }
        }
        return new ColumnLayout(names, categorical, vocabularies);
    }

    static void writeString(DataOutputStream out, String value) throws IOException {
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        out.writeInt(bytes.length);
        out.write(bytes);
    }

    static String readString(DataInputStream in) throws IOException {
        byte[] bytes = new byte[in.readInt()];
        in.readFully(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ColumnLayout that && Arrays.equals(names, that.names)
                && Arrays.equals(categorical, that.categorical) && Arrays.deepEquals(vocabularies, that.vocabularies);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(names) + Arrays.deepHashCode(vocabularies);
    }

    @Override
    public String toString() {
        return Arrays.toString(names);
    }
}
