#!/usr/bin/env bash
# Two nc clients talk to one model at the same time. On 01-blocking the
# second one gets its echo only after the first hangs up; on the others both
# get it at once.
#
#   scripts/demo-echo.sh 01-blocking
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 MODEL   (e.g. 01-blocking)" >&2; exit 2; }
need_tool nc netcat-openbsd
build_models
start_model "$1" --mode echo

start=$(now_ms)
say() { printf '%6d ms  %s\n' "$(( $(now_ms) - start ))" "$*"; }

# Client 1 stays connected for 2 s (nc keeps the connection while its input
# is open), client 2 connects half a second later.
say "client 1 connects and sends 'hello from 1', stays 2 s"
( { echo "hello from 1"; sleep 2; } | nc -N 127.0.0.1 "$MODEL_PORT" | while read -r line; do say "client 1 got: $line"; done ) &
client1=$!
sleep 0.5
say "client 2 connects and sends 'hello from 2'"
( echo "hello from 2" | nc -N 127.0.0.1 "$MODEL_PORT" | while read -r line; do say "client 2 got: $line"; done ) &
client2=$!
# Wait for the two clients by pid: the server is a background job too, and
# a plain `wait` (or `wait %1`) would wait for it forever.
wait "$client1" "$client2" || true
say "both done"
