package io.github.mmon.flink;

/**
 * One decoded record: {@code reason} is null for a request (or response, or label message) that can be monitored, else its
 * dead-letter reason. {@code timeMs} is the request time when it was read before a check failed (else the
 * default time, possibly null), so even a rejected record has an event time to carry.
 *
 * <p>{@code instances} (null when rejected) holds the values, n x k for a request, n x 1 for a response (its
 * predictions), coded as {@link RequestParser} says: numeric as is, missing NaN, categorical its index in the
 * {@link FeatureSchema} vocabulary or else {@code -(1 + j)} for {@code labels[j]}. {@code labels} is empty when
 * every value was in the vocabularies (null when rejected). {@code response} is true for an accepted response
 * (false for every rejected record). {@code truth} is true for an accepted label message (ground truth): its
 * instances are the request's true outputs, n x 1, coded as predictions are (false for every rejected record).
 * {@code version} is the model version the message names (formats.version_of), null when it names none (the job
 * then takes the spec's {@code model.version}) and for every rejected record.
 */
public record ParsedRequest(String reason, String requestId, Long timeMs, double[][] instances, String[] labels,
                            boolean response, boolean truth, String version) {

    static ParsedRequest accepted(String requestId, long timeMs, double[][] instances, String[] labels,
                                  boolean response, boolean truth, String version) {
        return new ParsedRequest(null, requestId, timeMs, instances, labels, response, truth, version);
    }

    static ParsedRequest rejected(String reason, String requestId, Long timeMs) {
        return new ParsedRequest(reason, requestId, timeMs, null, null, false, false, null);
    }
}
