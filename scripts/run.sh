#!/usr/bin/env bash
# The main job: the REST daemon `nami-httpd` on http://127.0.0.1:9099 with an embedded simulated
# terminal (TCP 127.0.0.1:8888, and a pseudo-terminal for the COM path), in the foreground until
# Ctrl-C. State (journal, registrations, certificate) goes to target/nami-httpd-state/.
#
# Other addresses: flags after the script's name go to the daemon, e.g.
#   bash scripts/run.sh --listen 127.0.0.1:9100 --simulator-listen 127.0.0.1:8889
# (or NAMI_LISTEN / NAMI_SIMULATOR_LISTEN / NAMI_STATE_DIR; see nami-httpd/README.md). The curl
# commands printed below use the addresses the daemon reports once it listens, whichever way
# they were chosen (port 0 included).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}

# A first build takes minutes: say so, and let cargo show its progress.
if [ ! -x "$TARGET/debug/nami-httpd" ]; then
  echo "Building nami-httpd and the nami tool (the first build takes a few minutes; later runs start at once)..."
fi
cargo build --locked -p nami-httpd -p nami-cli

export NAMI_STATE_DIR=${NAMI_STATE_DIR:-$TARGET/nami-httpd-state}
LOG=$(mktemp)
# The daemon's output goes to the screen and to $LOG, where its readiness lines are read from.
"$TARGET/debug/nami-httpd" --simulator "$@" > >(tee "$LOG") &
DAEMON=$!
# Ctrl-C reaches the daemon too (the same process group): wait for its graceful stop. A TERM to
# this script is passed on. Any other exit (the daemon did not start) leaves nothing running.
trap 'wait "$DAEMON"; exit 130' INT
trap 'kill -TERM "$DAEMON" 2>/dev/null; wait "$DAEMON"; exit 143' TERM
trap 'kill -TERM "$DAEMON" 2>/dev/null || true; rm -f "$LOG"' EXIT

# `listening on URL` is the daemon's last line before it serves; it comes within a few seconds.
for _ in $(seq 1 300); do
  grep -q '^listening on ' "$LOG" && break
  kill -0 "$DAEMON" 2>/dev/null || { wait "$DAEMON" || exit $?; exit 1; }
  sleep 0.1
done
base=$(sed -n 's/^listening on //p' "$LOG" | head -n1)
sim=$(sed -n 's/^simulator listening on //p' "$LOG" | head -n1)
[ -n "$base" ] && [ -n "$sim" ] || { echo "nami-httpd did not say where it listens" >&2; exit 1; }
sim_ip=${sim%:*}
sim_port=${sim##*:}
curl="curl -s"
# HTTPS uses the daemon's self-signed certificate (see nami-httpd/README.md, "HTTPS").
case $base in https://*) curl="curl -sk" ;; esac

# Fresh ECR references (cash register 12345678 + a 6-digit counter) on every run: the same
# reference twice is answered from the journal ("replay": true) and never charged again.
n=$(date +%H%M%S)
ref1="12345678$n"
ref2="12345678$(printf '%06d' $(( (10#$n + 1) % 1000000 )))"
cat <<EOF

nami-httpd with a simulated terminal. In another shell, try:

# 1. REGISTER with the terminal at $sim (required once before any transaction)
$curl -X POST $base/performTransactionTCPIP -H 'Content-Type: application/json' \\
  -d '{"tcpipcomData":{"ip":"$sim_ip","port":$sim_port},"paymentRequest":{"txnType":"REGISTER","ecrReferenceNo":"$ref1"}}'

# 2. PURCHASE of SAR 10.00 (amounts ending in .51 are declined, .05 asks a PIN and fails)
$curl -X POST $base/performTransactionTCPIP -H 'Content-Type: application/json' \\
  -d '{"tcpipcomData":{"ip":"$sim_ip","port":$sim_port},"paymentRequest":{"txnType":"PURCHASE","amount":"10.00","ecrReferenceNo":"$ref2","jsonResponse":true}}'

# 3. Health, the journal, the simulator, the OpenAPI document; the dashboard: $base/
$curl $base/api/health-status
$curl $base/transactions
$curl $base/simulator/state
$curl $base/openapi.json

# 4. The same terminal with the nami tool
$TARGET/debug/nami --tcp $sim register --cash-register 12345678
$TARGET/debug/nami --tcp $sim purchase --amount 10.00

The COM path: POST /com/connect with {"port": "<the simulator pty printed above>"}, then
/performTransactionCOM with a bare paymentRequest. Other ports: bash scripts/run.sh --listen
127.0.0.1:9100 --simulator-listen 127.0.0.1:8889. Stop with Ctrl-C.

EOF
wait "$DAEMON"
