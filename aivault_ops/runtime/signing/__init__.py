"""Per-request signing strategies: AWS Signature Version 4 and HMAC.

Unlike the static strategies in `runtime/auth/`, whose injected values are
rendered once per policy load, a signature covers the request itself (its
method, path, query, headers, body and the time), so it is computed for
every upstream request, after every policy check and just before sending.
"""
