#!/usr/bin/env bash
# The dashboard in a real headless Chromium: builds nami-httpd, starts it with the embedded
# simulator (and a second one that requires a token) on free loopback ports with temporary state
# directories (the main one allows the origin of a page the test serves on POS_ORIGIN_PORT), runs
# dashboard.test.mjs (playwright-core driving Debian's /usr/bin/chromium),
# writes screenshots to target/dashboard-screenshots/, stops the daemons, and prints
# `N passed, N failed`. Installs Chromium (apt) and playwright-core (npm ci) when missing.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SHOTS="$TARGET/dashboard-screenshots"
T0=$(date +%s)

fail() {
  echo "dashboard browser test: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
# playwright-core only (no browser download): the version in package-lock.json.
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ] \
  || [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

# DASHBOARD_SKIP_BUILD=1: use the binary already built (e.g. by `cargo test`).
if [ -z "${DASHBOARD_SKIP_BUILD:-}" ]; then
  source scripts/build-once.sh
  built_once cargo build -p nami-httpd --locked
fi
BIN="$TARGET/debug/nami-httpd"
[ -x "$BIN" ] || fail "no binary at $BIN"

WORK=$(mktemp -d -t nami-dashboard-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts the daemon named $1 with the other arguments; sets URL_<name> from `listening on`.
start_daemon() {
  local name=$1
  shift
  local dir="$WORK/$name"
  mkdir -p "$dir"
  : >"$dir/empty.toml"
  # A clean environment: no NAMI_* of the caller's shell, no config file of the user's.
  env $(env | sed -n 's/^\(NAMI_[A-Z_]*\)=.*/-u \1/p') ${DAEMON_ENV:-} \
    "$BIN" --config "$dir/empty.toml" --state-dir "$dir/state" --listen 127.0.0.1:0 "$@" \
    >"$dir/stdout" 2>"$dir/stderr" &
  PIDS+=("$!")
  local i
  for i in $(seq 1 200); do
    if grep -q '^listening on ' "$dir/stdout" 2>/dev/null; then
      return 0
    fi
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/stderr" >&2 || true
  fail "the $name daemon did not start"
}

# A free port for the page of an allowed origin (dashboard.test.mjs serves it there).
POS_ORIGIN_PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
start_daemon main --simulator --simulator-listen 127.0.0.1:0 --card-present-timeout-secs 4 \
  --settlement-timeout-secs 3 --recovery-attention-after 1 \
  --allowed-origin "http://127.0.0.1:$POS_ORIGIN_PORT"
DASHBOARD_URL=$(sed -n 's/^listening on //p' "$WORK/main/stdout")
SIM_ADDR=$(sed -n 's/^simulator listening on //p' "$WORK/main/stdout")
TOKEN="dashboard-$RANDOM-$RANDOM"
DAEMON_ENV="NAMI_TOKEN=$TOKEN" start_daemon token
TOKEN_URL=$(sed -n 's/^listening on //p' "$WORK/token/stdout")

rm -rf "$SHOTS"
mkdir -p "$SHOTS"
status=0
DASHBOARD_URL="$DASHBOARD_URL" SIM_ADDR="$SIM_ADDR" TOKEN_URL="$TOKEN_URL" DASHBOARD_TOKEN="$TOKEN" \
  POS_ORIGIN_PORT="$POS_ORIGIN_PORT" SCREENSHOTS="$SHOTS" node "$HERE/dashboard.test.mjs" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- the daemon's log (last 40 lines) ---" >&2
  tail -n 40 "$WORK/main/stderr" >&2 || true
fi
echo "dashboard browser test: $(($(date +%s) - T0)) s; screenshots in $SHOTS"
exit "$status"
