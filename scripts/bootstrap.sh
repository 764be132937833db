#!/usr/bin/env bash
# Creates .venv (Python 3.11 or newer: $PYTHON, else python3) and installs sellerbench with
# every extra and the test tools, pinned by constraints.txt. Re-installs only when
# pyproject.toml or constraints.txt changed. Run by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-$(command -v python3)}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else
"sellerbench needs Python 3.11 or newer, not " + sys.version.split()[0])'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.sellerbench-stamp 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade "pip>=24"
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
    # A venv made before jupysql left the dependencies holds it still: its JupyterLab
    # plugin breaks the toolbar in the browser console, and sellerbench never used it.
    .venv/bin/python -m pip uninstall -q -y jupysql jupysql-plugin 2>/dev/null || true
    echo "$stamp" > .venv/.sellerbench-stamp
fi
