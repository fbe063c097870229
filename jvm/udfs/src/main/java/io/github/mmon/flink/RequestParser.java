package io.github.mmon.flink;

import static io.github.mmon.flink.Contract.*;

import java.io.IOException;
import java.time.DateTimeException;
import java.math.BigDecimal;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.StreamReadFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.DeserializationFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectReader;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.json.JsonMapper;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.binary.BinaryStringData;

/**
 * The inference-log decoder of {@code flink_job/formats.py} in Java: the same three formats, the same
 * checks in the same order, the same dead-letter reasons, the same values (read by a {@link FeatureSchema}:
 * named and list instances, categorical values, missing values, OIP per-feature tensors, responses, label
 * messages). The
 * Python module is the reference; the job's tests hold this class to it line by line.
 *
 * <p>Values come out as a float64 matrix: a numeric value as is, a missing one NaN, a categorical one its
 * code in the schema's vocabulary or else {@code -(1 + j)}, j indexing the record's labels (each unseen value
 * once, in first-seen order, instance by instance). A list instance of an all-numeric schema takes a path
 * of its own, without an allocation per value: the hot path of wide models.
 *
 * <p>Each record is parsed once into a tree (Jackson, as Flink ships it, reading NaN and Infinity tokens as
 * Python's reader does), straight from its UTF-8 bytes, with Jackson's fast (and correctly rounded)
 * number parser: the record is never decoded into a Java string, which at 128 features per instance cost
 * as much as the parse itself. Bytes that are not valid UTF-8 are decoded as Flink decodes them (each bad
 * sequence a replacement character) and parsed again as text, as before.
 */
public final class RequestParser {

    // The formats, the reasons, the CloudEvent types and MAX_CATEGORY_CHARS are Contract's (static import).
    static final String BYTES = "BYTES";
    static final Set<String> NUMERIC_DATATYPES = Set.of("FP16", "FP32", "FP64", "INT8", "INT16", "INT32",
            "INT64", "UINT8", "UINT16", "UINT32", "UINT64");
    /** Epoch times below this are seconds, at or above it milliseconds (formats.SECONDS_THRESHOLD). */
    static final double SECONDS_THRESHOLD = 1e11;

    private static final Pattern RFC3339 = Pattern.compile(
            "(\\d{4})-(\\d{2})-(\\d{2})[Tt ](\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d+))?(?:([Zz])|([+-])(\\d{2}):(\\d{2}))",
            Pattern.UNICODE_CHARACTER_CLASS);  // Python's \d matches any Unicode digit

