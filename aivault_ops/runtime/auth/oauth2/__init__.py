"""The `o_auth2` strategy: configuration, token endpoint, token flow, encrypted token cache."""
