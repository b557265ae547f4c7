#!/usr/bin/env bash
# Checks scripts/run.sh as a newcomer uses it: started with other addresses (`--listen` and
# `--simulator-listen` on free ports), it prints curl commands with the addresses the daemon
# really listens on, the REGISTER and PURCHASE commands work as printed, its OpenAPI document is
# valid, and TERM stops it.
# Prints `run.sh: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }
WORK=$(mktemp -d)
PASSED=0
FAILED=0
check() {
  local name=$1; shift
  if "$@"; then PASSED=$(( PASSED + 1 )); echo "ok: $name"; else FAILED=$(( FAILED + 1 )); echo "FAILED: $name"; fi
}
RUN=
cleanup() {
  [ -z "$RUN" ] || { kill -TERM "$RUN" 2>/dev/null || true; wait "$RUN" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT

# A clean environment: no NAMI_* of the caller's shell.
env $(env | sed -n 's/^\(NAMI_[A-Z_]*\)=.*/-u \1/p') NAMI_STATE_DIR="$WORK/state" \
  bash scripts/run.sh --listen 127.0.0.1:0 --simulator-listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" &
RUN=$!
for _ in $(seq 1 600); do
  grep -qs 'Stop with Ctrl-C' "$WORK/out" && break
  kill -0 "$RUN" 2>/dev/null || break
  sleep 0.1
done
check "run.sh prints its commands" grep -q 'Stop with Ctrl-C' "$WORK/out"
api=$(sed -n 's/^listening on //p' "$WORK/out" | head -n1)
sim=$(sed -n 's/^simulator listening on //p' "$WORK/out" | head -n1)
check "the daemon listens on a port of its own choosing (--listen honoured)" \
  bash -c "[[ '$api' =~ ^http://127\.0\.0\.1:[0-9]+$ && '$api' != http://127.0.0.1:9099 ]]"
check "the curl commands use that address" grep -q "curl -s -X POST $api/performTransactionTCPIP" "$WORK/out"
check "and the simulator's (--simulator-listen honoured)" grep -q "\"port\":${sim##*:}}" "$WORK/out"
# The REGISTER and PURCHASE commands, run as printed.
sed -n '/^# 1. REGISTER/,/^# 3\./p' "$WORK/out" | grep -v '^#' >"$WORK/commands.sh"
bash "$WORK/commands.sh" >"$WORK/replies" 2>&1 || true
check "REGISTER and PURCHASE as printed are approved (REGISTER's code is 800)" \
  bash -c "[ \$(grep -o '\"approved\": *true' '$WORK/replies' | wc -l) -eq 2 ]"
# The document a client generator reads (openapi-generator, NSwag, ...) is valid OpenAPI 3.1: a
# `$ref` to a schema it lacked once made it unusable for them.
source scripts/python-venv.sh
python_venv target/openapi-venv openapi-spec-validator==0.9.0
curl -s "$api/openapi.json" -o "$WORK/openapi.json"
check "its OpenAPI document is valid (openapi-spec-validator)" target/openapi-venv/bin/openapi-spec-validator "$WORK/openapi.json"
kill -TERM "$RUN"
rc=0
wait "$RUN" || rc=$?
RUN=
check "TERM stops the script (status $rc)" test "$rc" -eq 143
check "and the daemon (its address no longer answers)" bash -c "! curl -s -m 2 $api/api/health-status >/dev/null"
if [ "$FAILED" -gt 0 ]; then
  echo "--- run.sh's output ---"; cat "$WORK/out" "$WORK/err"; echo "--- the replies ---"; cat "$WORK/replies" || true
fi
echo "run.sh: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