    private static final ObjectReader READER = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)  // NaN / Infinity, as Python's reader
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(StreamReadFeature.USE_FAST_DOUBLE_PARSER)
            .build()
            .reader();

    /** The last record parsed on this thread: the rowtime column and the parse step call for the same record. */
    private static final ThreadLocal<Cached> LAST = new ThreadLocal<>();
    /** The latest request time accepted on this thread: a replayed stream's "now" for the future check. */
    private static final ThreadLocal<long[]> LATEST = ThreadLocal.withInitial(() -> new long[] {Long.MIN_VALUE});

    private RequestParser() {}

    /** A decode failure: one of the reasons above. */
    private static final class Rejected extends Exception {
        final String reason;

        Rejected(String reason) {
            super(reason, null, false, false);
            this.reason = reason;
        }
    }

    private record Cached(StringData raw, FeatureSchema schema, String format, boolean messageTime, String defaultId,
                          Long defaultTimeMs, Long maxFutureSkewMs, boolean wallClock, ParsedRequest parsed) {
        boolean matches(StringData raw, FeatureSchema schema, String format, boolean messageTime, String defaultId,
                        Long defaultTimeMs, Long maxFutureSkewMs, boolean wallClock) {
            return this.schema == schema && this.raw.equals(raw) && this.format.equals(format)
                    && this.messageTime == messageTime && Objects.equals(this.defaultId, defaultId)
                    && Objects.equals(this.defaultTimeMs, defaultTimeMs)
                    && Objects.equals(this.maxFutureSkewMs, maxFutureSkewMs) && this.wallClock == wallClock;
        }
    }

    /**
     * Decodes one record (the SQL functions' arguments as they arrive: the record as Flink's internal UTF-8
     * string, compared byte-wise with the last one and decoded to text only when it differs; a NULL record
     * is empty text, a NULL flag false), memoised per thread for the record just before.
     *
     * @param schema      the features and the output (compared by identity with the last record's: see
     *                    {@link FeatureSchema}'s canonical instances)
     * @param messageTime false when the request time is the Kafka record timestamp ({@code input.time: kafka}):
     *                    the message's own time field is then neither read nor checked
     * @param maxFutureSkewMs a request time more than this ahead of "now" is {@code future_time} (NULL: no
     *                        limit), so that it can never move the watermark
     * @param wallClock       "now" is the wall clock (a live stream); else the latest request time accepted
     *                        on this thread (a replayed file, whose times may lie anywhere; its first
     *                        request sets the clock)
     * @param maxRecordBytes  a record longer than this many UTF-8 bytes is {@code too_large}, without being
     *                        parsed or copied (NULL: no limit)
     */
    public static ParsedRequest parse(StringData raw, FeatureSchema schema, String format, Boolean messageTime,
                                      String defaultId, Long defaultTimeMs, Long maxFutureSkewMs, Boolean wallClock,
                                      Integer maxRecordBytes) {
        StringData record = raw == null ? BinaryStringData.EMPTY_UTF8 : raw;
        if (maxRecordBytes != null && ((BinaryStringData) record).getSizeInBytes() > maxRecordBytes) {
            return ParsedRequest.rejected(TOO_LARGE, null, defaultTimeMs);
        }
        return memoised(record, schema, format, Boolean.TRUE.equals(messageTime), defaultId, defaultTimeMs,
                maxFutureSkewMs, Boolean.TRUE.equals(wallClock));
    }

    private static ParsedRequest memoised(StringData raw, FeatureSchema schema, String format, boolean messageTime,
                                          String defaultId, Long defaultTimeMs, Long maxFutureSkewMs,
                                          boolean wallClock) {
        Cached last = LAST.get();
        if (last != null && last.matches(raw, schema, format, messageTime, defaultId, defaultTimeMs,
                maxFutureSkewMs, wallClock)) {
            return last.parsed;
        }
        ParsedRequest parsed = decode(raw, schema, format, messageTime, defaultId, defaultTimeMs);
        if (maxFutureSkewMs != null) {
            parsed = notInTheFuture(parsed, wallClock ? System.currentTimeMillis() : LATEST.get()[0], maxFutureSkewMs);
        }
        // a copy: the record's bytes may belong to a buffer that is reused for the next one
        StringData kept = ((BinaryStringData) raw).copy();
        LAST.set(new Cached(kept, schema, format, messageTime, defaultId, defaultTimeMs, maxFutureSkewMs, wallClock,
                parsed));
        return parsed;
    }

    /** An accepted request (or response) more than {@code skewMs} after {@code nowMs} becomes {@code future_time}; one that
     * stays accepted advances this thread's latest accepted time. */
    static ParsedRequest notInTheFuture(ParsedRequest parsed, long nowMs, long skewMs) {
        if (parsed.reason() != null) {
            return parsed;
        }
        if (nowMs != Long.MIN_VALUE && parsed.timeMs() - nowMs > skewMs) {
            return ParsedRequest.rejected(FUTURE_TIME, parsed.requestId(), parsed.timeMs());
        }
        long[] latest = LATEST.get();
        latest[0] = Math.max(latest[0], parsed.timeMs());
        return parsed;
    }

    /** The state of one decode: what is known so far, so a rejection still reports the request time. */
    private static final class Decoding {
        final boolean messageTime;
        final String defaultId;
        final Long defaultTimeMs;
        Long timeMs;
        String version;

        Decoding(boolean messageTime, String defaultId, Long defaultTimeMs) {
            this.messageTime = messageTime;
            this.defaultId = defaultId;
            this.defaultTimeMs = defaultTimeMs;
        }
    }

    static ParsedRequest decode(StringData raw, FeatureSchema schema, String format, boolean messageTime,
                                String defaultId, Long defaultTimeMs) {
        Decoding state = new Decoding(messageTime, defaultId, defaultTimeMs);
        String requestId = null;
        try {
            JsonNode obj = loadObject(raw);
            Request request;
            switch (format) {
                case THESIS -> request = thesis(obj, schema, state);
                case KSERVE_V1 -> request = kserveV1(obj, schema, state);
                case OIP_V2 -> request = oipV2(obj, schema, state);
                default -> throw new IllegalArgumentException("unknown format " + format);
            }
            requestId = request.id;
            Labels labels = new Labels();
            double[][] values = request.values.check(labels);
            return ParsedRequest.accepted(requestId, state.timeMs, values, labels.array(), request.kind == Kind.RESPONSE,
                    request.kind == Kind.LABEL, state.version);
        } catch (Rejected rejected) {
            return ParsedRequest.rejected(rejected.reason, requestId,
                    state.timeMs != null ? state.timeMs : defaultTimeMs);
        }
    }

    /** An id and time already checked, and the values still to check (they are checked last). */
    private interface Values {
        double[][] check(Labels labels) throws Rejected;
    }

    private record Request(String id, Kind kind, Values values) {
    }

    /**
     * The kinds of message (formats.REQUEST, RESPONSE, LABEL): a thesis message's {@code type}, the key of the
     * values in a thesis payload or a KServe v1 body, the CloudEvent type.
     */
    private enum Kind {
        REQUEST("request", "instances", CLOUDEVENT_REQUEST_TYPE),
        RESPONSE("response", "predictions", CLOUDEVENT_RESPONSE_TYPE),
        LABEL("label", "labels", CLOUDEVENT_LABEL_TYPE);

        final String type;
        final String values;
        final String eventType;

        Kind(String type, String values, String eventType) {
            this.type = type;
            this.values = values;
            this.eventType = eventType;
        }

        /** Whether {@code schema} reads this kind (formats._kinds): responses with an output, labels with ground truth. */
        boolean readBy(FeatureSchema schema) {
            return this == REQUEST || (this == RESPONSE ? schema.hasOutput() : schema.readsLabels());
        }

        /** The kind whose thesis type (or CloudEvent type, {@code event}) is {@code name}'s text, or null. */
        static Kind named(JsonNode name, boolean event) {
            for (Kind kind : values()) {
                if (isText(name, event ? kind.eventType : kind.type)) {
                    return kind;
                }
            }
            return null;
        }
    }

    /** formats._read_kind: {@code kind} if the schema reads it, else not_request. */
    private static Kind read(Kind kind, FeatureSchema schema) throws Rejected {
        if (kind == null || !kind.readBy(schema)) {
            throw new Rejected(NOT_REQUEST);
        }
        return kind;
    }

    /** The record's categorical values outside the vocabularies, each once, in first-seen order. */
    private static final class Labels {
        private static final String[] NONE = new String[0];
        private ArrayList<String> list;
        private Map<String, Integer> index;

        /** {@code -(1 + j)}, j the value's index among the labels (added when new). */
        double code(String value) {
            if (list == null) {
                list = new ArrayList<>();
                index = new HashMap<>();
            }
            Integer j = index.get(value);
            if (j == null) {
                j = list.size();
                list.add(value);
                index.put(value, j);
            }
            return labelCode(j);
        }

        String[] array() {
            return list == null ? NONE : list.toArray(NONE);
        }
    }

    private static JsonNode loadObject(StringData raw) throws Rejected {
        JsonNode node;
        try {
            node = READER.readTree(raw.toBytes());
        } catch (IOException notUtf8OrNotJson) {
            node = readText(raw.toString());
        }
        if (node == null || !node.isObject()) {
            throw new Rejected(BAD_JSON);
        }
        return node;
    }

    /** The record as text: the path of records whose bytes are not valid UTF-8 (or not JSON at all). */
    private static JsonNode readText(String text) throws Rejected {
        try {
            return READER.readTree(text);
        } catch (IOException e) {
            throw new Rejected(BAD_JSON);
        }
    }

    /** {@code obj.get(name)} of Python: absent and JSON null are both null. */
    private static JsonNode get(JsonNode obj, String name) {
        JsonNode value = obj.get(name);
        return value == null || value.isNull() ? null : value;
    }

    private static JsonNode object(JsonNode value) throws Rejected {
        if (value == null || !value.isObject()) {
            throw new Rejected(BAD_ENVELOPE);
        }
        return value;
    }

    private static boolean isText(JsonNode value, String text) {
        return value != null && value.isTextual() && value.textValue().equals(text);
    }

    /** formats.version_of: a message's model version, null when absent or empty; not a string of at most
     * MAX_VERSION_CHARS characters: bad_envelope. */
    private static String version(JsonNode value) throws Rejected {
        if (value == null || isText(value, "")) {
            return null;
        }
        String text = value.isTextual() ? value.textValue() : null;
        if (text == null || (text.length() > MAX_VERSION_CHARS
                && text.codePointCount(0, text.length()) > MAX_VERSION_CHARS)) {
            throw new Rejected(BAD_ENVELOPE);
        }
        return text;
    }

    private static String requestId(JsonNode value, Decoding state) throws Rejected {
        if (value == null) {
            if (state.defaultId == null || state.defaultId.isEmpty()) {
                throw new Rejected(BAD_ID);
            }
            return state.defaultId;
        }
        if (!value.isTextual() || value.textValue().isEmpty()) {
            throw new Rejected(BAD_ID);
        }
        return value.textValue();
    }

    /** The default time stands in when the message time is not used or absent; without one: bad_time. */
    private static boolean tookDefaultTime(JsonNode value, Decoding state) throws Rejected {
        if (state.messageTime && value != null) {
            return false;
        }
        if (state.defaultTimeMs == null) {
            throw new Rejected(BAD_TIME);
        }
        state.timeMs = state.defaultTimeMs;
        return true;
    }

    /** A JSON-number time in epoch seconds or milliseconds (formats._numeric_time / time_to_ms). */
    private static void numericTime(JsonNode value, Decoding state) throws Rejected {
        if (tookDefaultTime(value, state)) {
            return;
        }
        if (!value.isNumber()) {
            throw new Rejected(BAD_TIME);
        }
        long millis;
        if (value.isIntegralNumber()) {
            if (!value.canConvertToLong() || value.longValue() <= 0) {
                throw new Rejected(BAD_TIME);
            }
            long v = value.longValue();
            if (v >= SECONDS_THRESHOLD) {
                millis = v;
            } else {
                millis = v * 1000;  // v < 1e11: no overflow
            }
        } else {
            double v = value.doubleValue();
            if (!Double.isFinite(v) || v <= 0) {
                throw new Rejected(BAD_TIME);
            }
            double rounded = Math.rint(v < SECONDS_THRESHOLD ? v * 1000 : v);  // round half to even, as Python
            if (rounded >= 0x1p63) {
                throw new Rejected(BAD_TIME);
            }
            millis = (long) rounded;
        }
        state.timeMs = millis;
    }

    /** An RFC 3339 string time (formats._cloudevent_time / parse_rfc3339_ms). */
    private static void cloudEventTime(JsonNode value, Decoding state) throws Rejected {
        if (tookDefaultTime(value, state)) {
            return;
        }
        if (!value.isTextual()) {
            throw new Rejected(BAD_TIME);
        }
        long millis = parseRfc3339Ms(value.textValue());
        if (millis <= 0) {
            throw new Rejected(BAD_TIME);
        }
        state.timeMs = millis;
    }

    static long parseRfc3339Ms(String text) throws Rejected {
        Matcher m = RFC3339.matcher(text);
        if (!m.matches()) {
            throw new Rejected(BAD_TIME);
        }
        int year = Integer.parseInt(m.group(1));
        int month = Integer.parseInt(m.group(2));
        int day = Integer.parseInt(m.group(3));
        int hour = Integer.parseInt(m.group(4));
        int minute = Integer.parseInt(m.group(5));
        int second = Integer.parseInt(m.group(6));
        // datetime(year, month, day, hour, minute, min(second, 59)) validates; timegm then uses the raw second
        if (year < 1 || hour > 23 || minute > 59) {
            throw new Rejected(BAD_TIME);
        }
        long epochDay;
        try {
            epochDay = LocalDate.of(year, month, day).toEpochDay();
        } catch (DateTimeException e) {
            throw new Rejected(BAD_TIME);
        }
        String fraction = m.group(7) == null ? "0" : m.group(7);
        String firstThree = (fraction.length() > 3 ? fraction.substring(0, 3) : fraction);
        int millis = Integer.parseInt(firstThree) * (int) Math.pow(10, 3 - firstThree.length());
        long offsetSeconds = 0;
        if (m.group(9) != null) {
            int sign = m.group(9).equals("+") ? 1 : -1;
            offsetSeconds = sign * (Integer.parseInt(m.group(10)) * 3600L + Integer.parseInt(m.group(11)) * 60L);
        }
        long epochSeconds = epochDay * 86_400 + hour * 3_600L + minute * 60L + second - offsetSeconds;
        return epochSeconds * 1000 + millis;
    }

    private static Request thesis(JsonNode obj, FeatureSchema schema, Decoding state) throws Rejected {
        JsonNode payload = object(get(obj, "payload"));
        state.version = version(get(obj, THESIS_VERSION_KEY));
        Kind kind = read(Kind.named(get(obj, "type"), false), schema);
        String id = requestId(get(obj, "id"), state);
        numericTime(get(obj, "time"), state);
        return body(id, kind, payload, schema);
    }

    /** The instances (a request), predictions (a response) or labels (a label message) of a thesis payload or a
     * KServe v1 body. */
    private static Request body(String id, Kind kind, JsonNode body, FeatureSchema schema) {
        JsonNode values = get(body, kind.values);
        if (kind == Kind.REQUEST) {
            return new Request(id, kind, labels -> checkInstances(values, schema, labels));
        }
        return new Request(id, kind, labels -> checkPredictions(values, schema, labels));
    }

    /** formats._plain_kind: a plain body without instances is a response (predictions) or a label message
     * (labels) when the schema reads them; else a request. */
    private static Kind plainKind(JsonNode obj, FeatureSchema schema) {
        if (!obj.has(Kind.REQUEST.values)) {
            for (Kind kind : new Kind[] {Kind.RESPONSE, Kind.LABEL}) {
                if (kind.readBy(schema) && obj.has(kind.values)) {
                    return kind;
                }
            }
        }
        return Kind.REQUEST;
    }

    private static Request kserveV1(JsonNode obj, FeatureSchema schema, Decoding state) throws Rejected {
        if (!obj.has("specversion")) {  // a plain KServe v1 body: id and time from the defaults
            Kind kind = plainKind(obj, schema);
            String id = requestId(null, state);
            cloudEventTime(null, state);
            return body(id, kind, obj, schema);
        }
        if (!isText(obj.get("specversion"), "1.0")) {
            throw new Rejected(BAD_ENVELOPE);
        }
        JsonNode data = object(get(obj, "data"));
        state.version = version(get(obj, schema.versionAttribute()));
        Kind kind = read(Kind.named(get(obj, "type"), true), schema);
        String id = requestId(get(obj, "id"), state);
        cloudEventTime(get(obj, "time"), state);
        return body(id, kind, data, schema);
    }

    /** formats._oip_kind: with outputs and no inputs, a label message when parameters.type is "label" (whatever
     * the schema), else a response when the schema has an output; otherwise a request. */
    private static Kind oipKind(JsonNode obj, FeatureSchema schema) {
        if (obj.has("inputs") || !obj.has("outputs")) {
            return Kind.REQUEST;
        }
        JsonNode parameters = obj.get("parameters");
        if (parameters != null && parameters.isObject() && isText(get(parameters, "type"), Kind.LABEL.type)) {
            return Kind.LABEL;
        }
        return schema.hasOutput() ? Kind.RESPONSE : Kind.REQUEST;
    }

    private static Request oipV2(JsonNode obj, FeatureSchema schema, Decoding state) throws Rejected {
        Kind kind = oipKind(obj, schema);
        JsonNode tensors = get(obj, kind == Kind.REQUEST ? "inputs" : "outputs");
        if (tensors == null || !tensors.isArray() || tensors.isEmpty()) {
            throw new Rejected(BAD_ENVELOPE);
        }
        for (JsonNode tensor : tensors) {
            object(tensor);
        }
        JsonNode[] byFeature = kind == Kind.REQUEST ? tensorsByFeature(tensors, schema) : null;
        if (byFeature == null && tensors.size() != 1) {
            throw new Rejected(BAD_ENVELOPE);
        }
        JsonNode parameters = obj.has("parameters") ? object(obj.get("parameters")) : null;
        state.version = version(get(obj, OIP_VERSION_KEY));
        read(kind, schema);  // a label message while labels are not read: not_request
        String id = requestId(get(obj, "id"), state);
        numericTime(parameters == null ? null : get(parameters, "time"), state);
        JsonNode tensor = tensors.get(0);
        if (kind != Kind.REQUEST) {
            return new Request(id, kind, labels -> outputTensor(tensor, schema, labels));
        }
        if (byFeature != null) {
            return new Request(id, kind, labels -> featureRows(byFeature, schema, labels));
        }
        return new Request(id, kind, labels -> oipRows(tensor, schema, labels));
    }

    /** formats._tensors_by_feature: a request's tensors named like a feature, by feature index (null: none is);
     * two of one name are bad_envelope. */
    private static JsonNode[] tensorsByFeature(JsonNode tensors, FeatureSchema schema) throws Rejected {
        JsonNode[] byFeature = null;
        for (JsonNode tensor : tensors) {
            JsonNode name = get(tensor, "name");
            int j = name != null && name.isTextual() ? schema.feature(name.textValue()) : -1;
            if (j >= 0) {
                if (byFeature == null) {
                    byFeature = new JsonNode[schema.width()];
                }
                if (byFeature[j] != null) {
                    throw new Rejected(BAD_ENVELOPE);
                }
                byFeature[j] = tensor;
            }
        }
        return byFeature;
    }

    /** The single [n, k] tensor of a request: a numeric datatype, its columns checked as the features. */
    private static double[][] oipRows(JsonNode tensor, FeatureSchema schema, Labels labels) throws Rejected {
        JsonNode datatype = get(tensor, "datatype");
        if (datatype == null || !datatype.isTextual() || !NUMERIC_DATATYPES.contains(datatype.textValue())) {
            throw new Rejected(BAD_DATATYPE);
        }
        JsonNode shape = get(tensor, "shape");
        JsonNode data = get(tensor, "data");
        if (shape == null || !shape.isArray() || shape.size() != 2
                || !positiveInt(shape.get(0)) || !positiveInt(shape.get(1))) {
            throw new Rejected(BAD_SHAPE);
        }
        long rows = shape.get(0).longValue();
        long width = shape.get(1).longValue();
        if (data == null || !data.isArray() || Math.multiplyHigh(rows, width) != 0 || data.size() != rows * width) {
            throw new Rejected(BAD_SHAPE);
        }
        if (width != schema.width()) {  // the Python rows are slices of `width` values: all of the wrong length
            throw new Rejected(WRONG_FEATURE_COUNT);
        }
        FeatureSchema.Columns columns = schema.features();
        double[][] out = new double[(int) rows][];
        for (int i = 0; i < rows; i++) {
            out[i] = columns.allNumeric ? checkNumbers(data, i * (int) width, (int) width)
                    : checkRow(slice(data, i * (int) width, (int) width), columns, labels);
        }
        return out;
    }

    /** One tensor per feature (null: the feature is missing): datatypes, then shapes, then the values. */
    private static double[][] featureRows(JsonNode[] tensors, FeatureSchema schema, Labels labels) throws Rejected {
        FeatureSchema.Columns columns = schema.features();
        for (int j = 0; j < tensors.length; j++) {
            if (tensors[j] != null) {
                JsonNode datatype = get(tensors[j], "datatype");
                boolean fits = columns.categorical[j] ? isText(datatype, BYTES)
                        : datatype != null && datatype.isTextual() && NUMERIC_DATATYPES.contains(datatype.textValue());
                if (!fits) {
                    throw new Rejected(BAD_DATATYPE);
                }
            }
        }
        long n = -1;
        for (JsonNode tensor : tensors) {
            if (tensor != null) {
                long length = vectorLength(tensor);
                if (n >= 0 && length != n) {
                    throw new Rejected(BAD_SHAPE);
                }
                n = length;
            }
        }
        JsonNode[] data = new JsonNode[tensors.length];
        for (int j = 0; j < tensors.length; j++) {
            data[j] = tensors[j] == null ? null : get(tensors[j], "data");
        }
        double[][] out = new double[(int) n][];
        JsonNode[] row = new JsonNode[tensors.length];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < row.length; j++) {
                row[j] = data[j] == null ? null : data[j].get(i);
            }
            out[i] = checkRow(row, columns, labels);
        }
        return out;
    }

    /** The one output tensor of a response or a label message: a numeric datatype (or BYTES, categorical output),
     * [n] or [n, 1]. */
    private static double[][] outputTensor(JsonNode tensor, FeatureSchema schema, Labels labels) throws Rejected {
        JsonNode datatype = get(tensor, "datatype");
        FeatureSchema.Columns output = schema.output();
        if (datatype == null || !datatype.isTextual() || !(NUMERIC_DATATYPES.contains(datatype.textValue())
                || (output.categorical[0] && datatype.textValue().equals(BYTES)))) {
            throw new Rejected(BAD_DATATYPE);
        }
        vectorLength(tensor);
        return checkPredictions(get(tensor, "data"), schema, labels);
    }

    /** n of a tensor of shape [n] or [n, 1] whose data holds n values; else bad_shape. */
    private static long vectorLength(JsonNode tensor) throws Rejected {
        JsonNode shape = get(tensor, "shape");
        JsonNode data = get(tensor, "data");
        if (shape == null || !shape.isArray() || shape.isEmpty() || shape.size() > 2 || !positiveInt(shape.get(0))
                || (shape.size() == 2 && !(positiveInt(shape.get(1)) && shape.get(1).longValue() == 1))) {
            throw new Rejected(BAD_SHAPE);
        }
        long n = shape.get(0).longValue();
        if (data == null || !data.isArray() || data.size() != n) {
            throw new Rejected(BAD_SHAPE);
        }
        return n;
    }

    /** A positive JSON integer within a long (a larger one could not match the data's length either). */
    private static boolean positiveInt(JsonNode d) {
        return d.isIntegralNumber() && d.canConvertToLong() && d.longValue() > 0;
    }

    /** formats._check_instances: a non-empty list of instances (lists of k values, or objects), row by row. */
    private static double[][] checkInstances(JsonNode instances, FeatureSchema schema, Labels labels)
            throws Rejected {
        if (instances == null || !instances.isArray() || instances.isEmpty()) {
            throw new Rejected(NO_INSTANCES);
        }
        for (JsonNode row : instances) {
            if (!row.isArray() && !row.isObject()) {
                throw new Rejected(BAD_INSTANCE);
            }
        }
        int width = schema.width();
        for (JsonNode row : instances) {
            if (row.isArray() && row.size() != width) {
                throw new Rejected(WRONG_FEATURE_COUNT);
            }
        }
        FeatureSchema.Columns columns = schema.features();
        double[][] out = new double[instances.size()][];
        for (int i = 0; i < out.length; i++) {
            JsonNode row = instances.get(i);
            if (row.isArray()) {
                out[i] = columns.allNumeric ? checkNumbers(row, 0, width) : checkRow(slice(row, 0, width), columns,
                        labels);
            } else {
                JsonNode[] values = new JsonNode[width];
                for (int j = 0; j < width; j++) {
                    values[j] = row.get(schema.name(j));
                }
                out[i] = checkRow(values, columns, labels);
            }
        }
        return out;
    }

    /** formats._check_outputs: a response's predictions or a label message's labels, a non-empty list, each value
     * an instance of the output's one column. */
    private static double[][] checkPredictions(JsonNode predictions, FeatureSchema schema, Labels labels)
            throws Rejected {
        if (predictions == null || !predictions.isArray() || predictions.isEmpty()) {
            throw new Rejected(NO_INSTANCES);
        }
        FeatureSchema.Columns output = schema.output();
        double[][] out = new double[predictions.size()][];
        JsonNode[] value = new JsonNode[1];
        for (int i = 0; i < out.length; i++) {
            value[0] = predictions.get(i);
            out[i] = checkRow(value, output, labels);
        }
        return out;
    }

    private static JsonNode[] slice(JsonNode values, int start, int width) {
        JsonNode[] row = new JsonNode[width];
        for (int j = 0; j < width; j++) {
            row[j] = values.get(start + j);
        }
        return row;
    }

    /**
     * formats._check_values on {@code width} numeric values from {@code start} (the all-numeric hot path, no
     * allocation but the row): numbers (or null) first, then finiteness; null is NaN.
     */
    private static double[] checkNumbers(JsonNode values, int start, int width) throws Rejected {
        boolean nulls = false;
        for (int j = 0; j < width; j++) {
            JsonNode value = values.get(start + j);
            if (!value.isNumber()) {
                if (!value.isNull()) {
                    throw new Rejected(BAD_INSTANCE);
                }
                nulls = true;
            }
        }
        double[] row = new double[width];
        for (int j = 0; j < width; j++) {
            JsonNode value = values.get(start + j);
            if (nulls && value.isNull()) {
                row[j] = Double.NaN;
                continue;
            }
            row[j] = value.doubleValue();
            if (!Double.isFinite(row[j])) {
                throw new Rejected(NON_FINITE);
            }
        }
        return row;
    }

    /** A value of the right JSON type for its column (Java null or JSON null: missing, fits either). */
    private static boolean fits(JsonNode value, boolean categorical) {
        if (value == null || value.isNull()) {
            return true;
        }
        if (!categorical) {
            return value.isNumber();
        }
        if (value.isTextual()) {
            String text = value.textValue();
            return text.length() <= MAX_CATEGORY_CHARS || text.codePointCount(0, text.length()) <= MAX_CATEGORY_CHARS;
        }
        if (value.isIntegralNumber()) {
            return true;
        }
        if (!value.isNumber()) {
            return false;
        }
        double d = value.doubleValue();  // a non-finite number fails the next check, a fractional one this one
        return !Double.isFinite(d) || d == Math.rint(d);
    }

    /** formats._check_values on one instance of {@code columns}: JSON types first, then finiteness; coded. */
    private static double[] checkRow(JsonNode[] row, FeatureSchema.Columns columns, Labels labels) throws Rejected {
        for (int j = 0; j < row.length; j++) {
            if (!fits(row[j], columns.categorical[j])) {
                throw new Rejected(BAD_INSTANCE);
            }
        }
        double[] out = new double[row.length];
        for (int j = 0; j < row.length; j++) {
            JsonNode value = row[j];
            if (value == null || value.isNull()) {
                out[j] = Double.NaN;
            } else if (value.isTextual()) {
                out[j] = code(columns, j, value.textValue(), labels);
            } else {
                double d = value.doubleValue();
                if (!Double.isFinite(d)) {
                    throw new Rejected(NON_FINITE);
                }
                out[j] = columns.categorical[j] ? code(columns, j, integerText(value, d), labels) : d;
            }
        }
        return out;
    }

    private static double code(FeatureSchema.Columns columns, int j, String value, Labels labels) {
        int code = columns.code(j, value);
        return code >= 0 ? code : labels.code(value);
    }

    /** An integral finite number as its decimal integer text (Python's {@code str(int(v))}). */
    private static String integerText(JsonNode value, double d) {
        if (value.isIntegralNumber()) {
            return value.asText();  // int, long and big-integer nodes write their exact decimal digits
        }
        if (Math.abs(d) < 0x1p62) {
            return Long.toString((long) d);  // -0.0 is "0"
        }
        return new BigDecimal(d).toBigInteger().toString();
    }
}
