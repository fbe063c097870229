package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.data.StringData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link RequestParser} against the Python reference decoder on the cases of {@code parse_cases.json} (see its
 * {@code about}): the same reason for a rejected line; for an accepted one the same id, time, kind (request,
 * response or label message), version, values (the Java codes read back through the vocabularies and the labels) and
 * labels.
 */
class ParseCasesTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNode FILE = load("/parse_cases.json");
    private static final Map<String, FeatureSchema> SCHEMAS = schemas(FILE.get("schemas"));

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        FILE.get("cases").forEach(c -> cases.add(Arguments.of(c.get("name").textValue(), c)));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void decodesAsTheReference(String name, JsonNode c) {
        FeatureSchema schema = SCHEMAS.get(c.get("schema").textValue());
        JsonNode expect = c.get("expect");
        ParsedRequest parsed = RequestParser.parse(StringData.fromString(c.get("line").textValue()), schema,
                c.get("format").textValue(), true, text(c.get("default_id")), number(c.get("default_time_ms")),
                null, false, null);
        assertEquals(text(expect.get("reason")), parsed.reason(), name);
        if (parsed.reason() != null) {
            assertNull(parsed.instances(), name);
            return;
        }
        assertEquals(text(expect.get("request_id")), parsed.requestId(), name);
        assertEquals(number(expect.get("request_time_ms")), parsed.timeMs(), name);
        assertEquals(expect.get("response").booleanValue(), parsed.response(), name);
        assertEquals(expect.get("truth").booleanValue(), parsed.truth(), name);
        assertEquals(text(expect.get("version")), parsed.version(), name);
        assertArrayEquals(JSON.convertValue(expect.get("labels"), String[].class), parsed.labels(), name);
        assertEquals(expect.get("instances"), decoded(parsed, schema), name);
    }

    /** The parsed values as the reference writes them: numbers, category texts (codes read back), null. */
    private static JsonNode decoded(ParsedRequest parsed, FeatureSchema schema) {
        List<List<Object>> rows = new ArrayList<>();
        boolean output = parsed.response() || parsed.truth();  // predictions or labels: the output's one column
        for (double[] instance : parsed.instances()) {
            List<Object> row = new ArrayList<>();
            for (int j = 0; j < instance.length; j++) {
                String[] vocabulary = output ? schema.outputVocabulary() : schema.vocabulary(j);
                boolean categorical = Contract.CATEGORICAL.equals(output ? schema.outputType() : schema.type(j));
                row.add(value(instance[j], categorical, vocabulary, parsed.labels()));
            }
            rows.add(row);
        }
        return JSON.valueToTree(rows);
    }

    private static Object value(double code, boolean categorical, String[] vocabulary, String[] labels) {
        if (Double.isNaN(code)) {
            return null;
        }
        if (!categorical) {
            return code;
        }
        return code >= 0 ? vocabulary[(int) code] : labels[(int) (-1 - code)];
    }

    private static String text(JsonNode node) {
        return node == null || node.isNull() ? null : node.textValue();
    }

    private static Long number(JsonNode node) {
        return node == null || node.isNull() ? null : node.longValue();
    }

    private static Map<String, FeatureSchema> schemas(JsonNode specs) {
        Map<String, FeatureSchema> schemas = new HashMap<>();
        specs.fields().forEachRemaining(e -> schemas.put(e.getKey(), FeatureSchema.fromJson(e.getValue().toString())));
        return schemas;
    }

    private static JsonNode load(String resource) {
        try (InputStream in = ParseCasesTest.class.getResourceAsStream(resource)) {
            return JSON.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
