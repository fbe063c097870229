"""The spec a job's state was written under, kept beside its checkpoints, and the check of a restore against it.

A Kafka job started with ``--checkpoint-dir DIR`` writes `RECORD` into its own checkpoint folder
(``DIR/<job id>/``, the job id fixed before submission so the record is there before any checkpoint): the
resolved spec (without ``kafka.properties``, which may hold credentials) and each categorical column's
vocabulary in its baseline. ``--restore-from PATH`` (``DIR/<job id>/chk-N``, or a savepoint folder into which
the record was copied) reads it back from beside ``PATH`` and classifies the change (`contract.upgrades`): an
incompatible one refuses the start with the change and the way forward; the others are printed and applied.
Without a record (a savepoint without it, a checkpoint of an older version) the restore goes on, and the job's
own state checks are the guard: the router and the join move what they hold to the new columns by name and
refuse what they cannot (a window of another length, a column of another type).

Paths are Flink file-system URIs (``file://``, ``s3://`` with its plugin, or a local path), read and written
through the JVM's ``FileSystem``.
"""
from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Optional

from pyflink.java_gateway import get_gateway

from contract import upgrades
from contract.spec import CATEGORICAL, MonitorSpec, parse_spec, spec_to_dict

if TYPE_CHECKING:
    from udfs.baseline import Baseline

RECORD = "mmon-spec.json"


def new_job_id() -> str:
    """A job id (32 hex digits) to fix before submission (``$internal.pipeline.job-id``)."""
    return uuid.uuid4().hex


def vocabularies(spec: MonitorSpec, baseline: Baseline) -> dict[str, list[str]]:
    """Each categorical column's vocabulary in ``baseline`` (the order of its codes), by name."""
    return {name: list(baseline.columns[name].vocabulary)
            for name, kind in zip(spec.columns, spec.column_types) if kind == CATEGORICAL}


def record(spec: MonitorSpec, baseline: Baseline) -> dict:
    """What a restore needs of this run: the spec (without Kafka client properties) and the vocabularies."""
    document = spec_to_dict(spec)
    document["kafka"]["properties"] = {}
    return {"spec": document, "vocabularies": vocabularies(spec, baseline)}


def _path(uri: str):
    return get_gateway().jvm.org.apache.flink.core.fs.Path(uri)


def save(checkpoint_dir: str, job_id: str, spec: MonitorSpec, baseline: Baseline) -> str:
    """Writes `record` into the job's checkpoint folder; returns its URI."""
    gateway = get_gateway()
    path = _path(f"{checkpoint_dir.rstrip('/')}/{job_id}/{RECORD}")
    overwrite = gateway.jvm.org.apache.flink.core.fs.FileSystem.WriteMode.OVERWRITE
    stream = path.getFileSystem().create(path, overwrite)
    try:
        stream.write(json.dumps(record(spec, baseline), indent=1).encode())
    finally:
        stream.close()
    return path.toString()


def saved(restore_from: str) -> Optional[tuple[str, dict]]:
    """The record beside ``restore_from``: in the folder itself (a savepoint it was copied into) or in its parent
    (a job's checkpoint folder, ``chk-N``'s parent); with its URI. None when there is none."""
    folder = _path(restore_from.rstrip("/"))
    for candidate in (_path(f"{folder.toString()}/{RECORD}"), _path(f"{folder.getParent().toString()}/{RECORD}")):
        system = candidate.getFileSystem()
        if system.exists(candidate):
            stream = system.open(candidate)
            try:
                return candidate.toString(), json.loads(bytes(stream.readAllBytes()).decode())
            finally:
                stream.close()
    return None


def check(spec: MonitorSpec, baseline: Baseline, restore_from: str) -> tuple[Optional[str], Optional[upgrades.Upgrade]]:
    """The record's URI and the change from its spec to ``spec`` (`contract.upgrades.classify`); (None, None)
    without a record."""
    found = saved(restore_from)
    if found is None:
        return None, None
    uri, document = found
    old = parse_spec(document["spec"])
    return uri, upgrades.classify(old, spec, document.get("vocabularies", {}), vocabularies(spec, baseline))
