"""The bundle artifact's manifest: built per the OCI artifact guidance, checked on the way in."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aivault_ops.oci.artifact import (
    ARTIFACT_TYPE,
    EMPTY_BLOB,
    LAYER_MEDIA_TYPE,
    MAX_MANIFEST_BYTES,
    bundle_manifest,
    check_layer,
    digest_of,
    parse_bundle_manifest,
)
from aivault_ops.oci.errors import OciArtifactError

BUNDLE = b"\x1f\x8b not really a bundle, the manifest does not care"


def manifest(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        bundle_manifest(BUNDLE, serial=7, revision="abc123", environment="prod")
    )
    document.update(changes)
    return document


def test_the_manifest_follows_the_artifact_guidance() -> None:
    document = manifest()
    assert document["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert document["artifactType"] == ARTIFACT_TYPE == "application/vnd.aivault-ops.bundle.v1"
    assert document["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": digest_of(EMPTY_BLOB),
        "size": 2,
        "data": "e30=",
    }
    [layer] = document["layers"]
    assert layer["mediaType"] == LAYER_MEDIA_TYPE
    assert (layer["digest"], layer["size"]) == (digest_of(BUNDLE), len(BUNDLE))
    assert layer["annotations"] == {"org.opencontainers.image.title": "bundle-7.tar.gz"}
    assert document["annotations"] == {
        "dev.aivault-ops.bundle.serial": "7",
        "dev.aivault-ops.bundle.revision": "abc123",
        "dev.aivault-ops.bundle.environment": "prod",
        "org.opencontainers.image.revision": "abc123",
    }


def test_the_same_bundle_gives_the_same_manifest_bytes() -> None:
    first = bundle_manifest(BUNDLE, serial=1, revision="r", environment=None)
    assert first == bundle_manifest(BUNDLE, serial=1, revision="r", environment=None)


def test_a_published_manifest_parses_back() -> None:
    raw = bundle_manifest(BUNDLE, serial=7, revision="abc123", environment="prod")
    artifact = parse_bundle_manifest(raw)
    assert (artifact.serial, artifact.revision) == (7, "abc123")
    check_layer(BUNDLE, artifact)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"artifactType": "application/vnd.other"}, "artifactType is 'application/vnd.other'"),
        ({"mediaType": "application/vnd.oci.image.index.v1+json"}, "not an OCI image manifest"),
        ({"layers": []}, "exactly one layer"),
        ({"layers": [{"mediaType": LAYER_MEDIA_TYPE}] * 2}, "exactly one layer"),
        (
            {"layers": [{"mediaType": "x", "digest": digest_of(BUNDLE), "size": 3}]},
            "the layer's mediaType",
        ),
        (
            {"layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": "md5:00", "size": 3}]},
            "the layer's digest",
        ),
        (
            {"layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": digest_of(b""), "size": 2**40}]},
            "the layer's size",
        ),
    ],
    ids=["artifact-type", "index", "no-layer", "two-layers", "layer-type", "digest", "size"],
)
def test_anything_but_a_bundle_artifact_is_refused(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(OciArtifactError, match=reason):
        parse_bundle_manifest(json.dumps(manifest(**changes)).encode())


def test_an_oversized_or_non_json_manifest_is_refused_before_parsing() -> None:
    with pytest.raises(OciArtifactError, match="larger than"):
        parse_bundle_manifest(b" " * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(OciArtifactError, match="not JSON"):
        parse_bundle_manifest(b"\xff{")


def test_layer_bytes_must_match_the_descriptor() -> None:
    artifact = parse_bundle_manifest(json.dumps(manifest()).encode())
    with pytest.raises(OciArtifactError, match="does not match its descriptor"):
        check_layer(BUNDLE[:-1] + b"X", artifact)
    with pytest.raises(OciArtifactError, match="does not match its descriptor"):
        check_layer(BUNDLE + b"!", artifact)
