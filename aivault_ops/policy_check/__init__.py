"""Policy decisions offline: `check`, `test` and `plan --explain`.

Every verdict comes from the runtime's own decision code
(`runtime/policy/active.py`: `authorize`, `authorize_passthrough`,
`prepare`), built from a compiled policy with stand-in values where the
secrets would go (`stand_in.py`), so no age identity is needed and no
secret is read. Nothing here contacts an upstream.
"""
