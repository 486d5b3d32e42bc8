#!/usr/bin/env bash
# Create the virtual environment (.venv, or $VENV) and install mmsakd with its
# pinned stack and test requirements into it. Running it again only installs
# what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
BASE_PYTHON="${BASE_PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$BASE_PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
# torch first and pinned, so that no later requirement pulls another build
"${PIP[@]}" -r "$ROOT/requirements/install_torch.txt"
"${PIP[@]}" -e "$ROOT[tests]"
