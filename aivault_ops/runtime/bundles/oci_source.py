"""`serve --bundle-source oci://HOST/REPO:TAG`: poll a tag, pull on a new digest, verify, swap.

Each poll is a conditional manifest GET (`If-None-Match` with the last
ETag): an unchanged tag costs one small 304. A new digest is pulled once:
the manifest is checked (artifact type, one capped layer), the layer's
sha256 must match its descriptor, and then the bundle goes through the
same `Loader` as a directory bundle: trusted signature, serial above the
persisted floor, expiry. The registry is untrusted: whoever can push
without the signing key gets a refusal in `/status`, nothing more.

The last bundle accepted is cached in the state dir, so a restart while
the registry is down serves it again (an expired one is still refused).
Registry errors never stop serving: `/status` shows the source `degraded`
and polls back off exponentially (with jitter) until it answers again.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from aivault_ops.bundle.source import BundleRef
from aivault_ops.errors import AivaultError, UsageError
from aivault_ops.oci.client import FetchedManifest
from aivault_ops.oci.errors import OciError, OciReferenceError, OciUnavailable
from aivault_ops.oci.reference import OciReference, parse_reference
from aivault_ops.oci.repository import OciRepository, PulledBundle, open_repository
from aivault_ops.runtime.bundles.loader import Loaded, Loader
from aivault_ops.runtime.bundles.oci_cache import BundleCache, CachedBundle
from aivault_ops.runtime.bundles.reload import Log, announce_activation
from aivault_ops.runtime.bundles.state import RuntimeState, SerialFloor
from aivault_ops.runtime.heap import PeriodicTrim, release_free_memory
from aivault_ops.runtime.observe.health import ComponentHealth
from aivault_ops.runtime.observe.metrics import Metrics
from aivault_ops.runtime.observe.status import rfc3339

MAX_BACKOFF_S: Final = 60.0
BACKOFF_INTERVALS: Final = 16  # the back-off never exceeds 16 poll intervals (nor 60 s)


@dataclass
class SourceRecord:
    """What `/status` shows of the source: never a credential."""

    last_success: datetime | None = None
    digest: str | None = None  # the manifest digest of the bundle in use
    error: str | None = None
    error_since: datetime | None = None
    failures: int = 0


class OciPoller:
    """Polls one tag of one repository; activates each new acceptable bundle."""

    def __init__(
        self,
        *,
        repository: OciRepository,
        reference: OciReference,
        loader: Loader,
        state: RuntimeState,
        floor: SerialFloor,
        cache: BundleCache,
        metrics: Metrics,
        log: Log,
        clock: Callable[[], datetime],
    ) -> None:
        self.repository, self.reference, self.loader = repository, reference, loader
        self.state, self.floor, self.cache = state, floor, cache
        self.metrics, self.log, self.clock = metrics, log, clock
        self.tag = reference.digest or reference.tag or "latest"
        self.record = SourceRecord()
        self._lock = threading.Lock()
        self._etag: str | None = None
        self._seen: str | None = None  # the last manifest digest tried, accepted or not

    def start_from_cache(self) -> None:
        """Activate the cached bundle of this source, if any (verified like any other)."""
        try:
            cached = self.cache.load(str(self.reference))
        except OSError as error:
            self.log("bundle_cache_unreadable", error=error.strerror)
            return
        if cached is not None:
            self._seen = cached.digest
            self._load(cached.data, cached.serial, cached.digest, cached=cached)

    def poll(self) -> bool:
        """One poll; False when the registry could not be asked. Never raises."""
        with self._lock:
            try:
                fetched = self.repository.client.get_manifest(self.tag, etag=self._etag)
                if fetched is not None and fetched.digest != self._seen:
                    self._pull(fetched)
            except OciError as error:
                self._source_failed(error)
                return False
            except Exception as error:
                self._source_failed(AivaultError(f"internal error ({type(error).__name__})"))
                return False
            self._source_ok(fetched)
            return True

    @property
    def failures(self) -> int:
        """Consecutive failed polls (for the back-off)."""
        return self.record.failures

    def health(self) -> ComponentHealth:
        """The `bundleSource` section of `/status`; degraded while the registry fails."""
        record = self.record
        return ComponentHealth(
            degraded=record.error is not None,
            detail={
                "type": "oci",
                "reference": str(self.reference),
                "digest": record.digest,
                "lastSuccessfulPoll": rfc3339(record.last_success),
                "error": record.error,
                "errorSince": rfc3339(record.error_since),
                "consecutiveFailures": record.failures,
            },
        )

    def _pull(self, fetched: FetchedManifest) -> None:
        name = self._name(fetched.digest)
        try:
            pulled = self.repository.pull_manifest(fetched)
        except OciUnavailable:
            raise  # transient: the next poll tries this digest again
        except OciError as error:
            self._seen = fetched.digest
            self._refused(f"{name}: {error.diagnostics()}")
            return
        self._seen = fetched.digest
        self._load_pulled(pulled)

    def _load_pulled(self, pulled: PulledBundle) -> None:
        serial = pulled.artifact.serial
        if serial is None:
            name = self._name(pulled.manifest.digest)
            self._refused(f"{name}: E-OCI-ARTIFACT: the manifest has no serial annotation")
            return
        self._load(pulled.data, serial, pulled.manifest.digest)

    def _load(
        self, data: bytes, serial: int, digest: str, *, cached: CachedBundle | None = None
    ) -> None:
        name = self._name(digest) + (" (cached)" if cached else "")
        policy = self.state.record.policy
        try:
            loaded = self.loader.load(
                BundleRef(serial, name),
                data,
                floor=self.floor.read(),
                active=policy.serial if policy is not None else None,
            )
            self.floor.write(loaded.floor)
        except AivaultError as error:
            self._refused(f"{name}: {error.diagnostics()}")
            return
        except OSError as error:
            self._refused(f"{name}: cannot persist the serial floor: {error.strerror}")
            return
        self._activate(name, loaded, digest)
        if cached is None:
            self._save(data, serial, digest)
        release_free_memory()

    def _activate(self, name: str, loaded: Loaded, digest: str) -> None:
        self.state.activated(loaded.policy, self.clock())
        self.record.digest = digest
        self.metrics.reload("ok")
        announce_activation(self.log, name, loaded, digest=digest)

    def _save(self, data: bytes, serial: int, digest: str) -> None:
        try:
            self.cache.save(CachedBundle(str(self.reference), digest, serial, data))
        except OSError as error:
            self.log("bundle_cache_unwritable", error=error.strerror)

    def _refused(self, message: str) -> None:
        self.state.failed(message, self.clock())
        self.metrics.reload("error")
        self.log("bundle_refused", error=message)

    def _source_ok(self, fetched: FetchedManifest | None) -> None:
        if fetched is not None:
            self._etag = fetched.etag
        if self.record.error is not None:
            self.log("bundle_source_recovered", source=str(self.reference))
        self.record.last_success = self.clock()
        self.record.error, self.record.error_since, self.record.failures = None, None, 0

    def _source_failed(self, error: AivaultError) -> None:
        message = error.diagnostics()
        if message != self.record.error:
            self.log("bundle_source_error", source=str(self.reference), error=message)
        if self.record.error is None:
            self.record.error_since = self.clock()
        self.record.error = message
        self.record.failures += 1

    def _name(self, digest: str) -> str:
        return f"{self.reference.name}:{self.tag}@{digest[:19]}"


class OciPollThread:
    """Runs `OciPoller.poll` every `interval` (jittered), backing off while it fails."""

    def __init__(self, poller: OciPoller, interval: float) -> None:
        self._poller = poller
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aivault-oci-poll", daemon=True)

    def start(self) -> None:
        """Start polling (on fresh connections: a forked worker must not share sockets)."""
        self._poller.repository.client.close()
        self._thread.start()

    def next_wait(self) -> float:
        """The interval, or an exponential back-off after failures; 75-100 % of it (jitter)."""
        failures = self._poller.failures
        wait = self._interval
        if failures:
            cap = max(self._interval, min(MAX_BACKOFF_S, self._interval * BACKOFF_INTERVALS))
            wait = min(cap, self._interval * 2.0 ** min(failures, 30))
        return wait * random.uniform(0.75, 1.0)  # noqa: S311 (jitter, not a secret)

    def _run(self) -> None:
        trim = PeriodicTrim()
        while not self._stop.wait(self.next_wait()):
            self._poller.poll()
            trim.tick()

    def stop(self) -> None:
        """Stop polling and close the registry session."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self._poller.repository.client.close()


