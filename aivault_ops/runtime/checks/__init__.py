"""The runtime's request rules (docs/architecture.md), one module per rule family.

Each check is a small function or object that raises `Refusal` with a stable
error code (docs/runtime-errors.md) and otherwise returns what the next step
needs. They fail closed: anything they cannot classify is refused.
"""
