#!/usr/bin/env bash
# 11-io-uring against 07-epoll, side by side in one run: the same server
# loop, once waiting for readiness and once for completions.
#
#   1. requests/s on the 0 ms page:  wrk -t1 -c50, ROUNDS rounds, interleaved,
#      and the server's CPU time per request in the same runs
#   2. echo messages/s:              loadgen echo, 100 connections, interleaved,
#      and again the server's CPU time per message
#   2b. small file, files mode:      ab -n SMALL -c 100, a new connection per
#      request (the accept and close path), interleaved
#   3. syscalls per request:         strace -c -f over ab -k -n REQUESTS -c 50
#   4. RSS per idle connection:      loadgen hold, HELD idle connections
#
# Medians over the rounds, and the ratio 11 / 07, printed beside the CPU
# model and core count: the ratio depends on the CPU (an Intel Xeon and an
# AMD EPYC disagreed). Client and server share the machine's cores, so read
# the ratios more than the numbers.
#
# Usage: scripts/bench-uring-vs-epoll.sh
#        ROUNDS=5 DURATION=10 REQUESTS=50000 SMALL=20000 HELD=10000 scripts/bench-uring-vs-epoll.sh
#        SAVE=1 scripts/bench-uring-vs-epoll.sh   # and keep the numbers for the book
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}     # seconds per throughput run
REQUESTS=${REQUESTS:-20000} # requests under strace
SMALL=${SMALL:-20000}       # ab requests for the small file, per round
HELD=${HELD:-10000}         # idle connections for the memory run
MODELS=(07-epoll 11-io-uring)

need_tool wrk wrk
need_tool ab apache2-utils
need_tool strace strace
need_tool jq jq
echo "building release binaries ..." >&2
(cd "$ROOT" && cargo build --release --quiet -p loadgen -p epoll -p io-uring-model)
LOADGEN="$ROOT/target/release/loadgen"
# The small file of scripts/bench-files-nginx.sh: a page of about 350 bytes.
DOCS="$SCRATCH/docs"
mkdir -p "$DOCS"
printf '<html><head><title>small</title></head><body>%s</body></html>\n' \
    "$(head -c 300 /dev/zero | tr '\0' 'x')" >"$DOCS/small.html"

