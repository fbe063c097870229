"""Kafka client properties (SASL, SSL, tuning) for the logger's producer, from flags and the environment.

Properties arrive as strings, in the Java client's dotted names (``security.protocol``, the names the
monitor spec's ``kafka.properties`` and the Flink job use) or in kafka-python's own argument names
(``security_protocol``); both map onto `kafka.KafkaProducer` keyword arguments. The Java client's
``sasl.jaas.config`` is read for the PLAIN/SCRAM ``username="..."`` and ``password="..."``, so one
Secret can serve the job and the logger. A property that has no kafka-python equivalent (Java key
stores, ``acks``, which the logger's guarantee depends on, ...) fails at start, naming it.

The environment variable `ENV_VAR` holds a JSON object of string values, e.g.
``{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.plain.username": "mmon",
"sasl.plain.password": "...", "ssl.cafile": "/etc/kafka/ca.crt"}``; ``--kafka-property KEY=VALUE``
flags override it key by key.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping

ENV_VAR = "MMON_KAFKA_PROPERTIES"


class PropertyError(ValueError):
    """A property the logger cannot use; the message names it."""


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text.upper() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text.upper()
    return check


SUPPORTED: dict[str, Callable[[str], Any]] = {
    "security_protocol": _one_of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "sasl_mechanism": _one_of("PLAIN", "GSSAPI", "OAUTHBEARER", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    "sasl_plain_username": str,
    "sasl_plain_password": str,
    "sasl_kerberos_service_name": str,
    "sasl_kerberos_domain_name": str,
    "ssl_cafile": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_password": str,
    "ssl_crlfile": str,
    "ssl_ciphers": str,
    "ssl_check_hostname": _boolean,
    "client_id": str,
    "compression_type": _one_of("GZIP", "SNAPPY", "LZ4", "ZSTD"),
    "max_request_size": _positive_int,
    "batch_size": _positive_int,
    "metadata_max_age_ms": _positive_int,
    "connections_max_idle_ms": _positive_int,
    "reconnect_backoff_ms": _positive_int,
    "reconnect_backoff_max_ms": _positive_int,
    "retry_backoff_ms": _positive_int,
}
"""kafka-python argument -> converter from the property's string value."""

JAVA_ALIASES: dict[str, Callable[[str], dict[str, Any]]] = {
    # "" turns host name verification off, "https" (the Java default) on
    "ssl.endpoint.identification.algorithm": lambda text: {"ssl_check_hostname": text.lower() == "https"},
    "sasl.jaas.config": lambda text: _jaas_credentials(text),
}

_JAAS_OPTION = re.compile(r'(username|password)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _jaas_credentials(text: str) -> dict[str, str]:
    found = {name: value.replace('\\"', '"') for name, value in _JAAS_OPTION.findall(text)}
    if set(found) != {"username", "password"}:
        raise ValueError('expected a login module with username="..." and password="..."')
    return {"sasl_plain_username": found["username"], "sasl_plain_password": found["password"]}


def producer_arguments(properties: Mapping[str, str]) -> dict[str, Any]:
    """KafkaProducer keyword arguments from properties by Java or kafka-python name; raises `PropertyError`."""
    arguments: dict[str, Any] = {}
    for name, text in properties.items():
        try:
            arguments.update(_argument(name, str(text)))
        except ValueError as err:
            raise PropertyError(f"Kafka property {name}: {err}") from None
    return arguments


def _argument(name: str, text: str) -> dict[str, Any]:
    if name in JAVA_ALIASES:
        return JAVA_ALIASES[name](text)
    argument = name.replace(".", "_").replace("-", "_").lower()
    if argument not in SUPPORTED:
        raise ValueError(f"not supported by the logger's Kafka client (kafka-python); supported: "
                         f"{', '.join(sorted(SUPPORTED))}, {', '.join(JAVA_ALIASES)} (dotted names too)")
    return {argument: SUPPORTED[argument](text)}


def parse_assignment(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (the value may hold ``=``) as a pair; raises `PropertyError`."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise PropertyError(f"Kafka property {text.split('=')[0]!r}: expected KEY=VALUE")
    return name.strip(), value


def from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The properties in `ENV_VAR` (a JSON object of strings), empty when it is unset or blank."""
    text = environ.get(ENV_VAR, "").strip()
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError as err:
        raise PropertyError(f"{ENV_VAR}: not a JSON object: {err}") from None
    if not isinstance(document, dict) or not all(isinstance(v, (str, int, float, bool)) for v in document.values()):
        raise PropertyError(f"{ENV_VAR}: expected a JSON object of string values")
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in document.items()}
