#!/usr/bin/env bash
# Churn: a million short connections against a model, and nothing left
# behind. Each connection connects, sends one `GET /` (the 0 ms page, so the
# run measures the cost of a connection, not the fake DB), reads the reply
# and ends, in two variants:
#   fin    the request says Connection: close; the server closes first and
#          the client closes after it (loadgen http --no-keepalive)
#   reset  the request keeps the connection; the client resets it right
#          after the reply (SO_LINGER 0), so the server meets ECONNRESET
#          where it waits for the next request (--close reset)
# After a warm-up run, and again after COUNT connections, the server's RSS,
# threads and open fds are read from /proc once its connections are gone.
# The warm-up is 10 s because pools fill slowly: 08-coroutines' RSS rose
# 1.5 MiB within the first 500,000 connections, then stayed flat to 3
# million (may keeps up to 1,000 finished coroutines, stacks and all, for
# reuse).
# A model fails when loadgen saw any error or the end is above the warm-up
# by more than the margins: RSS 10 % (at least 2 MiB: the allocator keeps
# some freed memory), FD_MARGIN fds and THREAD_MARGIN threads (a runtime may
# park a spare thread).
#
# The default models are the seven that take any number of connections at
# once: 02 (a thread each), 06 and 07 (a slot in their table), 08 (a
# coroutine), 09 and 10 (a task), 11 (buffers the kernel holds). What they
# make per connection must all be given back, or a million connections
# show it. 01 serves one connection at a time and 03-05 a fixed pool: they
# make nothing per connection but the socket, and their pool is the limit
# of the run; name them to churn them anyway.
#
# Ports: loopback has one address pair here, so every connection needs a
# client port from ip_local_port_range (32768-60999 by default: 28,232).
# Whoever closes first keeps the connection in TIME_WAIT for 60 s; if that
# were the client, 28,232 ports / 60 s would cap the run at ~470
# connections/s and then connect() fails with EADDRNOTAVAIL (loadgen's
# no_local_port). Both variants keep it off the client: with fin the server
# closes first (its TIME_WAIT holds no port of ours, the kernel keeps at
# most tcp_max_tw_buckets of them and drops the rest, and a new SYN on a
# 4-tuple still in TIME_WAIT is accepted because its TCP timestamp is
# newer); with reset nobody keeps a TIME_WAIT. So a port is busy only
# while its connection is, and tcp_tw_reuse (2 = loopback only, the
# default) is not even needed. The script prints these settings.
#
# Usage: scripts/churn.sh [MODEL...]
#        COUNT=100000 VARIANTS=reset scripts/churn.sh 07-epoll
#   COUNT        connections per model and variant (default 1000000)
#   VARIANTS     fin, reset or both (default "fin reset")
#   CONNECTIONS  concurrent clients (default 50)
#   WARMUP       seconds of churn before the start values (default 10)
#   MAX_SECONDS  give up on one model and variant after this (default 900)
# Exits 1 if any model failed. Client and server share the machine's cores.
# With SAVE=1 the final table is kept in docs/src/measured/churn.md, which
# the book's "How to measure" includes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_tool jq jq

COUNT=${COUNT:-1000000}
read -ra VARIANTS <<<"${VARIANTS:-fin reset}"
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-10}
MAX_SECONDS=${MAX_SECONDS:-900}
FD_MARGIN=${FD_MARGIN:-2}
THREAD_MARGIN=${THREAD_MARGIN:-2}
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(02-thread-per-client 06-select 07-epoll 08-coroutines
  09-async 10-mini-runtime 11-io-uring)

ulimit -n "$(ulimit -Hn)"
echo "building release binaries ..." >&2
packages=(-p loadgen)
for model in "${models[@]}"; do
  packages+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$ROOT/$model/Cargo.toml" | head -n 1)")
done
(cd "$ROOT" && cargo build --release --quiet "${packages[@]}")
LOADGEN="$ROOT/target/release/loadgen"

echo "ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range)," \
  "tcp_tw_reuse $(cat /proc/sys/net/ipv4/tcp_tw_reuse)," \
  "tcp_max_tw_buckets $(cat /proc/sys/net/ipv4/tcp_max_tw_buckets)," \
  "$(nproc) cores shared by client and server" >&2

# RSS in KiB, threads and open fds of a server and its children.
usage() { # pid -> "rss_kib threads fds"
  local rss=0 threads=0 fds=0 process
  for process in "$1" $(pgrep -P "$1" || true); do
    rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$process/status")))
    threads=$((threads + $(awk '/^Threads:/ { print $2 }' "/proc/$process/status")))
    fds=$((fds + $(find "/proc/$process/fd" -mindepth 1 -maxdepth 1 | wc -l)))
  done
  echo "$rss $threads $fds"
}

