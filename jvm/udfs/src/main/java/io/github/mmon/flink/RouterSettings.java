package io.github.mmon.flink;

import java.io.Serializable;

/**
 * What {@link RequestRouter} needs to know of the spec: the instance width (the features, then the output
 * when responses are joined), which columns hold category codes ({@code categorical[j]}: a negative code
 * there indexes the record's labels), the window length, the shard
 * boundaries ({@code shardBounds[s]} to {@code shardBounds[s + 1]} are shard {@code s}'s columns), whether
 * key each shard's sub-batches go under ({@code shardKeys[s]}, chosen so that the shards spread evenly over the
 * window subtasks), whether shard 0 carries every column (covariance needs the whole matrix) and the early-flush size.
 */
public record RouterSettings(int features, boolean[] categorical, long windowMs, int[] shardBounds, int[] shardKeys, boolean wholeMatrix,
                             int flushValues) implements Serializable {
}
