"""Where a job on Kubernetes reads its baseline: a ModelMonitor's ``baselineFrom``, or `mmon k8s render`'s
``--baseline-configmap`` / ``--baseline-url`` / ``--baseline-pvc``. Exactly one of:

- ``configMap: {name, key}`` (the default: ConfigMap ``<name>-baseline``, key ``baseline.json``), mounted
  at `BASELINE_DIR`. A ConfigMap holds at most 1 MiB (`MAX_CONFIGMAP_BYTES`), about 140 features of a
  version 4 baseline (`udfs.baseline`): a larger one is refused when rendered or applied, naming the
  other two;
- ``url: {url, authorizationSecret: {name, key}}``: the job fetches the ``http://`` or ``https://`` URL at
  start (`udfs.baseline.read_bytes`); with ``authorizationSecret`` that Secret's key is set as
  ``$MMON_BASELINE_AUTHORIZATION``, which the job sends as the request's ``Authorization`` header (the
  whole value: ``Bearer <token>``, or ``Basic <base64 of user:password>``; for an S3 bucket, a
  pre-signed URL needs none). Nothing is mounted;
- ``persistentVolumeClaim: {claimName, path}``: the claim mounted read-only at `BASELINE_DIR`, the baseline
  at ``path`` inside it (default ``baseline.json``).

In a ModelMonitor, ``baseline`` (a ConfigMap name, as before ``baselineFrom``) and ``baselineFrom`` are
alternatives: one of them is required. The spec's ``baseline_sha256`` pins the content whichever the source.
A FlinkSessionJob has no pod template: its session cluster's pods mount the volume or set the variable.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from contract.spec import BASELINE_AUTHORIZATION_ENV, BaselineUrl, ConfigError

BASELINE_KEY = "baseline.json"
BASELINE_DIR = "/opt/mmon/baseline"
MAX_CONFIGMAP_BYTES = 1 << 20
"""A ConfigMap's ``data`` limit (the API server's: 1 MiB)."""
CONFIG_MAP, URL, PVC = "configMap", "url", "persistentVolumeClaim"
KINDS = (CONFIG_MAP, URL, PVC)
DEFAULT_SECRET_KEY = "authorization"
FIELD = "baselineFrom"
ALTERNATIVES = (f"serve it over HTTP(S) (mmon k8s render --baseline-url URL; {FIELD}.url in a ModelMonitor) or from a "
                f"volume (--baseline-pvc CLAIM[:PATH]; {FIELD}.persistentVolumeClaim)")


@dataclass(frozen=True)
class BaselineFrom:
    """One baseline source (module docstring): ``name`` is the ConfigMap's name, the URL or the claim's name;
    ``key`` the ConfigMap's key or the path inside the claim; ``secret`` the URL's (Secret name, key)."""

    kind: str
    name: str
    key: str = BASELINE_KEY
    secret: Optional[tuple[str, str]] = None

    def location(self) -> Union[Path, BaselineUrl]:
        """The spec's ``baseline`` as the pod sees it: the mounted file, or the URL."""
        return BaselineUrl(self.name) if self.kind == URL else Path(f"{BASELINE_DIR}/{self.key}")

    def volume(self) -> list[dict]:
        """The pod's baseline volume (none for a URL)."""
        if self.kind == CONFIG_MAP:
            return [{"name": "baseline", "configMap": {"name": self.name}}]
        if self.kind == PVC:
            return [{"name": "baseline", "persistentVolumeClaim": {"claimName": self.name, "readOnly": True}}]
        return []

    def volume_mounts(self) -> list[dict]:
        return [{"name": "baseline", "mountPath": BASELINE_DIR, "readOnly": True}] if self.volume() else []

    def env(self) -> list[dict]:
        """``$MMON_BASELINE_AUTHORIZATION`` from the URL's Secret (not optional: a URL that needs it fails
        without it, so the pod waits for the Secret rather than start and be refused)."""
        if self.secret is None:
            return []
        name, key = self.secret
        return [{"name": BASELINE_AUTHORIZATION_ENV, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}]

    def to_resource(self) -> dict:
        """The ``baselineFrom`` of a ModelMonitor."""
        if self.kind == CONFIG_MAP:
            return {CONFIG_MAP: {"name": self.name, "key": self.key}}
        if self.kind == PVC:
            return {PVC: {"claimName": self.name, "path": self.key}}
        secret = {"authorizationSecret": {"name": self.secret[0], "key": self.secret[1]}} if self.secret else {}
        return {URL: {"url": self.name, **secret}}


