#!/usr/bin/env bash
# The main job: the REST daemon `nami-httpd` on http://127.0.0.1:9099 with an embedded simulated
# terminal (TCP 127.0.0.1:8888, and a pseudo-terminal for the COM path), in the foreground until
# Ctrl-C. State (journal, registrations, certificate) goes to target/nami-httpd-state/.
# NAMI_LISTEN and NAMI_SIMULATOR_LISTEN change the addresses; see nami-httpd/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p nami-httpd
api="${NAMI_LISTEN:-127.0.0.1:9099}"
sim="${NAMI_SIMULATOR_LISTEN:-127.0.0.1:8888}"
sim_ip="${sim%:*}"
sim_port="${sim##*:}"
base="http://$api"
# Fresh ECR references (cash register 12345678 + a 6-digit counter) on every run: the same
# reference twice is answered from the journal ("replay": true) and never charged again.
n=$(date +%H%M%S)
ref1="12345678$n"
ref2="12345678$(printf '%06d' $(( (10#$n + 1) % 1000000 )))"
cat <<EOF
nami-httpd with a simulated terminal. In another shell, try:

# 1. REGISTER with the terminal at $sim (required once before any transaction)
curl -s -X POST $base/performTransactionTCPIP -H 'Content-Type: application/json' \\
  -d '{"tcpipcomData":{"ip":"$sim_ip","port":$sim_port},"paymentRequest":{"txnType":"REGISTER","ecrReferenceNo":"$ref1"}}'

# 2. PURCHASE of SAR 10.00 (amounts ending in .51 are declined, .05 asks a PIN and fails)
curl -s -X POST $base/performTransactionTCPIP -H 'Content-Type: application/json' \\
  -d '{"tcpipcomData":{"ip":"$sim_ip","port":$sim_port},"paymentRequest":{"txnType":"PURCHASE","amount":"10.00","ecrReferenceNo":"$ref2","jsonResponse":true}}'

# 3. Health, the journal, the simulator, the OpenAPI document
curl -s $base/api/health-status
curl -s $base/transactions
curl -s $base/simulator/state
curl -s $base/openapi.json

The COM path: POST /com/connect with {"port": "<the simulator pty printed below>"}, then
/performTransactionCOM with a bare paymentRequest. Stop with Ctrl-C.

EOF
exec target/debug/nami-httpd --simulator --state-dir target/nami-httpd-state "$@"
