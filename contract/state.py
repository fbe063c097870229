"""Where the job keeps its keyed state, decided from the spec by a pure function: the job sets it
(`flink_job.pipeline`), the Kubernetes glue renders it into the FlinkDeployment, and `contract.upgrades` refuses
a restore across a change of it (a checkpoint is read only by the backend that wrote it).

Flink's default, the heap backend, keeps state as Java objects: fast, and fine for windows and the response
join, which hold seconds to minutes of requests. With ``ground_truth`` every prediction waits up to
``max_delay`` for its label (days): past `ROCKSDB_MIN_DELAY_MS` the job uses the embedded RocksDB backend
(``flink-statebackend-rocksdb``, part of the Flink distribution's ``flink-dist`` jar with its native library,
so nothing more to fetch), which keeps state on local disk, serialized, and checkpoints it incrementally.
"""
from __future__ import annotations

from contract.spec import MonitorSpec

ROCKSDB_MIN_DELAY_MS = 10 * 60_000
"""Past this ``ground_truth.max_delay`` the job keeps its state in RocksDB."""
BACKEND_OPTION = "state.backend.type"
HEAP, ROCKSDB = "hashmap", "rocksdb"  # Flink's names: the heap backend (the default) and RocksDB


def state_backend_options(spec: MonitorSpec) -> dict[str, str]:
    """Flink options for the spec's state backend: RocksDB (with incremental checkpoints) when predictions wait
    longer than `ROCKSDB_MIN_DELAY_MS` for their labels; none (the heap backend) otherwise."""
    if spec.ground_truth is not None and spec.ground_truth.max_delay > ROCKSDB_MIN_DELAY_MS:
        return {BACKEND_OPTION: ROCKSDB, "execution.checkpointing.incremental": "true"}
    return {}
