#!/usr/bin/env bash
# One model under one load: starts the model (release build), runs loadgen
# against it with --pid wired so the server's memory, threads, fds and CPU
# are sampled, then stops the model.
#
#   scripts/load.sh MODEL echo|http|hold|rpc [loadgen flags...]
#   scripts/load.sh 07-epoll http --connections 100 --duration 10s
#   scripts/load.sh 02-thread-per-client hold --connections 2000 --duration 10s
#
# Server flags can be given with SERVER_ARGS, e.g. SERVER_ARGS="--workers 4".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if [ $# -lt 2 ]; then
  echo "usage: $0 MODEL echo|http|hold|rpc [loadgen flags...]" >&2
  exit 2
fi
model=$1 mode=$2; shift 2
case "$mode" in
  http) server_mode=http ;;
  echo|hold) server_mode=echo ;;
  rpc) server_mode=rpc ;;
  *) echo "error: load must be echo, http, hold or rpc, not '$mode'" >&2; exit 2 ;;
esac
build_models
# shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
start_model "$model" --mode "$server_mode" ${SERVER_ARGS:-}
"$ROOT/target/$PROFILE/loadgen" "$mode" --addr "$MODEL_ADDR" --pid "$MODEL_PID" "$@"
