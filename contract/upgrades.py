"""What a spec change does to a monitor restored from its state: every change falls in one class.

A job restored from a checkpoint or savepoint (``mmon run --kafka ... --restore-from PATH``; on Kubernetes,
every change of a ModelMonitor's spec) carries state written under the old spec: the open windows' buffers
(instances by column), the requests and responses waiting in the response join, the predictions and labels
waiting in the label join (``ground_truth``) and each window's performance so far, the window state of each
shard, the Kafka source's offsets and the sink's transactions. `classify` compares the old spec with the new
one, field by field, and puts each change in a class:

- ``compatible``: restore and apply; nothing in the state depends on it (thresholds, metrics, sigma, top-k,
  the join timeout and ``ground_truth.max_delay``: rows already waiting keep the deadline they were stored with;
  ``ground_truth`` added);
- ``migratable``: the state depends on it and the job moves it (features added, removed or reordered, a
  vocabulary grown or otherwise changed, the shards): open windows are moved to the new columns by name and
  categories re-coded by their text, never read by position (a window part of which had already left the
  router early closes under the old spec, and its later instances under the new, as a second record);
- ``incompatible``: the state cannot be carried over (the window length, a column's type, the output
  removed or renamed, ``ground_truth`` removed, the state backend changed (`contract.state`: ``max_delay`` across
  its RocksDB threshold), the input topic, the delivery guarantee): the job refuses to start from the state,
  with a message naming the change and the way forward (`way_forward`).

Pure: specs in, an `Upgrade` out; what the specs' baselines hold (the vocabularies) is passed in as plain
data, so this module imports neither the numeric core nor Flink.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from contract import state
from contract.spec import MonitorSpec, spec_to_dict

COMPATIBLE, MIGRATABLE, INCOMPATIBLE = "compatible", "migratable", "incompatible"
CLASSES = (COMPATIBLE, MIGRATABLE, INCOMPATIBLE)  # in order of severity

WAY_FORWARD = (
    "To apply it, drain the job under the old spec first: `flink stop --drain --savepoint-path DIR JOB_ID` "
    "emits every open window and commits the Kafka offsets; then start the new spec without --restore-from "
    "(the source resumes from the committed offsets of kafka.group_id). Or start the new spec without state "
    "at once: the instances of the windows open at the last checkpoint are then lost from the statistics.")
"""The way forward from an incompatible change, named in every refusal."""


@dataclass(frozen=True)
class Change:
    """One changed field: its dotted path, class, what it was and is, and what it does to the state."""

    path: str
    kind: str
    before: Any
    after: Any
    why: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {_shown(self.before)} -> {_shown(self.after)} ({self.kind}{': ' + self.why if self.why else ''})"


@dataclass(frozen=True)
class Upgrade:
    """Every change from an old spec to a new one (`classify`), and their class as a whole: the most severe."""

    changes: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        """The most severe class among the changes; ``compatible`` when nothing changed."""
        return max((change.kind for change in self.changes), key=CLASSES.index, default=COMPATIBLE)

    @property
    def refused(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.kind == INCOMPATIBLE)

    def refusal(self) -> str:
        """The message of a refused restore: each incompatible change, then `WAY_FORWARD`."""
        lines = [f"  {change}" for change in self.refused]
        return "the restored state cannot be carried over to this spec:\n" + "\n".join(lines) + "\n" + WAY_FORWARD

    def summary(self) -> str:
        """One line per change (or that nothing changed)."""
        if not self.changes:
            return "spec unchanged"
        return f"spec change {self.kind}:\n" + "\n".join(f"  {change}" for change in self.changes)


Vocabularies = Mapping[str, tuple]
"""Each categorical column's baseline vocabulary (the order of its codes), by column name."""


def classify(old: MonitorSpec, new: MonitorSpec, old_vocabularies: Optional[Vocabularies] = None,
             new_vocabularies: Optional[Vocabularies] = None) -> Upgrade:
    """The changes from ``old`` to ``new`` (vocabularies: their baselines', when known), each classified."""
    before, after = spec_to_dict(old), spec_to_dict(new)
    changes = [*_columns(old, new), *_vocabularies(old_vocabularies or {}, new_vocabularies or {}),
               *_output(old, new), *_ground_truth(old, new), *_state_backend(old, new)]
    covered = {change.path for change in changes}
    for path, was, now in _differences(before, after):
        if path not in _SPECIAL and not any(path == done or path.startswith(done + ".") for done in covered):
            kind, why = _rule(path, old, new)
            changes.append(Change(path, kind, was, now, why))
    return Upgrade(tuple(changes))


