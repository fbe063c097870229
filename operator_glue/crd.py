"""The ModelMonitor custom resource: its CRD, generated from the job's own typed monitor spec.

One source of truth: the OpenAPI v3 schema of ``ModelMonitor.spec`` is derived by walking the
``contract.spec.MonitorSpec`` dataclasses (field types and their ``doc`` metadata), so the CRD the
API server validates against and the spec the job validates cannot drift apart. The schema is
*structural* (Kubernetes' rules for CRDs): every node has a type, except the int-or-string durations
and the number-or-'auto' drift threshold, which structural schemas cannot express as a type union; the
reconciler runs ``parse_spec`` on every object and reports what the schema could not catch.

In a ModelMonitor, ``spec.baseline`` names a ConfigMap in the same namespace whose key ``baseline.json``
holds the baseline from ``mmon baseline`` (in a local monitor spec it is a file path or a URL), or
``spec.baselineFrom`` says where else the job reads it (operator_glue/baseline_from.py), and
``spec.kafka.properties`` is not used: credentials belong in a Secret (see operator_glue/manifests.py).
"""
from __future__ import annotations

import collections.abc
import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from contract.spec import _DURATION, Duration, FeatureSpec, MonitorSpec, field_doc

from operator_glue import baseline_from
from operator_glue.baseline_from import BASELINE_KEY

GROUP = "monitoring.mmon.dev"
VERSION = "v1"
KIND = "ModelMonitor"
PLURAL = "modelmonitors"
API_VERSION = f"{GROUP}/{VERSION}"
BASELINE_DOC = (f"Name of a ConfigMap in this namespace whose key {BASELINE_KEY!r} holds the baseline JSON from `mmon "
                "baseline` (at most 1 MiB: a larger baseline comes from baselineFrom.url or .persistentVolumeClaim); "
                "required unless baselineFrom is given.")
KAFKA_PROPERTIES_DOC = ("Not used in a ModelMonitor (not a secret store): the job and the logger read the Kafka client "
                        "properties from Secret <name>-kafka, key properties.json, a JSON object.")

_STATUS_SCHEMA = {
    "type": "object",
    "description": "Copied from the FlinkDeployment by the mmon controller.",
    "properties": {
        "observedGeneration": {"type": "integer", "description": "The .metadata.generation last reconciled."},
        "jobState": {"type": "string", "description": "The Flink job's state (RUNNING, FAILED, ...)."},
        "lifecycleState": {"type": "string", "description": "The FlinkDeployment's lifecycle state."},
        "error": {"type": "string", "description": "The last error reported by the Flink operator or the controller."},
        "conditions": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {
                "type": "object",
                "required": ["type", "status"],
                "properties": {
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                    "observedGeneration": {"type": "integer"},
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}


def spec_schema() -> dict:
    """The OpenAPI v3 schema of ``ModelMonitor.spec`` (the monitor spec, baseline as a ConfigMap name or
    ``baselineFrom``, one of them)."""
    schema = schema_for(MonitorSpec)
    schema["properties"]["baseline"] = {"type": "string", "minLength": 1, "description": BASELINE_DOC}
    schema["properties"][baseline_from.FIELD] = baseline_from.schema()
    schema["properties"]["baseline_sha256"]["pattern"] = "^[0-9a-fA-F]{64}$"
    schema["required"] = [name for name in schema["required"] if name != "baseline"]
    schema["properties"]["kafka"]["properties"]["properties"]["description"] = KAFKA_PROPERTIES_DOC
    return schema


def schema_for(hint: Any, description: str = "") -> dict:
    """Map a config type hint to a structural OpenAPI v3 schema.

    dataclass -> object (required = fields without a default); Literal -> string enum;
    Duration -> int-or-string with the duration pattern; Optional[X] -> X, nullable;
    tuple[X, ...] -> array of X; Mapping[str, X] -> object with additionalProperties X.
    """
    schema = _schema_without_description(hint)
    if description:
        schema["description"] = description
    return schema


def _feature_schema() -> dict:
    """An ``input.features`` entry: a name (a numeric feature) or ``{name, type}``. A structural schema cannot
    type a string-or-object node, so the node is kept as is and parse_spec in the reconciler reports a bad
    entry (as for the number-or-'auto' threshold). Nor can a CEL rule check it: the API server (v1.34) builds
    no CEL declarations for an untyped node or an array of them, and refuses the CRD."""
    properties = _object_schema(FeatureSpec)["properties"]
    return {"x-kubernetes-preserve-unknown-fields": True,
            "description": f"A name (numeric) or {{name, type}}. name: {properties['name']['description']} "
                           f"type: {properties['type']['description']}"}


def _schema_without_description(hint: Any) -> dict:
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _object_schema(hint)
    if hint is Duration:
        # Structural schemas allow exactly this anyOf under int-or-string; the value checks sit beside it
        # (pattern applies to strings only, minimum to numbers only).
        return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}],
                "pattern": _DURATION.pattern, "minimum": 0}
    if origin is Literal:
        return {"type": "string", "enum": list(args)}
    if origin is Union:
        return _union_schema(args)
    if origin is tuple and args[0] is FeatureSpec:
        return {"type": "array", "items": _feature_schema(), "minItems": 1}
    if origin is tuple:
        return {"type": "array", "items": schema_for(args[0])}
    if origin in (collections.abc.Mapping, dict):
        return {"type": "object", "additionalProperties": schema_for(args[1])}
    return dict(_SCALARS[hint])


_SCALARS = {
    str: {"type": "string", "minLength": 1},
    Path: {"type": "string", "minLength": 1},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
}


def _object_schema(cls: type) -> dict:
    hints = typing.get_type_hints(cls)
    properties = {f.name: schema_for(hints[f.name], field_doc(f, hints[f.name])) for f in dataclasses.fields(cls)}
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _union_schema(args: tuple) -> dict:
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:
        return {**schema_for(options[0]), "nullable": True}
    # A union of unlike types (float or 'auto') has no structural type: accept the node as is and let
    # parse_spec in the reconciler report a bad value.
    return {"x-kubernetes-preserve-unknown-fields": True}


def custom_resource_definition() -> dict:
    """The ModelMonitor CRD (apiextensions.k8s.io/v1), with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL,
                      "singular": KIND.lower(), "shortNames": ["mm"]},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
                    {"name": "Job", "type": "string", "jsonPath": ".status.jobState"},
                    {"name": "Lifecycle", "type": "string", "jsonPath": ".status.lifecycleState"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A streaming model monitor: outliers, window statistics and drift for one model.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema(),
                        "status": _STATUS_SCHEMA,
                    },
                }},
            }],
        },
    }
