#!/usr/bin/env bash
# The demo: the reference server with demo sellers plus JupyterLab on notebooks/, all on
# 127.0.0.1. Works as a user and as root. The kernels, a terminal and the CLI share one
# cache: every path handed over is absolute. Prints the JupyterLab URL and, beside it, the
# lines that point a terminal's `sellerbench` at the same server and cache (also written to
# $DIR/env.sh). Ctrl-C stops both.
#   SELLERBENCH_DEMO_N     demo sellers (default 20000)
#   SELLERBENCH_PORT       API port (default 8765); arguments go to `jupyter lab`
#   SELLERBENCH_DEMO_DIR   server database, tokens and cache (default data/demo-server)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)
bash scripts/bootstrap.sh all  # the server, the report and JupyterLab: what the notebooks run
N=${SELLERBENCH_DEMO_N:-20000}
PORT=${SELLERBENCH_PORT:-8765}
DIR=${SELLERBENCH_DEMO_DIR:-$ROOT/data/demo-server}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
BIN=$ROOT/.venv/bin

"$BIN/sellerbench" serve --host 127.0.0.1 --port "$PORT" --demo "$N" \
    --db "$DIR/server.sqlite3" --tokens-file "$DIR/tokens.json" > "$DIR/server.log" 2>&1 &
server=$!
lab=""
stop() {
    [ -n "$lab" ] && kill "$lab" 2>/dev/null
    kill "$server" 2>/dev/null
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM
echo "starting the API with $N demo sellers on 127.0.0.1:$PORT (log: $DIR/server.log)"
for _ in $(seq 1 1200); do
    grep -q "API ready at" "$DIR/server.log" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
    sleep 0.5
done
grep -q "API ready at" "$DIR/server.log" || { echo "the API did not start" >&2; exit 1; }

token() { "$BIN/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$DIR/tokens.json" "$1"; }
export SELLERBENCH_API_URL="http://127.0.0.1:$PORT"
SELLERBENCH_TOKEN=$(token analyst)
# The run-control cells of 05-collection-runs need admin.automation, which the analyst's
# token lacks on purpose: the notebook uses this token for those cells only.
SELLERBENCH_ADMIN_TOKEN=$(token admin)
export SELLERBENCH_TOKEN SELLERBENCH_ADMIN_TOKEN
export SELLERBENCH_CACHE="$DIR/cache.duckdb"
cat > "$DIR/env.sh" <<ENV
export SELLERBENCH_API_URL=$SELLERBENCH_API_URL
export SELLERBENCH_TOKEN=$SELLERBENCH_TOKEN
export SELLERBENCH_CACHE=$SELLERBENCH_CACHE
export PATH="$BIN:\$PATH"
ENV
chmod 600 "$DIR/env.sh"

# JupyterLab's "fetch official Jupyter news?" question covers the lower right of every
# page: the demo's environment answers it (no news, no update checks).
settings="$ROOT/.venv/share/jupyter/lab/settings"
mkdir -p "$settings"
[ -e "$settings/overrides.json" ] || cat > "$settings/overrides.json" <<'JSON'
{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}
JSON

allow_root=()
[ "$(id -u)" = 0 ] && allow_root=(--allow-root)  # JupyterLab refuses root without it
"$BIN/jupyter" lab --ip 127.0.0.1 --no-browser "${allow_root[@]}" \
    --ServerApp.root_dir="$ROOT/notebooks" "$@" > "$DIR/lab.log" 2>&1 &
lab=$!
echo "$lab" > "$DIR/lab.pid"  # tests read the kernels' environment from /proc/PID/environ
url=""
for _ in $(seq 1 240); do
    url=$(grep -o "http://127\.0\.0\.1:[0-9]*/lab?token=[0-9a-f]*" "$DIR/lab.log" | head -1 || true)
    [ -n "$url" ] && break
    kill -0 "$lab" 2>/dev/null || { cat "$DIR/lab.log" >&2; exit 1; }
    sleep 0.5
done
[ -n "$url" ] || { cat "$DIR/lab.log" >&2; echo "JupyterLab did not start" >&2; exit 1; }
cat <<EOT

JupyterLab:  $url
Notebook 7:  ${url/\/lab\?/\/tree?}
API:         $SELLERBENCH_API_URL ($N demo sellers)
Cache:       $SELLERBENCH_CACHE

The CLI against the same server and cache: paste into a terminal
(or: source $DIR/env.sh)

    export SELLERBENCH_API_URL=$SELLERBENCH_API_URL
    export SELLERBENCH_TOKEN=$SELLERBENCH_TOKEN
    export SELLERBENCH_CACHE=$SELLERBENCH_CACHE
    export PATH="$BIN:\$PATH"
    sellerbench status

Logs: $DIR/lab.log, $DIR/server.log. Ctrl-C stops JupyterLab and the API.
EOT
wait "$lab"
