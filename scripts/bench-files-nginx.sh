#!/usr/bin/env bash
# Files mode against nginx on the same document root: the lab's target.
# One worker each (nginx `worker_processes 1`; 07-epoll and 11-io-uring
# are one thread each, though 11's spliced bodies run on kernel workers):
#   small file, a new connection per request:  ab -n 50000 -c 100
#   ~1 MB file, keep-alive:                     loadgen http, 100 connections, 10 s
# (wrk -t1 was the client here once: its one thread reads about 2 GB/s,
# and nginx and 07 both stopped at that, so the ratio said nothing.)
# Three rounds, interleaved (nginx, 07, 11, then 07, 11, nginx, ...) so
# that noise from other processes hits all alike; prints each run, the
# medians and the ratios model / nginx. Targets: >= 1.0 on both. Client
# and server share the machine's cores: say so next to the numbers. The
# large runs also give each server's CPU time per request (user + system,
# its whole process tree): where the copies went.
# BASELINE=path/to/07-epoll adds one more server to every round, e.g. a
# build from before a change.
#
# Usage: scripts/bench-files-nginx.sh               (07-epoll and 11-io-uring)
#        MODELS=09-async ROUNDS=5 DURATION=20 scripts/bench-files-nginx.sh
#        NGINX_SENDFILE=off scripts/bench-files-nginx.sh   (nginx copies too)
#        BASELINE=/tmp/07-epoll-old scripts/bench-files-nginx.sh
#        SAVE=1 scripts/bench-files-nginx.sh   # and keep the numbers for the book
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# MODEL, the one-model name of earlier versions, still works.
read -r -a MODELS <<<"${MODELS:-${MODEL:-07-epoll 11-io-uring}}"
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-50000}   # ab -n
CONNECTIONS=${CONNECTIONS:-100}
DURATION=${DURATION:-10}      # seconds per large-file run
NGINX_SENDFILE=${NGINX_SENDFILE:-on}
BASELINE=${BASELINE:-}

need_tool ab apache2-utils
need_tool jq jq
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_tool nginx nginx
(cd "$ROOT" && cargo build --release --quiet "${MODELS[@]/#/--bin=}" --bin loadgen)
machine_line

# The document root, readable by nginx's worker (it drops root to nobody).
DOCS="$SCRATCH/docs"
mkdir -p "$DOCS"
printf '<html><head><title>small</title></head><body>%s</body></html>\n' \
    "$(head -c 300 /dev/zero | tr '\0' 'x')" >"$DOCS/small.html"
head -c 1048576 /dev/urandom >"$DOCS/large.bin"
chmod -R a+rX "$SCRATCH"

NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT" "root $DOCS;" \
    "sendfile $NGINX_SENDFILE; types { text/html html; application/octet-stream bin; }" /small.html
declare -A PORT PID
PORT[nginx]=$NGINX_PORT; PID[nginx]=$NGINX_PID
NAMES=(nginx)
for model in "${MODELS[@]}"; do
    NAMES+=("$model")
    start_model "$model" --mode files --root "$DOCS" --log warn
    PORT[$model]=$MODEL_PORT; PID[$model]=$MODEL_PID
done
if [ -n "$BASELINE" ]; then
    NAMES+=(baseline)
    start_model "$BASELINE" --mode files --root "$DOCS" --log warn
    PORT[baseline]=$MODEL_PORT; PID[baseline]=$MODEL_PID
fi
for port in "${PORT[@]}"; do
    cmp -s <(curl -s "http://127.0.0.1:$port/large.bin") "$DOCS/large.bin" ||
        { echo "error: port $port does not serve large.bin correctly" >&2; exit 1; }
done

ab_rps() { # port
    ab -q -n "$REQUESTS" -c "$CONNECTIONS" "http://127.0.0.1:$1/small.html" 2>&1 |
        awk '/^Failed requests/ && $3 != 0 { print "failed requests: " $3 > "/dev/stderr" }
             /^Requests per second/ { print $4 }'
}
large_rps() { # port pid: prints req/s and the server's CPU µs per request
    local before after
    before=$(cpu_ticks "$2")
    "$ROOT/target/release/loadgen" http --addr "127.0.0.1:$1" --connections "$CONNECTIONS" \
        --duration "${DURATION}s" --path /large.bin --json "$SCRATCH/large.json" >/dev/null 2>&1
    after=$(cpu_ticks "$2")
    # 100 ticks per second: a tick is 10,000 µs.
    jq -r --argjson ticks $((after - before)) '.summary |
        "\(.requests_per_second * 10 | round / 10) \($ticks * 10000 / .requests | round)"' \
        "$SCRATCH/large.json"
}

declare -A RESULTS
for round in $(seq "$ROUNDS"); do
    # Each round starts with the next server: what piles up during a round
    # (ab leaves 50,000 sockets in TIME_WAIT per run) must not always
    # slow down the same one.
    first=$(((round - 1) % ${#NAMES[@]}))
    for name in "${NAMES[@]:first}" "${NAMES[@]:0:first}"; do
        port=${PORT[$name]}
        small=$(ab_rps "$port"); read -r large cpu < <(large_rps "$port" "${PID[$name]}")
        echo "round $round  $name: small $small req/s (ab), large $large req/s (loadgen), $cpu µs CPU per large request" >&2
        RESULTS[$name.small]+="$small "; RESULTS[$name.large]+="$large "; RESULTS[$name.cpu]+="$cpu "
    done
done

echo
echo "files: ${MODELS[*]} vs nginx 1 worker (sendfile $NGINX_SENDFILE), medians of $ROUNDS interleaved rounds,"
echo "client and server sharing $(nproc) cores"
echo "  small = ab -n $REQUESTS -c $CONNECTIONS http://127.0.0.1:PORT/small.html (a new connection each)"
echo "  large = loadgen http --connections $CONNECTIONS --duration ${DURATION}s --path /large.bin (1 MiB, keep-alive)"
echo "  cpu   = the server's user + system CPU time per large request"
for measure in small large cpu; do
    # shellcheck disable=SC2086 # the rounds are words on purpose
    nginx_median=$(median ${RESULTS[nginx.$measure]})
    measured "$measure.nginx" "$nginx_median"
    for name in "${NAMES[@]:1}"; do
        # shellcheck disable=SC2086
        model_median=$(median ${RESULTS[$name.$measure]})
        unit="req/s"; [ "$measure" = cpu ] && unit="µs/req"
        awk -v what="$measure" -v n="$nginx_median" -v m="$model_median" -v model="$name" -v unit="$unit" 'BEGIN {
            printf "%-6s nginx %9.0f %s   %-12s %9.0f %s   ratio %.2f\n", what, n, unit, model, m, unit, m / n }'
        measured "$measure.$name" "$model_median"
        measured "$measure.$name.of_nginx" "$(awk -v n="$nginx_median" -v m="$model_median" 'BEGIN { printf "%.2f", m / n }')"
    done
done
SAVED_SETTINGS="MODELS='${MODELS[*]}' ROUNDS=$ROUNDS REQUESTS=$REQUESTS CONNECTIONS=$CONNECTIONS DURATION=$DURATION NGINX_SENDFILE=$NGINX_SENDFILE" \
    save_measured files-nginx
