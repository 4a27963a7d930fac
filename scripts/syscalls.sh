#!/usr/bin/env bash
# What each model asks of the kernel per request: every model runs under
# `strace -c -f` (all its processes and threads) while `loadgen http` keeps
# 100 keep-alive connections busy on the fake-DB page (300 ms) for a few
# seconds; the calls of each system call are divided by the requests
# answered. strace slows the server down a lot, so only the counts mean
# something here, not the time; the start-up and shutdown calls are in the
# counts too (a few hundred), which is why the run is not too short.
#
#   scripts/syscalls.sh                       all models
#   scripts/syscalls.sh 01-blocking 07-epoll  some
#   DURATION=10 CLIENTS=100 scripts/syscalls.sh
#
# Prints a Markdown table: requests, system calls per request, and the
# calls with at least 0.05 per request by name.
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

echo "| model | requests | syscalls/request | by name (>= 0.05/request) |"
echo "|---|---|---|---|"
for model in "${models[@]}"; do
  mapfile -t flags < <(model_flags "$model")
  trace="$SCRATCH/$model.strace"
  out="$SCRATCH/$model.out"
  strace -c -f -o "$trace" "$(model_binary "$model")" --addr 127.0.0.1:0 --mode http \
    --db-latency 300ms --log warn "${flags[@]}" >"$out" 2>/dev/null &
  tracer=$!
  STARTED_PIDS+=("$tracer")
  for _ in $(seq 100); do grep -q '^listening on' "$out" && break; sleep 0.1; done
  line=$(head -n 1 "$out")
  addr=$(awk '{ print $3 }' <<<"$line")
  pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line")
  if [ -z "$pid" ]; then
    echo "| $model | did not start | | |"
    continue
  fi
  "$ROOT/target/release/loadgen" http --addr "$addr" --connections "$CLIENTS" \
    --duration "${DURATION}s" --json "$SCRATCH/load.json" >/dev/null 2>&1 || true
  kill -TERM "$pid"
  wait "$tracer" || true
  requests=$(jq '.summary.requests' "$SCRATCH/load.json")
  # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall;
  # calls is the 4th field on every row, including "total".
  total=$(awk -v n="$requests" '$NF == "total" { printf "%.1f", $4 / n }' "$trace")
  detail=$(awk -v n="$requests" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" && $4 / n >= 0.05 {
      printf "%s %.2f, ", $NF, $4 / n }' "$trace" | sed 's/, $//')
  echo "| $model | $requests | $total | $detail |"
done
