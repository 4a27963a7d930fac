#!/usr/bin/env bash
# The comparison a teacher runs: builds the workspace in release, then
# `bench compare` starts each model itself, puts it under the same
# scenarios, stops it, and writes results.json, results.csv, results.md and
# the SVG plots into docs/src/results/ (the book includes them).
#
#   scripts/compare.sh                 full run, about 90 minutes on 2
#                                      cores, into docs/src/results/ (the book's)
#   scripts/compare.sh --quick         same matrix, short cells: about 13 min,
#                                      into compare-results/quick/
#   scripts/compare.sh --quick --out /tmp/quick    somewhere else
#   scripts/compare.sh --scenario c10k --update    re-measure part of the
#                                      book's results, keep the rest
#   scripts/compare.sh --scenario lab --models 01,03,07 --out /tmp/lab
#
# Every other flag goes to `bench compare` (see its --help). A quick
# run's results.md says in its first lines that it was a quick run.
# bench stops every server it started, also on Ctrl-C (SIGKILL to the
# server's process group after a deadline).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Paths are relative to the workspace root, so the command written into
# the results reads the same on every machine.
cd "$ROOT"
# A full run replaces the committed results the book shows; a quick run
# goes to compare-results/quick (ignored by git), so trying the command
# never overwrites them with rough numbers; --out is the caller's choice
# (relative to the root). Part of the matrix (--scenario, --models,
# --clients, --cell-duration) written into the book's folder would replace
# its whole run with a few cells: such a run must say --update (merge into
# it) or --out (elsewhere).
quick="" chose_out="" update="" partial=""
for argument in "$@"; do
  case "$argument" in
    --quick) quick=1 ;;
    --out|--out=*) chose_out=1 ;;
    --update) update=1 ;;
    --scenario|--scenario=*|--models|--models=*|--clients|--clients=*|--cell-duration|--cell-duration=*)
      partial=$argument ;;
  esac
done
if [ -n "$chose_out" ]; then out=()
elif [ -n "$quick" ]; then out=(--out compare-results/quick)
else
  out=(--out docs/src/results)
  if [ -n "$partial" ] && [ -z "$update" ]; then
    echo "error: $partial runs part of the comparison; add --update to merge it into" \
      "docs/src/results (the book's), or --out DIR to write it elsewhere" >&2
    exit 2
  fi
fi

started=$(date +%s)
PROFILE=release build_models
built=$(date +%s)
target/release/bench compare --bin-dir target/release "${out[@]}" "$@"
finished=$(date +%s)
echo "compare.sh: build $(( built - started )) s, comparison $(( finished - built )) s," \
  "total $(( finished - started )) s" >&2
