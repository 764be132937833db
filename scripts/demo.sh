#!/usr/bin/env bash
# The demo: the reference server with demo sellers plus JupyterLab on notebooks/, all on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
N=${SELLERBENCH_DEMO_N:-20000}
PORT=${SELLERBENCH_PORT:-8765}
mkdir -p data/demo-server
.venv/bin/sellerbench serve --host 127.0.0.1 --port "$PORT" --demo "$N" \
    --db data/demo-server/server.sqlite3 --tokens-file data/demo-server/tokens.json &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 1 600); do
    [ -s data/demo-server/tokens.json ] && curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.5
done
export SELLERBENCH_API_URL="http://127.0.0.1:$PORT"
SELLERBENCH_TOKEN=$(.venv/bin/python -c 'import json; print(json.load(open("data/demo-server/tokens.json"))["analyst"])')
export SELLERBENCH_TOKEN
export SELLERBENCH_CACHE=data/demo-server/cache.duckdb
.venv/bin/jupyter lab --ip 127.0.0.1 --no-browser notebooks "$@"
