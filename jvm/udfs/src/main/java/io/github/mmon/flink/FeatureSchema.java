package io.github.mmon.flink;

import static io.github.mmon.flink.Contract.*;

import java.io.IOException;
import java.io.ObjectStreamException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What a record's values must be ({@code flink_job.formats.Schema}), with the codes of the categorical values:
 * the features (names in instance order, types {@code "numeric"} / {@code "categorical"}) and the model
 * output ({@code outputName == null}: none, responses are {@code not_request}), and whether label messages are
 * read ({@link #readsLabels}: the spec has {@code ground_truth}, which needs the output; else they are
 * {@code not_request}). A categorical column's
 * vocabulary is its baseline's categories then its other values (built by {@code flink_job.parse.java_schema});
 * a value in it is coded as its index, and {@link RequestParser} codes any other one as {@code -(1 + j)}, j
 * indexing the record's labels.
 *
 * <p>The lookups (feature name to index, value to code, one {@code HashMap} per categorical column) are built
 * once, lazily, and are not serialised. A deserialised schema resolves to one canonical instance per JVM
 * (and class loader) of its content, so the parse function and the rowtime column's time function, each
 * deserialised on its own, share one schema object: {@link RequestParser}'s per-thread memo compares schemas
 * by identity.
 */
public final class FeatureSchema implements Serializable {

    private static final long serialVersionUID = 1L;

    private static final Map<FeatureSchema, FeatureSchema> CANONICAL = new ConcurrentHashMap<>();

    private final String[] names;
    private final String[] types;
    private final String[][] vocabularies;
    private final String outputName;
    private final String outputType;
    private final String[] outputVocabulary;
    private final boolean groundTruth;
    /** The kserve-v1 CloudEvent attribute that names a message's model version (formats.Schema.version_attribute). */
    private final String versionAttribute;

    private transient volatile Index index;

    /** A schema whose label messages are not read. */
    public FeatureSchema(String[] names, String[] types, String[][] vocabularies, String outputName,
                         String outputType, String[] outputVocabulary) {
        this(names, types, vocabularies, outputName, outputType, outputVocabulary, false);
    }

    /** {@code groundTruth}: label messages are read (the spec has {@code ground_truth}); needs an output. */
    public FeatureSchema(String[] names, String[] types, String[][] vocabularies, String outputName,
                         String outputType, String[] outputVocabulary, boolean groundTruth) {
        this(names, types, vocabularies, outputName, outputType, outputVocabulary, groundTruth,
                DEFAULT_VERSION_ATTRIBUTE);
    }

    /** {@code versionAttribute}: the kserve-v1 CloudEvent attribute that names a message's model version. */
    public FeatureSchema(String[] names, String[] types, String[][] vocabularies, String outputName,
                         String outputType, String[] outputVocabulary, boolean groundTruth, String versionAttribute) {
        if (names.length == 0 || types.length != names.length || vocabularies.length != names.length) {
            throw new IllegalArgumentException("need at least one feature, and a type and a vocabulary for each");
        }
        this.names = names.clone();
        this.types = types.clone();
        this.vocabularies = new String[names.length][];
        for (int j = 0; j < names.length; j++) {
            checkType(types[j]);
            this.vocabularies[j] = vocabularies[j] == null ? new String[0] : vocabularies[j].clone();
        }
        this.outputName = outputName;
        this.outputType = outputName == null ? null : checkType(outputType);
        this.outputVocabulary = outputVocabulary == null || outputName == null ? new String[0] : outputVocabulary.clone();
        if (groundTruth && outputName == null) {
            throw new IllegalArgumentException("labels (ground_truth) need an output");
        }
        this.groundTruth = groundTruth;
        this.versionAttribute = versionAttribute;
        index();  // fails early on duplicate names or values
    }

    /**
     * The schema from one JSON object {@code {"names": [...], "types": [...], "vocabularies": [[...], ...],
     * "output_name": ..., "output_type": ..., "output_vocabulary": [...], "ground_truth": true, "version_attribute": ...}} (the output
     * keys, ground_truth and version_attribute optional, ground_truth false and version_attribute endpoint when
     * absent): one
     * call from Python, where building the arrays element by element through the gateway costs a round trip
     * per value.
     */
    public static FeatureSchema fromJson(String json) {
        JsonNode spec;
        try {
            spec = new ObjectMapper().readTree(json);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        JsonNode vocabularies = spec.get("vocabularies");
        String[][] vocabularyArrays = new String[vocabularies.size()][];
        for (int j = 0; j < vocabularyArrays.length; j++) {
            vocabularyArrays[j] = strings(vocabularies.get(j));
        }
        JsonNode outputName = spec.get("output_name");
        boolean output = outputName != null && !outputName.isNull();
        return new FeatureSchema(strings(spec.get("names")), strings(spec.get("types")), vocabularyArrays,
                output ? outputName.textValue() : null, output ? spec.get("output_type").textValue() : null,
                output && spec.hasNonNull("output_vocabulary") ? strings(spec.get("output_vocabulary")) : null,
                spec.path("ground_truth").asBoolean(false),
                spec.path("version_attribute").asText(DEFAULT_VERSION_ATTRIBUTE));
    }

    private static String[] strings(JsonNode array) {
        String[] out = new String[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).textValue();
        }
        return out;
    }

    private static String checkType(String type) {
        if (!NUMERIC.equals(type) && !CATEGORICAL.equals(type)) {
            throw new IllegalArgumentException("unknown feature type " + type);
        }
        return type;
    }

    public int width() {
        return names.length;
    }

    public String name(int j) {
        return names[j];
    }

    public String type(int j) {
        return types[j];
    }

    /** The vocabulary of feature {@code j} (empty for a numeric one): a code's value. */
    public String[] vocabulary(int j) {
        return vocabularies[j].clone();
    }

    public String outputName() {
        return outputName;
    }

    public String outputType() {
        return outputType;
    }

    public String[] outputVocabulary() {
        return outputVocabulary.clone();
    }

    public boolean hasOutput() {
        return outputName != null;
    }

    /** The kserve-v1 CloudEvent attribute that names a message's model version. */
    public String versionAttribute() {
        return versionAttribute;
    }

    /** Whether label messages are read (the spec has {@code ground_truth}); else they are {@code not_request}. */
    public boolean readsLabels() {
        return groundTruth;
    }

    /** The index of the feature named {@code name}, or -1. */
    int feature(String name) {
        Integer j = index().names.get(name);
        return j == null ? -1 : j;
    }

    Columns features() {
        return index().features;
    }

    /** The output as a one-column {@link Columns}; null without an output. */
    Columns output() {
        return index().output;
    }

    private Index index() {
        Index built = index;
        if (built == null) {
            built = new Index(this);  // idempotent: a race builds it twice, harmlessly
            index = built;
        }
        return built;
    }

    /** Columns of values: which are categorical, and the code of each categorical value in its vocabulary. */
    static final class Columns {
        final int width;
        final boolean[] categorical;
        final Map<String, Integer>[] codes;
        final boolean allNumeric;

        @SuppressWarnings("unchecked")
        Columns(String[] types, String[][] vocabularies) {
            width = types.length;
            categorical = new boolean[width];
            codes = new Map[width];
            boolean numeric = true;
            for (int j = 0; j < width; j++) {
                categorical[j] = CATEGORICAL.equals(types[j]);
                numeric &= !categorical[j];
                if (categorical[j]) {
                    Map<String, Integer> code = new HashMap<>(vocabularies[j].length * 2);
                    for (String value : vocabularies[j]) {
                        if (code.putIfAbsent(value, code.size()) != null) {
                            throw new IllegalArgumentException("value " + value + " twice in a vocabulary");
                        }
                    }
                    codes[j] = code;
                }
            }
            allNumeric = numeric;
        }

        /** The code of {@code value} in column {@code j}'s vocabulary, or -1. */
        int code(int j, String value) {
            Integer code = codes[j].get(value);
            return code == null ? -1 : code;
        }
    }

    private static final class Index {
        final Map<String, Integer> names = new HashMap<>();
        final Columns features;
        final Columns output;

        Index(FeatureSchema schema) {
            for (int j = 0; j < schema.names.length; j++) {
                if (names.putIfAbsent(schema.names[j], j) != null) {
                    throw new IllegalArgumentException("feature " + schema.names[j] + " twice");
                }
            }
            features = new Columns(schema.types, schema.vocabularies);
            output = schema.outputName == null ? null
                    : new Columns(new String[] {schema.outputType}, new String[][] {schema.outputVocabulary});
        }
    }

    /** One instance per content: see the class comment. */
    private Object readResolve() throws ObjectStreamException {
        return CANONICAL.computeIfAbsent(this, schema -> schema);
    }

    @Override
    public boolean equals(Object other) {
        if (this == other) {
            return true;
        }
        if (!(other instanceof FeatureSchema that)) {
            return false;
        }
        return Arrays.equals(names, that.names) && Arrays.equals(types, that.types)
                && Arrays.deepEquals(vocabularies, that.vocabularies) && Objects.equals(outputName, that.outputName)
                && Objects.equals(outputType, that.outputType) && Arrays.equals(outputVocabulary, that.outputVocabulary)
                && groundTruth == that.groundTruth && versionAttribute.equals(that.versionAttribute);
    }

    @Override
    public int hashCode() {
        return Objects.hash(Arrays.hashCode(names), Arrays.hashCode(types), Arrays.deepHashCode(vocabularies),
                outputName, outputType, Arrays.hashCode(outputVocabulary), groundTruth, versionAttribute);
    }

    @Override
    public String toString() {
        return "FeatureSchema" + Arrays.toString(names) + Arrays.toString(types)
                + (outputName == null ? "" : " -> " + outputName + " (" + outputType + ")")
                + (groundTruth ? " with labels" : "");
    }
}
