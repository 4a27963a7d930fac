# Shared by the scripts in this folder: source it, don't run it.
#   need_tool nc netcat-openbsd      exit with an install hint if missing
#   build_models [release|debug]     build the workspace binaries
#   start_model 07-epoll --mode http start it on a free port; sets
#                                    MODEL_ADDR, MODEL_PORT, MODEL_PID and
#                                    MODEL_LOG (its stderr)
#   stop_model                       stop that one and wait for its exit
#   machine_line                     "machine: CPU, N cores ..." for output
#   cpu_ticks PID, context_switches PID   what a server (and its children)
#                                    spent so far, to divide by requests
#   measured KEY VALUE               note a number the book may quote
#   save_measured NAME               with SAVE=1, keep the noted numbers in
#                                    docs/src/measured/NAME.csv, which the
#                                    book's `<!-- n: @NAME KEY -->` markers
#                                    are checked against
#   locust_lab ADDR VARIANT TIME PREFIX   the lab's Locust run, headless
#   save_table NAME FILE             with SAVE=1, keep the table a script
#                                    printed as docs/src/measured/NAME.md,
#                                    which a chapter includes whole
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

model_binary() { # model name, or a path to a binary (a build to compare)
  local binary="$ROOT/target/$PROFILE/$1"
  [[ "$1" == */* ]] && binary=$1
  if [ ! -x "$binary" ]; then
    echo "error: no binary $binary; models are 01-blocking ... 11-io-uring" >&2
    exit 1
  fi
  echo "$binary"
}

start_model() { # model [server flags...]
  local model=$1; shift
  local binary out name
  binary=$(model_binary "$model")
  # Numbered, so two instances of one model keep their own logs.
  name=$(basename "$model").${#STARTED_PIDS[@]}
  out="$SCRATCH/$name.out"
  MODEL_LOG="$SCRATCH/$name.err"
  "$binary" --addr 127.0.0.1:0 "$@" >"$out" 2>"$MODEL_LOG" &
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
    cat "$MODEL_LOG" >&2
    exit 1
  fi
  echo "$line" >&2
  MODEL_ADDR=$(awk '{print $3}' <<<"$line")
  MODEL_PORT=${MODEL_ADDR##*:}
  MODEL_PID=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line")
}

# Stops the model start_model started last and waits for its graceful exit,
# so that the next model does not share the machine with it.
stop_model() {
  kill -TERM "$MODEL_PID" 2>/dev/null || true
  wait "$MODEL_PID" 2>/dev/null || true
}

now_ms() { date +%s%3N; }

# One line naming the machine, for the head of every benchmark's output:
# ratios differ between CPU kinds (an Intel Xeon and an AMD EPYC disagree),
# and the load generator shares these cores with the server.
machine_line() {
  local cpu
  cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
  [ -n "$cpu" ] || cpu=$(sysctl -n machdep.cpu.brand_string hw.model 2>/dev/null | head -1)
  echo "machine: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || sysctl -n hw.ncpu) cores shared by client and server, $(uname -sr)"
}

# A number worth quoting, as key,value (key: no commas or spaces).
MEASURED="$SCRATCH/measured.csv"
measured() { # key value
  echo "$1,$2" >>"$MEASURED"
}

# The command that re-measures a kept run, as its header names it.
saved_command() {
  echo "SAVE=1 ${SAVED_SETTINGS:+$SAVED_SETTINGS }scripts/$(basename "$0")${SAVED_ARGS:+ $SAVED_ARGS}"
}

# The run's numbers, kept for the book only when asked (SAVE=1): a plain
# run must not leave the checkout changed. The header names the machine and
# the command, so a reader can repeat it; the book test then lists every
# sentence whose marked number moved.
save_measured() { # name
  local file="$ROOT/docs/src/measured/$1.csv"
  [ -s "$MEASURED" ] || return 0
  if [ "${SAVE:-0}" != 1 ]; then
    echo "(SAVE=1 $0 keeps these numbers in docs/src/measured/$1.csv for the book)" >&2
    return 0
  fi
  mkdir -p "$(dirname "$file")"
  {
    echo "# $(machine_line)"
    echo "# $(saved_command) on $(date -u +%Y-%m-%d)"
    echo "key,value"
    cat "$MEASURED"
  } >"$file"
  echo "saved $(($(wc -l <"$MEASURED"))) numbers in docs/src/measured/$1.csv" >&2
}

# A table the script printed, kept for the book only when asked (SAVE=1),
# as docs/src/measured/NAME.md: a first line with the machine and the
# command, then the table as printed. The chapter includes the file, so
# the book shows the last kept run and no number typed by hand.
save_table() { # name file
  local file="$ROOT/docs/src/measured/$1.md"
  if [ "${SAVE:-0}" != 1 ]; then
    echo "(SAVE=1 $0 keeps this table in docs/src/measured/$1.md for the book)" >&2
    return 0
  fi
  mkdir -p "$(dirname "$file")"
  {
    echo "Kept run: $(machine_line | sed 's/^machine: //');" \
      "\`$(saved_command)\`" \
      "on $(date -u +%Y-%m-%d)."
    echo
    cat "$2"
  } >"$file"
  echo "saved the table in docs/src/measured/$1.md" >&2
}

# The lab's Locust user (scripts/locustfile.py) against a server, headless:
# 100 users spawned at 10 a second, statistics reset once all of them run
# (as loadgen's lab cell leaves out its warm-up), CSV files PREFIX_stats.csv
# and PREFIX_stats_history.csv. Without Locust, says how to install it.
need_locust() {
  command -v locust >/dev/null 2>&1 && return 0
  echo "error: 'locust' is not installed; install it with: pip install locust" >&2
  exit 1
}

locust_lab() { # addr close|keep-alive run-time csv-prefix
  local user
  case "$2" in
    close) user=LabUserClose ;;
    keep-alive) user=LabUser ;;
    *) echo "error: variant must be close or keep-alive, not '$2'" >&2; exit 2 ;;
  esac
  need_locust
  echo "locust: $user x 100 against $1 for $3; CSV in ${4}_*.csv" >&2
  locust -f "$ROOT/scripts/locustfile.py" --headless --users 100 --spawn-rate 10 \
    --run-time "$3" --reset-stats --only-summary \
    --host "http://$1" --csv "$4" "$user"
}

# CPU time (user + system, clock ticks) of a server and its children (an
# nginx worker, prefork's workers). Per request it depends far less on what
# else the machine is doing than requests per second do.
cpu_ticks() { # pid
  local total=0 process
  for process in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$process/stat")))
  done
  echo "$total"
}

# Context switches (voluntary + involuntary) of a server's threads and of
# its children's: a thread that waited, or was preempted. Per request they
# show a model's hand-offs between threads.
context_switches() { # pid
  local process
  for process in "$1" $(pgrep -P "$1" || true); do
    cat "/proc/$process/task/"*/status 2>/dev/null
  done | awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { total += $2 } END { print total + 0 }'
}

# The median of the numbers given as words (the mean of the middle two for
# an even count): what the benchmarks quote for their interleaved rounds.
#   median 3 1 2  ->  2
median() {
  printf '%s\n' "$@" | sort -g | awk 'NF { v[++n] = $1 } END {
    if (n % 2) print v[(n + 1) / 2]; else if (n) printf "%.15g\n", (v[n / 2] + v[n / 2 + 1]) / 2 }'
}

# The flags `bench compare` passes a model (its pool sizes), one per line:
#   mapfile -t flags < <(model_flags 05-prefork-threads)
model_flags() {
  local cores; cores=$(nproc)
  case "$1" in
    03-thread-pool) printf '%s\n' --workers 10 ;;
    04-prefork|08-coroutines) printf '%s\n' --workers "$cores" ;;
    05-prefork-threads) printf '%s\n' --workers "$cores" --threads 10 ;;
    09-async) printf '%s\n' --runtime multi-thread --workers "$cores" ;;
  esac
}

