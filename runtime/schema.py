"""The metadata's JSON Schema (``metadata.schema.json``, SPEC.md) and a validator for the part of JSON Schema it uses.

The schema file is the contract other languages read; this module checks a
metadata document against that same file, so the exporter cannot write and
the runtime cannot accept what the spec forbids. The keywords it knows are
the ones the schema uses (type, enum, minimum, maximum, exclusiveMinimum/Maximum,
minLength, pattern, required, properties, items, minItems, maxItems); any other keyword in the schema
is an error here, so the two cannot drift apart silently. Pure Python.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["SCHEMA_PATH", "load_schema", "schema_errors"]

SCHEMA_PATH = Path(__file__).with_name("metadata.schema.json")
_KNOWN = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "pattern",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
}
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
}


@lru_cache(maxsize=1)
def load_schema() -> dict:
    schema = json.loads(SCHEMA_PATH.read_text())
    _check_keywords(schema, "schema")
    return schema


def _check_keywords(node: dict, where: str) -> None:
    unknown = set(node) - _KNOWN
    if unknown:
        raise ValueError(f"{SCHEMA_PATH.name}: {where} uses {sorted(unknown)}, which this validator does not implement")
    for name, sub in node.get("properties", {}).items():
        _check_keywords(sub, f"{where}.{name}")
    if "items" in node:
        _check_keywords(node["items"], f"{where}[]")


def schema_errors(doc, schema: dict | None = None, where: str = "metadata") -> list[str]:
    """Every way ``doc`` breaks the schema (default: the metadata schema), as readable lines; [] when valid."""
    s = load_schema() if schema is None else schema
    errors: list[str] = []
    types = s.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](doc) for t in allowed):
            return [f"{where}: expected {' or '.join(allowed)}, received {type(doc).__name__} {doc!r:.60}"]
    if "enum" in s and doc not in s["enum"]:
        errors.append(f"{where}: expected one of {s['enum']}, received {doc!r:.60}")
    if _TYPES["number"](doc):
        if "minimum" in s and doc < s["minimum"]:
            errors.append(f"{where}: must be >= {s['minimum']}, received {doc}")
        if "maximum" in s and doc > s["maximum"]:
            errors.append(f"{where}: must be <= {s['maximum']}, received {doc}")
        if "exclusiveMinimum" in s and doc <= s["exclusiveMinimum"]:
            errors.append(f"{where}: must be > {s['exclusiveMinimum']}, received {doc}")
        if "exclusiveMaximum" in s and doc >= s["exclusiveMaximum"]:
            errors.append(f"{where}: must be < {s['exclusiveMaximum']}, received {doc}")
    if isinstance(doc, str):
        if len(doc) < s.get("minLength", 0):
            errors.append(f"{where}: must have at least {s['minLength']} characters, received {len(doc)}")
        if "pattern" in s and not re.search(s["pattern"], doc):
            errors.append(f"{where}: does not match {s['pattern']}, received {doc!r:.60}")
    if isinstance(doc, list):
        if len(doc) < s.get("minItems", 0) or len(doc) > s.get("maxItems", len(doc)):
            errors.append(
                f"{where}: must hold {s.get('minItems', 0)} to {s.get('maxItems', 'any number of')} items, received "
                f"{len(doc)}"
            )
        if "items" in s:
            for i, v in enumerate(doc):
                errors += schema_errors(v, s["items"], f"{where}[{i}]")
    if isinstance(doc, dict):
        errors += [f"{where}: missing required key {k!r}" for k in s.get("required", []) if k not in doc]
        props = s.get("properties", {})
        for k, v in doc.items():
            if k in props:
                errors += schema_errors(v, props[k], f"{where}.{k}")
            elif s.get("additionalProperties", True) is False:
                errors.append(f"{where}: unknown key {k!r}")
    return errors
