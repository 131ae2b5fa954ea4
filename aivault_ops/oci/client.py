"""A registry client for one repository, on oras-py's session and token auth.

oras-py (the OCI project's Python SDK) provides the HTTP session and the
registry token flow (a 401 `Bearer` challenge → a scoped token from the
realm, with Basic credentials or anonymously). We call its request method
*without* its retry decorator, which sleeps 3, 5, 11, 29 and 83 s between
attempts on any error (a poll against a stopped registry would block for
two minutes; we back off ourselves), and add what its high-level calls
lack: request timeouts, `Basic` challenges (htpasswd registries), the
manifest digest and conditional GETs, size caps on everything downloaded,
and pushes from memory with several tags (see docs/fleet.md).

Every response body is untrusted and capped; error messages name the
registry and the HTTP status, never a credential or a response body.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin

import oras.provider
import requests
from requests.adapters import HTTPAdapter

from aivault_ops.errors import UsageError
from aivault_ops.oci.artifact import MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES, digest_of
from aivault_ops.oci.credentials import Login
from aivault_ops.oci.errors import (
    OciArtifactError,
    OciBlobUnknown,
    OciDenied,
    OciError,
    OciNotFound,
    OciUnavailable,
)
from aivault_ops.oci.reference import OciReference

DEFAULT_TIMEOUT_S: Final = 10.0
MAX_TAG_PAGES: Final = 100
TAGS_PER_PAGE: Final = 1000
MAX_TAGS_PAGE_BYTES: Final = 4 * 1024 * 1024
_CHUNK: Final = 64 * 1024
_ERROR_CODE: Final = re.compile(r"[A-Z][A-Z_]{2,40}")
# oras-py's request method without its retry-with-sleep decorator (see the module docstring).
_DO_REQUEST: Final = oras.provider.Registry.do_request.__wrapped__


class _TimeoutAdapter(HTTPAdapter):
    """Every request gets a connect and read timeout (oras-py sets none)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout = timeout_s

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send with this adapter's timeout unless the caller gave one."""
        timeout = self._timeout if timeout is None else timeout
        return super().send(request, stream, timeout, verify, cert, proxies)


@dataclass(frozen=True)
class FetchedManifest:
    """Manifest bytes as served, their digest (computed here) and the ETag to send back."""

    raw: bytes
    digest: str
    etag: str


