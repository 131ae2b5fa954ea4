"""A small client for a running runtime, over HTTP or a unix socket (`invoke`, `status`)."""

from __future__ import annotations

import json
from typing import Any, Final

import httpx

from aivault_ops.errors import AivaultError, CodedError, UsageError

DEFAULT_RUNTIME: Final = "http://127.0.0.1:8787"
_UNIX_PREFIX: Final = "unix:"
_UNIX_BASE: Final = "http://aivault-runtime"


class RuntimeRefused(CodedError):
    """The runtime answered with a JSON error (a refusal, or an upstream failure);
    `diagnostics()` is `CODE: message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RuntimeClient:
    """Talks to `aivault-ops serve` at `http://HOST:PORT` or `unix:/path.sock`."""

    def __init__(self, runtime: str, *, timeout_s: float = 300.0) -> None:
        self.runtime = runtime
        if runtime.startswith(_UNIX_PREFIX):
            transport = httpx.HTTPTransport(uds=runtime[len(_UNIX_PREFIX) :])
            self._client = httpx.Client(transport=transport, base_url=_UNIX_BASE, timeout=timeout_s)
        elif runtime.startswith(("http://", "https://")):
            self._client = httpx.Client(base_url=runtime, timeout=timeout_s, trust_env=False)
        else:
            raise UsageError(f"--runtime {runtime!r}: expected http://HOST:PORT or unix:/path")

    def invoke(self, envelope: dict[str, Any], token: str) -> dict[str, Any]:
        """POST the envelope; the runtime's `{"status", "headers", "body"…}` answer."""
        headers = {"Authorization": f"Bearer {token}"}
        return self._json(self._send("POST", "/aivault/proxy", json=envelope, headers=headers))

    def status(self) -> dict[str, Any]:
        """GET /status."""
        return self._json(self._send("GET", "/status"))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise AivaultError(f"the runtime at {self.runtime} did not answer in time") from None
        except httpx.HTTPError as error:
            raise AivaultError(
                f"cannot reach the runtime at {self.runtime} ({type(error).__name__})",
                hint="is `aivault-ops serve` running? pass --runtime URL",
            ) from None

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AivaultError(f"the runtime answered HTTP {response.status_code} without JSON")
        if response.status_code != 200:
            raise RuntimeRefused(
                response.status_code, str(data.get("error")), str(data.get("message"))
            )
        return data

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
