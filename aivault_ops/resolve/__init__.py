"""Cross-reference resolution: typed manifests + registry + secret index → resolved policy.

This is where the manifest rules live (unknown references, duplicate
names, hosts, pinning, secret discovery, grants). It is pure: it takes data
and reports diagnostics; `compiler.py` turns its result into policy.json.
"""