declare -A http cpu echoes echo_cpu small syscalls calls_detail rss_per_connection
for round in $(seq "$ROUNDS"); do
  for model in "${MODELS[@]}"; do
    echo "round $round/$ROUNDS: $model" >&2
    start_model "$model" --mode http --db-latency 0ms --log warn
    wrk -t1 -c50 -d"${DURATION}s" "http://$MODEL_ADDR/" >"$SCRATCH/wrk.out"
    # The server's CPU per request (100 ticks per second).
    ticks=$(cpu_ticks "$MODEL_PID")
    stop_model
    http[$model]+="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$SCRATCH/wrk.out") "
    cpu[$model]+="$(awk -v t="$ticks" '/ requests in / { printf "%.2f", t * 10000 / $1 }' "$SCRATCH/wrk.out") "

    start_model "$model" --mode echo --log warn
    "$LOADGEN" --threads 1 echo --addr "$MODEL_ADDR" --connections 100 \
      --duration "${DURATION}s" --json "$SCRATCH/echo.json" >"$SCRATCH/echo.out" 2>&1 || true
    ticks=$(cpu_ticks "$MODEL_PID")
    stop_model
    rate=$(jq '.summary.requests_per_second | round' "$SCRATCH/echo.json" 2>/dev/null || echo 0)
    echo_cpu[$model]+="$(jq --argjson t "$ticks" '$t * 10000 / ([.summary.requests, 1] | max) * 100 | round / 100' "$SCRATCH/echo.json" 2>/dev/null || echo 0) "
    if [ "$rate" = 0 ]; then
      echo "warning: the echo run against $model measured nothing:" >&2
      tail -n 15 "$SCRATCH/echo.out" >&2
    fi
    echoes[$model]+="$rate "

    start_model "$model" --mode files --root "$DOCS" --log warn
    rate=$(ab -q -n "$SMALL" -c 100 "http://$MODEL_ADDR/small.html" 2>&1 |
      awk '/^Failed requests/ && $3 != 0 { print "warning: failed requests: " $3 > "/dev/stderr" }
           /^Requests per second/ { printf "%.0f", $4 }')
    stop_model
    small[$model]+="${rate:-0} "
  done
done

for model in "${MODELS[@]}"; do
  echo "strace: $model, $REQUESTS requests" >&2
  trace="$SCRATCH/$model.strace"
  strace -c -f -o "$trace" "$(model_binary "$model")" --addr 127.0.0.1:0 --mode http \
    --db-latency 0ms --log warn >"$SCRATCH/strace.out" 2>/dev/null &
  tracer=$!
  for _ in $(seq 100); do grep -q '^listening on' "$SCRATCH/strace.out" && break; sleep 0.1; done
  line=$(head -n 1 "$SCRATCH/strace.out")
  addr=$(awk '{ print $3 }' <<<"$line")
  pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line")
  ab -q -k -n "$REQUESTS" -c 50 "http://$addr/" >"$SCRATCH/ab.out"
  failed=$(awk '/^Failed requests:/ { print $3 }' "$SCRATCH/ab.out")
  kill -TERM "$pid"
  wait "$tracer" || true
  [ "$failed" = 0 ] || echo "warning: ab saw $failed failed requests against $model" >&2
  syscalls[$model]=$(strace_total "$trace" "$REQUESTS" 2)
  calls_detail[$model]=$(strace_by_name "$trace" "$REQUESTS" 0.01)
done

for model in "${MODELS[@]}"; do
  echo "hold: $model, $HELD idle connections" >&2
  start_model "$model" --mode echo --idle-timeout 60s --log warn
  before=$(awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$MODEL_PID/status")
  "$LOADGEN" hold --addr "$MODEL_ADDR" --connections "$HELD" --connect-rate 5000 \
    --duration 6s --pid "$MODEL_PID" --json "$SCRATCH/hold.json" >/dev/null 2>&1
  stop_model
  open=$(jq .hold.open_at_end "$SCRATCH/hold.json")
  peak=$(jq .resources.server.rss_bytes.peak "$SCRATCH/hold.json")
  rss_per_connection[$model]=$(awk -v p="$peak" -v b="$before" -v n="$open" \
    'BEGIN { printf "%.0f", (p - b) / n }')
  [ "$open" = "$HELD" ] || echo "warning: only $open of $HELD held against $model" >&2
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# shellcheck disable=SC2086 # the rounds are words on purpose
h07=$(median ${http[07-epoll]})
h11=$(median ${http[11-io-uring]})
e07=$(median ${echoes[07-epoll]})
e11=$(median ${echoes[11-io-uring]})
c07=$(median ${cpu[07-epoll]})
c11=$(median ${cpu[11-io-uring]})
ec07=$(median ${echo_cpu[07-epoll]})
ec11=$(median ${echo_cpu[11-io-uring]})
s07=$(median ${small[07-epoll]})
s11=$(median ${small[11-io-uring]})

cat <<EOF

$(machine_line); medians of $ROUNDS interleaved rounds.

| measure | 07-epoll | 11-io-uring | 11 / 07 |
|---|---|---|---|
| HTTP req/s, 0 ms page, wrk -t1 -c50 -d${DURATION}s | $(printf '%.0f' "$h07") | $(printf '%.0f' "$h11") | $(ratio "$h11" "$h07") |
| server CPU per HTTP request (same runs) | ${c07} µs | ${c11} µs | $(ratio "$c11" "$c07") |
| echo msg/s, loadgen --threads 1 echo --connections 100 | $(printf '%.0f' "$e07") | $(printf '%.0f' "$e11") | $(ratio "$e11" "$e07") |
| server CPU per echo message (same runs) | ${ec07} µs | ${ec11} µs | $(ratio "$ec11" "$ec07") |
| small file req/s, --mode files, ab -n $SMALL -c 100 (new connection each) | $(printf '%.0f' "$s07") | $(printf '%.0f' "$s11") | $(ratio "$s11" "$s07") |
| syscalls per request, strace -c -f, ab -k -n $REQUESTS -c 50 | ${syscalls[07-epoll]} | ${syscalls[11-io-uring]} | $(ratio "${syscalls[11-io-uring]}" "${syscalls[07-epoll]}") |
| RSS per idle connection, loadgen hold --connections $HELD | ${rss_per_connection[07-epoll]} B | ${rss_per_connection[11-io-uring]} B | $(ratio "${rss_per_connection[11-io-uring]}" "${rss_per_connection[07-epoll]}") |

rounds, HTTP req/s: 07 ${http[07-epoll]}/ 11 ${http[11-io-uring]}
rounds, server CPU µs per HTTP request: 07 ${cpu[07-epoll]}/ 11 ${cpu[11-io-uring]}
rounds, echo msg/s: 07 ${echoes[07-epoll]}/ 11 ${echoes[11-io-uring]}
rounds, server CPU µs per echo message: 07 ${echo_cpu[07-epoll]}/ 11 ${echo_cpu[11-io-uring]}
rounds, small file req/s: 07 ${small[07-epoll]}/ 11 ${small[11-io-uring]}
syscalls per request (>= 0.01):
  07-epoll:    ${calls_detail[07-epoll]}
  11-io-uring: ${calls_detail[11-io-uring]}
EOF

# The numbers the 11 chapter quotes, kept with SAVE=1.
# shellcheck disable=SC2086 # the rounds are words on purpose
for model in "${MODELS[@]}"; do
  key=${model%%-*}
  measured "page.$key.rps" "$(median ${http[$model]})"
  measured "page.$key.cpu_us_per_request" "$(median ${cpu[$model]})"
  measured "echo.$key.rps" "$(median ${echoes[$model]})"
  measured "echo.$key.cpu_us_per_message" "$(median ${echo_cpu[$model]})"
  measured "small.$key.rps" "$(median ${small[$model]})"
  measured "syscalls.$key.per_request" "${syscalls[$model]}"
  measured "hold.$key.rss_per_connection_bytes" "${rss_per_connection[$model]}"
done
measured page.11_of_07 "$(ratio "$h11" "$h07")"
measured echo.11_of_07 "$(ratio "$e11" "$e07")"
measured small.11_of_07 "$(ratio "$s11" "$s07")"
SAVED_SETTINGS="ROUNDS=$ROUNDS DURATION=$DURATION REQUESTS=$REQUESTS SMALL=$SMALL HELD=$HELD" \
  save_measured uring-vs-epoll
