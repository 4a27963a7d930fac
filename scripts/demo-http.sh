#!/usr/bin/env bash
# One curl, then 10 curls at once, timed, against a model's fake-DB page
# (300 ms per request). Concurrent models answer the 10 in ~300 ms;
# 01-blocking needs ~3 s, a pool of N workers ~ceil(10/N) x 300 ms.
#
#   scripts/demo-http.sh 07-epoll
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 MODEL   (e.g. 07-epoll)" >&2; exit 2; }
need_tool curl curl
build_models
start_model "$1" --mode http --db-latency 300ms
url="http://127.0.0.1:$MODEL_PORT/"

echo "--- one request:"
curl -sS -o /dev/null -w 'HTTP %{http_code} in %{time_total}s\n' "$url"

echo "--- 10 requests at once:"
start=$(now_ms)
clients=()
for index in $(seq 10); do
  curl -sS -o /dev/null -D - "$url" | tr -d '\r' | sed -n "s/^X-Worker: /  request $index served by /p" &
  clients+=($!)
done
# Only the curls: a plain `wait` would also wait for the server, forever.
wait "${clients[@]}"
echo "all 10 done in $(( $(now_ms) - start )) ms"
