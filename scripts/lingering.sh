#!/usr/bin/env bash
# Lingering close, measured as a user meets it: Python's http.client (what
# `requests` stands on) posts a 3 MB body, over the 1 MiB limit, and reads
# the answer only after writing all of it. Without lingering, the server's
# close with unread input makes the kernel reset the connection and the
# client sees BrokenPipeError/ConnectionResetError instead of the 413.
#
#   scripts/lingering.sh                 # every model, 30 posts each
#   TRIES=100 scripts/lingering.sh 01-blocking 07-epoll
#
# Prints, per model, how many posts saw the 413 and what the others got.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_tool python3 python3

TRIES=${TRIES:-30}
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(01-blocking 02-thread-per-client 03-thread-pool 04-prefork
  05-prefork-threads 06-select 07-epoll 08-coroutines 09-async 10-mini-runtime 11-io-uring)
build_models
machine_line

for model in "${models[@]}"; do
  start_model "$model" --mode http --db-latency 0ms
  python3 - "$MODEL_PORT" "$TRIES" "$model" <<'PY'
import collections, http.client, sys
port, tries, model = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = b"x" * 3_000_000
outcomes = collections.Counter()
for _ in range(tries):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/", body=body)
        outcomes[str(connection.getresponse().status)] += 1
    except OSError as error:
        outcomes[type(error).__name__] += 1
    finally:
        connection.close()
others = ", ".join(f"{name}: {count}" for name, count in outcomes.items() if name != "413")
print(f"{model:22} 413 in {outcomes['413']} of {tries}" + (f" ({others})" if others else ""))
PY
  stop_model
done
