"""The caller side: the HTTP server, its connection limits, the envelope, the API client."""
