"""Connections to upstream APIs: the HTTP/1.1 client, its pool, the SSRF-checking resolver."""