# Waits (at most 10 s) until the server has let go of the connections
# loadgen left: its fds and threads no longer change between two looks
# 100 ms apart and are at most the given bounds; prints the usage then.
settled() { # pid [max-threads max-fds]
  local previous="" now rss threads fds
  for _ in $(seq 100); do
    now=$(usage "$1")
    read -r rss threads fds <<<"$now"
    if [ "${now#* }" = "${previous#* }" ] && [ "$threads" -le "${2:-$threads}" ] &&
      [ "$fds" -le "${3:-$fds}" ]; then
      break
    fi
    previous=$now
    sleep 0.1
  done
  echo "$now"
}

# One loadgen run of the variant; sets DONE, RUN_ERRORS and RUN_SECONDS.
churn() { # variant duration-seconds
  "$LOADGEN" --threads 1 http --addr "$MODEL_ADDR" --connections "$CONNECTIONS" \
    --no-keepalive --close "$1" --duration "${2}s" --timeout 10s \
    --json "$SCRATCH/churn.json" >"$SCRATCH/loadgen.out" 2>&1 || {
    echo "error: loadgen failed:" >&2
    tail -n 20 "$SCRATCH/loadgen.out" >&2
    exit 1
  }
  read -r DONE RUN_ERRORS RUN_SECONDS < <(jq -r \
    '.summary | "\(.requests) \(.errors_total) \(.duration_seconds)"' "$SCRATCH/churn.json")
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

rows=()
failed=0
for model in "${models[@]}"; do
  for variant in "${VARIANTS[@]}"; do
    mapfile -t flags < <(model_flags "$model")
    start_model "$model" --mode http --db-latency 0ms --log warn "${flags[@]}"
    churn "$variant" "$WARMUP"
    read -r rss0 threads0 fds0 <<<"$(settled "$MODEL_PID")"
    echo "$model $variant: after warm-up rss ${rss0} KiB, threads $threads0, fds $fds0" >&2

    total=0 errors=$RUN_ERRORS seconds=0 started=$SECONDS
    rate=$(awk -v n="$DONE" -v s="$RUN_SECONDS" 'BEGIN { r = n / s; print (r < 100 ? 100 : r) }')
    while [ "$total" -lt "$COUNT" ]; do
      if [ $((SECONDS - started)) -gt "$MAX_SECONDS" ]; then
        echo "error: $model $variant: only $total connections in ${MAX_SECONDS}s" >&2
        errors=$((errors + 1))
        break
      fi
      # Long enough for the rest at the rate seen so far, plus 2 %, but
      # at most 30 s: the warm-up's rate can be far off the steady one, and
      # each run corrects the estimate for the next.
      duration=$(awk -v n=$((COUNT - total)) -v r="$rate" 'BEGIN { d = int(n / r * 1.02) + 1; print (d > 30 ? 30 : d) }')
      churn "$variant" "$duration"
      total=$((total + DONE)) errors=$((errors + RUN_ERRORS))
      seconds=$(awk -v a="$seconds" -v b="$RUN_SECONDS" 'BEGIN { print a + b }')
      rate=$(awk -v n="$DONE" -v s="$RUN_SECONDS" 'BEGIN { r = n / s; print (r < 100 ? 100 : r) }')
      read -r rss threads fds <<<"$(usage "$MODEL_PID")"
      echo "$model $variant: $total of $COUNT connections, $RUN_ERRORS errors in this run;" \
        "now rss $rss KiB, threads $threads, fds $fds" >&2
    done

    rss_margin=$((rss0 / 10 > 2048 ? rss0 / 10 : 2048))
    read -r rss1 threads1 fds1 <<<"$(settled "$MODEL_PID" $((threads0 + THREAD_MARGIN)) $((fds0 + FD_MARGIN)))"
    log_lines=$(wc -l <"$MODEL_LOG")
    stop_model
    verdict=ok
    if [ "$errors" -gt 0 ] || [ "$rss1" -gt $((rss0 + rss_margin)) ] ||
      [ "$threads1" -gt $((threads0 + THREAD_MARGIN)) ] || [ "$fds1" -gt $((fds0 + FD_MARGIN)) ]; then
      verdict=FAIL
      failed=1
    fi
    per_second=$(awk -v n="$total" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')
    rows+=("| $model | $variant | $total | $per_second | $errors | $(mib "$rss0") / $(mib "$rss1") | $fds0 / $fds1 | $threads0 / $threads1 | $log_lines | $verdict |")
    echo "${rows[-1]}" >&2
  done
done

{
  echo "Warm-up ${WARMUP} s; then at least $COUNT connections, $CONNECTIONS at a time; RSS in MiB."
  echo
  echo "| model | close | connections | per second | errors | RSS start / end | fds start / end | threads start / end | server log lines | |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} >"$SCRATCH/table.md"
echo
machine_line
cat "$SCRATCH/table.md"
SAVED_SETTINGS="COUNT=$COUNT" SAVED_ARGS="$*" save_table churn "$SCRATCH/table.md"
exit "$failed"
