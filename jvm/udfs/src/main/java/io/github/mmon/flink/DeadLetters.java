package io.github.mmon.flink;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.types.Row;

/**
 * Dead-letter records of a bounded size: the raw payload is cut to at most {@code maxRawBytes} UTF-8
 * bytes (at a character boundary), with its full length and SHA-256, so that no input, however large,
 * can make a record the sink cannot write (JSON escaping at most sextuples the cut text).
 */
public final class DeadLetters implements Serializable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final int maxRawBytes;

    public DeadLetters(int maxRawBytes) {
        this.maxRawBytes = maxRawBytes;
    }

    /** The {@code (kind, reason, payload)} record of a request (a {@link JobRows#REQUEST_FIELDS} row, whose
     * raw record is its UTF-8 bytes). */
    Row row(String reason, Row request) {
        byte[] raw = (byte[]) request.getField(JobRows.RAW);
        byte[] bytes = raw == null ? new byte[0] : raw;
        ObjectNode payload = JSON.createObjectNode();
        payload.put("reason", reason);
        payload.put("raw", cut(bytes, maxRawBytes));
        payload.put("raw_bytes", bytes.length);
        payload.put("raw_sha256", sha256(bytes));
        payload.put("truncated", bytes.length > maxRawBytes);
        payload.put("source", source(request));
        Object version = request.getField(JobRows.VERSION);
        if (version != null) {  // known once the record was read (a parse failure has none)
            payload.put(Contract.VERSION, (String) version);
        }
        return Row.of(Contract.DEAD_LETTER, reason, payload.toString());
    }

    /** Where the request was read: {@code topic/partition/offset} on Kafka, {@code label:LINE} for a file
     * (a position without a partition). */
    static String source(Row request) {
        Object name = request.getField(JobRows.SOURCE_NAME);
        Object partition = request.getField(JobRows.SOURCE_PARTITION);
        Object position = request.getField(JobRows.SOURCE_POSITION);
        return partition == null ? name + ":" + position : name + "/" + partition + "/" + position;
    }

    /** The longest prefix of {@code bytes} of at most {@code limit} bytes that ends on a character, as text. */
    static String cut(byte[] bytes, int limit) {
        if (bytes.length <= limit) {
            return new String(bytes, StandardCharsets.UTF_8);
        }
        int end = limit;
        while (end > 0 && (bytes[end] & 0xC0) == 0x80) {  // a continuation byte: back to the character's start
            end--;
        }
        return new String(bytes, 0, end, StandardCharsets.UTF_8);
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);  // every JVM has SHA-256
        }
    }
}
