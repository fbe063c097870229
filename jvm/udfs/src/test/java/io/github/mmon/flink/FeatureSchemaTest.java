package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;

class FeatureSchemaTest {

    private static final String COLOURS_JSON = "{\"names\":[\"colour\",\"size\"],\"types\":[\"categorical\","
            + "\"numeric\"],\"vocabularies\":[[\"red\",\"blue\"],[]],\"output_name\":\"label\","
            + "\"output_type\":\"categorical\",\"output_vocabulary\":[\"yes\",\"no\"]}";

    @Test
    void fromJsonReadsWhatTheConstructorTakes() {
        FeatureSchema schema = FeatureSchema.fromJson(COLOURS_JSON);
        assertEquals(RequestParserTest.COLOURS, schema);
        assertEquals(RequestParserTest.COLOURS.hashCode(), schema.hashCode());
        assertEquals(1, schema.feature("size"));
        assertEquals(-1, schema.feature("weight"));
        assertArrayEquals(new String[] {"red", "blue"}, schema.vocabulary(0));
        assertEquals(1, schema.features().code(0, "blue"));
        assertEquals(-1, schema.features().code(0, "green"));
        assertEquals(0, schema.output().code(0, "yes"));
        assertFalse(schema.readsLabels());
    }

    @Test
    void groundTruthMakesTheSchemaReadLabelsAndAnotherSchema() {
        FeatureSchema schema = FeatureSchema.fromJson(COLOURS_JSON.replace("}", ",\"ground_truth\":true}"));
        assertTrue(schema.readsLabels());
        assertEquals(RequestParserTest.LABELLED, schema);
        assertEquals(RequestParserTest.LABELLED.hashCode(), schema.hashCode());
        assertNotEquals(RequestParserTest.COLOURS, schema);  // the parse memo compares schemas: they must differ
        assertFalse(FeatureSchema.fromJson(COLOURS_JSON.replace("}", ",\"ground_truth\":false}")).readsLabels());
    }

    @Test
    void withoutOutputKeysThereIsNoOutput() {
        FeatureSchema schema = FeatureSchema.fromJson("{\"names\":[\"a\"],\"types\":[\"numeric\"],\"vocabularies\":[[]]}");
        assertFalse(schema.hasOutput());
        assertEquals(null, schema.output());
        assertEquals(0, schema.outputVocabulary().length);
        assertEquals(1, schema.width());
    }

    @Test
    void aDeserialisedSchemaIsTheOneCanonicalInstanceOfItsContent() throws Exception {
        byte[] bytes = InstantiationUtil.serializeObject(FeatureSchema.fromJson(COLOURS_JSON));
        ClassLoader loader = getClass().getClassLoader();
        FeatureSchema first = InstantiationUtil.deserializeObject(bytes, loader);
        FeatureSchema second = InstantiationUtil.deserializeObject(bytes, loader);
        assertSame(first, second);
        assertNotSame(first, FeatureSchema.fromJson(COLOURS_JSON));
        assertEquals(1, second.features().code(0, "blue"));  // the lookups rebuilt after deserialisation
    }

    @Test
    void badSchemasAreRefused() {
        String[] numeric = {Contract.NUMERIC};
        assertThrows(IllegalArgumentException.class,
                () -> new FeatureSchema(new String[0], new String[0], new String[0][], null, null, null));
        assertThrows(IllegalArgumentException.class,
                () -> new FeatureSchema(new String[] {"a", "a"}, new String[] {"numeric", "numeric"}, new String[2][],
                        null, null, null));
        assertThrows(IllegalArgumentException.class,
                () -> new FeatureSchema(new String[] {"a"}, new String[] {"ordinal"}, new String[1][], null, null, null));
        assertThrows(IllegalArgumentException.class,
                () -> new FeatureSchema(new String[] {"a"}, new String[] {Contract.CATEGORICAL},
                        new String[][] {{"x", "x"}}, null, null, null));
        assertThrows(IllegalArgumentException.class,
                () -> new FeatureSchema(new String[] {"a"}, numeric, new String[1][], "out", "text", null));
        assertThrows(IllegalArgumentException.class,  // labels need an output
                () -> new FeatureSchema(new String[] {"a"}, numeric, new String[1][], null, null, null, true));
    }
}
