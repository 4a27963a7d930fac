#!/usr/bin/env bash
# The lab page with no fake-DB wait, served by nginx (one worker, the page
# returned from memory) and by the models that wait for many clients at
# once, side by side:
#
#   nginx   worker_processes 1; location = / { return 200 '<page>'; }
#   06 07   06-select, 07-epoll (one thread each)
#   08      08-coroutines, one may worker per core (its default)
#   08-w1   08-coroutines --workers 1
#   09      09-async with its default flags (current-thread)
#   09-mt   09-async --runtime multi-thread (one worker per core)
#   10 11   10-mini-runtime, 11-io-uring
#
# every model with --mode http --db-latency 0ms. Each is loaded with
# `wrk -t1 -c50 -d5s` (requests/s), three rounds, the servers interleaved
# inside each round so that the machine's noise hits all alike; the median
# of the three is compared, and so are the server's CPU time and context
# switches per request (from /proc, less sensitive to a busy machine: a
# switch is a thread that waited or was preempted, which is where a
# model's hand-offs between threads show).
# Then the echo sweep: 10 against 09 current-thread with `loadgen echo`
# (64-byte messages) at 1, 10, 100 and 1000 connections.
# Client and server share the machine's cores: say so next to the numbers.
#
# Usage: scripts/bench-nginx-page.sh     (about 7 minutes)
#        ROUNDS=3 DURATION=5 CONNECTIONS=50 PAGE_SERVERS="nginx 07 08" ECHO_CLIENTS="1 10 100 1000" scripts/bench-nginx-page.sh
#        SAVE=1 scripts/bench-nginx-page.sh   # and keep the numbers for the book
#        PAGE_SERVERS="08 baseline" BASELINE=/tmp/08-coroutines-old ECHO_CLIENTS= scripts/bench-nginx-page.sh
#                                             # a model against an older build of it
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
PAGE_SERVERS=${PAGE_SERVERS:-nginx 06 07 08 08-w1 09 09-mt 10 11}
ECHO_CLIENTS=${ECHO_CLIENTS-1 10 100 1000}  # the echo sweep's client counts (empty: none)
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
PAGE='<html><head><title>Success</title></head><body>Index page</body></html>'

need_tool nginx nginx
need_tool wrk wrk
need_tool python3 python3
echo "building release binaries ..." >&2
build_models
machine_line

declare -A addr pid name_of
started() { addr[$1]=$MODEL_ADDR; pid[$1]=$MODEL_PID; }
http=(--mode http --db-latency 0ms --log warn)
for server in $PAGE_SERVERS; do
    case $server in
        # nginx, as a fair in-memory reference: the page returned from memory.
        nginx)
            nginx_port=$(free_port)
            start_nginx "$nginx_port" "location = / { default_type text/html; return 200 '$PAGE'; }" "" /
            pid[nginx]=$NGINX_PID addr[nginx]=127.0.0.1:$nginx_port
            name_of[nginx]="nginx (1 worker, in memory)" ;;
        06) start_model 06-select "${http[@]}" && started 06 && name_of[06]=06-select ;;
        07) start_model 07-epoll "${http[@]}" && started 07 && name_of[07]=07-epoll ;;
        08) start_model 08-coroutines "${http[@]}" && started 08 &&
            name_of[08]="08-coroutines ($(nproc) workers)" ;;
        08-w1) start_model 08-coroutines "${http[@]}" --workers 1 && started 08-w1 &&
            name_of[08-w1]="08-coroutines --workers 1" ;;
        09) start_model 09-async "${http[@]}" && started 09 &&
            name_of[09]="09-async (default flags)" ;;
        09-mt) start_model 09-async "${http[@]}" --runtime multi-thread && started 09-mt &&
            name_of[09-mt]="09-async multi-thread" ;;
        10) start_model 10-mini-runtime "${http[@]}" && started 10 && name_of[10]=10-mini-runtime ;;
        11) start_model 11-io-uring "${http[@]}" && started 11 && name_of[11]=11-io-uring ;;
        # Another build of a model (BASELINE=path/to/binary), e.g. from before a change.
        baseline) start_model "${BASELINE:?baseline needs BASELINE=path/to/a/model/binary}" \
                "${http[@]}" ${BASELINE_ARGS:-} && started baseline &&
            name_of[baseline]="baseline $(basename "$BASELINE") ${BASELINE_ARGS:-}" ;;
        *) echo "error: PAGE_SERVERS: no server named '$server'" \
               "(nginx 06 07 08 08-w1 09 09-mt 10 11 baseline)" >&2; exit 2 ;;
    esac
done
echo=(--mode echo --log warn)
if [ -n "$ECHO_CLIENTS" ]; then
    start_model 09-async "${echo[@]}" --runtime current-thread && started echo-09
    start_model 10-mini-runtime "${echo[@]}" && started echo-10
fi

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

