#!/usr/bin/env bash
# Locust and loadgen side by side: does loadgen's lab cell measure what the
# course's Locust measures? For each run, two instances of the model (same
# flags: fake DB 300 ms, the pool sizes `bench compare` uses), the lab's
# Locust user against one and loadgen's lab cell against the other, both at
# once for RUN_TIME seconds; then a row with each tool's rate, median and
# what it answered, and for loadgen what timed out or was still waiting.
#
#   scripts/locust-vs-loadgen.sh             01, 03 and 07 with Connection:
#                                            close, 01 with keep-alive (6 min)
#   scripts/locust-vs-loadgen.sh 07-epoll:close 03-thread-pool:keep-alive
#   RUN_TIME=80 SAVE=1 scripts/locust-vs-loadgen.sh
#
# Both tools leave out their start: Locust resets its statistics once its
# 100 users run (10 s), loadgen leaves out 20 s of warm-up. The two servers,
# Locust and loadgen share the machine's cores; at 3 to 10 requests per
# second that is no contest. With SAVE=1 the table goes to
# docs/src/measured/locust.md and its numbers to docs/src/measured/locust.csv,
# for the book's "Locust and loadgen side by side".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_tool jq jq
need_locust
RUN_TIME=${RUN_TIME:-80}
runs=("$@")
[ ${#runs[@]} -eq 0 ] && runs=(01-blocking:close 03-thread-pool:close 07-epoll:close
  01-blocking:keep-alive)
bins=(--bin loadgen)
for run in "${runs[@]}"; do bins+=(--bin "${run%%:*}"); done
(cd "$ROOT" && cargo build --release --quiet "${bins[@]}")

table="$SCRATCH/table.md"
{
  echo "| model | connection | Locust req/s | Locust median | Locust answered | loadgen req/s | loadgen median | loadgen answered | loadgen timed out | loadgen waiting at the end |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} >"$table"
for run in "${runs[@]}"; do
  model=${run%%:*} variant=${run#*:}
  case "$variant" in
    close) keepalive=(--no-keepalive) ;;
    keep-alive) keepalive=() ;;
    *) echo "error: $run: the variant after ':' must be close or keep-alive" >&2; exit 2 ;;
  esac
  mapfile -t flags < <(model_flags "$model")
  start_model "$model" --mode http --db-latency 300ms --log warn "${flags[@]}"
  locust_addr=$MODEL_ADDR locust_pid=$MODEL_PID
  start_model "$model" --mode http --db-latency 300ms --log warn "${flags[@]}"
  echo "$model $variant: Locust on $locust_addr, loadgen on $MODEL_ADDR, ${RUN_TIME} s" >&2
  "$ROOT/target/release/loadgen" http --addr "$MODEL_ADDR" --pid "$MODEL_PID" \
    --users 100 --think 5s..15s --spawn-rate 10 --duration "${RUN_TIME}s" --warmup 20s \
    --timeout 60s "${keepalive[@]}" --json "$SCRATCH/loadgen.json" >"$SCRATCH/loadgen.out" 2>&1 &
  loadgen=$!
  # Locust's run time counts from its start, its statistics from the reset
  # after 10 s: it ends with loadgen.
  locust_lab "$locust_addr" "$variant" "${RUN_TIME}s" "$SCRATCH/locust" >"$SCRATCH/locust.out" 2>&1 || {
    echo "error: locust failed:" >&2
    tail -n 20 "$SCRATCH/locust.out" >&2
    exit 1
  }
  wait "$loadgen" || {
    echo "error: loadgen failed:" >&2
    tail -n 20 "$SCRATCH/loadgen.out" >&2
    exit 1
  }
  stop_model
  kill -TERM "$locust_pid" 2>/dev/null || true
  wait "$locust_pid" 2>/dev/null || true

  # Locust's Aggregated row: its median is rounded to two digits.
  read -r l_rps l_median l_count < <(python3 - "$SCRATCH/locust_stats.csv" <<'PY'
import csv, sys
row = next(r for r in csv.DictReader(open(sys.argv[1])) if r["Name"] == "Aggregated")
print(f'{float(row["Requests/s"]):.2f} {float(row["Median Response Time"]):.0f} {row["Request Count"]}')
PY
  )
  read -r g_rps g_median g_count g_timeouts g_waiting < <(jq -r '[
      (.summary.requests_per_second * 100 | round / 100),
      (.latency.p50_us / 100 | round / 10),
      .summary.requests, .summary.errors.timeout, .summary.unanswered] | @tsv' \
    "$SCRATCH/loadgen.json")
  key="$variant.$model"
  measured "$key.locust_rps" "$l_rps"
  measured "$key.locust_median_ms" "$l_median"
  measured "$key.locust_answered" "$l_count"
  measured "$key.loadgen_rps" "$g_rps"
  measured "$key.loadgen_median_ms" "$g_median"
  measured "$key.loadgen_answered" "$g_count"
  measured "$key.loadgen_timeouts" "$g_timeouts"
  measured "$key.loadgen_unanswered" "$g_waiting"
  echo "| $model | $variant | $l_rps | $l_median ms | $l_count | $g_rps | $g_median ms | $g_count | $g_timeouts | $g_waiting |" |
    tee -a "$table"
done
echo
machine_line
cat "$table"
SAVED_SETTINGS="RUN_TIME=$RUN_TIME" SAVED_ARGS="$*" save_table locust "$table"
SAVED_SETTINGS="RUN_TIME=$RUN_TIME" SAVED_ARGS="$*" save_measured locust
