#!/usr/bin/env bash
# Install everything the test suite needs (Debian `age`, the package with its
# test extras) and run the gates: ruff, mypy --strict, pytest with coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOPS_DISABLE_VERSION_CHECK=1 PIP_DISABLE_PIP_VERSION_CHECK=1
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq age >/dev/null
fi
python -m pip install -q -e '.[test]'
ruff format --check aivault_ops tests benchmarks demo
ruff check aivault_ops tests benchmarks demo
mypy
python -m pytest -q -p no:cacheprovider --cov=aivault_ops --cov-branch --cov-report=term:skip-covered "$@"
