"""What a runtime process knows of each o_auth2 credential, kept across policy loads.

A policy load builds new token managers; what must outlive them lives
here, per credential *lineage* (name, grant and secret JSON): the refresh
token the provider rotated to, the current access token, the tokens
upstreams refused, the single flight in progress and the last failure. A
reload that keeps the credential's secret finds the same state, so it
neither re-sends a refresh token the provider already rotated nor starts a
second refresh beside one in flight.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

from aivault_ops.runtime.auth.oauth2.cache import AccessToken
from aivault_ops.runtime.errors import HttpError
from aivault_ops.secret import Secret

KEEP_LINEAGES: Final = 2
KEEP_REFUSED: Final = 16
FIRST_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 15.0


@dataclass(eq=False)
class LineageState:
    """One credential lineage in this process (mutable; used on the event loop only)."""

    refresh_token: Secret | None
    current: AccessToken | None = None
    blocked: bool = False
    unsaved: bool = False
    refused: dict[Secret, None] = field(default_factory=dict)
    refused_at: float = 0.0  # when an upstream last refused a token
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    flights: dict[str, asyncio.Future[AccessToken]] = field(default_factory=dict)
    failure: HttpError | None = None
    failure_until: float = 0.0
    backoff: float = 0.0

    def refuse(self, token: Secret, now: float) -> None:
        """Remember that an upstream refused `token` (the latest KEEP_REFUSED ones), and
        when: a token issued before then may be revoked too (see `TokenManager._refresh`)."""
        self.refused[token] = None
        self.refused_at = max(self.refused_at, now)
        while len(self.refused) > KEEP_REFUSED:
            self.refused.pop(next(iter(self.refused)))

    def failed(self, error: HttpError, now: float) -> None:
        """Share `error` with every caller for a back-off that doubles on each failure."""
        self.backoff = min(max(self.backoff * 2, FIRST_BACKOFF_S), MAX_BACKOFF_S)
        self.failure, self.failure_until = error, now + self.backoff

    def succeeded(self) -> None:
        """Forget past failures."""
        self.failure, self.failure_until, self.backoff = None, 0.0, 0.0

    def recent_failure(self, now: float) -> HttpError | None:
        """A fresh copy of the last failure while its back-off lasts."""
        if self.failure is None or now >= self.failure_until:
            return None
        again = Exception.__new__(type(self.failure))
        again.__dict__.update(self.failure.__dict__)
        again.args = self.failure.args
        return again

    def __repr__(self) -> str:
        return f"LineageState(blocked={self.blocked}, flights={len(self.flights)})"


class TokenStates:
    """Every credential's lineage states in this process (the latest KEEP_LINEAGES each)."""

    def __init__(self) -> None:
        self._states: dict[str, dict[str, LineageState]] = {}

    def get(self, credential: str, lineage: str, refresh_token: Secret | None) -> LineageState:
        """The lineage's state, created with the secret's refresh token the first time."""
        states = self._states.setdefault(credential, {})
        state = states.pop(lineage, None) or LineageState(refresh_token)
        states[lineage] = state
        while len(states) > KEEP_LINEAGES:
            states.pop(next(iter(states)))
        return state

    def __repr__(self) -> str:
        return f"TokenStates(credentials={len(self._states)})"
