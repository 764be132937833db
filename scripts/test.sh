#!/usr/bin/env bash
# The whole suite: lint, the type checker, unit and integration tests against the real
# reference server, the wheel installed into fresh venvs (3.11 and 3.13), the demo with
# every notebook run twice in a row in its JupyterLab environment (tests/demo_fixtures.py),
# browser tests in headless Chromium, benchmarks in quick mode.
#
# The tests run side by side in SELLERBENCH_TEST_WORKERS pytest-xdist workers (default 3:
# many tests wait on servers, kernels and subprocesses, so a third worker keeps two cores
# busy). Each test module stays on one worker (--dist loadscope: its module-scoped servers
# start once), the longest first, but for the few split per test or joined with another
# (tests/schedule.py); each worker has a SELLERBENCH_HOME of its own (tests/conftest.py).
# The 25 slowest tests are printed at the end.
#
# Arguments go to pytest, e.g. the quick subset while working (no reliability, wheel,
# demo or browser tests):
#   bash scripts/test.sh -m "not slow and not browser"
# and one file, serially: bash scripts/test.sh -n 0 tests/cache/test_store.py
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Chromium for the browser tests, PostgreSQL's binaries for the tests that start a
# throw-away cluster (tests/pgcluster.py): what is missing, in one apt-get call, without
# the recommended extras (chromium's is its setuid sandbox, which headless runs go without),
# while bootstrap.sh installs the Python packages.
apt_pid="" apt_log=$(mktemp -t sellerbench-apt.XXXXXX)
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        # PostgreSQL's binaries only: no "main" cluster of the package's own left running
        mkdir -p /etc/postgresql-common
        [ -e /etc/postgresql-common/createcluster.conf ] ||
            echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}") >"$apt_log" 2>&1 &
        apt_pid=$!
    else
        echo "missing: ${missing[*]} (sudo apt-get install ${missing[*]}): the browser" \
             "tests need chromium, the storage tests postgresql" >&2
        exit 1
    fi
fi
bash scripts/bootstrap.sh dev
if [ -n "$apt_pid" ] && ! wait "$apt_pid"; then
    cat "$apt_log" >&2
    echo "apt-get install ${missing[*]} failed" >&2
    exit 1
fi
rm -f "$apt_log"
# The demo servers that tests and notebooks start (sb.demo()) live in a folder of this run.
SELLERBENCH_HOME=$(mktemp -d -t sellerbench-test-home.XXXXXX)
export SELLERBENCH_HOME
trap 'rm -rf "$SELLERBENCH_HOME"' EXIT
lint=(sellerbench tests)
[ -d benchmarks ] && lint+=(benchmarks)
.venv/bin/ruff check "${lint[@]}"
# The type checker ([tool.mypy] in pyproject.toml) runs beside the tests; its verdict is
# printed after theirs, and either failing fails the run.
mypy_log=$SELLERBENCH_HOME/mypy.log
.venv/bin/mypy >"$mypy_log" 2>&1 &
mypy_pid=$!
workers=${SELLERBENCH_TEST_WORKERS:-3}
# Paths among the arguments replace tests/ (e.g. one file while working).
paths=(tests)
for arg in "$@"; do [ -e "${arg%%::*}" ] && { paths=(); break; }; done
status=0
.venv/bin/python -m pytest -p no:cacheprovider -q -n "$workers" --dist loadscope \
    --durations=25 "$@" "${paths[@]}" || status=$?
mypy_status=0
wait "$mypy_pid" || mypy_status=$?
echo "mypy: $(tail -1 "$mypy_log")"
[ "$mypy_status" = 0 ] || { cat "$mypy_log" >&2; echo "mypy failed" >&2; }
[ "$status" = 0 ] || exit "$status"
exit "$mypy_status"