def source_reference(text: str, *, plain_http: bool) -> OciReference:
    """`--bundle-source`, checked before anything starts (a usage error, exit 2)."""
    try:
        reference = parse_reference(text, what="--bundle-source")
    except OciReferenceError as error:
        raise UsageError(error.message, hint=error.hint) from None
    if plain_http and not reference.is_loopback:
        raise UsageError(
            f"--plain-http: {reference.registry} is not a loopback address",
            hint="plain HTTP is only for a registry on this machine; use https",
        )
    return reference


def registry_watcher(
    reference: OciReference,
    *,
    plain_http: bool,
    environ: Mapping[str, str],
    loader: Loader,
    state: RuntimeState,
    state_dir: Path,
    metrics: Metrics,
    log: Log,
    interval: float,
) -> OciPollThread:
    """`--bundle-source`: the cached bundle activated, one poll done, the poll thread ready."""
    repository = open_repository(reference, plain_http=plain_http, environ=environ)
    poller = OciPoller(
        repository=repository,
        reference=reference,
        loader=loader,
        state=state,
        floor=SerialFloor(state_dir),
        cache=BundleCache(state_dir),
        metrics=metrics,
        log=log,
        clock=loader.clock,
    )
    state.components.register("bundleSource", poller.health)
    poller.start_from_cache()
    poller.poll()
    return OciPollThread(poller, interval)
