#!/usr/bin/env bash
# The lab page with no fake-DB wait, served by nginx (one worker, the page
# returned from memory) and by the async models, side by side:
#
#   nginx   worker_processes 1; location = / { return 200 '<page>'; }
#   09      09-async with its default flags (current-thread), --db-latency 0ms
#   09-mt   09-async --runtime multi-thread (one worker per core)
#   10      10-mini-runtime
#
# Each is loaded with `wrk -t1 -c50 -d5s` (requests/s), three rounds, the
# servers interleaved inside each round so that the machine's noise hits
# all alike; the median of the three is compared. Then the echo protocol:
# 10 against 09 current-thread with `loadgen echo` (50 connections,
# 64-byte messages).
# Client and server share the machine's cores: say so next to the numbers.
#
# Usage: scripts/bench-nginx-page.sh          (ROUNDS=3 DURATION=5 CONNECTIONS=50)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
PAGE='<html><head><title>Success</title></head><body>Index page</body></html>'

need_tool nginx nginx
need_tool wrk wrk
need_tool python3 python3
echo "building release binaries ..." >&2
(cd "$ROOT" && cargo build --release --quiet -p async-tokio -p mini-runtime -p loadgen)

# nginx, as a fair in-memory reference: one worker, no access log, a
# connection kept for any number of requests, everything in a temp dir.
nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$SCRATCH/nginx/logs"
cat >"$SCRATCH/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $SCRATCH/nginx/nginx.pid;
error_log $SCRATCH/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $SCRATCH/nginx/body;
    proxy_temp_path $SCRATCH/nginx/proxy;
    fastcgi_temp_path $SCRATCH/nginx/fastcgi;
    uwsgi_temp_path $SCRATCH/nginx/uwsgi;
    scgi_temp_path $SCRATCH/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        location = / {
            default_type text/html;
            return 200 '$PAGE';
        }
    }
}
EOF
nginx -p "$SCRATCH/nginx" -e "$SCRATCH/nginx/logs/error.log" -c "$SCRATCH/nginx/nginx.conf" &
STARTED_PIDS+=($!)
for _ in $(seq 50); do
    curl -s "http://127.0.0.1:$nginx_port/" 2>/dev/null | grep -q 'Index page' && break
    sleep 0.1
done
curl -s "http://127.0.0.1:$nginx_port/" | grep -q 'Index page' || {
    echo "error: nginx did not start:" >&2
    cat "$SCRATCH/nginx/logs/error.log" >&2
    exit 1
}
declare -A addr
addr[nginx]=127.0.0.1:$nginx_port
http=(--mode http --db-latency 0ms --log warn)
start_model 09-async "${http[@]}" && addr[09]=$MODEL_ADDR
start_model 09-async "${http[@]}" --runtime multi-thread && addr[09-mt]=$MODEL_ADDR
start_model 10-mini-runtime "${http[@]}" && addr[10]=$MODEL_ADDR
echo=(--mode echo --log warn)
start_model 09-async "${echo[@]}" --runtime current-thread && addr[echo-09-ct]=$MODEL_ADDR
start_model 10-mini-runtime "${echo[@]}" && addr[echo-10]=$MODEL_ADDR

wrk_rps() { # addr -> requests/s
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "http://$1/" | awk '/^Requests\/sec:/ { print $2 }'
}
echo_rps() { # addr -> echoed messages/s
    local json=$SCRATCH/echo.json
    "$ROOT/target/release/loadgen" --threads 1 echo --addr "$1" --connections "$CONNECTIONS" --size 64 \
        --duration "${DURATION}s" --json "$json" >/dev/null 2>&1
    grep -m 1 -o '"requests_per_second": [0-9.]*' "$json" | grep -o '[0-9.]*$'
}
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }

page=(nginx 09 09-mt 10)
declare -A runs
for name in "${page[@]}"; do wrk -t1 -c"$CONNECTIONS" -d1s "http://${addr[$name]}/" >/dev/null; done
for round in $(seq "$ROUNDS"); do
    for name in "${page[@]}" echo-09-ct echo-10; do
        case $name in
            echo-*) rps=$(echo_rps "${addr[$name]}") ;;
            *) rps=$(wrk_rps "${addr[$name]}") ;;
        esac
        rps=$(printf '%.0f' "$rps")
        runs[$name]="${runs[$name]:-} $rps"
        printf 'round %d  %-10s %10.0f /s\n' "$round" "$name" "$rps" >&2
    done
done

declare -A med
for name in "${!runs[@]}"; do
    # shellcheck disable=SC2086 # the runs are words on purpose
    med[$name]=$(median ${runs[$name]})
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "$(nproc) cores, shared by the servers and the client; median of $ROUNDS interleaved rounds."
echo "page: wrk -t1 -c$CONNECTIONS -d${DURATION}s http://ADDR/ (--mode http --db-latency 0ms)"
echo "echo: loadgen --threads 1 echo --connections $CONNECTIONS --size 64 --duration ${DURATION}s"
printf '%-28s %12s  %s\n' server "median /s" "runs"
printf '%-28s %12.0f  %s\n' "nginx (1 worker, in memory)" "${med[nginx]}" "${runs[nginx]}"
printf '%-28s %12.0f  %s\n' "09-async (default flags)" "${med[09]}" "${runs[09]}"
printf '%-28s %12.0f  %s\n' "09-async multi-thread" "${med[09-mt]}" "${runs[09-mt]}"
printf '%-28s %12.0f  %s\n' "10-mini-runtime" "${med[10]}" "${runs[10]}"
printf '%-28s %12.0f  %s\n' "echo 09-async current-thread" "${med[echo-09-ct]}" "${runs[echo-09-ct]}"
printf '%-28s %12.0f  %s\n' "echo 10-mini-runtime" "${med[echo-10]}" "${runs[echo-10]}"
echo
echo "page 09 default (current-thread) / nginx: $(ratio "${med[09]}" "${med[nginx]}")   (target >= 1.0)"
echo "page 09 multi-thread / nginx:             $(ratio "${med[09-mt]}" "${med[nginx]}")"
echo "page 10 / nginx:                          $(ratio "${med[10]}" "${med[nginx]}")"
echo "page 10 / 09 current-thread:              $(ratio "${med[10]}" "${med[09]}")   (target >= 0.9)"
echo "echo 10 / 09 current-thread:              $(ratio "${med[echo-10]}" "${med[echo-09-ct]}")   (target >= 0.9)"
