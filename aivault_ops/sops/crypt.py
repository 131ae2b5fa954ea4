"""Walk document trees: decrypt or encrypt every leaf under its key path, build the MAC.

The AAD of a value is its mapping keys joined by `:` plus a trailing `:`;
list indices are not part of it. Comments use their container's path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aivault_ops.sops import cipher, scalars
from aivault_ops.sops.errors import ValueTampered, key_path_text
from aivault_ops.sops.mac import Hasher, new_hasher
from aivault_ops.sops.rules import EncryptionRule
from aivault_ops.sops.tree import Comment, Entry, Leaf, TreeList, TreeMap, Value

Stash = dict[tuple[bytes, bytes, str], str]


def aad_for(path: tuple[str, ...]) -> bytes:
    """The AES-GCM associated data for a key path."""
    return (":".join(path) + ":").encode("utf-8")


def is_empty(value: object) -> bool:
    """`null` and empty strings are never encrypted and add nothing to the MAC."""
    return value is None or value == "" or value == b""


def is_enc_comment(value: object) -> bool:
    """A sequence item that is an encrypted comment (sops writes them as list items)."""
    return cipher.is_enc(value) and str(value).endswith(",type:comment]")


def container_paths(document: TreeMap) -> list[tuple[str, ...]]:
    """The key path of every mapping and list in a document, root first."""
    found: dict[tuple[str, ...], None] = {(): None}

    def visit(value: Value, path: tuple[str, ...]) -> None:
        if isinstance(value, TreeMap):
            found[path] = None
            for entry in value.entries():
                visit(entry.value, (*path, entry.key))
        elif isinstance(value, TreeList):
            found[path] = None
            for item in value.values():
                visit(item, path)

    visit(document, ())
    return list(found)


@dataclass
class Decryptor:
    """Decrypts trees with one data key, hashing as it goes and remembering each ENC string."""

    key: bytes
    rule: EncryptionRule
    source: str
    binary: bool = False
    stash: Stash = field(default_factory=dict)
    hasher: Hasher = field(init=False)
    _containers: list[tuple[str, ...]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.hasher = new_hasher(self.rule.mac_only_encrypted)

    def digest(self) -> str:
        """The computed MAC, upper-case hex."""
        return self.hasher.hexdigest().upper()

    def document(self, document: TreeMap) -> TreeMap:
        """The plaintext of one document."""
        self._containers = container_paths(document)
        return self._map(document, ())

    def _map(self, node: TreeMap, path: tuple[str, ...]) -> TreeMap:
        items: list[Entry | Comment] = []
        for item in node.items:
            if isinstance(item, Comment):
                items.append(self._comment(item.text, path))
            else:
                items.append(Entry(item.key, self._value(item.value, (*path, item.key))))
        return TreeMap(items)

    def _list(self, node: TreeList, path: tuple[str, ...]) -> TreeList:
        items: list[Value | Comment] = []
        for item in node.items:
            if isinstance(item, Comment):
                items.append(self._comment(item.text, path))
            elif is_enc_comment(item):
                items.append(self._comment(str(item), path))
            else:
                items.append(self._value(item, path))
        return TreeList(items)

    def _value(self, value: Value, path: tuple[str, ...]) -> Value:
        if isinstance(value, TreeMap):
            return self._map(value, path)
        if isinstance(value, TreeList):
            return self._list(value, path)
        encrypted = self.rule.should_encrypt(path)
        plain = self._leaf(value, path) if encrypted and not is_empty(value) else value
        if self.binary and plain == "":
            plain = b""
        if encrypted or not self.rule.mac_only_encrypted:
            self.hasher.update(scalars.canonical_bytes(plain))
        return plain

    def _leaf(self, value: Leaf, path: tuple[str, ...]) -> Leaf:
        where = f"{self.source}: {key_path_text(path)}"
        if not cipher.is_enc(value):
            raise ValueTampered(
                f"{where}: expected an encrypted value (ENC[…]) but found plaintext"
            )
        text = str(value)
        try:
            raw, type_ = cipher.decrypt(self.key, text, aad_for(path))
            plain = scalars.decode(type_, raw, binary=self.binary)
        except cipher.CipherError as error:
            raise ValueTampered(
                f"{where}: value failed to decrypt (modified outside sops, or its key was renamed)"
            ) from error
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueTampered(f"{where}: decrypted value is not a valid {type_}") from error
        self.stash[(aad_for(path), raw, type_)] = text
        return plain

    def _comment(self, text: str, path: tuple[str, ...]) -> Comment:
        """Decrypt a comment; YAML comment placement is ambiguous (a comment closing a
        nested block looks like one before the next key), so other container paths of
        the document are tried when the nearest one fails. Comments are not in the MAC."""
        if not cipher.is_enc(text):
            return Comment(text)
        for candidate in [path, *(other for other in self._containers if other != path)]:
            try:
                raw, _type = cipher.decrypt(self.key, text, aad_for(candidate))
                plain = raw.decode("utf-8")
            except (cipher.CipherError, UnicodeDecodeError):
                continue
            if candidate == path:
                self.stash[(aad_for(path), raw, "comment")] = text
            return Comment(plain)
        where = f"{self.source}: comment in {key_path_text(path)}"
        raise ValueTampered(f"{where}: failed to decrypt (modified outside sops)")


@dataclass
class Encryptor:
    """Encrypts trees with one data key, reusing unchanged ENC strings from a stash."""

    key: bytes
    rule: EncryptionRule
    stash: Stash = field(default_factory=dict)
    hasher: Hasher = field(init=False)

    def __post_init__(self) -> None:
        self.hasher = new_hasher(self.rule.mac_only_encrypted)

    def digest(self) -> str:
        """The MAC of everything encrypted so far, upper-case hex."""
        return self.hasher.hexdigest().upper()

    def document(self, document: TreeMap) -> TreeMap:
        """The encrypted form of one plaintext document."""
        return self._map(document, ())

    def _map(self, node: TreeMap, path: tuple[str, ...]) -> TreeMap:
        items: list[Entry | Comment] = []
        for item in node.items:
            if isinstance(item, Comment):
                items.append(Comment(self._comment(item.text, path)))
            else:
                items.append(Entry(item.key, self._value(item.value, (*path, item.key))))
        return TreeMap(items)

    def _list(self, node: TreeList, path: tuple[str, ...]) -> TreeList:
        items: list[Value | Comment] = []
        for item in node.items:
            if isinstance(item, Comment):
                text = self._comment(item.text, path)
                items.append(text if text != item.text else item)
            else:
                items.append(self._value(item, path))
        return TreeList(items)

    def _value(self, value: Value, path: tuple[str, ...]) -> Value:
        if isinstance(value, TreeMap):
            return self._map(value, path)
        if isinstance(value, TreeList):
            return self._list(value, path)
        encrypted = self.rule.should_encrypt(path)
        raw = scalars.canonical_bytes(value)
        if encrypted or not self.rule.mac_only_encrypted:
            self.hasher.update(raw)
        if not encrypted or is_empty(value):
            return value
        return self._seal(raw, path, scalars.type_name(value))

    def _comment(self, text: str, path: tuple[str, ...]) -> str:
        if not self.rule.should_encrypt(path):
            return text
        return self._seal(text.encode("utf-8"), path, "comment")

    def _seal(self, raw: bytes, path: tuple[str, ...], type_: str) -> str:
        aad = aad_for(path)
        cached = self.stash.get((aad, raw, type_))
        if cached is not None:
            return cached
        return cipher.encrypt(self.key, raw, aad, type_)
