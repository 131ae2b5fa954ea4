"""JSON Schema checks for manifest.json and signatures.json.

The schemas ship in `schemas/`; messages name the offending field so a user
can see what is wrong without reading the schema. A `fastjsonschema`
validator answers "valid?" (the runtime's path: it keeps `jsonschema`, about
6 MiB, out of the long-running process); `jsonschema` is imported only to
explain a failure.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import fastjsonschema

MANIFEST_SCHEMA = "bundle-manifest.schema.json"
SIGNATURES_SCHEMA = "bundle-signatures.schema.json"


@functools.cache
def _schema(name: str) -> Any:
    text = resources.files("aivault_ops").joinpath("schemas", name).read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _fast_validator(name: str) -> Any:
    schema = {**_schema(name), "$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(schema)


@functools.cache
def _validator(name: str) -> Any:
    import jsonschema

    schema = _schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_problem(name: str, instance: object) -> str | None:
    """The most relevant schema violation of `instance` as one line, or None."""
    try:
        _fast_validator(name)(instance)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        return None
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(instance))
    if error is None:
        return None
    location = "".join(
        f"[{part!r}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    return f"{location.lstrip('.') or '(top level)'}: {_short(error.message)}"


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[:limit] + "…"
