"""JSON Schema checks against the schemas shipped in `schemas/`.

A schema is named by its file: `check("policy", document)` uses
`schemas/policy.schema.json`. All schema files are loaded into one
`referencing` registry so they can refer to each other by `$id`. For
manifests and the policy, `check` turns errors into positioned diagnostics
with messages that never echo a string value back (a user may have pasted a
secret into the wrong field); for the bundle's own JSON entries, which a
program wrote, `schema_problem` gives the most relevant error as one line.

Speed: `jsonschema` explains failures precisely but costs about a millisecond
per manifest, which dominates compiling 10,000 capabilities. So every
instance is first checked by a `fastjsonschema` validator generated from the
same schema files (no `$ref` in them has sibling keywords, so draft-07
semantics agree with 2020-12 here); only instances it rejects go through
`jsonschema` for the diagnostics (so `jsonschema`, about 6 MiB, is imported
only when something is wrong: the runtime verifies every bundle's
manifest.json and signatures.json here). Before generating it, every `$ref` is
replaced by the schema it names: fastjsonschema turns each `$ref` into a
call that formats an error-path string on the way in, which doubled the cost
of checking a compiled policy of 10,000 capabilities.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import fastjsonschema

from aivault_ops.suggest import close_names, did_you_mean

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_BASE = "https://aivault-ops.dev/schemas/"
_HOST = "a lowercase host name such as api.example.com"
_PATTERN_HINTS = {
    "^[a-z0-9][a-z0-9-]{0,62}$": "lowercase letters, digits and '-', starting with a letter "
    "or digit, at most 63 characters",
    "^[0-9a-f]{64}$": "64 lowercase hex characters (the sha256 of the token, never the token)",
    "^[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9._-]{0,127}$": "<provider>/<name> in lowercase",
    "^\\$((\\.\\.?([A-Za-z_][A-Za-z0-9_-]*|\\*))|"
    "(\\.\\.)?(\\[\\*\\]|\\[[0-9]+\\]|\\['[^']+'\\]))*$": (
        "a JSON path such as $.data[*].ssn or $.token"
    ),
    "^/[^\\s?#]*$": "a path starting with / (no spaces, ? or #)",
    "^(/[^\\s?#]*)?$": "empty or a path starting with / (no spaces, ? or #)",
    "^[A-Za-z_][A-Za-z0-9_]*$": "a secret name: letters, digits and _, not starting with a digit",
    "^[a-z_][a-z0-9_]*$": "a placeholder: lowercase letters, digits and _",
    "^[^#\\s]+#[A-Za-z_][A-Za-z0-9_]*$": "path/to/file.sops.yaml#SECRET_NAME",
    "^ed25519:[A-Za-z0-9+/]{43}=$": "ed25519:<base64 public key> (see `aivault-ops keys signing`)",
    "^(age1[02-9ac-hj-np-z]{58}|ssh-ed25519 [A-Za-z0-9+/=]+( .*)?)$": (
        "an age recipient (age1…) or an ssh-ed25519 public key"
    ),
    "^[a-z0-9*?\\[\\]!-][a-z0-9*?\\[\\]!._/-]*$": "a capability name or glob such as openai/*",
    "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$": _HOST,
    "^(\\*\\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$": (
        _HOST + ", or *.example.com"
    ),
}


@dataclass(frozen=True)
class SchemaError:
    """One schema violation: the path of the offending value and what is wrong."""

    path: tuple[str | int, ...]
    code: str
    message: str
    at_key: bool = False


@cache
def _registry() -> Registry[Any]:
    from referencing import Registry, Resource

    resources = [(sid, Resource.from_contents(s)) for sid, s in _schemas_by_id().items()]
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator for `schemas/<name>.schema.json` (imports jsonschema on first use)."""
    from jsonschema import Draft202012Validator

    schema = _registry().contents(_schema_id(name))
    return Draft202012Validator(schema, registry=_registry())


