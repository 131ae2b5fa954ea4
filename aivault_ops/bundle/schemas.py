"""JSON Schema checks for manifest.json and signatures.json.

The schemas ship in `schemas/`; messages name the offending field so a user
can see what is wrong without reading the schema.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema

MANIFEST_SCHEMA = "bundle-manifest.schema.json"
SIGNATURES_SCHEMA = "bundle-signatures.schema.json"


@functools.cache
def _validator(name: str) -> Any:
    text = resources.files("aivault_ops").joinpath("schemas", name).read_text(encoding="utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_problem(name: str, instance: object) -> str | None:
    """The most relevant schema violation of `instance` as one line, or None."""
    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(instance))
    if error is None:
        return None
    location = "".join(
        f"[{part!r}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    return f"{location.lstrip('.') or '(top level)'}: {_short(error.message)}"


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[:limit] + "…"
