#!/usr/bin/env bash
# A 2 GiB sparse file, downloaded in full from a model in files mode, while
# the server's resident memory (summed over its processes) is sampled every
# 100 ms: it must stay under 20 MiB, since no byte of the file passes
# through the server with sendfile or splice (11), and a driver that copies (08)
# holds at most 64 KiB of it per connection. A script rather than a test: 2 GiB through a
# debug build takes minutes; this uses release builds.
#
# Usage: scripts/files-sparse-2gib.sh                 (07-epoll)
#        scripts/files-sparse-2gib.sh 01-blocking 09-async
#        scripts/files-sparse-2gib.sh all
#        SAVE=1 scripts/files-sparse-2gib.sh all   # and keep the numbers for the book
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LIMIT_KIB=$((20 * 1024))
SIZE=$((2 * 1024 * 1024 * 1024))
need_tool curl curl
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(07-epoll)
if [ "${models[0]}" = all ]; then
    models=()
    for dir in "$ROOT"/[0-9][0-9]-*/; do models+=("$(basename "$dir")"); done
fi
build_models
machine_line

DOCS="$SCRATCH/docs"
mkdir -p "$DOCS"
truncate -s "$SIZE" "$DOCS/sparse.bin"   # no disk blocks: reads give zeros

# Resident KiB of a process and its children (prefork models).
rss_kib() {
    local pids total=0 pid kib
    pids="$1 $(pgrep -P "$1" || true)"
    for pid in $pids; do
        kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

failed=0
for model in "${models[@]}"; do
    start_model "$model" --mode files --root "$DOCS" --log warn
    curl -s -o /dev/null -w '%{size_download}\n' "http://$MODEL_ADDR/sparse.bin" \
        >"$SCRATCH/size" &
    curl_pid=$!
    peak=0; started=$(now_ms)
    while kill -0 "$curl_pid" 2>/dev/null; do
        rss=$(rss_kib "$MODEL_PID")
        [ "$rss" -gt "$peak" ] && peak=$rss
        sleep 0.1
    done
    wait "$curl_pid" || true
    got=$(cat "$SCRATCH/size")
    seconds=$(awk -v ms=$(( $(now_ms) - started )) 'BEGIN { printf "%.1f", ms / 1000 }')
    verdict=ok
    if [ "$got" != "$SIZE" ] || [ "$peak" -ge "$LIMIT_KIB" ]; then verdict=FAILED; failed=1; fi
    echo "$model: downloaded $got of $SIZE bytes in ${seconds}s, peak RSS $peak KiB (limit $LIMIT_KIB): $verdict"
    measured "$model.seconds" "$seconds"
    measured "$model.peak_rss_kib" "$peak"
    stop_model
done
SAVED_ARGS="$*" save_measured files-sparse
exit "$failed"
