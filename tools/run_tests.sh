#!/usr/bin/env bash
# Set up (tools/setup_env.sh) and run the test suite; extra arguments go to
# pytest, e.g. `bash tools/run_tests.sh -k registry`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest tests "$@"
