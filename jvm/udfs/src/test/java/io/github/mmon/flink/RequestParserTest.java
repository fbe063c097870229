package io.github.mmon.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.nio.charset.StandardCharsets;
import java.util.List;

import org.apache.flink.table.data.StringData;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/** What {@link RequestParser} does beyond the reference decoder (parse_cases.json covers that): the message-time
 * flag, the future_time check on either clock, the too_large cap, the per-thread memo, bytes that are not UTF-8,
 * and the two SQL functions over it. */
class RequestParserTest {

    static final FeatureSchema IRIS = new FeatureSchema(new String[] {"a", "b"},
            new String[] {Contract.NUMERIC, Contract.NUMERIC}, new String[2][], null, null, null);
    static final FeatureSchema COLOURS = new FeatureSchema(new String[] {"colour", "size"},
            new String[] {Contract.CATEGORICAL, Contract.NUMERIC}, new String[][] {{"red", "blue"}, null},
            "label", Contract.CATEGORICAL, new String[] {"yes", "no"});
    /** COLOURS reading label messages (the spec's ground_truth). */
    static final FeatureSchema LABELLED = new FeatureSchema(new String[] {"colour", "size"},
            new String[] {Contract.CATEGORICAL, Contract.NUMERIC}, new String[][] {{"red", "blue"}, null},
            "label", Contract.CATEGORICAL, new String[] {"yes", "no"}, true);
    private static final long HOUR = 3_600_000L;

    private static String thesis(String id, Object time, String instances) {
        return "{\"type\":\"request\",\"id\":\"" + id + "\",\"time\":" + time + ",\"payload\":{\"instances\":"
                + instances + "}}";
    }

    private static ParsedRequest parse(String line, FeatureSchema schema, boolean messageTime, Long defaultTimeMs,
                                       Long skewMs, boolean wallClock) {
        return RequestParser.parse(StringData.fromString(line), schema, Contract.THESIS, messageTime, null,
                defaultTimeMs, skewMs, wallClock, null);
    }

    @Test
    void withoutMessageTimeTheDefaultTimeStandsAndTheMessageTimeIsNotRead() {
        ParsedRequest parsed = parse(thesis("r1", "\"not a time\"", "[[1,2]]"), IRIS, false, 1_000_000L, null, false);
        assertNull(parsed.reason());
        assertEquals(1_000_000L, parsed.timeMs());
        assertEquals("bad_time", parse(thesis("r1", "\"not a time\"", "[[1,2]]"), IRIS, true, 1_000_000L, null, false)
                .reason());
    }

    @Test
    void aRejectedRecordKeepsTheTimeAndIdReadBeforeTheCheckFailed() {
        ParsedRequest parsed = parse(thesis("r1", 1_700_000_000_000L, "[[1,\"x\"]]"), IRIS, true, 5L, null, false);
        assertEquals("bad_instance", parsed.reason());
        assertEquals("r1", parsed.requestId());
        assertEquals(1_700_000_000_000L, parsed.timeMs());
        assertEquals(5L, parse("[]", IRIS, true, 5L, null, false).timeMs());  // bad_json: the default time
    }

    @Test
    void aTimeTooFarAheadOfTheWallClockIsFutureTime() {
        long now = System.currentTimeMillis();
        assertEquals("future_time", parse(thesis("r1", now + HOUR, "[[1,2]]"), IRIS, true, null, 60_000L, true)
                .reason());
        assertNull(parse(thesis("r1", now + 30_000, "[[1,2]]"), IRIS, true, null, 60_000L, true).reason());
        assertNull(parse(thesis("r1", now + HOUR, "[[1,2]]"), IRIS, true, null, null, true).reason());  // no limit
    }

    @Test
    void aReplayedStreamsClockIsTheLatestAcceptedTime() {
        long start = 9_000_000_000_000L;  // later than any time another test accepts on this thread
        assertNull(parse(thesis("r1", start, "[[1,2]]"), IRIS, true, null, 60_000L, false).reason());
        ParsedRequest ahead = parse(thesis("r2", start + 60_001, "[[1,2]]"), IRIS, true, null, 60_000L, false);
        assertEquals("future_time", ahead.reason());
        assertEquals(start + 60_001, ahead.timeMs());
        assertNull(parse(thesis("r3", start + 60_000, "[[1,2]]"), IRIS, true, null, 60_000L, false).reason());
        assertNull(parse(thesis("r4", start + 120_000, "[[1,2]]"), IRIS, true, null, 60_000L, false).reason());
    }

