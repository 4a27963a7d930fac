#!/usr/bin/env bash
# Who waits where, measured: for every model (or the ones named), three
# clients at once against `--mode http --log debug`, drawn from the
# server's own log lines into docs/src/timelines/NN-model.svg, with the
# table docs/src/timelines/table.md; docs/src/timelines.md shows them.
#
#   scripts/timelines.sh              all eleven (about a minute)
#   scripts/timelines.sh 01 07        just these (the table then lists
#                                     only these: run all before committing)
#
# Builds the models and bench (release) first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
echo "building the models and bench (release)..." >&2
cargo build --release --quiet --bins
models=$(IFS=,; echo "${*:-all}")
target/release/bench timelines --models "$models" --bin-dir target/release --out docs/src/timelines