# A free TCP port on loopback, for a reference server such as nginx.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts nginx as a fair reference: one worker, no access log, a connection
# kept for any number of requests, pid, logs and temp files all in
# $SCRATCH/nginx. Listens on 127.0.0.1:$1; $2 is the body of its `server`
# block, $3 extra `http`-level lines. Waits until `curl` gets path $4 and
# sets NGINX_PID (also in STARTED_PIDS, so it is stopped with the models).
start_nginx() { # port server-block http-lines probe-path
  local port=$1 server=$2 extra=$3 probe=$4
  mkdir -p "$SCRATCH/nginx"
  cat >"$SCRATCH/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $SCRATCH/nginx/nginx.pid;
error_log $SCRATCH/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    $extra
    client_body_temp_path $SCRATCH/nginx/body;
    proxy_temp_path $SCRATCH/nginx/proxy;
    fastcgi_temp_path $SCRATCH/nginx/fastcgi;
    uwsgi_temp_path $SCRATCH/nginx/uwsgi;
    scgi_temp_path $SCRATCH/nginx/scgi;
    server {
        listen 127.0.0.1:$port backlog=4096;
        $server
    }
}
CONF
  "$(command -v nginx || echo /usr/sbin/nginx)" -p "$SCRATCH/nginx" \
    -e "$SCRATCH/nginx/error.log" -c "$SCRATCH/nginx/nginx.conf" &
  NGINX_PID=$!
  STARTED_PIDS+=("$NGINX_PID")
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port$probe" && return 0
    sleep 0.1
  done
  echo "error: nginx did not start:" >&2
  cat "$SCRATCH/nginx/error.log" >&2
  return 1
}

# `strace -c` output per request. Its rows are % time, seconds, usecs/call,
# calls, [errors,] syscall: calls is the 4th field on every row, including
# "total", and the name is the last.
strace_total() { # trace-file requests decimals
  awk -v n="$2" -v d="$3" '$NF == "total" { printf "%." d "f", $4 / n }' "$1"
}
strace_by_name() { # trace-file requests at-least-per-request
  awk -v n="$2" -v min="$3" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" && $4 / n >= min {
      printf "%s %.2f, ", $NF, $4 / n }' "$1" | sed 's/, $//'
}