@cache
def _schemas_by_name() -> dict[str, Any]:
    return {
        path.name.removesuffix(".schema.json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("*.schema.json"))
    }


@cache
def _schemas_by_id() -> dict[str, Any]:
    return {schema["$id"]: schema for schema in _schemas_by_name().values()}


def _schema_id(name: str) -> str:
    schema_id: str = _schemas_by_name()[name]["$id"]
    return schema_id


@cache
def _fast_validator(name: str) -> Callable[[Any], Any]:
    schema = inline_refs(_schema_id(name), _schemas_by_id())
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return validate


def inline_refs(schema_id: str, schemas: Mapping[str, Any]) -> dict[str, Any]:
    """Schema `schema_id` with every `$ref` replaced by a copy of its target.

    Raises `ValueError` for a `$ref` with sibling keywords (inlining would change
    its meaning) or a recursive one (it cannot be inlined).
    """
    inlined = dict(_inline(schemas[schema_id], schema_id, schemas, ()))
    inlined.pop("$defs", None)
    return inlined


def _inline(node: Any, base: str, schemas: Mapping[str, Any], trail: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, base, schemas, trail) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" not in node:
        return {key: _inline(value, base, schemas, trail) for key, value in node.items()}
    target = urljoin(base, node["$ref"])
    if len(node) > 1 or target in trail:
        raise ValueError(f"cannot inline $ref {target} (sibling keywords or recursion)")
    document, _, pointer = target.partition("#")
    return _inline(
        _resolve_pointer(schemas[document], pointer), document, schemas, (*trail, target)
    )


def _resolve_pointer(document: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        document = document[token.replace("~1", "/").replace("~0", "~")]
    return document


def is_valid(name: str, instance: Any) -> bool:
    """True when `instance` satisfies schema `name` (the fast path)."""
    try:
        _fast_validator(name)(instance)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def check(name: str, instance: Any) -> list[SchemaError]:
    """Every violation of schema `name` by `instance`, most specific first."""
    if is_valid(name, instance):
        return []
    errors = validator(name).iter_errors(instance)
    return sorted(_convert_all(errors), key=lambda e: (len(e.path), e.code), reverse=True)


def schema_problem(name: str, instance: object) -> str | None:
    """The most relevant violation of schema `name` as one line (`where: what`), or None."""
    if is_valid(name, instance):
        return None
    from jsonschema.exceptions import best_match

    error = best_match(validator(name).iter_errors(instance))
    if error is None:
        return None
    location = "".join(
        f"[{part!r}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    return f"{location.lstrip('.') or '(top level)'}: {_short(error.message)}"


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[:limit] + "…"


def _convert_all(errors: Iterator[ValidationError]) -> Iterator[SchemaError]:
    for error in errors:
        yield from _convert(error)


def _convert(error: ValidationError) -> Iterator[SchemaError]:
    path = tuple(error.absolute_path)
    where = _dotted(path)
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        for key in sorted(set(error.instance) - set(allowed)):
            yield SchemaError(
                (*path, key),
                "E-SCHEMA-UNKNOWN-FIELD",
                f"unknown field '{_printable(key)}' in {where}{did_you_mean(key, allowed)}"
                f" (allowed: {', '.join(allowed)})",
                at_key=True,
            )
        return
    if kind == "oneOf" and (branch := _fitting_branch(error)) is not None:
        yield from _convert_all(iter(branch))
        return
    if kind == "oneOf" and isinstance(error.instance, dict):
        yield from _strategy_errors(error, path)
        return
    if kind == "required":
        names = [n for n in error.validator_value if n not in error.instance]
        names = [n for n in names if not _misspelt(n, error)]
        if not names:
            return
        missing = ", ".join(f"'{n}'" for n in names)
        noun = "field" if len(names) == 1 else "fields"
        yield SchemaError(
            path, "E-SCHEMA-MISSING-FIELD", f"{where}: missing required {noun} {missing}"
        )
        return
    yield SchemaError(path, _code(kind), f"{where}: {_message(error)}")


def _misspelt(name: str, error: ValidationError) -> bool:
    """A missing field that an unknown field nearby is a typo of (reported there instead)."""
    if error.schema.get("additionalProperties") is not False:
        return False
    unknown = set(error.instance) - set(error.schema.get("properties", {}))
    return any(close_names(key, [name]) for key in unknown if isinstance(key, str))


def _fitting_branch(error: ValidationError) -> list[ValidationError] | None:
    """The errors of the one `oneOf` form whose shape the value has (its outer key matched).

    A typo inside `auth.header` then reads as an unknown field of `header`,
    not as "matches none of the allowed forms".
    """
    branches: dict[object, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [errors for errors in branches.values() if all(e.relative_path for e in errors)]
    return fitting[0] if len(fitting) == 1 else None


def _strategy_errors(error: ValidationError, path: tuple[str | int, ...]) -> Iterator[SchemaError]:
    """An object matching no form: name its unknown keys, with the nearest form's name."""
    forms = sorted({key for branch in error.validator_value for key in branch.get("required", ())})
    words = sorted(
        {v for branch in error.validator_value for v in branch.get("enum", [branch.get("const")])}
        - {None}
    )
    listed = ", ".join(forms) + (f", or the strings {' / '.join(words)}" if words else "")
    unknown = sorted(key for key in error.instance if key not in forms)
    for key in unknown:
        yield SchemaError(
            (*path, key),
            "E-SCHEMA-UNKNOWN-FIELD",
            f"{_dotted(path)}: unknown form '{_printable(key)}'{did_you_mean(key, forms)}"
            f" (one of: {listed})",
            at_key=True,
        )
    if not unknown:
        yield SchemaError(path, "E-SCHEMA-INVALID", f"{_dotted(path)}: {_message(error)}")


def _code(kind: object) -> str:
    return "E-SCHEMA-TYPE" if kind == "type" else "E-SCHEMA-INVALID"


def _message(error: ValidationError) -> str:
    kind, value = error.validator, error.validator_value
    if kind == "type":
        return f"expected {_type_names(value)}, got {_json_type(error.instance)}"
    if kind == "pattern":
        return (
            f"invalid format: must be {_PATTERN_HINTS.get(str(value), 'in the documented format')}"
        )
    if kind in ("const", "enum"):
        options = [value] if kind == "const" else value
        return "must be one of: " + ", ".join(json.dumps(option) for option in options)
    if kind == "oneOf":
        return "matches none of the allowed forms" + _auth_hint(error)
    if kind == "not":
        return "use either secretRef or secretRefs, not both"
    if kind in ("minItems", "minProperties", "minLength"):
        return "must not be empty"
    if kind == "uniqueItems":
        return "has duplicate entries"
    return str(error.message) if not isinstance(error.instance, str) else f"invalid value ({kind})"


def _auth_hint(error: ValidationError) -> str:
    if error.absolute_path and error.absolute_path[-1] == "auth":
        return (
            " (auth is one of: header, query, path, multi_header, multi_query, o_auth2,"
            " aws_sig_v4, hmac with their fields, or the strings basic / mtls)"
        )
    return ""


def _type_names(value: object) -> str:
    return " or ".join(value) if isinstance(value, list) else str(value)


def _json_type(instance: object) -> str:
    for python_type, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ):
        if isinstance(instance, python_type):
            return name
    return "null"


def _printable(text: str) -> str:
    """Control characters escaped, so one diagnostic is always one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _dotted(path: tuple[str | int, ...]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{_printable(p)}" for p in path)
    return text.lstrip(".") or "document"
