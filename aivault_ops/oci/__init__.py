"""Bundles as OCI artifacts: references, the artifact's manifest, a registry client.

`reference` parses `oci://HOST[:PORT]/REPO[:TAG|@DIGEST]`, `artifact` builds
and checks the manifest (pure), `credentials` finds registry credentials
(docker config or the environment, never the command line), `client` talks
to the registry, `repository` publishes and lists bundles under one
repository's tags (serial tags, a moving tag, a lock against concurrent
applies).
"""