class RegistryClient:
    """One repository of one registry."""

    def __init__(
        self,
        reference: OciReference,
        *,
        login: Login | None = None,
        plain_http: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if plain_http and not reference.is_loopback:
            raise UsageError(
                f"--plain-http: {reference.registry} is not a loopback address",
                hint="plain HTTP is only for a registry on this machine; use https",
            )
        self.reference = reference
        self._oras = oras.provider.Registry(
            hostname=reference.registry, insecure=plain_http, auth_backend="token"
        )
        adapter = _TimeoutAdapter(timeout_s)
        self._oras.session.mount("http://", adapter)
        self._oras.session.mount("https://", adapter)
        self._oras.session.trust_env = True
        self._login = login
        if login is not None:
            self._oras.auth.set_basic_auth(login.username, login.password)
        self._scheme = "https" if not plain_http else "http"
        self._basic_challenge: bool | None = None

    @property
    def base(self) -> str:
        """`<scheme>://<registry>/v2/<repository>/`."""
        return f"{self._scheme}://{self.reference.registry}/v2/{self.reference.repository}/"

    def close(self) -> None:
        """Close the HTTP session."""
        self._oras.session.close()

    # --- reading -----------------------------------------------------------

    def get_manifest(self, ref: str, *, etag: str | None = None) -> FetchedManifest | None:
        """The manifest at tag or digest `ref`; None when `etag` still matches (304)."""
        headers = {"Accept": MANIFEST_MEDIA_TYPE}
        if etag:
            headers["If-None-Match"] = etag
        with self._open("GET", f"manifests/{ref}", headers=headers) as response:
            if response.status_code == 304 and etag:
                return None
            self._expect(response, (200,), f"manifest {ref}")
            raw = _read_capped(response, MAX_MANIFEST_BYTES, "manifest")
            served = response.headers.get("ETag")
        digest = digest_of(raw)
        if ref.startswith("sha256:") and digest != ref:
            raise OciArtifactError(f"the manifest served for {ref[:19]}… has another digest")
        return FetchedManifest(raw, digest, served or f'"{digest}"')

    def get_blob(self, digest: str, max_bytes: int) -> bytes:
        """A blob's bytes, at most `max_bytes` of them (the caller checks the digest)."""
        with self._open("GET", f"blobs/{digest}") as response:
            self._expect(response, (200,), f"blob {digest[:19]}…")
            return _read_capped(response, max_bytes, "layer")

    def tags(self) -> list[str]:
        """Every tag of the repository (following `Link` pages, capped); [] when it has none."""
        found: list[str] = []
        url = f"tags/list?n={TAGS_PER_PAGE}"
        for _ in range(MAX_TAG_PAGES):
            with self._open("GET", url) as response:
                if response.status_code == 404:
                    return found  # a repository nothing was pushed to yet
                self._expect(response, (200,), "tag list")
                page = _json_object(_read_capped(response, MAX_TAGS_PAGE_BYTES, "tag list"))
                link = response.links.get("next", {}).get("url")
            found += [tag for tag in page.get("tags") or [] if isinstance(tag, str)]
            if not link:
                return found
            url = urljoin(self.base, link)
        raise OciArtifactError(f"more than {MAX_TAG_PAGES} pages of tags")

    # --- writing -----------------------------------------------------------

    def push_blob(self, data: bytes) -> str:
        """Upload `data` (monolithic POST then PUT) unless the registry has it; its digest."""
        digest = digest_of(data)
        with self._open("HEAD", f"blobs/{digest}") as response:
            if response.status_code == 200:
                return digest
        with self._open("POST", "blobs/uploads/", headers={"Content-Length": "0"}) as response:
            self._expect(response, (202,), "blob upload")
            location = response.headers.get("Location", "")
        if not location:
            raise OciError(f"{self.reference.registry} started an upload without a Location")
        url = urljoin(self.base, location)
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        headers = {"Content-Type": "application/octet-stream"}
        with self._open("PUT", url, headers=headers, data=data) as response:
            self._expect(response, (201,), "blob upload")
        return digest

    def put_manifest(self, ref: str, raw: bytes) -> str:
        """Store manifest `raw` under tag or digest `ref`; its digest."""
        headers = {"Content-Type": MANIFEST_MEDIA_TYPE}
        with self._open("PUT", f"manifests/{ref}", headers=headers, data=raw) as response:
            self._expect(response, (201,), f"manifest {ref}")
        return digest_of(raw)

    def delete_manifest(self, digest: str) -> bool:
        """Delete a manifest (and its tags) by digest; False where the registry forbids it."""
        with self._open("DELETE", f"manifests/{digest}") as response:
            if response.status_code in (202, 200):
                return True
            if response.status_code in (400, 404, 405):
                return False
            self._expect(response, (202,), f"delete {digest[:19]}…")
        return False

    # --- plumbing ----------------------------------------------------------

    @contextlib.contextmanager
    def _open(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Iterator[requests.Response]:
        url = path if path.startswith(("http://", "https://")) else urljoin(self.base, path)
        response = self._send(method, url, dict(headers or {}), data)
        try:
            yield response
        finally:
            response.close()

    def _send(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None
    ) -> requests.Response:
        if self._basic_challenge is None:
            self._basic_challenge = self._ping()
        if self._basic_challenge:  # oras-py's token backend cannot answer a Basic challenge
            if self._login is not None:
                headers["Authorization"] = f"Basic {self._login.basic()}"
            return self._plain_request(method, url, headers, data)
        response = self._oras_request(method, url, headers, data)
        if response.status_code == 401 and self._oras.auth.token is not None:
            response.close()  # a token of another scope (pull, then push): fetch a new one
            self._oras.auth.token = None
            response = self._oras_request(method, url, headers, data)
        return response

    def _oras_request(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None
    ) -> requests.Response:
        try:
            response: requests.Response = _DO_REQUEST(
                self._oras, url, method, data=data, headers=dict(headers), stream=True
            )
        except requests.RequestException as error:
            raise self._unavailable(type(error).__name__) from None
        except ValueError:  # oras: "Cannot respond to request for authentication."
            raise self._denied() from None
        return response

    def _plain_request(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None
    ) -> requests.Response:
        session: requests.Session = self._oras.session
        try:
            return session.request(method, url, headers=headers, data=data, stream=True)
        except requests.RequestException as error:
            raise self._unavailable(type(error).__name__) from None

    def _ping(self) -> bool:
        """GET /v2/: does the registry answer a `Basic` challenge (htpasswd)?"""
        url = f"{self._scheme}://{self.reference.registry}/v2/"
        try:
            response = self._oras.session.get(url, stream=True)
        except requests.RequestException as error:
            raise self._unavailable(type(error).__name__) from None
        with contextlib.closing(response):
            if response.status_code >= 500:
                raise self._unavailable(f"HTTP {response.status_code}")
            challenge = response.headers.get("WWW-Authenticate", "")
        return bool(response.status_code == 401 and challenge.lower().startswith("basic"))

    def _expect(self, response: requests.Response, ok: tuple[int, ...], what: str) -> None:
        status = response.status_code
        if status in ok:
            return
        where = f"{self.reference.registry}/{self.reference.repository}: {what}"
        if status in (401, 403):
            raise self._denied()
        if status == 404:
            raise OciNotFound(f"{where}: not found")
        if status >= 500 or status == 429:
            raise OciUnavailable(f"{where}: the registry answered HTTP {status}")
        codes = _error_codes(response)
        message = f"{where}: the registry answered HTTP {status}{_shown(codes)}"
        raise OciBlobUnknown(message) if "MANIFEST_BLOB_UNKNOWN" in codes else OciError(message)

    def _unavailable(self, reason: str) -> OciUnavailable:
        return OciUnavailable(f"{self.reference.registry}: unreachable ({reason})")

    def _denied(self) -> OciDenied:
        source = f" (credentials from {self._login.source})" if self._login else ""
        return OciDenied(
            f"{self.reference.registry}/{self.reference.repository}: access denied{source}",
            hint="log in with `docker login`, or set AIVAULT_OPS_REGISTRY_USERNAME and"
            " AIVAULT_OPS_REGISTRY_PASSWORD",
        )


def _read_capped(response: requests.Response, limit: int, what: str) -> bytes:
    """At most `limit` bytes of the body; a longer one is refused (OciArtifactError)."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise OciArtifactError(f"the {what} is larger than {limit} bytes")
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise OciArtifactError(f"the {what} is larger than {limit} bytes")
            chunks.append(chunk)
    except requests.RequestException as error:
        raise OciUnavailable(f"the {what} download failed ({type(error).__name__})") from None
    return b"".join(chunks)


def _json_object(raw: bytes) -> dict[str, Any]:
    import json

    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise OciArtifactError("the registry answered something that is not JSON") from None
    if not isinstance(value, dict):
        raise OciArtifactError("the registry answered JSON that is not an object")
    return value


def _shown(codes: list[str]) -> str:
    return f" ({', '.join(codes)})" if codes else ""


def _error_codes(response: requests.Response) -> list[str]:
    """The distribution spec's error codes in a 4xx body, sorted.

    Only codes that look like the spec's upper-case identifiers are shown: a body is
    the registry's to fill, and nothing else from it reaches a message.
    """
    try:
        errors = json.loads(response.content[:65536]).get("errors") or []
        codes = [e.get("code") for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError, requests.RequestException):
        return []
    return sorted({c for c in codes if isinstance(c, str) and _ERROR_CODE.fullmatch(c)})
