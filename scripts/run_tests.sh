#!/usr/bin/env bash
# Run the vcpd test suite: creates .venv if missing, installs vcpd with its test
# extras, then runs pytest. Extra arguments go to pytest (e.g. -k mesh, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VCPD_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
# (Re)install when something is missing or pyproject.toml changed since the last install.
STAMP="$VENV/.vcpd-test-installed"
WANT=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! "$VENV/bin/python" -c "import vcpd, pytest, pytest_trio, hypothesis" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[test]'
    echo "$WANT" >"$STAMP"
fi
exec "$VENV/bin/python" -m pytest "$@"