read -r -a page <<<"$PAGE_SERVERS"
# Echo cells are named "model@clients", e.g. "10@100".
cells=("${page[@]}")
for clients in $ECHO_CLIENTS; do cells+=("09@$clients" "10@$clients"); done
declare -A runs cpu switched
for name in "${page[@]}"; do wrk -t1 -c"$CONNECTIONS" -d1s "http://${addr[$name]}/" >/dev/null; done
for round in $(seq "$ROUNDS"); do
    for name in "${cells[@]}"; do
        case $name in
            *@*) server=echo-${name%@*} ;;
            *) server=$name ;;
        esac
        before=$(cpu_ticks "${pid[$server]}")
        switches_before=$(context_switches "${pid[$server]}")
        case $name in
            *@*) read -r rps count < <(echo_load "${addr[$server]}" "${name#*@}") ;;
            *) read -r rps count < <(wrk_load "${addr[$server]}") ;;
        esac
        used=$(( ($(cpu_ticks "${pid[$server]}") - before) * tick_us ))
        switches=$(( $(context_switches "${pid[$server]}") - switches_before ))
        rps=$(printf '%.0f' "$rps")
        per_request=$(awk -v used="$used" -v count="$count" 'BEGIN { printf "%.1f", used / count }')
        switches_per=$(awk -v s="$switches" -v count="$count" 'BEGIN { printf "%.3f", s / count }')
        runs[$name]="${runs[$name]:-} $rps"
        cpu[$name]="${cpu[$name]:-} $per_request"
        switched[$name]="${switched[$name]:-} $switches_per"
        printf 'round %d  %-10s %8.0f /s  %6.1f us CPU  %6.3f switches per request\n' \
            "$round" "$name" "$rps" "$per_request" "$switches_per" >&2
    done
done

declare -A med cpu_med switch_med
for name in "${cells[@]}"; do
    # shellcheck disable=SC2086 # the runs are words on purpose
    med[$name]=$(median ${runs[$name]})
    # shellcheck disable=SC2086
    cpu_med[$name]=$(median ${cpu[$name]})
    # shellcheck disable=SC2086
    switch_med[$name]=$(median ${switched[$name]})
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
has() { [ -n "${med[$1]:-}" ]; }
vs_nginx() { if has nginx; then ratio "${med[$1]}" "${med[nginx]}"; else echo "-"; fi; }
row() {
    printf '%-30s %10.0f %8s %10.1f %9.3f  %s\n' "$1" "${med[$2]}" "$3" "${cpu_med[$2]}" \
        "${switch_med[$2]}" "${runs[$2]}"
}
echo
echo "$(nproc) cores, shared by the servers and the client; median of $ROUNDS interleaved rounds."
echo "page: wrk -t1 -c$CONNECTIONS -d${DURATION}s http://ADDR/ (--mode http --db-latency 0ms)"
echo "echo: loadgen --threads 1 echo --connections N --size 64 --duration ${DURATION}s"
printf '%-30s %10s %8s %10s %9s  %s\n' server "median /s" "/ nginx" "CPU us/req" "switches" "runs (/s)"
for name in "${page[@]}"; do
    row "${name_of[$name]}" "$name" "$(vs_nginx "$name")"
    measured "page.$name.rps" "${med[$name]}"
    measured "page.$name.cpu_us_per_request" "${cpu_med[$name]}"
    measured "page.$name.switches_per_request" "${switch_med[$name]}"
    has nginx && measured "page.$name.of_nginx" "$(vs_nginx "$name")"
done
if has 10 && has 09; then
    measured page.10_of_09 "$(ratio "${med[10]}" "${med[09]}")"
fi
if has 11 && has 07; then
    measured page.11_of_07 "$(ratio "${med[11]}" "${med[07]}")"
fi
if has 08 && has 07; then
    measured page.08_of_07 "$(ratio "${med[08]}" "${med[07]}")"
fi
for clients in $ECHO_CLIENTS; do
    row "echo $clients: 09 current-thread" "09@$clients" ""
    row "echo $clients: 10-mini-runtime" "10@$clients" ""
    measured "echo.$clients.09.rps" "${med[09@$clients]}"
    measured "echo.$clients.10.rps" "${med[10@$clients]}"
    measured "echo.$clients.10_of_09" "$(ratio "${med[10@$clients]}" "${med[09@$clients]}")"
    measured "echo.$clients.09.cpu_us_per_message" "${cpu_med[09@$clients]}"
    measured "echo.$clients.10.cpu_us_per_message" "${cpu_med[10@$clients]}"
done
echo
echo "requests/s ratios (the issue's targets in brackets):"
has 07 && has 11 && echo "  page 11 / 07:               $(ratio "${med[11]}" "${med[07]}")   (>= 1.1)"
has 08 && has 07 && echo "  page 08 / 07:               $(ratio "${med[08]}" "${med[07]}")"
has 10 && has 09 && echo "  page 10 / 09 current-thread: $(ratio "${med[10]}" "${med[09]}")   (>= 0.9)"
for clients in $ECHO_CLIENTS; do
    printf '  echo %-5s 10 / 09 current-thread: %s   (>= 0.9)\n' "$clients" \
        "$(ratio "${med[10@$clients]}" "${med[09@$clients]}")"
done
if has nginx; then
    echo "  / nginx: 06, 07, 09, 10 >= 1.0; 08 >= 0.9 (the column above)"
fi
SAVED_SETTINGS="ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS" save_measured nginx-page
