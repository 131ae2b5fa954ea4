"""aivault-ops: GitOps for an AI credential broker."""

__version__ = "0.1.0"
