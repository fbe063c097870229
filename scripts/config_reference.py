"""Print the monitor-spec reference table (markdown) from contract.spec's dataclasses.

The README's "Configuration reference" section is this script's output; tests/test_docs.py keeps them equal.
Usage: python scripts/config_reference.py
"""
from __future__ import annotations

import collections.abc
import dataclasses
import typing
from typing import Any, Literal, get_args, get_origin

from contract.spec import DAY_MS, BaselineLocation, Duration, MonitorSpec, duration_text, field_doc, spec_to_dict


def rows(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(field path, type, default, doc) for every leaf field, depth first in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        path, hint = f"{prefix}{f.name}", hints[f.name]
        doc = cell(field_doc(f, hint))
        if dataclasses.is_dataclass(hint):
            out += rows(hint, path + ".")
            continue
        section = optional_section(hint)
        if section is not None:
            out.append((path, "optional section: the fields below", "absent", doc))
            out += rows(section, path + ".")
            continue
        item = get_args(hint)[0] if get_origin(hint) is tuple else None
        if dataclasses.is_dataclass(item):
            out.append((path, f"list of {entry_text(item)}", default_text(f), doc))
            out += rows(item, path + "[].")
            continue
        value_type = get_args(hint)[1] if get_origin(hint) is collections.abc.Mapping else None
        if dataclasses.is_dataclass(value_type):
            out.append((path, "map of name to the fields below", default_text(f), doc))
            out += rows(value_type, path + ".<name>.")
            continue
        out.append((path, type_name(hint), default_text(f), doc))
    return out


def optional_section(hint: Any) -> Any:
    """The dataclass of an ``Optional[<dataclass>]`` field (a section that may be left out), else None."""
    if get_origin(hint) is not typing.Union:
        return None
    args = [a for a in get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 and type(None) in get_args(hint) and dataclasses.is_dataclass(args[0]) else None


def entry_text(cls: type) -> str:
    """How a list entry of dataclass ``cls`` is written: its one required field bare, or an object of its
    fields (`FeatureSpec.parse`: a feature is a name or {name, type})."""
    fields = dataclasses.fields(cls)
    required = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    braces = "{" + ", ".join(f.name for f in fields) + "}"
    return f"{required[0]} or {braces}" if len(required) == 1 else braces


def cell(text: str) -> str:
    """Text safe inside a markdown table cell: a bare ``|`` would end the cell."""
    return text.replace("|", "\\|")


def type_name(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Duration:
        return "duration (`15s`, `500ms`, `1m`)"
    if hint == BaselineLocation:
        return "file path, http(s):// or s3:// URL"
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
    if value is None:
        return "`null`"
    if isinstance(f.default, Duration):  # in seconds, or whole days
        return f"`{duration_text(f.default) if f.default and f.default % DAY_MS == 0 else f'{f.default / 1000:g}s'}`"
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
