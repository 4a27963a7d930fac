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
# models that use it, and against common's unit tests: driver.rs (01-05,
# 08) against 01-blocking and 08-coroutines (whose file sending is the
# trait's portable default), async_driver.rs (09, 10) against 09-async,
# event_loop.rs against 07-epoll and 06-select (only 06 asks the loop for
# its `watched` list). A suite takes 15-30 s and every mutant rebuilds the
# model; with `-- -j 2` on 2 cores, about 25 s per mutant (160 in all).
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
  # A suite that overruns its timeout is killed, but the servers it
  # started run in process groups of their own (so that a Ctrl-C reaches
  # only the test) and outlive it, and a mutant's server may spin: 68 of
  # them once slowed every later mutant. So every orphan started from
  # cargo-mutants' build directories is killed while the run lasts.
  (while sleep 3; do pkill -KILL -P 1 -f '/cargo-mutants-.*[.]tmp/target/' || true; done) &
  reaper=$!
  trap 'kill "$reaper" 2>/dev/null || true' EXIT
  status=0
  for pair in driver:blocking,coroutines async_driver:async-tokio event_loop:epoll,select; do
    driver=${pair%%:*} packages=${pair#*:}
    tests=(--test-package common)
    for package in ${packages//,/ }; do tests+=(--test-package "$package"); done
    mkdir -p "mutants.out-drivers/$driver"
    echo "== common/src/$driver.rs against common's unit tests and the suites of $packages" >&2
    # The timeout is explicit: cargo-mutants would derive it from the
    # baseline's tests, which are common's (under a second), and cut every
    # suite of 15-30 s at its 20 s minimum as a "timeout".
    cargo mutants --package common -f "common/src/$driver.rs" --profile mutants \
      "${tests[@]}" --timeout 120 --output "mutants.out-drivers/$driver" "$@" || status=$?
  done
  exit "$status"
fi
files=(-f 'common/src/session.rs' -f 'common/src/session/*.rs'
       -e 'common/src/session/tests.rs' -e 'common/src/session/tests/*')
[ "${1:-}" = "--" ] && shift
exec cargo mutants --package common "${files[@]}" --profile mutants --output . "$@" -- --lib
