package io.github.mmon.flink;

/**
 * One decoded record: {@code reason} is null for a request that can be monitored, else its dead-letter
 * reason. {@code timeMs} is the request time when it was read before a check failed (else the default
 * time, possibly null), so even a rejected record has an event time to carry.
 */
public record ParsedRequest(String reason, String requestId, Long timeMs, double[][] instances) {

    static ParsedRequest accepted(String requestId, long timeMs, double[][] instances) {
        return new ParsedRequest(null, requestId, timeMs, instances);
    }

    static ParsedRequest rejected(String reason, String requestId, Long timeMs) {
        return new ParsedRequest(reason, requestId, timeMs, null);
    }
}