    @Test
    void aRejectedRecordIsNeverFutureTimeAndMovesNoClock() {
        ParsedRequest rejected = ParsedRequest.rejected("bad_id", null, Long.MAX_VALUE);
        assertSame(rejected, RequestParser.notInTheFuture(rejected, 0L, 1L));
        ParsedRequest accepted = ParsedRequest.accepted("r", 10_000L, new double[][] {{1}}, new String[0], false, false, null);
        assertEquals("future_time", RequestParser.notInTheFuture(accepted, 8_999L, 1_000L).reason());
        assertSame(accepted, RequestParser.notInTheFuture(accepted, 9_000L, 1_000L));
    }

    @Test
    void theSameRecordIsParsedOncePerThread() {
        String line = thesis("r1", 1_700_000_000_000L, "[[1,2]]");
        ParsedRequest first = parse(line, IRIS, true, null, null, false);
        assertSame(first, parse(line, IRIS, true, null, null, false));
        assertNotSame(first, parse(line, IRIS, true, 5L, null, false));  // other arguments: parsed again
        assertEquals("r1", first.requestId());
    }

    @Test
    void bytesThatAreNotUtf8AreReadAsFlinkDecodesThem() {
        byte[] line = thesis("r1", 1_700_000_000_000L, "[[\"re#\",3]]").getBytes(StandardCharsets.UTF_8);
        line[new String(line, StandardCharsets.UTF_8).indexOf('#')] = (byte) 0xFF;
        ParsedRequest parsed = RequestParser.parse(StringData.fromBytes(line), COLOURS, Contract.THESIS, true,
                null, null, null, false, null);
        assertNull(parsed.reason());
        assertArrayEquals(new String[] {"re\uFFFD"}, parsed.labels());
        assertArrayEquals(new double[] {-1, 3}, parsed.instances()[0]);
    }

    @Test
    void aRecordLongerThanTheCapIsTooLargeUnparsedCountedInUtf8Bytes() {
        String line = thesis("r1", 1_700_000_000_000L, "[[\"r\u00e9d\",1]]");  // one two-byte character
        int bytes = line.getBytes(StandardCharsets.UTF_8).length;
        assertEquals(line.length() + 1, bytes);
        ParsedRequest over = RequestParser.parse(StringData.fromString(line), COLOURS, Contract.THESIS, true, null,
                7L, null, false, bytes - 1);
        assertEquals(Contract.TOO_LARGE, over.reason());
        assertEquals(7L, over.timeMs());  // the default time, as for any record whose own was not read
        assertNull(over.requestId());
        assertNull(RequestParser.parse(StringData.fromString(line), COLOURS, Contract.THESIS, true, null, 7L, null,
                false, bytes).reason());
        String notJson = "x".repeat(100);  // not parsed at all: too_large, not bad_json
        assertEquals(Contract.TOO_LARGE, new ParseRequest(COLOURS).eval(StringData.fromString(notJson),
                Contract.THESIS, true, null, null, null, false, 99).getField(0));
        assertNull(new RequestTimeMs(COLOURS).eval(StringData.fromString(line), Contract.THESIS, true, null, null,
                null, false, bytes - 1));
    }

    @Test
    void rfc3339TimesToEpochMilliseconds() throws Exception {
        assertEquals(0L, RequestParser.parseRfc3339Ms("1970-01-01T00:00:00Z"));
        assertEquals(951_782_400_999L, RequestParser.parseRfc3339Ms("2000-02-29T00:00:00.9999Z"));
        assertEquals(-3_600_000L, RequestParser.parseRfc3339Ms("1970-01-01T00:00:00+01:00"));
    }

    @Test
    void parseRequestPacksTheValuesRowMajorLittleEndian() {
        Row row = new ParseRequest(COLOURS).eval(StringData.fromString(thesis("r1", 1_700_000_000_000L,
                "[[\"blue\",1.5],[\"green\",null],[\"red\",-2]]")), Contract.THESIS, true, null, null, null, false, null);
        assertNull(row.getField(0));
        assertEquals("r1", row.getField(1));
        assertEquals(1_700_000_000_000L, row.getField(2));
        assertArrayEquals(new double[] {1, 1.5, -1, Double.NaN, 0, -2}, Rows.unpacked((byte[]) row.getField(3)));
        assertArrayEquals(new String[] {"green"}, (String[]) row.getField(4));
        assertEquals(false, row.getField(5));
    }

    @Test
    void parseRequestGivesNullLabelsWhenAllValuesAreKnownAndNullValuesWhenRejected() {
        ParseRequest function = new ParseRequest(COLOURS);
        Row accepted = function.eval(StringData.fromString(thesis("r1", 1_700_000_000_000L, "[[\"red\",1]]")),
                Contract.THESIS, true, null, null, null, false, null);
        assertNull(accepted.getField(4));
        Row rejected = function.eval(null, Contract.THESIS, true, null, 42L, null, false, null);
        assertEquals("bad_json", rejected.getField(0));
        assertEquals(42L, rejected.getField(2));
        assertNull(rejected.getField(3));
    }