def from_url(url: str, secret: Optional[str] = None, where: str = "--baseline-url") -> BaselineFrom:
    """A URL source; ``secret`` as ``NAME`` or ``NAME:KEY`` (default key :data:`DEFAULT_SECRET_KEY`)."""
    if not isinstance(BaselineUrl.location(url, where), BaselineUrl):
        raise ConfigError(f"{where}: expected an http:// or https:// URL, got {url!r}")
    name, _, key = (secret or "").partition(":")
    return BaselineFrom(URL, url, secret=(name, key or DEFAULT_SECRET_KEY) if name else None)


def from_claim(claim: str) -> BaselineFrom:
    """A claim source from ``CLAIM`` or ``CLAIM:PATH``."""
    name, _, path = claim.partition(":")
    return BaselineFrom(PVC, name, path or BASELINE_KEY)


def from_resource(document: Any) -> BaselineFrom:
    """A ModelMonitor's ``baselineFrom`` (the schema's checks again, for the reconciler's message)."""
    if not isinstance(document, dict) or len(document) != 1 or next(iter(document)) not in KINDS:
        raise ConfigError(f"{FIELD}: exactly one of {', '.join(KINDS)}")
    (kind, body), = document.items()
    body = body if isinstance(body, dict) else {}
    required = {CONFIG_MAP: "name", URL: "url", PVC: "claimName"}[kind]
    if not isinstance(body.get(required), str) or not body[required]:
        raise ConfigError(f"{FIELD}.{kind}.{required}: required")
    if kind == URL:
        secret = body.get("authorizationSecret") or {}
        if secret and not secret.get("name"):
            raise ConfigError(f"{FIELD}.url.authorizationSecret.name: required")
        return from_url(body["url"], secret and f"{secret['name']}:{secret.get('key') or ''}", f"{FIELD}.url.url")
    return BaselineFrom(kind, body[required], str(body.get("key" if kind == CONFIG_MAP else "path") or BASELINE_KEY))


def schema() -> dict:
    """The CRD's schema of ``baselineFrom``: one of three objects."""
    text = {"type": "string", "minLength": 1}
    return {
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "description": "Where the job reads the baseline, instead of the ConfigMap named by baseline: exactly one of "
                       "configMap (at most 1 MiB), url (fetched at start) or persistentVolumeClaim.",
        "properties": {
            CONFIG_MAP: {"type": "object", "required": ["name"], "properties": {
                "name": {**text, "description": "ConfigMap in this namespace."},
                "key": {**text, "description": f"Its key holding the baseline JSON (default {BASELINE_KEY})."}}},
            URL: {"type": "object", "required": ["url"], "properties": {
                "url": {**text, "pattern": "^[hH][tT][tT][pP][sS]?://", "description": "http:// or https:// URL."},
                "authorizationSecret": {
                    "type": "object", "required": ["name"],
                    "description": f"Secret whose key is sent as the Authorization header (${BASELINE_AUTHORIZATION_ENV}).",
                    "properties": {"name": text, "key": {**text, "description": f"Default {DEFAULT_SECRET_KEY}."}}}}},
            PVC: {"type": "object", "required": ["claimName"], "properties": {
                "claimName": {**text, "description": "PersistentVolumeClaim in this namespace, mounted read-only."},
                "path": {**text, "description": f"The baseline's path inside the volume (default {BASELINE_KEY})."}}},
        },
    }


def check_config_map_size(size: int, where: str) -> None:
    """Refuse a baseline too large for a ConfigMap, naming the alternatives."""
    if size > MAX_CONFIGMAP_BYTES:
        raise ConfigError(f"baseline: {where} is {size / 2**20:.1f} MiB, over the 1 MiB a ConfigMap holds: {ALTERNATIVES}")
