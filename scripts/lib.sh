# Shared by the scripts in this folder: source it, don't run it.
#   need_tool nc netcat-openbsd      exit with an install hint if missing
#   build_models [release|debug]     build the workspace binaries
#   start_model 07-epoll --mode http start it on a free port; sets
#                                    MODEL_ADDR, MODEL_PORT, MODEL_PID
# Every server started here is stopped by pid when the script exits, also
# on Ctrl-C or an error.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=${PROFILE:-release}
STARTED_PIDS=()
SCRATCH=$(mktemp -d)

stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    # Give the graceful shutdown its 5 s, then insist.
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$SCRATCH"
}
trap stop_started EXIT
trap 'exit 130' INT TERM

need_tool() { # command debian-package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "error: '$1' is not installed; on Debian/Ubuntu: sudo apt-get install $2" >&2
  exit 1
}

build_models() {
  need_tool cargo "cargo (https://rustup.rs)"
  local flag=--release
  [ "$PROFILE" = debug ] && flag=
  echo "building the workspace ($PROFILE)..." >&2
  (cd "$ROOT" && cargo build $flag --workspace --quiet)
}

model_binary() {
  local binary="$ROOT/target/$PROFILE/$1"
  if [ ! -x "$binary" ]; then
    echo "error: no binary $binary; models are 01-blocking ... 11-io-uring" >&2
    exit 1
  fi
  echo "$binary"
}

start_model() { # model [server flags...]
  local model=$1; shift
  local binary out
  binary=$(model_binary "$model")
  out="$SCRATCH/$model.out"
  "$binary" --addr 127.0.0.1:0 "$@" >"$out" 2>"$SCRATCH/$model.err" &
  STARTED_PIDS+=($!)
  local line=""
  for _ in $(seq 100); do
    line=$(grep -m1 '^listening on' "$out" 2>/dev/null || true)
    [ -n "$line" ] && break
    kill -0 "${STARTED_PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$line" ]; then
    echo "error: $model did not start:" >&2
    cat "$SCRATCH/$model.err" >&2
    exit 1
  fi
  echo "$line" >&2
  MODEL_ADDR=$(awk '{print $3}' <<<"$line")
  MODEL_PORT=${MODEL_ADDR##*:}
  MODEL_PID=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line")
}

now_ms() { date +%s%3N; }
