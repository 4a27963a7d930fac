#!/usr/bin/env bash
# Mutation testing of the sans-IO session: cargo-mutants changes one
# operator, constant or return value at a time (`*` for `+`, `<=` for `<`,
# a function body for `Default::default()`) and reruns the package's own
# unit tests. A mutant the tests do not catch ("missed") is a behaviour the
# tests do not pin: a limit off by one, a branch nobody checks.
#
#   scripts/mutants.sh                 # the session (common/src/session*)
#   scripts/mutants.sh --drivers       # the blocking driver, with the
#                                      # package's own tests only: see below
#   scripts/mutants.sh -- -j 2         # extra flags for cargo mutants
#
# The drivers are tested over real sockets by the conformance suite, which
# lives in other packages; their mutants are listed here against common's
# own tests to show what only the conformance suite guards.
#
# Results go to mutants.out/ (gitignored): missed.txt, caught.txt, ...
# On 2 cores the session's ~280 mutants take about half an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo mutants --version >/dev/null 2>&1; then
  echo "cargo-mutants is missing: cargo install --locked cargo-mutants" >&2
  exit 1
fi
files=(-f 'common/src/session.rs' -f 'common/src/session/*.rs'
       -e 'common/src/session/tests.rs' -e 'common/src/session/tests/*')
if [ "${1:-}" = "--drivers" ]; then
  files=(-f 'common/src/driver.rs')
  shift
fi
[ "${1:-}" = "--" ] && shift
exec cargo mutants --package common "${files[@]}" --output . "$@" -- --lib
