#!/usr/bin/env bash
# The lab's Locust run against one model, headless, with CSV out, so its
# numbers sit beside loadgen's lab cell:
#
#   scripts/locust-lab.sh MODEL [close|keep-alive] [RUN_TIME]
#   scripts/locust-lab.sh 01-blocking                 Connection: close, 80s
#   scripts/locust-lab.sh 07-epoll keep-alive 80s
#
# 100 users, spawn rate 10, think 5..15 s (scripts/locustfile.py), the model
# started with the fake DB at 300 ms and its pool flags as `bench compare`
# passes them. Stats are reset when all users are running (Locust's
# --reset-stats), as loadgen's lab cell leaves out its warm-up. CSV files go
# to locust-results/MODEL-VARIANT_stats.csv and _stats_history.csv, the
# same columns `loadgen http --locust-csv PREFIX` writes.
# Both tools at once, against two instances of the model, with a table:
#   scripts/locust-vs-loadgen.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if [ $# -lt 1 ]; then
  echo "usage: $0 MODEL [close|keep-alive] [RUN_TIME]" >&2
  exit 2
fi
model=$1 variant=${2:-close} run_time=${3:-80s}
case "$variant" in
  close | keep-alive) ;;
  *) echo "error: variant must be close or keep-alive, not '$variant'" >&2; exit 2 ;;
esac
need_locust
mapfile -t flags < <(model_flags "$model")
# Only this model: the whole workspace would take minutes.
(cd "$ROOT" && cargo build --release --quiet --bin "$model")
start_model "$model" --mode http --db-latency 300ms --log warn "${flags[@]}"
mkdir -p "$ROOT/locust-results"
locust_lab "$MODEL_ADDR" "$variant" "$run_time" "$ROOT/locust-results/$model-$variant"
