#!/usr/bin/env bash
# Regenerates constraints.txt: installs sellerbench[dev] into fresh venvs on Python 3.13
# and 3.11 (newest releases that install on both), then writes the 3.13 set and checks
# that 3.11 installs with exactly those pins. PY313 / PY311 name the interpreters.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY313=${PY313:-python3.13}
PY311=${PY311:-python3.11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY313" -m venv "$work/313"
"$work/313/bin/python" -m pip install -q --upgrade "pip>=24"
"$work/313/bin/python" -m pip install -q ".[dev]"
{
    echo "# Pins for sellerbench[dev] (every extra plus the test tools), checked on Python 3.11 and 3.13:"
    echo "# pip install -c constraints.txt 'sellerbench[all]'. Regenerate with scripts/pins.sh."
    "$work/313/bin/python" -m pip freeze --exclude sellerbench | grep -v '^setuptools==' | sort -f
} > "$work/constraints.txt"
"$PY311" -m venv "$work/311"
"$work/311/bin/python" -m pip install -q --upgrade "pip>=24"
"$work/311/bin/python" -m pip install -q -c "$work/constraints.txt" ".[dev]"
"$work/311/bin/python" -m pip check
cp "$work/constraints.txt" constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pins, installed on $("$PY313" -V) and $("$PY311" -V)"
