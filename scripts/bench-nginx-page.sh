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
# all alike; the median of the three is compared, and so is the server's
# CPU time per request (from /proc, less sensitive to a busy machine).
# Then the echo sweep: 10 against 09 current-thread with `loadgen echo`
# (64-byte messages) at 1, 10, 100 and 1000 connections.
# Client and server share the machine's cores: say so next to the numbers.
#
# Usage: scripts/bench-nginx-page.sh     (about 4 minutes)
#        ROUNDS=3 DURATION=5 CONNECTIONS=50 ECHO_CLIENTS="1 10 100 1000" scripts/bench-nginx-page.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
ECHO_CLIENTS=${ECHO_CLIENTS:-1 10 100 1000}  # the echo sweep's client counts
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
PAGE='<html><head><title>Success</title></head><body>Index page</body></html>'

need_tool nginx nginx
need_tool wrk wrk
need_tool python3 python3
echo "building release binaries ..." >&2
(cd "$ROOT" && cargo build --release --quiet -p async-tokio -p mini-runtime -p loadgen)
machine_line

# nginx, as a fair in-memory reference: the page returned from memory.
nginx_port=$(free_port)
start_nginx "$nginx_port" "location = / { default_type text/html; return 200 '$PAGE'; }" "" /
declare -A addr pid
pid[nginx]=$NGINX_PID
addr[nginx]=127.0.0.1:$nginx_port
http=(--mode http --db-latency 0ms --log warn)
started() { addr[$1]=$MODEL_ADDR; pid[$1]=$MODEL_PID; }
start_model 09-async "${http[@]}" && started 09
start_model 09-async "${http[@]}" --runtime multi-thread && started 09-mt
start_model 10-mini-runtime "${http[@]}" && started 10
echo=(--mode echo --log warn)
start_model 09-async "${echo[@]}" --runtime current-thread && started echo-09
start_model 10-mini-runtime "${echo[@]}" && started echo-10

wrk_load() { # addr -> "requests/s requests"
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "http://$1/" |
        awk '/ requests in / { count = $1 } /^Requests\/sec:/ { print $2, count }'
}
echo_load() { # addr connections -> "messages/s messages"
    local json=$SCRATCH/echo.json
    "$ROOT/target/release/loadgen" --threads 1 echo --addr "$1" --connections "$2" --size 64 \
        --duration "${DURATION}s" --json "$json" >/dev/null 2>&1
    echo "$(grep -m 1 -o '"requests_per_second": [0-9.]*' "$json" | grep -o '[0-9.]*$')" \
        "$(grep -m 1 -o '"requests": [0-9]*' "$json" | grep -o '[0-9]*$')"
}
tick_us=$((1000000 / $(getconf CLK_TCK)))

page=(nginx 09 09-mt 10)
# Echo cells are named "model@clients", e.g. "10@100".
cells=("${page[@]}")
for clients in $ECHO_CLIENTS; do cells+=("09@$clients" "10@$clients"); done
declare -A runs cpu
for name in "${page[@]}"; do wrk -t1 -c"$CONNECTIONS" -d1s "http://${addr[$name]}/" >/dev/null; done
for round in $(seq "$ROUNDS"); do
    for name in "${cells[@]}"; do
        case $name in
            *@*) server=echo-${name%@*} ;;
            *) server=$name ;;
        esac
        before=$(cpu_ticks "${pid[$server]}")
        case $name in
            *@*) read -r rps count < <(echo_load "${addr[$server]}" "${name#*@}") ;;
            *) read -r rps count < <(wrk_load "${addr[$server]}") ;;
        esac
        used=$(( ($(cpu_ticks "${pid[$server]}") - before) * tick_us ))
        rps=$(printf '%.0f' "$rps")
        per_request=$(awk -v used="$used" -v count="$count" 'BEGIN { printf "%.1f", used / count }')
        runs[$name]="${runs[$name]:-} $rps"
        cpu[$name]="${cpu[$name]:-} $per_request"
        printf 'round %d  %-10s %8.0f /s  %6.1f us CPU per request\n' "$round" "$name" "$rps" "$per_request" >&2
    done
done

declare -A med cpu_med
for name in "${cells[@]}"; do
    # shellcheck disable=SC2086 # the runs are words on purpose
    med[$name]=$(median ${runs[$name]})
    # shellcheck disable=SC2086
    cpu_med[$name]=$(median ${cpu[$name]})
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { printf '%-30s %10.0f %10.1f  %s\n' "$1" "${med[$2]}" "${cpu_med[$2]}" "${runs[$2]}"; }
echo
echo "$(nproc) cores, shared by the servers and the client; median of $ROUNDS interleaved rounds."
echo "page: wrk -t1 -c$CONNECTIONS -d${DURATION}s http://ADDR/ (--mode http --db-latency 0ms)"
echo "echo: loadgen --threads 1 echo --connections N --size 64 --duration ${DURATION}s"
printf '%-30s %10s %10s  %s\n' server "median /s" "CPU us/req" "runs (/s)"
row "nginx (1 worker, in memory)" nginx
row "09-async (default flags)" 09
row "09-async multi-thread" 09-mt
row "10-mini-runtime" 10
for clients in $ECHO_CLIENTS; do
    row "echo $clients: 09 current-thread" "09@$clients"
    row "echo $clients: 10-mini-runtime" "10@$clients"
done
echo
echo "requests/s ratios:"
echo "  page 09 default (current-thread) / nginx: $(ratio "${med[09]}" "${med[nginx]}")   (target >= 1.0)"
echo "  page 09 multi-thread / nginx:             $(ratio "${med[09-mt]}" "${med[nginx]}")"
echo "  page 10 / nginx:                          $(ratio "${med[10]}" "${med[nginx]}")"
echo "  page 10 / 09 current-thread:              $(ratio "${med[10]}" "${med[09]}")   (target >= 0.9)"
for clients in $ECHO_CLIENTS; do
    printf '  echo %-5s 10 / 09 current-thread:       %s   (target >= 0.9)\n' "$clients" \
        "$(ratio "${med[10@$clients]}" "${med[09@$clients]}")"
done
echo "CPU time per request, as a speed (the other's / this one's; above 1 is cheaper):"
echo "  page 09 default vs nginx:                 $(ratio "${cpu_med[nginx]}" "${cpu_med[09]}")"
echo "  page 10 vs 09 current-thread:             $(ratio "${cpu_med[09]}" "${cpu_med[10]}")"
for clients in $ECHO_CLIENTS; do
    printf '  echo %-5s 10 vs 09 current-thread:      %s\n' "$clients" \
        "$(ratio "${cpu_med[09@$clients]}" "${cpu_med[10@$clients]}")"
done
