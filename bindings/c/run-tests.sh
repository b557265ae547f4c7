#!/usr/bin/env bash
# The C tests of libnami: builds the library and the simulator, starts two simulators (one that
# answers at once, one whose card transactions wait for a tap), compiles the C tests against the
# shared and the static library with -Wall -Wextra -Werror, and a C++ program against the header
# (g++ -std=c++11 -pedantic), runs them under valgrind (no definite leaks, no invalid reads or
# writes), builds and runs examples/c/pos.c, stops the simulators and
# prints "N passed, N failed" (the C checks, plus one per program that crashed or failed valgrind).
#
# NAMI_C_TESTS_NO_VALGRIND=1 runs the programs without valgrind (quicker, for development).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
T0=$(date +%s)
say() { echo "[c $(( $(date +%s) - T0 ))s] $*"; }

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LIB=$TARGET/debug
OUT=$TARGET/c-tests
mkdir -p "$OUT"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pthread -g -I"$ROOT/nami-ffi/include" -I"$ROOT/bindings/c/tests")
# From `cargo rustc -p nami-ffi --lib --crate-type staticlib -- --print native-static-libs`.
STATIC_LIBS=(-lgcc_s -lutil -lrt -lpthread -lm -ldl)

say "cargo build -p nami-ffi -p nami-sim"
source scripts/build-once.sh
built_once cargo build --locked -p nami-ffi -p nami-sim

SIMS=()
cleanup() {
  for pid in "${SIMS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# start_sim NAME ARGS...: starts nami-sim on a free port; sets SIM_PORT.
start_sim() {
  local name=$1; shift
  local log=$OUT/$name.log
  "$LIB/nami-sim" --listen 127.0.0.1:0 "$@" >"$log" 2>"$OUT/$name.err" &
  SIMS+=("$!")
  for _ in $(seq 1 200); do
    # The whole line, newline included (the port may still be half-written otherwise).
    if grep -q '^listening on ' "$log" && [ "$(tail -c1 "$log" | od -An -c | tr -d ' ')" = '\n' ]; then
      SIM_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n1)
      [ -n "$SIM_PORT" ] || { echo "cannot read the port of $name: $(cat "$log")" >&2; exit 1; }
      say "$name listening on port $SIM_PORT"
      return 0
    fi
    sleep 0.05
  done
  echo "nami-sim ($name) did not start:" >&2
  cat "$log" "$OUT/$name.err" >&2
  exit 1
}

start_sim sim
PORT=$SIM_PORT
start_sim sim-card-tap --card-tap
TAP_PORT=$SIM_PORT

say "gcc: tests against the shared and the static library, the example"
gcc "${CFLAGS[@]}" bindings/c/tests/test_nami.c -L"$LIB" -lnami -Wl,-rpath,"$LIB" -o "$OUT/test_nami_shared"
gcc "${CFLAGS[@]}" bindings/c/tests/test_nami.c "$LIB/libnami.a" "${STATIC_LIBS[@]}" -o "$OUT/test_nami_static"
gcc "${CFLAGS[@]}" examples/c/pos.c -L"$LIB" -lnami -Wl,-rpath,"$LIB" -o "$OUT/pos"
say "g++: the header from C++"
command -v g++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++ >/dev/null; }
g++ -std=c++11 -Wall -Wextra -Werror -pedantic -g -I"$ROOT/nami-ffi/include" bindings/c/tests/header_cpp.cpp \
  -L"$LIB" -lnami -Wl,-rpath,"$LIB" -o "$OUT/header_cpp"

VALGRIND=()
if [ "${NAMI_C_TESTS_NO_VALGRIND:-}" != 1 ]; then
  command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
  VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
            --show-leak-kinds=definite --track-origins=yes)
fi

PASSED=0
FAILED=0
# run NAME CMD...: runs a test program, adds its "N passed, N failed" to the totals.
run() {
  local name=$1; shift
  say "run $name${VALGRIND:+ under valgrind}"
  local log=$OUT/$name.out rc=0
  "${VALGRIND[@]}" "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  local line p f
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1 || true)
  p=$(sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/p' <<<"$line")
  f=$(sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/p' <<<"$line")
  if [ -z "$line" ]; then
    # A program without a count of its own (the example) is one check: its exit status.
    if [ "$rc" -eq 0 ]; then PASSED=$(( PASSED + 1 )); return; fi
    p=0; f=0
  fi
  PASSED=$(( PASSED + ${p:-0} ))
  FAILED=$(( FAILED + ${f:-0} ))
  if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
    echo "$name exited with status $rc (99: valgrind found errors)" >&2
    FAILED=$(( FAILED + 1 ))
  fi
}

# Each run uses its own cash register number: the simulators keep one journal for all runs.
run test_nami_shared "$OUT/test_nami_shared" "$PORT" "$TAP_PORT" 11111111
run test_nami_static "$OUT/test_nami_static" "$PORT" "$TAP_PORT" 22222222
run header_cpp "$OUT/header_cpp" "$PORT" 44444444
POS_STATE=$(mktemp -d)
run pos "$OUT/pos" 127.0.0.1 "$PORT" 33333333 "$POS_STATE"
rm -rf "$POS_STATE"

say "done"
echo "c: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
