#!/usr/bin/env bash
# Set up (tools/setup_env.sh) and lint the tree: flake8, isort and yapf as
# configured in setup.cfg, through the hooks of .pre-commit-config.yaml. Fix
# what they find with `python -m isort mmsakd tools tests setup.py` and
# `python -m yapf -i -r mmsakd tools tests setup.py`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
PATH="$VENV/bin:$PATH" exec "$VENV/bin/python" -m pre_commit run --all-files "$@"
