#!/usr/bin/env bash
# Creates .venv with Python 3.11 and installs sellerbench pinned by constraints.txt.
# Re-installs only when pyproject.toml or constraints.txt changed. Sourced by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "sellerbench needs Python 3.11"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.sellerbench-stamp 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade "pip>=24"
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
    echo "$stamp" > .venv/.sellerbench-stamp
fi
