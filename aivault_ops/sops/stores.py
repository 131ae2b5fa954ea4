"""Format detection and the four stores behind one interface: bytes ⇄ documents + metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal

import yaml

from aivault_ops.sops import dotenv_store, json_store, yaml_read, yaml_write
from aivault_ops.sops.errors import MalformedSopsFile, NotASopsFile, UnsupportedFormat
from aivault_ops.sops.tree import Entry, TreeMap, from_python, to_python

Format = Literal["yaml", "json", "dotenv", "binary"]
FORMATS: tuple[Format, ...] = ("yaml", "json", "dotenv", "binary")
PathKey = tuple[str | int, ...]
_SUFFIXES: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".env": "dotenv"}


def format_for(path: PurePath | str) -> Format:
    """sops' rule: the extension decides; anything unknown is binary (`.ini` is refused)."""
    suffix = PurePath(path).suffix.lower()
    if suffix == ".ini":
        raise UnsupportedFormat(
            f"{path}: INI files are not supported (use YAML, JSON, dotenv or binary)"
        )
    return _SUFFIXES.get(suffix, "binary")


@dataclass
class RawFile:
    """A parsed file before decryption: documents without `sops`, and the metadata."""

    format: Format
    documents: list[TreeMap]
    metadata: object | None
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)


def _text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedSopsFile(f"{source}: not UTF-8 text (byte {error.start})") from error


def parse(
    data: bytes, format_: Format, source: str, *, encrypted: bool = True, keep_comments: bool = True
) -> RawFile:
    """Parse a file's bytes; structural problems become MalformedSopsFile (no values shown)."""
    if format_ == "binary" and not encrypted:
        return RawFile("binary", [TreeMap([Entry("data", data)])], None)
    try:
        if format_ == "yaml" and not keep_comments:
            return _parse_yaml(_text(data, source), keep_comments=False)
        return _PARSERS[format_](_text(data, source))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise MalformedSopsFile(f"{source}: invalid YAML: {where}{error.problem}") from error
    except yaml.YAMLError as error:
        raise MalformedSopsFile(f"{source}: invalid YAML") from error
    except json.JSONDecodeError as error:
        raise MalformedSopsFile(
            f"{source}: invalid JSON: line {error.lineno}, column {error.colno}: {error.msg}"
        ) from error
    except yaml_read.UnsupportedScalar as error:
        raise UnsupportedFormat(f"{source}: {error}") from error
    except (
        yaml_read.YamlStructureError,
        json_store.JsonStructureError,
        dotenv_store.DotenvStructureError,
    ) as error:
        raise MalformedSopsFile(f"{source}: {error}") from error
    except RecursionError as error:
        raise MalformedSopsFile(f"{source}: nesting too deep (recursive alias?)") from error
    except (ValueError, KeyError, AttributeError) as error:  # a tagged scalar that does not parse
        raise MalformedSopsFile(f"{source}: invalid YAML value ({type(error).__name__})") from error


def _parse_yaml(text: str, *, keep_comments: bool = True) -> RawFile:
    parsed = yaml_read.parse_yaml(text, keep_comments=keep_comments)
    metadata = next((meta for meta in parsed.metadata if meta is not None), None)
    return RawFile("yaml", parsed.documents, metadata, parsed.positions)


def _parse_json(text: str) -> RawFile:
    document = json_store.parse_json(text)
    return _split_json("json", document, text)


def _parse_binary(text: str) -> RawFile:
    document = json_store.parse_json(text)
    raw = _split_json("binary", document, text)
    if raw.metadata is not None and raw.documents[0].keys() != ["data"]:
        raise json_store.JsonStructureError("a binary SOPS file must hold exactly one data key")
    return raw


def _split_json(format_: Format, document: TreeMap, text: str) -> RawFile:
    positions = json_store.json_positions(text, document)
    meta = document.get("sops")
    if meta is None:
        return RawFile(format_, [document], None, positions)
    document.items.remove(meta)
    return RawFile(format_, [document], to_python(meta.value), positions)


def _parse_dotenv(text: str) -> RawFile:
    document, flat, lines = dotenv_store.parse_dotenv(text)
    metadata = dotenv_store.unflatten(flat) if flat else None
    positions: dict[PathKey, tuple[int, int]] = {
        (0, key): (line, len(key) + 2) for key, line in lines.items()
    }
    return RawFile("dotenv", [document], metadata, positions)


_PARSERS = {
    "yaml": _parse_yaml,
    "json": _parse_json,
    "dotenv": _parse_dotenv,
    "binary": _parse_binary,
}


def parse_plaintext(data: bytes, format_: Format, source: str) -> list[TreeMap]:
    """Documents of a plaintext file to encrypt; refuses a top-level `sops` key."""
    raw = parse(data, format_, source, encrypted=False)
    reserved = any(key.startswith("sops_") for key in raw.documents[0].keys())  # noqa: SIM118
    if raw.metadata is not None or (format_ == "dotenv" and reserved):
        raise MalformedSopsFile(
            f"{source}: the file already has a top-level sops entry; sops keys are reserved"
        )
    return raw.documents


def require_metadata(raw: RawFile, source: str) -> object:
    """The metadata, or NotASopsFile."""
    if raw.metadata is None:
        raise NotASopsFile(f"{source}: not a SOPS file (no top-level sops metadata)")
    return raw.metadata


def serialize(format_: Format, documents: list[TreeMap], metadata: dict[str, object]) -> bytes:
    """The bytes of an encrypted file (every YAML document carries the metadata)."""
    if format_ == "yaml":
        block = from_python(metadata)
        docs = [TreeMap([*doc.items, Entry("sops", block)]) for doc in documents]
        return yaml_write.dump_documents(docs).encode("utf-8")
    if format_ == "dotenv":
        return dotenv_store.dump_dotenv(documents[0], metadata).encode("utf-8")
    document = TreeMap([*documents[0].items, Entry("sops", from_python(metadata))])
    return json_store.dump_json(document).encode("utf-8")


def serialize_plaintext(format_: Format, documents: list[TreeMap]) -> bytes:
    """The bytes `sops -d` would print (binary: the raw payload)."""
    if format_ == "yaml":
        return yaml_write.dump_documents(documents).encode("utf-8")
    if format_ == "dotenv":
        return dotenv_store.dump_dotenv(documents[0], None).encode("utf-8")
    if format_ == "binary":
        data = documents[0].get("data")
        value = data.value if data else b""
        return value if isinstance(value, bytes) else str(value or "").encode("utf-8")
    return json_store.dump_json(documents[0]).encode("utf-8")
