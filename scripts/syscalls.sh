#!/usr/bin/env bash
# What each model asks of the kernel per request: once a model has started,
# `strace -c -f` attaches to it (all its processes and threads) while
# `loadgen http` keeps 100 keep-alive connections busy on the fake-DB page
# (300 ms) for a few seconds, and detaches before the model is stopped; the
# calls of each system call are divided by the requests answered, so
# start-up and shutdown are left out. strace slows the server down a lot:
# only the counts mean something here, not the time.
#
#   scripts/syscalls.sh                       all models
#   scripts/syscalls.sh 01-blocking 07-epoll  some
#   DURATION=10 CLIENTS=100 scripts/syscalls.sh
#
# Prints a Markdown table: requests, system calls per request, and the
# calls with at least 0.05 per request by name. With SAVE=1 the table of a
# run of every model is kept in docs/src/measured/syscalls.md, which the
# book's "How to measure" includes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-5}
CLIENTS=${CLIENTS:-100}
need_tool strace strace
need_tool jq jq
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(01-blocking 02-thread-per-client 03-thread-pool 04-prefork 05-prefork-threads
    06-select 07-epoll 08-coroutines 09-async 10-mini-runtime 11-io-uring)
fi
bins=()
for model in "${models[@]}"; do bins+=(--bin "$model"); done
echo "building ${models[*]} and loadgen (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet "${bins[@]}" --bin loadgen)
machine_line

table="$SCRATCH/table.md"
row() { echo "$1" | tee -a "$table"; }
row "| model | requests | syscalls/request | by name (>= 0.05/request) |"
row "|---|---|---|---|"
for model in "${models[@]}"; do
  mapfile -t flags < <(model_flags "$model")
  trace="$SCRATCH/$model.strace"
  start_model "$model" --mode http --db-latency 300ms --log warn "${flags[@]}" 2>/dev/null
  # The server and its forked children (04, 05); -f follows every thread.
  targets=(-p "$MODEL_PID")
  for child in $(pgrep -P "$MODEL_PID" || true); do targets+=(-p "$child"); done
  strace -c -f -o "$trace" "${targets[@]}" 2>/dev/null &
  tracer=$!
  # Load only once strace is attached: the kernel then names the tracer.
  for _ in $(seq 100); do
    [ "$(awk '/^TracerPid:/ { print $2 }' "/proc/$MODEL_PID/status")" != 0 ] && break
    sleep 0.05
  done
  "$ROOT/target/release/loadgen" http --addr "$MODEL_ADDR" --connections "$CLIENTS" \
    --duration "${DURATION}s" --json "$SCRATCH/load.json" >/dev/null 2>&1 || true
  kill -INT "$tracer" # detach and write the summary
  wait "$tracer" || true
  stop_model
  requests=$(jq '.summary.requests' "$SCRATCH/load.json")
  total=$(strace_total "$trace" "$requests" 1)
  detail=$(strace_by_name "$trace" "$requests" 0.05)
  row "| $model | $requests | $total | $detail |"
done
SAVED_SETTINGS="DURATION=$DURATION CLIENTS=$CLIENTS" SAVED_ARGS="$*" save_table syscalls "$table"
