"""Print the monitor-spec reference table (markdown) from flink_job.config's dataclasses.

The README's "Configuration reference" section is this script's output; tests/test_docs.py keeps them equal.
Usage: python scripts/config_reference.py
"""
from __future__ import annotations

import collections.abc
import dataclasses
import typing
from typing import Any, Literal, get_args, get_origin

from flink_job.config import Duration, MonitorSpec, spec_to_dict


def rows(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(field path, type, default, doc) for every leaf field, depth first in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        path, hint = f"{prefix}{f.name}", hints[f.name]
        if dataclasses.is_dataclass(hint):
            out += rows(hint, path + ".")
            continue
        value_type = get_args(hint)[1] if get_origin(hint) is collections.abc.Mapping else None
        if dataclasses.is_dataclass(value_type):
            out.append((path, "map of name to the fields below", default_text(f), f.metadata.get("doc", "")))
            out += rows(value_type, path + ".<name>.")
            continue
        out.append((path, type_name(hint), default_text(f), f.metadata.get("doc", "")))
    return out


def type_name(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Duration:
        return "duration (`15s`, `500ms`, `1m`)"
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is typing.Union:
        return " or ".join(type_name(a) for a in args if a is not type(None)) + (" or null" if type(None) in args else "")
    if origin is tuple:
        return f"list of {type_name(args[0])}"
    if origin is collections.abc.Mapping:
        return f"map of {type_name(args[1])}"
    return getattr(hint, "__name__", str(hint))


def default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = spec_to_dict(f.default)
    elif f.default_factory is not dataclasses.MISSING:
        value = spec_to_dict(f.default_factory())
    else:
        return "required"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(f.default, Duration):
        return f"`{f.default / 1000:g}s`"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(value) if value else "{}"
    return f"`{value}`"


def reference() -> str:
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{path}` | {kind} | {default} | {doc} |" for path, kind, default, doc in rows(MonitorSpec)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference())