# Dotted path (or its prefix) -> (class, why); the longest matching prefix wins. The leaves that the functions of
# `classify` judge whole are in _SPECIAL (the feature list; the output section added or removed).
_RULES: dict[str, tuple[str, str]] = {
    "": (COMPATIBLE, ""),
    "window.duration": (INCOMPATIBLE, "an open window cannot be re-cut to another length"),
    "output.join_timeout": (COMPATIBLE, "waiting requests keep the deadline they were stored with"),
    "output.type": (INCOMPATIBLE, "the predictions in the state are of the old type"),
    "output.name": (INCOMPATIBLE, "the waiting responses' and the open windows' predictions are under the old name"),
    "ground_truth.max_delay": (COMPATIBLE, "waiting predictions and labels keep the deadline they were stored with, "
                                           "and a window's final record comes no earlier than under the old one"),
    "stats.covariance": (MIGRATABLE, "shard 0's sub-batches change: open windows are re-routed"),
    "stats.correlation": (MIGRATABLE, "shard 0's sub-batches change: open windows are re-routed"),
    "job.parallelism": (MIGRATABLE, "the shards and their keys change: open windows are re-routed"),
    "job.shards": (MIGRATABLE, "the shards and their keys change: open windows are re-routed"),
    "job.delivery_guarantee": (INCOMPATIBLE, "the sink's open transactions belong to the old guarantee"),
    "kafka.topics.inference": (INCOMPATIBLE, "the source's offsets in the state are the old topic's"),
    "baseline": (COMPATIBLE, "drift and outliers use the new baseline; a window part of which had already "
                             "left early closes on the old bins"),
    "versions.max": (COMPATIBLE, "the versions admitted before the restore stay admitted; a new one is admitted "
                                 "while fewer than versions.max are"),
    **dict.fromkeys(("versions.stable", "versions.candidate"), (
        COMPATIBLE, "the windows waiting for their comparison when the names change are not compared; the next "
                    "ones are, under the new names")),
}
_SPECIAL = {"input.features", "output", "ground_truth"}


def _rule(path: str, old: MonitorSpec, new: MonitorSpec) -> tuple[str, str]:
    if path == "model.name" and "exactly-once" in (old.job.delivery_guarantee, new.job.delivery_guarantee):
        return INCOMPATIBLE, "the sink's transactional ids are named after the model"
    prefixes = [prefix for prefix in _RULES if prefix == "" or path == prefix or path.startswith(prefix + ".")]
    return _RULES[max(prefixes, key=len)]


def _differences(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """The leaves (dotted paths) where two `spec_to_dict` documents differ; lists are compared whole."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            found += _differences(before.get(key), after.get(key), child)
        return found
    return [] if before == after else [(path, before, after)]


def _columns(old: MonitorSpec, new: MonitorSpec) -> list[Change]:
    """The features: a type changed is incompatible; added, removed or reordered ones migratable."""
    was = {f.name: f.type for f in old.input.features}
    now = {f.name: f.type for f in new.input.features}
    changes = [Change(f"input.features.{name}.type", INCOMPATIBLE, was[name], now[name],
                      "its values in the state are of the old type") for name in was if name in now and was[name] != now[name]]
    if old.input.names != new.input.names:
        added = [name for name in now if name not in was]
        removed = [name for name in was if name not in now]
        why = "; ".join(part for part in (
            f"added {', '.join(added)} (missing in the instances before the restore)" if added else "",
            f"removed {', '.join(removed)}" if removed else "",
            "reordered" if not added and not removed else "") if part)
        changes.append(Change("input.features", MIGRATABLE, list(old.input.names), list(new.input.names),
                              why + ": open windows are moved to the new columns by name"))
    return changes


def _vocabularies(old: Vocabularies, new: Vocabularies) -> list[Change]:
    """A categorical column's vocabulary changed (a new baseline): its codes in the state are re-coded by text."""
    return [Change(f"baseline.{name}.vocabulary", MIGRATABLE, f"{len(old[name])} values", f"{len(new[name])} values",
                   "open windows' categories are re-coded by their text")
            for name in sorted(set(old) & set(new)) if tuple(old[name]) != tuple(new[name])]


def _output(old: MonitorSpec, new: MonitorSpec) -> list[Change]:
    """The output section added (migratable: the instances before the restore have no prediction) or removed
    (incompatible: the requests waiting in the join would be lost)."""
    if (old.output is None) == (new.output is None):
        return []
    if new.output is None:
        return [Change("output", INCOMPATIBLE, old.output.name, None,
                       "the requests and responses waiting in the join have nowhere to go")]
    return [Change("output", MIGRATABLE, None, new.output.name,
                   "the instances of open windows from before the restore have a missing prediction")]


def _ground_truth(old: MonitorSpec, new: MonitorSpec) -> list[Change]:
    """The ground_truth section added (compatible: the label join starts empty, so the labels of requests from
    before the restore are dead-lettered unmatched_label) or removed (incompatible: the predictions and labels
    waiting in the label join would be lost)."""
    if (old.ground_truth is None) == (new.ground_truth is None):
        return []
    if new.ground_truth is None:
        return [Change("ground_truth", INCOMPATIBLE, "present", None,
                       "the predictions and labels waiting in the label join have nowhere to go")]
    return [Change("ground_truth", COMPATIBLE, None, "present", "the labels of requests from before the restore "
                   "find no prediction waiting: they are dead-lettered unmatched_label")]


def _state_backend(old: MonitorSpec, new: MonitorSpec) -> list[Change]:
    """The state backend changed (`contract.state`: ground_truth.max_delay across its RocksDB threshold): a
    checkpoint is read only by the backend that wrote it."""
    was, now = (state.state_backend_options(spec).get(state.BACKEND_OPTION, state.HEAP) for spec in (old, new))
    if was == now:
        return []
    return [Change(state.BACKEND_OPTION, INCOMPATIBLE, was, now,
                   "a checkpoint is restored only by the state backend that wrote it")]


def _shown(value: Any) -> str:
    if isinstance(value, str) and value.endswith("ms") and value[:-2].isdigit():
        return value
    return repr(value)

