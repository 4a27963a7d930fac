#!/usr/bin/env bash
# Writes the diffs that the book shows between neighbouring models into
# docs/src/diffs/, so each chapter can show "what changed from the previous
# model" as a real diff of the real code. With --check, only verifies that
# the committed diffs are current (the test suite runs this).
#
# A diff is about code: the book's `// ANCHOR:` markers are dropped before
# diffing, and a hunk whose changed lines are all comments is left out
# (diff -I), so a reworded comment does not read as a change of model. A
# hunk that changes code shows its comments too. Line numbers in the hunk
# headers count without the anchor lines.
#
#   scripts/book-diffs.sh            # regenerate
#   scripts/book-diffs.sh --check    # exit 1 if any diff is stale
set -euo pipefail
cd "$(dirname "$0")/.."
command -v diff >/dev/null || { echo "diff is missing: apt-get install diffutils" >&2; exit 1; }

# "model previous" pairs: each model against the one before it, and
# 08-coroutines also against 02-thread-per-client, which it reads like.
pairs=(
  "02-thread-per-client 01-blocking"
  "03-thread-pool 02-thread-per-client"
  "04-prefork 03-thread-pool"
  "05-prefork-threads 04-prefork"
  "06-select 05-prefork-threads"
  "07-epoll 06-select"
  "08-coroutines 07-epoll"
  "08-coroutines 02-thread-per-client"
  "09-async 08-coroutines"
  "10-mini-runtime 09-async"
  # Not models but the two drivers: what async changes in the same loop.
  "common/src/async_driver.rs common/src/driver.rs"
  "11-io-uring 07-epoll"
)

# A model's code is its main.rs; a pair of files is diffed as it is.
source_of() { if [ -f "$1" ]; then echo "$1"; else echo "$1/src/main.rs"; fi; }
# The file without the book's anchor markers.
without_anchors() { grep -v -E '^[[:space:]]*// ANCHOR(_END)?:' "$1" || true; }

check=false
[ "${1:-}" = "--check" ] && check=true
out=docs/src/diffs
$check || mkdir -p "$out"
stale=0
for pair in "${pairs[@]}"; do
  read -r model previous <<<"$pair"
  new=$(source_of "$model") old=$(source_of "$previous")
  [ -f "$new" ] && [ -f "$old" ] || continue
  target="$out/$(basename "$model" .rs)-vs-$(basename "$previous" .rs).diff"
  # diff exits 1 when the files differ, which is the normal case here.
  fresh=$(diff -u -I '^[[:space:]]*//' --label "$old" --label "$new" \
    <(without_anchors "$old") <(without_anchors "$new") || true)
  if $check; then
    if [ ! -f "$target" ] || [ "$fresh" != "$(cat "$target")" ]; then
      echo "stale: $target" >&2
      stale=1
    fi
  else
    printf '%s\n' "$fresh" >"$target"
    echo "wrote $target"
  fi
done
exit $stale
