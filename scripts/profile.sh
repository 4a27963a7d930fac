#!/usr/bin/env bash
# Where a model's CPU time goes under load, down to the kernel function:
# `perf record` samples the running model (all its threads, user and
# kernel stacks) while `loadgen http` keeps N keep-alive connections busy
# on the fake-DB page, then `perf report` prints the hottest symbols.
# What the CPU columns of the comparison cannot say (11-io-uring spends its
# core in the kernel at 5000 connections: on what?), this does.
#
#   scripts/profile.sh 11-io-uring            5000 connections
#   scripts/profile.sh 07-epoll 10000
#   DURATION=8 scripts/profile.sh 09-async 1000
#   DB_LATENCY=0ms scripts/profile.sh 10-mini-runtime 50   the 0 ms page: CPU-bound
#
# Needs perf (Debian: linux-perf) and permission to profile another process
# (root, or kernel.perf_event_paranoid <= 1). Client and server share the
# machine's cores: read shares of the server's time, not absolute numbers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
MODEL=${1:?usage: scripts/profile.sh MODEL [CONNECTIONS]}
CONNECTIONS=${2:-5000}
DURATION=${DURATION:-5}   # seconds sampled, after as long again of warm-up
DB_LATENCY=${DB_LATENCY:-300ms}
need_tool perf linux-perf
echo "building $MODEL and loadgen (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin "$MODEL" --bin loadgen)
machine_line

mapfile -t flags < <(model_flags "$MODEL")
start_model "$MODEL" --mode http --db-latency "$DB_LATENCY" --log warn --backlog 4096 "${flags[@]}"
"$ROOT/target/release/loadgen" http --addr "$MODEL_ADDR" --connections "$CONNECTIONS" \
  --duration "$(( 2 * DURATION + 2 ))s" --warmup "${DURATION}s" --pid "$MODEL_PID" \
  >"$SCRATCH/load.txt" 2>&1 &
LOAD_PID=$!
STARTED_PIDS+=("$LOAD_PID")
# perf's own delay skips the connecting and the first requests.
perf record --quiet -g --delay "$(( DURATION * 1000 ))" -o "$SCRATCH/perf.data" \
  -p "$MODEL_PID" -- sleep "$(( 2 * DURATION ))" >/dev/null 2>&1
wait "$LOAD_PID" || true
stop_model
echo "== $MODEL, $CONNECTIONS keep-alive connections, fake DB $DB_LATENCY; loadgen's summary:"
grep -E '^(requests|latency|server)' "$SCRATCH/load.txt" || cat "$SCRATCH/load.txt"
echo "== hottest symbols of the server, with the callers that led there"
echo "   (share of its samples; [k] = kernel, [.] = the program):"
perf report -i "$SCRATCH/perf.data" --no-children --sort symbol --stdio --percent-limit 1 \
  2>/dev/null | grep -v '^#' | grep '%' | sed 's/[[:space:]-]*$//' | head -25
