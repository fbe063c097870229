"""Where a job on Kubernetes reads its baseline: a ModelMonitor's ``baselineFrom``, or `mmon k8s render`'s
``--baseline-configmap`` / ``--baseline-url`` / ``--baseline-pvc``. Exactly one of:

- ``configMap: {name, key}`` (the default: ConfigMap ``<name>-baseline``, key ``baseline.json``), mounted
  at `BASELINE_DIR`. A ConfigMap holds at most 1 MiB (`MAX_CONFIGMAP_BYTES`), about 140 features of a
  version 4 baseline (`udfs.baseline`): a larger one is refused when rendered or applied, naming the
  other two;
- ``url: {url, authorizationSecret: {name, key}}``: the job fetches the ``http://`` or ``https://`` URL at
  start (`udfs.baseline.read_bytes`); with ``authorizationSecret`` that Secret's key is set as
  ``$MMON_BASELINE_AUTHORIZATION``, which the job sends as the request's ``Authorization`` header (the
  whole value: ``Bearer <token>``, or ``Basic <base64 of user:password>``; a pre-signed S3 URL needs none).
  Or ``url: {url: s3://bucket/key, credentialsSecret: {name}}``: the job reads the object with the AWS
  credential chain; ``credentialsSecret`` is a Secret whose keys are AWS variables (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, optionally ``AWS_REGION``, ``AWS_ENDPOINT_URL_S3``), all set in the job's
  container (``envFrom``); without it IRSA or the node's instance profile answers. Nothing is mounted;
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

from contract.spec import BASELINE_AUTHORIZATION_ENV, URL_KINDS, BaselineUrl, ConfigError

BASELINE_KEY = "baseline.json"
BASELINE_DIR = "/opt/mmon/baseline"
MAX_CONFIGMAP_BYTES = 1 << 20
"""A ConfigMap's ``data`` limit (the API server's: 1 MiB)."""
CONFIG_MAP, URL, PVC = "configMap", "url", "persistentVolumeClaim"
KINDS = (CONFIG_MAP, URL, PVC)
DEFAULT_SECRET_KEY = "authorization"
CREDENTIALS = "credentialsSecret"
FIELD = "baselineFrom"
ALTERNATIVES = (f"serve it over HTTP(S) or from S3 (mmon k8s render --baseline-url URL; {FIELD}.url in a ModelMonitor) "
                f"or from a volume (--baseline-pvc CLAIM[:PATH]; {FIELD}.persistentVolumeClaim)")


@dataclass(frozen=True)
class BaselineFrom:
    """One baseline source (module docstring): ``name`` is the ConfigMap's name, the URL or the claim's name;
    ``key`` the ConfigMap's key or the path inside the claim; ``secret`` an http(s) URL's (Secret name, key)
    of its Authorization header, ``credentials`` an s3 URL's Secret of AWS variables."""

    kind: str
    name: str
    key: str = BASELINE_KEY
    secret: Optional[tuple[str, str]] = None
    credentials: Optional[str] = None

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

    def env_from(self) -> list[dict]:
        """An s3 URL's AWS variables, every key of its credentials Secret (not optional, as in `env`)."""
        return [{"secretRef": {"name": self.credentials}}] if self.credentials else []

    def to_resource(self) -> dict:
        """The ``baselineFrom`` of a ModelMonitor."""
        if self.kind == CONFIG_MAP:
            return {CONFIG_MAP: {"name": self.name, "key": self.key}}
        if self.kind == PVC:
            return {PVC: {"claimName": self.name, "path": self.key}}
        secret = {"authorizationSecret": {"name": self.secret[0], "key": self.secret[1]}} if self.secret else {}
        if self.credentials:
            secret = {CREDENTIALS: {"name": self.credentials}}
        return {URL: {"url": self.name, **secret}}


def from_url(url: str, secret: Optional[str] = None, where: str = "--baseline-url") -> BaselineFrom:
    """A URL source. For an http(s) URL ``secret`` is its Authorization's Secret as ``NAME`` or ``NAME:KEY``
    (default key :data:`DEFAULT_SECRET_KEY`); for an s3 URL the ``NAME`` of its Secret of AWS variables."""
    location = BaselineUrl.location(url, where)
    if not isinstance(location, BaselineUrl):
        raise ConfigError(f"{where}: expected {URL_KINDS}, got {url!r}")
    name, colon, key = (secret or "").partition(":")
    if location.is_s3:
        if colon:
            raise ConfigError(f"{where}: an s3:// URL's Secret is given by its NAME alone (every key of it is an "
                              f"AWS variable), got {secret!r}")
        return BaselineFrom(URL, url, credentials=name or None)
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
        return _url_from_resource(body)
    return BaselineFrom(kind, body[required], str(body.get("key" if kind == CONFIG_MAP else "path") or BASELINE_KEY))


def _url_from_resource(body: dict) -> BaselineFrom:
    """``baselineFrom.url``: an http(s) URL with an optional ``authorizationSecret``, an s3 one with an
    optional ``credentialsSecret``."""
    is_s3 = BaselineUrl(body["url"]).is_s3
    given, wrong = (CREDENTIALS, "authorizationSecret") if is_s3 else ("authorizationSecret", CREDENTIALS)
    if body.get(wrong) is not None:
        raise ConfigError(f"{FIELD}.url.{wrong}: not for {'an s3://' if is_s3 else 'an http(s)://'} URL "
                          f"(use {given})")
    secret = body.get(given)
    if secret is None:
        return from_url(body["url"], None, f"{FIELD}.url.url")
    if not isinstance(secret, dict) or not secret.get("name"):
        raise ConfigError(f"{FIELD}.url.{given}.name: required")
    key = "" if is_s3 else f":{secret.get('key') or ''}"
    return from_url(body["url"], f"{secret['name']}{key}", f"{FIELD}.url.url")


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
                "url": {**text, "pattern": "^([hH][tT][tT][pP][sS]?|[sS]3)://",
                        "description": "http://, https:// or s3://bucket/key URL."},
                "authorizationSecret": {
                    "type": "object", "required": ["name"],
                    "description": f"http(s) URL: Secret whose key is sent as the Authorization header "
                                   f"(${BASELINE_AUTHORIZATION_ENV}).",
                    "properties": {"name": text, "key": {**text, "description": f"Default {DEFAULT_SECRET_KEY}."}}},
                CREDENTIALS: {
                    "type": "object", "required": ["name"],
                    "description": "s3 URL: Secret whose keys are AWS variables (AWS_ACCESS_KEY_ID, "
                                   "AWS_SECRET_ACCESS_KEY, optionally AWS_REGION, AWS_ENDPOINT_URL_S3), set in the "
                                   "job's container (envFrom); without it IRSA or an instance profile.",
                    "properties": {"name": dict(text)}}}},
            PVC: {"type": "object", "required": ["claimName"], "properties": {
                "claimName": {**text, "description": "PersistentVolumeClaim in this namespace, mounted read-only."},
                "path": {**text, "description": f"The baseline's path inside the volume (default {BASELINE_KEY})."}}},
        },
    }


def check_config_map_size(size: int, where: str) -> None:
    """Refuse a baseline too large for a ConfigMap, naming the alternatives."""
    if size > MAX_CONFIGMAP_BYTES:
        raise ConfigError(f"baseline: {where} is {size / 2**20:.1f} MiB, over the 1 MiB a ConfigMap holds: {ALTERNATIVES}")
