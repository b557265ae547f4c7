#!/usr/bin/env bash
# Writes nami-httpd/symbol-order.txt: the functions of the daemon's release build that run at
# start-up and on a health request, then those a short load adds (registration, purchases, CHECK
# STATUS), as callgrind saw them execute. nami-httpd's build.rs hands the file to the linker
# (lld's --symbol-ordering-file), which puts these functions first and together in .text, so
# that the pages the daemon touches hold little else: its idle RSS is the code it runs, not
# the code that happens to share a page or a fault-around window with it (nami-httpd/README.md,
# "Code layout").
#
#   bash scripts/symbol-order.sh      # then commit nami-httpd/symbol-order.txt
#
# Run it after a toolchain or dependency update, or a large change to the daemon's start-up or
# request path: symbols are matched by their mangled names, which carry a hash of the crate's
# build; names that no longer exist are skipped, so a stale file costs memory, never a build.
# `release-check.sh --release` reports how many of the file's names the binary still has.
#
#   bash scripts/symbol-order.sh --check BIN   # is the file current for the release build BIN?
#
# --check (CI, release-check.sh --release): fails when fewer than 90 % of the file's names are
# functions of BIN. A stale file is what a dependency or toolchain change leaves (their hashes
# change); code changes rename only the functions they touch (the release profile's fat LTO
# promotes no local function under a `.llvm.<hash>` name, which thin LTO changed on every edit).
# Right after this script ran, all the names are there; with 62 % left, the idle RSS was 9.2 MB
# instead of 7.5, and with thin LTO's 90 %, 8.9 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$ROOT/nami-httpd/symbol-order.txt

if [ "${1:-}" = --check ]; then
  BIN=${2:?usage: scripts/symbol-order.sh --check BIN}
  listed=$(grep -vc '^#' "$OUT")
  present=$(grep -v '^#' "$OUT" | sort -u | comm -12 - <(nm --defined-only "$BIN" | awk '{print $3}' | sort -u) | wc -l)
  echo "symbol-order.sh: $present of the $listed functions of nami-httpd/symbol-order.txt are in $BIN"
  if [ $(( present * 10 )) -lt $(( listed * 9 )) ]; then
    echo "symbol-order.sh: the daemon's code layout is stale (under 90 %): run bash scripts/symbol-order.sh and commit nami-httpd/symbol-order.txt" >&2
    exit 1
  fi
  exit 0
fi
command -v valgrind >/dev/null || { echo "symbol-order.sh: needs valgrind" >&2; exit 1; }
WORK=$(mktemp -d /tmp/nami-symbol-order.XXXXXX)
DAEMON=
cleanup() {
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# The layout does not change the names: the build may use the file being replaced.
cargo build --locked --release -p nami-httpd -p nami-bench
BIN=$TARGET/release/nami-httpd
CALLGRIND=(valgrind --tool=callgrind --demangle=no --dump-instr=no --compress-strings=no --compress-pos=no)

# The functions of the daemon's binary that a callgrind profile saw run (without callgrind's
# `'2` recursion marks, which are not part of a name).
functions_of() {
  awk -v bin="$BIN" '/^ob=/ { ob = substr($0, 4) } /^fn=/ { if (ob == bin) print substr($0, 4) }' "$1" \
    | grep -v -e '^0x' -e '^(below main)' | sed "s/'[0-9]*\$//" | sort -u
}

# 1. Start-up and one health request (what the idle daemon has run), then SIGTERM.
: >"$WORK/empty.toml"
"${CALLGRIND[@]}" --callgrind-out-file="$WORK/idle.out" "$BIN" --listen 127.0.0.1:0 --log info \
  --state-dir "$WORK/state" --config "$WORK/empty.toml" >"$WORK/stdout" 2>"$WORK/stderr" &
DAEMON=$!
for _ in $(seq 1 600); do grep -qs '^listening on ' "$WORK/stdout" && break; sleep 0.1; done
ADDR=$(sed -n 's|^listening on http://||p' "$WORK/stdout" | head -n1)
[ -n "$ADDR" ] || { echo "nami-httpd did not start" >&2; cat "$WORK/stderr" >&2; exit 1; }
python3 - "$ADDR" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(f"http://{sys.argv[1]}/api/health-status", timeout=30) as answer:
    assert answer.status == 200, answer.status
EOF
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
functions_of "$WORK/idle.out" >"$WORK/idle.txt"

# 2. A short load through nami-bench (registration, purchases, CHECK STATUS, shutdown).
"$TARGET/release/nami-bench" --mode daemon --transactions 20 --daemon-bin "$BIN" \
  --daemon-wrapper "${CALLGRIND[*]} --callgrind-out-file=$WORK/load.out" >"$WORK/bench.log" 2>&1 \
  || { cat "$WORK/bench.log" >&2; exit 1; }
functions_of "$WORK/load.out" >"$WORK/load.txt"

{
  echo "# Written by scripts/symbol-order.sh ($(rustc -V)); read by build.rs: lld lays these"
  echo "# functions out first in .text, start-up and health first, then what a short load adds."
  cat "$WORK/idle.txt"
  comm -13 "$WORK/idle.txt" "$WORK/load.txt"
} >"$OUT"
echo "symbol-order.sh: $(grep -vc '^#' "$OUT") functions ($(wc -l <"$WORK/idle.txt") at start-up and health) in $OUT"
