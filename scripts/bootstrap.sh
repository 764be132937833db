#!/usr/bin/env bash
# Creates .venv (Python 3.11 or newer: $PYTHON, else python3) and installs sellerbench with
# the extras named by the one argument (default "dev": every extra and the test tools),
# pinned by constraints.txt:
#   bash scripts/bootstrap.sh all    # what the demo runs: the server, the report, JupyterLab
#   bash scripts/bootstrap.sh dev    # what the tests run: all of it plus pytest, mypy, ...
# Installs only when pyproject.toml or constraints.txt changed, or when the extras asked for
# are not installed yet ("dev" holds "all"). Run by demo.sh (all) and test.sh (dev).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EXTRAS=${1:-dev}
for extra in ${EXTRAS//,/ }; do
    case "$extra" in
        dev | all | server | report | lab) ;;
        *) echo "bootstrap.sh: unknown extra '$extra'; use dev, all, server, report or lab" \
               "(comma-separated)" >&2
           exit 2 ;;
    esac
done
PY=${PYTHON:-$(command -v python3)}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else
"sellerbench needs Python 3.11 or newer, not " + sys.version.split()[0])'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
# The stamp file holds the hash of the files installed from, then the extras installed.
have_stamp="" have_extras=""
[ -f .venv/.sellerbench-stamp ] && read -r have_stamp have_extras < .venv/.sellerbench-stamp
covered() {  # are the extras asked for among those installed?
    [ "$have_extras" = dev ] && return 0
    [ "$have_extras" = all ] && [ "$EXTRAS" != dev ] && return 0
    [ "$have_extras" = "$EXTRAS" ]
}
if [ "$have_stamp" != "$stamp" ] || ! covered; then
    .venv/bin/python -m pip install -q --upgrade "pip>=24"
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[$EXTRAS]"
    # A venv made before jupysql left the dependencies holds it still: its JupyterLab
    # plugin breaks the toolbar in the browser console, and sellerbench never used it.
    .venv/bin/python -m pip uninstall -q -y jupysql jupysql-plugin 2>/dev/null || true
    echo "$stamp $EXTRAS" > .venv/.sellerbench-stamp
fi
