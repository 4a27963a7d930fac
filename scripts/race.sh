#!/usr/bin/env bash
# A race for a lecture: several models at once, each on its own port under
# the same load (the lab's 100 users by default), in one live table that
# refreshes every second; it ends by itself and prints the final table.
#
#   scripts/race.sh 01-blocking 03-thread-pool 07-epoll
#   scripts/race.sh 01 07 -- --duration 30s --keep-alive
#   scripts/race.sh 07 --cmd 'python3 my_server.py --port {port}'
#   scripts/race.sh 01 --addr 127.0.0.1:8080
#
# SAVE=1 keeps the final table for the book (docs/src/measured/race.md).
#
# Models by name or number; a server of your own with --cmd (`{port}`
# becomes a free port) or --addr (already running); flags after -- go to
# `bench race` (see its --help). Builds only the named models and bench
# (release).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
models=()
outsiders=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case "$1" in
    --cmd|--addr)
      [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }
      outsiders+=("$1" "$2"); shift 2 ;;
    *) models+=("$1"); shift ;;
  esac
done
[ "${1:-}" = -- ] && shift
if [ ${#models[@]} -eq 0 ] && [ ${#outsiders[@]} -eq 0 ]; then
  echo "usage: $0 MODEL... [--cmd 'COMMAND {port}'] [--addr HOST:PORT] [-- bench race flags]" >&2
  exit 2
fi
cd "$ROOT"
bins=()
for model in "${models[@]}"; do
  # 07 -> 07-epoll, as bench resolves it.
  name=$(ls -d "$model"*/ 2>/dev/null | head -n1)
  name=${name%/}
  [ -n "$name" ] || { echo "error: no model '$model'" >&2; exit 2; }
  bins+=(--bin "$name")
done
echo "building ${models[*]} and bench (release)..." >&2
cargo build --release --quiet "${bins[@]}" --bin bench
if [ ${#models[@]} -gt 0 ]; then
  list=$(IFS=,; echo "${models[*]}")
  outsiders=(--models "$list" "${outsiders[@]}")
fi
if [ "${SAVE:-0}" != 1 ]; then
  exec target/release/bench race --bin-dir target/release "${outsiders[@]}" "$@"
fi
# SAVE=1: on a pipe (a line per second), and the final table kept in
# docs/src/measured/race.md, which "How to measure" includes.
target/release/bench race --bin-dir target/release "${outsiders[@]}" "$@" | tee "$SCRATCH/race.out"
{
  echo '```text'
  sed -n '/^model  /,$p' "$SCRATCH/race.out"
  echo '```'
} >"$SCRATCH/table.md"
saved="${models[*]}${*:+ -- $*}"
SAVED_ARGS=$saved save_table race "$SCRATCH/table.md"
