#!/usr/bin/env bash
# The C# binding's tests: builds libnami and nami-sim, starts nami-sim (with its HTTP control API) on
# free ports, compiles the Nami library, the NUnit 2.6 tests and the example with Mono's mcs
# (C# 7.2), copies libnami.so next to the assemblies, runs nunit-console, stops the simulator and
# prints "N passed, N failed" (NUnit 2.6's own summary is not a line CI recognises).
#
# Installs Mono and NUnit with apt when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
T0=$(date +%s)
say() { echo "[csharp $(( $(date +%s) - T0 ))s] $*"; }

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LIB=$TARGET/debug
OUT=$TARGET/csharp-tests
NUNIT=/usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll
MCS=(mcs -langversion:7.2 -nologo -warnaserror+)

need=()
command -v mcs >/dev/null || need+=(mono-mcs)
command -v mono >/dev/null || need+=(mono-runtime)
command -v nunit-console >/dev/null || need+=(nunit-console)
[ -f "$NUNIT" ] || need+=(libnunit-cil-dev)
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends mono-mcs mono-runtime nunit-console libnunit-cil-dev >/dev/null
fi

say "cargo build -p nami-ffi -p nami-sim"
source scripts/build-once.sh
built_once cargo build --locked -p nami-ffi -p nami-sim

rm -rf "$OUT" && mkdir -p "$OUT"

say "mcs: Nami.dll (with its XML docs), the tests, the example"
# Warnings are errors: CS1591 names a public member without an XML doc comment.
"${MCS[@]}" -target:library -doc:"$OUT/Nami.xml" -out:"$OUT/Nami.dll" bindings/csharp/Nami/*.cs
"${MCS[@]}" -target:library -r:"$OUT/Nami.dll" -r:"$NUNIT" -r:System.dll -r:System.Core.dll \
  -out:"$OUT/Nami.Tests.dll" bindings/csharp/tests/*.cs
"${MCS[@]}" -target:exe -r:"$OUT/Nami.dll" -out:"$OUT/Pos.exe" examples/csharp/Pos.cs
cp "$LIB/libnami.so" "$OUT/"   # DllImport("nami") -> libnami.so next to the assembly

SIM_PID=
cleanup() {
  if [ -n "$SIM_PID" ]; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

say "start nami-sim"
"$LIB/nami-sim" --listen 127.0.0.1:0 --control 127.0.0.1:0 --pty >"$OUT/sim.log" 2>"$OUT/sim.err" &
SIM_PID=$!
for _ in $(seq 1 200); do
  grep -qs '^listening on ' "$OUT/sim.log" && break
  sleep 0.05
done
grep -q '^listening on ' "$OUT/sim.log" || { echo "nami-sim did not start:" >&2; cat "$OUT/sim.log" "$OUT/sim.err" >&2; exit 1; }
export NAMI_SIM_PORT NAMI_SIM_CONTROL NAMI_SIM_PTY
NAMI_SIM_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$OUT/sim.log" | head -n1)
NAMI_SIM_CONTROL=$(sed -n 's/^control on \(http:[^ ]*\)$/\1/p' "$OUT/sim.log" | head -n1)
NAMI_SIM_PTY=$(sed -n 's/^pty: \(.*\)$/\1/p' "$OUT/sim.log" | head -n1)
say "nami-sim on port $NAMI_SIM_PORT, control $NAMI_SIM_CONTROL, pty $NAMI_SIM_PTY"

say "nunit-console"
rc=0
(cd "$OUT" && nunit-console -nologo -noshadow -labels -xml="$OUT/nunit-result.xml" Nami.Tests.dll) 2>&1 \
  | tee "$OUT/nunit.txt" || rc=${PIPESTATUS[0]}

say "example: Pos.exe against the simulator"
example_rc=0
POS_STATE=$(mktemp -d)
(cd "$OUT" && mono Pos.exe 127.0.0.1 "$NAMI_SIM_PORT" 33333333 "$POS_STATE") >"$OUT/pos.txt" 2>&1 || example_rc=$?
rm -rf "$POS_STATE"
sed 's/^/  pos: /' "$OUT/pos.txt"

read -r run errors failures < <(sed -nE 's/^Tests run: ([0-9]+), Errors: ([0-9]+), Failures: ([0-9]+).*/\1 \2 \3/p' "$OUT/nunit.txt" | tail -n1) || true
run=${run:-0}; errors=${errors:-0}; failures=${failures:-0}
passed=$(( run - errors - failures ))
failed=$(( errors + failures ))
# The example counts as one more check.
if [ "$example_rc" -eq 0 ]; then passed=$(( passed + 1 )); else failed=$(( failed + 1 )); echo "Pos.exe exited with $example_rc" >&2; fi
if [ "$run" -eq 0 ] || { [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; }; then
  echo "nunit-console exited with $rc without a result" >&2
  failed=$(( failed + 1 ))
fi
say "done"
echo "csharp: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
