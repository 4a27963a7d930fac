#!/usr/bin/env bash
# Coverage-guided fuzzing of the sans-IO core (fuzz/, libFuzzer via
# cargo fuzz, nightly toolchain): every target for SECONDS each (default
# 60), then one line per target with its executions, coverage and crashes.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 600        # 10 min per target
#   TARGETS="http_session" scripts/fuzz.sh 30
#
# A crash leaves its input in fuzz/artifacts/TARGET/; replay it with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`, then
# turn it into a unit test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "error: fuzzing needs the nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "error: cargo fuzz is missing: cargo install cargo-fuzz" >&2
  exit 1
fi
targets=${TARGETS:-$(cargo +nightly fuzz list)}
cargo +nightly fuzz build >&2

status=0
summary=()
for target in $targets; do
  mkdir -p "fuzz/corpus/$target"
  log=$(mktemp)
  echo "fuzzing $target for ${seconds}s..." >&2
  # Seeds (committed) and the corpus grown so far (not committed).
  if cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    verdict="no crash"
  else
    verdict="CRASH (see fuzz/artifacts/$target/)"
    status=1
    tail -30 "$log" >&2
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  summary+=("$(printf '%-16s %12s executions  %-10s  %s' "$target" "${runs:-?}" "${cov:-cov: ?}" "$verdict")")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
exit $status