    private static Row parsed(FeatureSchema schema, String format, String line) {
        return new ParseRequest(schema).eval(StringData.fromString(line), format, true, null, null, null, false, null);
    }

    @Test
    void aLabelMessageIsTruthItsLabelsCodedLikeTheOutputColumn() {
        String line = "{\"type\":\"label\",\"id\":\"r1\",\"time\":1700000000500,\"payload\":{\"labels\":"
                + "[\"no\",\"maybe\",null,\"yes\",\"maybe\"]}}";
        Row row = parsed(LABELLED, Contract.THESIS, line);
        assertNull(row.getField(0));
        assertEquals("r1", row.getField(1));
        assertEquals(1_700_000_000_500L, row.getField(2));  // when the label became known
        assertArrayEquals(new double[] {1, -1, Double.NaN, 0, -1}, Rows.unpacked((byte[]) row.getField(3)));
        assertArrayEquals(new String[] {"maybe"}, (String[]) row.getField(4));
        assertEquals(List.of(false, true), List.of(row.getField(5), row.getField(6)));
        assertEquals(1_700_000_000_500L, new RequestTimeMs(LABELLED).eval(StringData.fromString(line),
                Contract.THESIS, true, null, null, null, false, null));  // the rowtime: the label's own time
        assertEquals(Contract.NOT_REQUEST, parsed(COLOURS, Contract.THESIS, line).getField(0));  // no ground truth
        assertEquals(Contract.NOT_REQUEST, parsed(IRIS, Contract.THESIS, line).getField(0));
    }

    @Test
    void requestsAndResponsesAreNotTruthUnderASchemaThatReadsLabels() {
        Row request = parsed(LABELLED, Contract.THESIS, thesis("r1", 1_700_000_000_000L, "[[\"red\",1]]"));
        Row response = parsed(LABELLED, Contract.THESIS,
                "{\"type\":\"response\",\"id\":\"r1\",\"time\":1700000000000,\"payload\":{\"predictions\":[\"no\"]}}");
        assertEquals(List.of(false, false), List.of(request.getField(5), request.getField(6)));
        assertEquals(List.of(true, false), List.of(response.getField(5), response.getField(6)));
        assertEquals(false, parsed(LABELLED, Contract.THESIS, "[]").getField(6));  // rejected: neither
    }

    @Test
    void aLabelCloudEventAndAnOipLabelMessage() {
        String event = "{\"specversion\":\"1.0\",\"id\":\"r2\",\"source\":\"s\",\"type\":\""
                + Contract.CLOUDEVENT_LABEL_TYPE + "\",\"time\":\"2023-11-14T22:13:20.250Z\",\"data\":{\"labels\":[\"yes\"]}}";
        Row fromEvent = parsed(LABELLED, Contract.KSERVE_V1, event);
        assertEquals(List.of("r2", 1_700_000_000_250L, true), List.of(fromEvent.getField(1), fromEvent.getField(2),
                fromEvent.getField(6)));
        assertArrayEquals(new double[] {0}, Rows.unpacked((byte[]) fromEvent.getField(3)));
        assertEquals(Contract.NOT_REQUEST, parsed(COLOURS, Contract.KSERVE_V1, event).getField(0));
        String oip = "{\"id\":\"r3\",\"parameters\":{\"time\":1700000000000,\"type\":\"label\"},\"outputs\":"
                + "[{\"name\":\"label-0\",\"shape\":[2,1],\"datatype\":\"BYTES\",\"data\":[\"no\",\"yes\"]}]}";
        Row fromOip = parsed(LABELLED, Contract.OIP_V2, oip);
        assertEquals(List.of(false, true), List.of(fromOip.getField(5), fromOip.getField(6)));
        assertArrayEquals(new double[] {1, 0}, Rows.unpacked((byte[]) fromOip.getField(3)));
        // without ground truth never a response, though it has the shape of one
        assertEquals(Contract.NOT_REQUEST, parsed(COLOURS, Contract.OIP_V2, oip).getField(0));
    }

    @Test
    void requestTimeIsNullForARejectedRecord() {
        RequestTimeMs function = new RequestTimeMs(IRIS);
        assertEquals(1_700_000_000_000L, function.eval(StringData.fromString(thesis("r1", 1_700_000_000, "[[1,2]]")),
                Contract.THESIS, true, null, null, null, false, null));
        assertNull(function.eval(StringData.fromString(thesis("r1", 1_700_000_000, "[[1]]")), Contract.THESIS,
                true, null, null, null, false, null));
    }
}
