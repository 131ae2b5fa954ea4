#!/usr/bin/env bash
# The end-to-end example: install aivault-ops, then compile, apply, serve and
# invoke the repo's vault.d against a local HTTPS upstream (all on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q -e .
exec python demo/e2e.py
