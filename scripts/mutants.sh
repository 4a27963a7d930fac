#!/usr/bin/env bash
# Mutation testing of the sans-IO session: cargo-mutants changes one
# operator, constant or return value at a time (`*` for `+`, `<=` for `<`,
# a function body for `Default::default()`) and reruns the package's own
# unit tests. A mutant the tests do not catch ("missed") is a behaviour the
# tests do not pin: a limit off by one, a branch nobody checks.
#
#   scripts/mutants.sh                 # the session (common/src/session*)
#   scripts/mutants.sh --drivers       # the three drivers, each against
#                                      # the conformance suite of a model
#                                      # that runs on it (see below)
#   scripts/mutants.sh -- -j 2         # extra flags for cargo mutants
#
# The drivers are tested over real sockets by the conformance suite, which
# lives in the models' packages, so each driver's mutants are run against
# one model that uses it: driver.rs (01-05, 08) against 01-blocking,
# async_driver.rs (09, 10) against 09-async, event_loop.rs (06, 07)
# against 07-epoll. A suite takes about 25 s and every mutant rebuilds the
# model, so on 2 cores this is about a minute per mutant (137 in all).
#
# Results go to mutants.out/ (session) or mutants.out-drivers/DRIVER/
# mutants.out/ (drivers), gitignored: missed.txt, caught.txt, timeout.txt.
# On 2 cores the session's ~280 mutants take about half an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo mutants --version >/dev/null 2>&1; then
  echo "cargo-mutants is missing: cargo install --locked cargo-mutants" >&2
  exit 1
fi
if [ "${1:-}" = "--drivers" ]; then
  shift
  [ "${1:-}" = "--" ] && shift
  status=0
  for pair in driver:blocking async_driver:async-tokio event_loop:epoll; do
    driver=${pair%%:*} package=${pair#*:}
    mkdir -p "mutants.out-drivers/$driver"
    echo "== common/src/$driver.rs against the conformance suite of $package" >&2
    # The timeout is explicit: cargo-mutants would derive it from the
    # baseline's tests, which are common's (under a second), and cut every
    # suite of 15-25 s at its 20 s minimum as a "timeout".
    cargo mutants --package common -f "common/src/$driver.rs" --profile mutants \
      --test-package "$package" --timeout 90 --output "mutants.out-drivers/$driver" "$@" || status=$?
  done
  exit "$status"
fi
files=(-f 'common/src/session.rs' -f 'common/src/session/*.rs'
       -e 'common/src/session/tests.rs' -e 'common/src/session/tests/*')
[ "${1:-}" = "--" ] && shift
exec cargo mutants --package common "${files[@]}" --profile mutants --output . "$@" -- --lib
