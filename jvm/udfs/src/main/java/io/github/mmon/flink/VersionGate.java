package io.github.mmon.flink;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.Set;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * The bound on the number of model versions, right after the parse step, before the joins and the router: every
 * result is kept per version (window buffers and window state, the joins' rows, performance), so their number must
 * be bounded. The first {@code maxVersions} distinct versions of accepted records (requests, responses and label
 * messages alike) are admitted; an accepted record of any further version leaves with the reason
 * {@code too_many_versions}, which the router dead-letters and counts like a parse reason (so the accounting
 * identity holds, and a response or label of such a version is rejected with its request, never unmatched).
 *
 * <p>Each subtask admits the versions it sees first; the admitted versions are checkpointed as union state, so after
 * a restore (or a rescale) every subtask keeps every version admitted anywhere, and admits a new one only while it
 * knows fewer than {@code maxVersions}. With parallelism 1 the bound is exact; with more, subtasks that meet different
 * versions first may admit up to {@code maxVersions} each.
 */
public class VersionGate extends AbstractStreamOperator<Row> implements OneInputStreamOperator<Row, Row> {

    private final int maxVersions;

    private transient Set<String> admitted;
    private transient ListState<String> checkpointed;

    public VersionGate(int maxVersions) {
        this.maxVersions = maxVersions;
    }

    @Override
    public void processElement(StreamRecord<Row> element) {
        Row row = element.getValue();
        if (row.getField(JobRows.REASON) == null && !admits((String) row.getField(JobRows.VERSION))) {
            Row rejected = Row.copy(row);
            rejected.setField(JobRows.REASON, Contract.TOO_MANY_VERSIONS);
            output.collect(element.replace(rejected));
            return;
        }
        output.collect(element);
    }

    /** Whether records of {@code version} pass: it was admitted before, or there is room for it (it is then). */
    private boolean admits(String version) {
        if (admitted.contains(version)) {
            return true;
        }
        if (admitted.size() >= maxVersions) {
            return false;
        }
        admitted.add(version);
        return true;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        admitted = new LinkedHashSet<>();
        checkpointed = context.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>("admitted-versions", Types.STRING));
        for (String version : checkpointed.get()) {
            admitted.add(version);
        }
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        checkpointed.update(new ArrayList<>(admitted));
    }
}
