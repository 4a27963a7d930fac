#!/usr/bin/env bash
# How fast is loadgen as a client? Runs loadgen and wrk, one after the other,
# with the same number of connections and threads against the same server
# (09-async, HTTP mode, no fake-DB wait), and prints both requests/s and
# their ratio. Client and server share the machine's cores, so the numbers
# say how much of the machine each client leaves to the server as much as
# how fast the client is.
#
# Usage: scripts/bench-loadgen-vs-wrk.sh            (defaults below)
#        CONNECTIONS=100 DURATION=20 THREADS=1 scripts/bench-loadgen-vs-wrk.sh
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-50}
DURATION=${DURATION:-10}   # seconds per client
THREADS=${THREADS:-2}      # wrk -t and loadgen --threads

cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk is not installed; on Debian or Ubuntu: sudo apt-get install wrk" >&2
    exit 1
fi

echo "building release binaries ..." >&2
cargo build --release --quiet -p loadgen
# The machine line only: this script keeps its own clean-up.
(source "$(dirname "$0")/lib.sh" && machine_line)
server_command=()
if cargo build --release --quiet -p async-tokio 2>/dev/null && [[ -x target/release/09-async ]]; then
    server_command=(target/release/09-async --mode http --db-latency 0ms --addr 127.0.0.1:0 --log warn)
    server_name="09-async --db-latency 0ms"
else
    # Last resort: HTTP/1.0, a connection per request, far slower.
    echo "09-async does not build; falling back to python3 -m http.server" >&2
    server_command=(python3 -m http.server --bind 127.0.0.1 0)
    server_name="python3 -m http.server"
fi

startup_log=$(mktemp)
loadgen_json=$(mktemp)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -f "$startup_log" "$loadgen_json"
}
trap cleanup EXIT

"${server_command[@]}" >"$startup_log" 2>&1 &
server_pid=$!

# The server prints `listening on 127.0.0.1:PORT ...` once it listens
# (python: `Serving HTTP on 127.0.0.1 port PORT ...`).
addr=""
for _ in $(seq 100); do
    addr=$(sed -n -e 's/^listening on \([^ ]*\) .*/\1/p' \
        -e 's/^Serving HTTP on \([^ ]*\) port \([0-9]*\).*/\1:\2/p' "$startup_log" | head -n 1)
    [[ -n "$addr" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "the server exited:" >&2
        cat "$startup_log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$addr" ]]; then
    echo "the server did not print its address within 10 s:" >&2
    cat "$startup_log" >&2
    exit 1
fi
echo "server: $server_name on $addr (pid $server_pid)" >&2

echo "loadgen: $CONNECTIONS connections, $THREADS threads, ${DURATION}s ..." >&2
loadgen_command=(target/release/loadgen --threads "$THREADS" http --addr "$addr"
    --connections "$CONNECTIONS" --duration "${DURATION}s" --json "$loadgen_json")
"${loadgen_command[@]}" >&2
# The summary's requests_per_second comes before the per-second series.
loadgen_rps=$(grep -m 1 -o '"requests_per_second": [0-9.]*' "$loadgen_json" | grep -o '[0-9.]*$')

echo "wrk: $CONNECTIONS connections, $THREADS threads, ${DURATION}s ..." >&2
wrk_command=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "http://$addr/")
wrk_output=$("${wrk_command[@]}")
echo "$wrk_output" >&2
wrk_rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$wrk_output")

cores=$(nproc)
echo
echo "server:   $server_name, sharing $cores cores with the client"
echo "loadgen:  ${loadgen_command[*]}"
echo "wrk:      ${wrk_command[*]}"
awk -v loadgen="$loadgen_rps" -v wrk="$wrk_rps" 'BEGIN {
    printf "loadgen:  %.0f requests/s\n", loadgen
    printf "wrk:      %.0f requests/s\n", wrk
    printf "ratio:    %.2f (loadgen / wrk)\n", loadgen / wrk
}'
