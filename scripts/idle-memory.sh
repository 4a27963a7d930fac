#!/usr/bin/env bash
# What one idle connection costs a model, and where that memory is: RSS per
# connection with N connections open, split by kind of mapping (thread
# stacks, coroutine stacks, malloc arenas, the main heap), from the
# server's /proc/PID/smaps before and after. RSS is what the process has
# touched in user space; the kernel's own memory for a thread or a socket is
# not in it.
#
# Usage: scripts/idle-memory.sh                         # 02, 08, 07, 09
#        MODELS="02-thread-per-client" COUNT=5000 scripts/idle-memory.sh
#        SAVE=1 scripts/idle-memory.sh   # and keep the numbers for the book
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MODELS=${MODELS:-02-thread-per-client 08-coroutines 07-epoll 09-async}
COUNT=${COUNT:-2000}
STACK_KIB=64 # 08's --stack-size default
need_tool python3 python3
[ -r /proc/self/smaps ] || { echo "error: needs Linux's /proc/PID/smaps" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((COUNT + 100)) ] || { echo "error: open-file limit $(ulimit -n) < COUNT" >&2; exit 1; }
echo "building release binaries ..." >&2
build_models
machine_line
for model in $MODELS; do
  start_model "$model" --mode echo --idle-timeout 60s
  echo "== $model"
  python3 "$ROOT/scripts/idle_memory.py" "$MODEL_PID" "$MODEL_PORT" "$COUNT" "$STACK_KIB" \
    "$MEASURED" "$model"
  stop_model
done
SAVED_SETTINGS="MODELS=\"$MODELS\" COUNT=$COUNT" save_measured idle-memory
