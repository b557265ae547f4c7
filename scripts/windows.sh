#!/usr/bin/env bash
# Windows, built and tested on Linux: cross-builds nami.dll, libnami.a, nami-httpd.exe, nami.exe
# and nami-sim.exe for x86_64-pc-windows-gnu and i686-pc-windows-gnu, and runs them under Wine:
# the DLL's exports and imports, the C tests and examples/c against the DLL and the static
# library, nami-sim.exe, nami-httpd.exe with its embedded simulator (REGISTER, PURCHASE, the
# journal), the COM path (a nami-sim pty mapped to COM5, pulled and plugged back), Ctrl-C, and the
# Windows service (install, net stop, net start, install again, uninstall, its log), and the Rust
# unit, property and end-to-end tests that compile for Windows (Wine as cargo's runner).
# Prints the time of each part, then "N passed, N failed".
#
# On a fresh Debian 12 machine (as root) it installs what it needs first: Debian's rustc-web
# (which builds the Windows standard library from source: rustup's Windows std needs a download
# this route avoids), mingw-w64 and Wine 8.0 (64- and 32-bit).
#
# Outputs, for packaging: target/windows/<triple>/ holds nami.dll, libnami.a, libnami.dll.a (the
# import library), nami.h, nami-httpd.exe, nami.exe and nami-sim.exe (debug build;
# NAMI_WINDOWS_PROFILE=release or release-ffi builds those profiles instead). Cargo's own files are in target/windows/cargo/,
# Wine prefixes and logs in target/windows/run/.
#
# NAMI_WINDOWS_ARCHES="x86_64 i686" picks the architectures; NAMI_WINDOWS_RUST_TESTS those whose
# Rust tests run under Wine: every architecture built, for the debug profile (the test run's);
# none for another profile (a release build ships what it compiled, without the tests' features).
# Set it empty to skip them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$(date +%s)
say() { echo "[windows $(( $(date +%s) - T0 ))s] $*"; }
# part NAME: the start of a timed part (the previous one ends); the times are printed at the end,
# wall clock and the CPU time of the programs it ran (user + system; unlike the wall clock, it does
# not grow when other work shares the machine).
PARTS=()
PART=
PART_T0=$T0
PART_CPU0=0
TIMES_FILE=$(mktemp)
# cpu_now: CPU_NOW = the CPU seconds of this shell's finished children. `times` runs in this shell:
# inside $(...) it would report the subshell's children (none).
cpu_now() {
  times >"$TIMES_FILE"
  CPU_NOW=$(tail -n1 "$TIMES_FILE" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] } printf "%.0f", t }')
}
part() {
  local now cpu
  now=$(date +%s)
  cpu_now
  cpu=$CPU_NOW
  [ -z "$PART" ] || PARTS+=("$(printf '%5ss %5ss  %s' $(( now - PART_T0 )) $(( cpu - PART_CPU0 )) "$PART")")
  PART=$1
  PART_T0=$now
  PART_CPU0=$cpu
  [ -z "$1" ] || say "$1"
}

ARCHES=${NAMI_WINDOWS_ARCHES:-"x86_64 i686"}
PROFILE=${NAMI_WINDOWS_PROFILE:-debug}
if [ "$PROFILE" = debug ]; then RUST_TEST_ARCHES=${NAMI_WINDOWS_RUST_TESTS-$ARCHES}; else RUST_TEST_ARCHES=${NAMI_WINDOWS_RUST_TESTS-}; fi
rust_tests_for() { case " $RUST_TEST_ARCHES " in *" $1 "*) return 0 ;; esac; return 1; }
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WIN=$TARGET/windows
RUN=$WIN/run
mkdir -p "$RUN"

PASSED=0
FAILED=0
pass() { PASSED=$(( PASSED + 1 )); echo "  ok   $*"; }
fail() { FAILED=$(( FAILED + 1 )); echo "  FAIL $*"; }
# add_counts LOG: adds the last "N passed, N failed" of a C test program's output.
add_counts() {
  local line
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -n1 || true)
  [ -n "$line" ] || return 1
  PASSED=$(( PASSED + $(sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/p' <<<"$line") ))
  FAILED=$(( FAILED + $(sed -nE 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/p' <<<"$line") ))
}

# ---- 1. what it needs ------------------------------------------------------------------------------
# rustc-web/cargo-web/rust-web-src come from bookworm-security (1.96); wine32 needs the i386
# architecture. Debian's rustc and cargo are called by their full path: a rustup toolchain comes
# first in PATH.
part "what it needs (apt-get, only what is missing), the i686 startup objects"
PACKAGES=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64-posix gcc-mingw-w64-i686-posix wine wine64 curl)
case " $ARCHES " in *" i686 "*) PACKAGES+=(wine32:i386) ;; esac
MISSING=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || MISSING+=("$p"); done
if [ ${#MISSING[@]} -gt 0 ]; then
  say "apt-get install ${MISSING[*]}"
  case " ${MISSING[*]} " in
    *":i386 "*) dpkg --print-foreign-architectures | grep -qx i386 || dpkg --add-architecture i386 ;;
  esac
  apt-get -o DPkg::Lock::Timeout=900 update -q
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends \
    "${MISSING[@]}" >"$RUN/apt.log" || { cat "$RUN/apt.log"; exit 1; }
fi

# ---- 2. the cross toolchain -------------------------------------------------------------------------
# -Zbuild-std builds the Windows standard library from rust-web-src (/usr/lib/rustlib/src/rust);
# RUSTC_BOOTSTRAP lets the stable compiler take the flag. The mingw-w64 "posix" gcc links (its
# threads model is the one Rust's std expects). Cargo's files go to their own directory: the
# workspace's target/debug belongs to the rustup toolchain.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$WIN/cargo
CARGO=/usr/bin/cargo
BUILD_STD=(-Zbuild-std=std,panic_unwind,test)
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc-posix
export CARGO_TARGET_I686_PC_WINDOWS_GNU_LINKER=i686-w64-mingw32-gcc-posix
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc-posix AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
export CC_i686_pc_windows_gnu=i686-w64-mingw32-gcc-posix AR_i686_pc_windows_gnu=i686-w64-mingw32-ar
# i686-pc-windows-gnu links rsbegin.o and rsend.o (the unwinder's frame registration), which
# rustup ships and build-std does not build: compile them once from the library sources.
RTSTARTUP=$WIN/rtstartup/i686
mkdir -p "$RTSTARTUP"
for f in rsbegin rsend; do
  [ -f "$RTSTARTUP/$f.o" ] || /usr/bin/rustc --target i686-pc-windows-gnu --emit=obj -C panic=abort -O \
    -o "$RTSTARTUP/$f.o" "/usr/lib/rustlib/src/rust/library/rtstartup/$f.rs"
done
export CARGO_TARGET_I686_PC_WINDOWS_GNU_RUSTFLAGS="-L native=$RTSTARTUP"

triple() { echo "$1-pc-windows-gnu"; }
mingw_gcc() { echo "$1-w64-mingw32-gcc-posix"; }
PROFILE_ARGS=()
[ "$PROFILE" = debug ] || PROFILE_ARGS=(--profile "$PROFILE")

# What is shipped: nami-ffi's libraries and the programs.
SHIPPED=(-p nami-ffi -p nami-httpd -p nami-cli -p nami-sim)
# The Rust tests that compile for Windows: every unit test (libraries and programs), nami-sdk's
# property, vector and serial removal tests, nami-sim's end-to-end tests over TCP, the daemon's
# in-process tests, the C ABI's and the frame CLI's. The rest need a pty, signals or Unix sockets.
TESTS_SELECTED=(-p nami-sdk "${SHIPPED[@]}" --lib --bins --test properties --test vectors --test serial_removal
  --test transactions --test faults --test control_api --test in_process --test capi --test frame_cli)
# compiles_nothing LOG: fails (naming them) when a cargo log shows crates compiled: each crate is
# compiled once per architecture.
compiles_nothing() {
  local again
  again=$(sed -nE 's/^ *Compiling ([^ ]+) .*/\1/p' "$1" | sort -u | tr '\n' ' ')
  [ -z "$again" ] || { echo "compiled again: $again" >&2; return 1; }
}

# ---- 3. build: per architecture, every crate once ------------------------------------------------
# With the Rust tests, one `cargo test --no-run` builds the shipped files and the tests together:
# the tests' dependencies ask for more features of some crates (tokio, serde, windows-sys, ...),
# and a plain `cargo build` beside it would compile those crates a second time (94 crates, about
# half the build). The `cargo build` that follows, with the same selection, compiles nothing (it is
# checked): it puts nami.dll and libnami.a where the copy below takes them.
for A in $ARCHES; do
  T=$(triple "$A")
  if rust_tests_for "$A"; then
    part "[$A] build: cargo test --no-run --target $T (the shipped files and the Rust tests; profile $PROFILE)"
    "$CARGO" test --no-run --locked "${BUILD_STD[@]}" --target "$T" "${PROFILE_ARGS[@]}" "${TESTS_SELECTED[@]}"
    "$CARGO" build --locked "${BUILD_STD[@]}" --target "$T" "${PROFILE_ARGS[@]}" "${TESTS_SELECTED[@]}" \
      2>&1 | tee "$RUN/cargo-build-$A.log"
    compiles_nothing "$RUN/cargo-build-$A.log"
  else
    part "[$A] build: cargo build --target $T (nami-ffi, nami-httpd, nami-cli, nami-sim; profile $PROFILE)"
    "$CARGO" build --locked "${BUILD_STD[@]}" --target "$T" "${PROFILE_ARGS[@]}" "${SHIPPED[@]}"
  fi
  BUILT=$CARGO_TARGET_DIR/$T/$PROFILE
  OUT=$WIN/$T
  mkdir -p "$OUT"
  cp "$BUILT/nami.dll" "$BUILT/libnami.a" "$BUILT/libnami.dll.a" "$BUILT/nami-httpd.exe" "$BUILT/nami.exe" \
    "$BUILT/nami-sim.exe" "$ROOT/nami-ffi/include/nami.h" "$OUT/"
  say "[$A] built: $(cd "$OUT" && ls | tr '\n' ' ')"
done

# ---- 4. Wine ------------------------------------------------------------------------------------
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for A in $ARCHES; do WINEPREFIX=$RUN/prefix-$A /usr/lib/wine/wineserver -k 2>/dev/null || true; done
}
trap cleanup EXIT

# use_wine ARCH: the prefix (created on first use) and loader of that architecture.
use_wine() {
  if [ "$1" = x86_64 ]; then WINE=/usr/lib/wine/wine64; export WINEARCH=win64
  else WINE=/usr/lib/wine/wine; export WINEARCH=win32; fi
  export WINEPREFIX=$RUN/prefix-$1
  if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
    say "[$1] wineboot -i ($WINEARCH prefix)"
    "$WINE" wineboot -i >"$RUN/wineboot-$1.log" 2>&1
  fi
  # Wine 8.0 lacks bcryptprimitives.dll, which Rust's std needs; a stand-in (see its source).
  "$(mingw_gcc "$1")" -O2 -shared -s -Wall -Wextra -Werror -Wl,--kill-at \
    -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    "$ROOT/scripts/windows/wine-bcryptprimitives.c" -ladvapi32
  # One wineserver for the whole run (fails harmlessly when one already runs).
  /usr/lib/wine/wineserver -p 2>/dev/null || true
}

# The Windows path of a Linux path (Wine's Z: drive is /).
winpath() { echo "Z:${1//\//\\}"; }

# wait_line FILE PATTERN: waits up to 60 s for a whole line matching PATTERN in FILE.
wait_line() {
  for _ in $(seq 1 600); do
    if grep -q "$2" "$1" 2>/dev/null && [ "$(tail -c1 "$1" | od -An -c | tr -d ' ')" = '\n' ]; then return 0; fi
    sleep 0.1
  done
  return 1
}

# start_bg NAME CMD...: starts a program in the background, output in $RUN/NAME.out/.err; sets BG.
start_bg() {
  local name=$1; shift
  "$@" >"$RUN/$name.out" 2>"$RUN/$name.err" &
  BG=$!
  PIDS+=("$BG")
}

# stop_bg PID: Ctrl-C (Wine delivers SIGINT as CTRL_C_EVENT), then the exit status in STOP_RC.
stop_bg() {
  kill -INT "$1" 2>/dev/null || true
  STOP_RC=0
  wait "$1" || STOP_RC=$?
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  local port
  while :; do
    port=$(( 20000 + RANDOM % 30000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# check NAME EXPECTED CURL-ARGS...: one HTTP call whose answer must contain EXPECTED.
check() {
  local name=$1 want=$2; shift 2
  local got
  got=$(curl -s -m 60 "$@" || true)
  if grep -qF -- "$want" <<<"$got"; then pass "$name"; else fail "$name: ${got:0:400}"; fi
}
# check_not NAME UNWANTED URL: an answer that must not contain UNWANTED.
check_not() {
  local got
  got=$(curl -s -m 60 "$3" || true)
  if [ -n "$got" ] && ! grep -qF -- "$2" <<<"$got"; then pass "$1"; else fail "$1: ${got:0:400}"; fi
}
# eventually URL TEXT / eventually_not URL TEXT: within 10 s the answer has (has not) TEXT.
eventually() { for _ in $(seq 1 50); do curl -s -m 5 "$1" | grep -qF -- "$2" && return 0; sleep 0.2; done; return 1; }
eventually_not() {
  local got
  for _ in $(seq 1 50); do
    got=$(curl -s -m 5 "$1" || true)
    [ -n "$got" ] && ! grep -qF -- "$2" <<<"$got" && return 0
    sleep 0.2
  done
  return 1
}
JSON=(-H 'Content-Type: application/json')

# The Linux nami-sim serves the pty that becomes COM5 (Windows has no pseudo-terminals).
part "native nami-sim (for the COM path's pty)"
env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP CARGO_TARGET_DIR="$TARGET" cargo build --locked -q -p nami-sim
start_bg sim-pty "$TARGET/debug/nami-sim" --listen 127.0.0.1:0 --pty
wait_line "$RUN/sim-pty.out" '^listening on ' || { cat "$RUN/sim-pty.err"; exit 1; }
PTY=$(sed -n 's/^pty: //p' "$RUN/sim-pty.out" | head -n1)

for A in $ARCHES; do
  T=$(triple "$A")
  OUT=$WIN/$T
  CC=$(mingw_gcc "$A")
  part "[$A] Wine prefix (wineboot, once) and the bcryptprimitives stand-in"
  use_wine "$A"
  TESTS=$RUN/c-$A
  mkdir -p "$TESTS"

  # ---- 5. what a POS vendor relies on: undecorated cdecl exports, no runtime DLL to ship -----------
  OBJDUMP=$A-w64-mingw32-objdump
  EXPORTS=$("$OBJDUMP" -p "$OUT/nami.dll" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | grep -o '\] .*' | cut -c3-)
  if grep -qx nami_call <<<"$EXPORTS" && grep -qx nami_result_free <<<"$EXPORTS" && ! grep -q '@' <<<"$EXPORTS"; then
    pass "[$A] nami.dll exports undecorated names ($(grep -c '^nami_' <<<"$EXPORTS") nami_* functions)"
  else
    fail "[$A] nami.dll exports: $(head -c 300 <<<"$EXPORTS")"
  fi
  # Windows' own DLLs only (msvcrt is part of Windows); no libgcc, libwinpthread or libstdc++.
  SYSTEM_DLLS='^(kernel32|ntdll|ws2_32|advapi32|userenv|bcrypt|bcryptprimitives|msvcrt|setupapi|cfgmgr32|ole32|oleaut32|shell32|user32|secur32|crypt32|iphlpapi|dbghelp|api-ms-win-[a-z0-9-]+)\.dll$'
  for f in nami.dll nami-httpd.exe nami.exe nami-sim.exe; do
    IMPORTS=$("$OBJDUMP" -p "$OUT/$f" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u)
    OTHERS=$(grep -vE "$SYSTEM_DLLS" <<<"$IMPORTS" || true)
    [ -z "$OTHERS" ] && pass "[$A] $f imports system DLLs only" || fail "[$A] $f imports $(echo $OTHERS)"
  done

  # ---- 6. nami-sim.exe: two simulated terminals for the C tests ------------------------------------
  part "[$A] checks: exports and imports, nami-sim.exe, the C tests and examples/c, the daemon, COM5, the service"
  say "[$A] nami-sim.exe (TCP, and one in card-tap mode)"
  start_bg "sim-$A" "$WINE" "$OUT/nami-sim.exe" --listen 127.0.0.1:0
  SIM_PID=$BG
  start_bg "sim-tap-$A" "$WINE" "$OUT/nami-sim.exe" --listen 127.0.0.1:0 --card-tap
  SIM_TAP_PID=$BG
  if wait_line "$RUN/sim-$A.out" '^listening on ' && wait_line "$RUN/sim-tap-$A.out" '^listening on '; then
    pass "[$A] nami-sim.exe listens"
  else
    fail "[$A] nami-sim.exe did not start: $(cat "$RUN/sim-$A.err" "$RUN/sim-tap-$A.err")"
    continue
  fi
  PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$RUN/sim-$A.out")
  TAP_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$RUN/sim-tap-$A.out")

  # ---- 7. the C tests and examples/c against nami.dll and libnami.a --------------------------------
  # The GCC runtime and winpthreads linked in: the programs need no DLL beyond the system's and
  # nami.dll (-static for the static library: it alone keeps the i686 std's pthread calls off
  # libwinpthread-1.dll). Its system libraries: `--print native-static-libs` of nami-ffi.
  CFLAGS=(-std=c11 -Wall -Wextra -Werror -pthread -g -I"$OUT" -I"$ROOT/bindings/c/tests")
  NO_RUNTIME_DLLS=(-static-libgcc -Wl,-Bstatic -lwinpthread -Wl,-Bdynamic)
  ALL_STATIC=(-static)
  STATIC_LIBS=(-lws2_32 -luserenv -lntdll -ladvapi32 -lsetupapi -lcfgmgr32 -lbcrypt -lkernel32)
  say "[$A] $CC: the C tests and the example, against the DLL and the static library"
  cp "$OUT/nami.dll" "$TESTS/"
  "$CC" "${CFLAGS[@]}" bindings/c/tests/test_nami.c -L"$OUT" -lnami "${NO_RUNTIME_DLLS[@]}" -o "$TESTS/test_nami_dll.exe"
  "$CC" "${CFLAGS[@]}" bindings/c/tests/test_nami.c "$OUT/libnami.a" "${STATIC_LIBS[@]}" "${ALL_STATIC[@]}" \
    -o "$TESTS/test_nami_static.exe"
  "$CC" "${CFLAGS[@]}" examples/c/pos.c -L"$OUT" -lnami "${NO_RUNTIME_DLLS[@]}" -o "$TESTS/pos_dll.exe"
  "$CC" "${CFLAGS[@]}" examples/c/pos.c "$OUT/libnami.a" "${STATIC_LIBS[@]}" "${ALL_STATIC[@]}" -o "$TESTS/pos_static.exe"
  for f in test_nami_dll test_nami_static pos_dll pos_static; do
    IMPORTS=$("$OBJDUMP" -p "$TESTS/$f.exe" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u)
    OTHERS=$(grep -vE "$SYSTEM_DLLS" <<<"$IMPORTS" | grep -vx nami.dll || true)
    [ -z "$OTHERS" ] && pass "[$A] $f.exe imports system DLLs (and nami.dll) only" || fail "[$A] $f.exe imports $(echo $OTHERS)"
  done
  # Each run its own cash register number (the simulators keep one journal); the arch in it.
  REG=$([ "$A" = x86_64 ] && echo 64000000 || echo 32000000)
  for t in test_nami_dll test_nami_static; do
    say "[$A] wine $t.exe"
    REG=$(( REG + 1 ))
    rc=0
    (cd "$TESTS" && timeout 300 "$WINE" "./$t.exe" "$PORT" "$TAP_PORT" "$REG") >"$TESTS/$t.out" 2>&1 || rc=$?
    tail -n1 "$TESTS/$t.out"
    if ! add_counts "$TESTS/$t.out"; then fail "[$A] $t.exe printed no count (exit $rc): $(tail -n5 "$TESTS/$t.out")"
    elif [ "$rc" -ne 0 ] && ! grep -qE ' [1-9][0-9]* failed' "$TESTS/$t.out"; then fail "[$A] $t.exe exit $rc"; fi
  done
  for t in pos_dll pos_static; do
    REG=$(( REG + 1 ))
    mkdir -p "$TESTS/$t-state"
    if (cd "$TESTS" && timeout 120 "$WINE" "./$t.exe" 127.0.0.1 "$PORT" "$REG" "$(winpath "$TESTS/$t-state" | tr '\\' /)") \
      >"$TESTS/$t.out" 2>&1; then pass "[$A] examples/c $t.exe"; else fail "[$A] examples/c $t.exe: $(tail -n5 "$TESTS/$t.out")"; fi
  done
  stop_bg "$SIM_PID"; [ "$STOP_RC" = 0 ] && pass "[$A] nami-sim.exe stops on Ctrl-C (exit 0)" || fail "[$A] nami-sim.exe exit $STOP_RC on Ctrl-C"
  stop_bg "$SIM_TAP_PID"

  # ---- 8. nami-httpd.exe --simulator: the README's REGISTER + PURCHASE, the journal; COM5 ----------
  say "[$A] nami-httpd.exe --simulator, and COM5 = the nami-sim pty"
  ln -sfn "$PTY" "$WINEPREFIX/dosdevices/com5"
  STATE=$RUN/state-$A
  rm -rf "$STATE"
  start_bg "httpd-$A" "$WINE" "$OUT/nami-httpd.exe" --listen 127.0.0.1:0 --simulator --simulator-listen 127.0.0.1:0 \
    --state-dir "$(winpath "$STATE")"
  HTTPD=$BG
  if ! wait_line "$RUN/httpd-$A.out" '^listening on '; then
    fail "[$A] nami-httpd.exe did not start: $(tail -n5 "$RUN/httpd-$A.err")"
    continue
  fi
  B=$(sed -n 's/^listening on //p' "$RUN/httpd-$A.out")
  SIM_AT=$(sed -n 's/^simulator listening on //p' "$RUN/httpd-$A.out")
  n=$(date +%H%M%S)
  REF=123456$([ "$A" = x86_64 ] && echo 6 || echo 3)   # 14 digits: 7 + step + hhmmss
  check "[$A] health" '"status":"UP"' "$B/api/health-status"
  check "[$A] REGISTER (embedded simulator)" '"statusMessage":"Registration success"' -X POST "$B/performTransactionTCPIP" "${JSON[@]}" \
    -d "{\"tcpipcomData\":{\"ip\":\"${SIM_AT%:*}\",\"port\":${SIM_AT##*:}},\"paymentRequest\":{\"txnType\":\"REGISTER\",\"ecrReferenceNo\":\"${REF}0$n\"}}"
  check "[$A] PURCHASE 10.00 (embedded simulator)" '"responseMessage":"APPROVED"' -X POST "$B/performTransactionTCPIP" "${JSON[@]}" \
    -d "{\"tcpipcomData\":{\"ip\":\"${SIM_AT%:*}\",\"port\":${SIM_AT##*:}},\"paymentRequest\":{\"txnType\":\"PURCHASE\",\"amount\":\"10.00\",\"ecrReferenceNo\":\"${REF}1$n\",\"jsonResponse\":true}}"
  check "[$A] journal: the purchase, approved" "\"state\":\"approved\"" "$B/transactions?ecrReferenceNo=${REF}1$n"
  check "[$A] COM5 connect" '"success":true' -X POST "$B/com/connect" "${JSON[@]}" -d '{"port":5,"baudRate":"115200"}'
  check "[$A] COM REGISTER" '"statusMessage":"Registration success"' -X POST "$B/performTransactionCOM" "${JSON[@]}" \
    -d "{\"txnType\":\"REGISTER\",\"ecrReferenceNo\":\"${REF}2$n\"}"
  check "[$A] COM PURCHASE 12.00" '"responseMessage":"APPROVED"' -X POST "$B/performTransactionCOM" "${JSON[@]}" \
    -d "{\"txnType\":\"PURCHASE\",\"amount\":\"12.00\",\"ecrReferenceNo\":\"${REF}3$n\",\"jsonResponse\":true}"
  # Wine lists no COM port: presence is the name that opens, not the list (the first Windows
  # run called the port vanished right after connecting).
  sleep 1
  check_not "[$A] COM5 still connected (Wine lists no ports)" 'Reconnecting' "$B/get-com-ports"
  # The cable pulled: the name goes, the watchdog sees it; back: re-opened, a purchase goes through.
  rm -f "$WINEPREFIX/dosdevices/com5"
  if eventually "$B/get-com-ports" 'Reconnecting to COM5'; then pass "[$A] COM5 removed: reconnecting"; else fail "[$A] COM5 removed, not noticed"; fi
  ln -sfn "$PTY" "$WINEPREFIX/dosdevices/com5"
  if eventually_not "$B/get-com-ports" 'Reconnecting'; then pass "[$A] COM5 back: reconnected"; else fail "[$A] COM5 back, not reconnected"; fi
  check "[$A] COM PURCHASE 13.00 after the reconnect" '"responseMessage":"APPROVED"' -X POST "$B/performTransactionCOM" "${JSON[@]}" \
    -d "{\"txnType\":\"PURCHASE\",\"amount\":\"13.00\",\"ecrReferenceNo\":\"${REF}4$n\",\"jsonResponse\":true}"
  check "[$A] COM disconnect" '0' -X POST "$B/com/disconnect" "${JSON[@]}" -d '{}'
  stop_bg "$HTTPD"
  [ "$STOP_RC" = 0 ] && pass "[$A] nami-httpd.exe stops on Ctrl-C (exit 0)" || fail "[$A] nami-httpd.exe exit $STOP_RC on Ctrl-C"

  # ---- 9. the Windows service, through Wine's service control manager ------------------------------
  say "[$A] service: install, net stop, net start, install again, uninstall, its log"
  SVC=$RUN/service-$A
  rm -rf "$SVC"
  SAPI=127.0.0.1:$(free_port)
  # A service starts in 1 to 20 s under Wine on a busy machine: wait up to 60 s.
  serving() { for _ in $(seq 1 240); do curl -s -m 1 -o /dev/null "http://$SAPI/api/health-status" && return 0; sleep 0.25; done; return 1; }
  # Wine's service manager sometimes keeps its database locked past install's own 15 s of retries
  # (Windows error 1055), or gives up on a first start that a loaded machine makes slow (1053): the
  # service is then installed, install says so and what to do, and it is started once more below by
  # `net stop` / `net start`, as an operator would; the output says so. Any other failure fails.
  rc=0; "$WINE" "$OUT/nami-httpd.exe" service install --listen "$SAPI" --state-dir "$(winpath "$SVC")" >"$RUN/svc-install-$A.out" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    pass "[$A] service install"
  elif grep -q "installed the service NamiMiddleware but cannot start it" "$RUN/svc-install-$A.out" \
      && grep -Eq "Windows error (1053|1055), ERROR_SERVICE_[A-Z_]+\)\. .*net start NamiMiddleware" "$RUN/svc-install-$A.out"; then
    pass "[$A] service install (installed; Wine's service manager refused its first start: $(grep -Eo 'Windows error [0-9]+, ERROR_[A-Z_]+' "$RUN/svc-install-$A.out"), named with what to do)"
  else
    fail "[$A] service install: $(cat "$RUN/svc-install-$A.out")"
  fi
  if serving; then
    pass "[$A] the service serves after install"
  else
    "$WINE" net stop NamiMiddleware >/dev/null 2>&1 || true
    "$WINE" net start NamiMiddleware >/dev/null 2>&1 || true
    serving && pass "[$A] the service serves after install (started a second time: Wine missed the first start)" \
      || fail "[$A] the service does not serve after install"
  fi
  "$WINE" net stop NamiMiddleware >/dev/null 2>&1 || true
  curl -s -m 1 -o /dev/null "http://$SAPI/api/health-status" && fail "[$A] still serving after net stop" || pass "[$A] net stop stops it"
  "$WINE" net start NamiMiddleware >/dev/null 2>&1 || true
  serving && pass "[$A] net start starts it again" || fail "[$A] not serving after net start"
  rc=0; "$WINE" "$OUT/nami-httpd.exe" service install --listen "$SAPI" >"$RUN/svc-reinstall-$A.out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && grep -q "already" "$RUN/svc-reinstall-$A.out" && grep -q "uninstall" "$RUN/svc-reinstall-$A.out"; then
    pass "[$A] install over the installed service names the error and what to do"
  else
    fail "[$A] install over the installed service (exit $rc): $(cat "$RUN/svc-reinstall-$A.out")"
  fi
  "$WINE" "$OUT/nami-httpd.exe" service uninstall >"$RUN/svc-uninstall-$A.out" 2>&1 \
    && pass "[$A] service uninstall" || fail "[$A] service uninstall: $(cat "$RUN/svc-uninstall-$A.out")"
  # uninstall returns once the service has stopped: nothing serves any more.
  curl -s -m 1 -o /dev/null "http://$SAPI/api/health-status" && fail "[$A] still serving after uninstall" || pass "[$A] stopped when uninstall returns"
  # Wine's sc.exe has no `query`: a second uninstall must find no service (1060), once the service
  # manager has let go of the removed one (1072, marked for delete, until then: up to 10 s).
  for _ in $(seq 1 20); do
    rc=0; "$WINE" "$OUT/nami-httpd.exe" service uninstall >"$RUN/svc-uninstall2-$A.out" 2>&1 || rc=$?
    grep -q "Windows error 1072" "$RUN/svc-uninstall2-$A.out" || break
    sleep 0.5
  done
  [ "$rc" -ne 0 ] && grep -q "Windows error 1060, ERROR_SERVICE_DOES_NOT_EXIST" "$RUN/svc-uninstall2-$A.out" \
    && pass "[$A] the service is gone (a second uninstall names ERROR_SERVICE_DOES_NOT_EXIST)" \
    || fail "[$A] the service is still registered (second uninstall exit $rc): $(cat "$RUN/svc-uninstall2-$A.out")"
  # Its log: a request served, and two graceful stops (net stop; uninstall, before it returned).
  STOPS=$(grep -c 'nami_httpd::server: stopped' "$SVC/nami-httpd.log" 2>/dev/null || true)
  grep -q 'path=/api/health-status' "$SVC/nami-httpd.log" 2>/dev/null && [ "${STOPS:-0}" -ge 2 ] \
    && pass "[$A] the service's log in its state directory" || fail "[$A] the service log in $SVC: $(tail -n5 "$SVC/nami-httpd.log" 2>&1)"

  # ---- 10. the Rust tests that compile for Windows, under Wine ----------------------------------------
  if rust_tests_for "$A"; then
    part "[$A] Rust tests under Wine (cargo test, built above)"
    RUNNER_VAR=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$T")_RUNNER
    rc=0
    env "$RUNNER_VAR=$WINE" "$CARGO" test --locked --no-fail-fast "${BUILD_STD[@]}" --target "$T" "${PROFILE_ARGS[@]}" \
      "${TESTS_SELECTED[@]}" 2>&1 | tee "$RUN/cargo-test-$A.log" | grep -E '^(test result|error|failures:|---- )' || true
    rc=${PIPESTATUS[0]}
    p=$(sed -nE 's/^test result: .* ([0-9]+) passed; ([0-9]+) failed.*/\1/p' "$RUN/cargo-test-$A.log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -nE 's/^test result: .* ([0-9]+) passed; ([0-9]+) failed.*/\2/p' "$RUN/cargo-test-$A.log" | awk '{s+=$1} END {print s+0}')
    PASSED=$(( PASSED + ${p:-0} )); FAILED=$(( FAILED + ${f:-0} ))
    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then fail "[$A] cargo test exit $rc: $(tail -n5 "$RUN/cargo-test-$A.log")"; fi
    compiles_nothing "$RUN/cargo-test-$A.log" && pass "[$A] cargo test compiled nothing (built once, above)" \
      || fail "[$A] cargo test compiled crates the build had not"
  fi
  /usr/lib/wine/wineserver -k 2>/dev/null || true
done

part ""
rm -f "$TIMES_FILE"
echo
echo "==> windows.sh: time per part (wall, CPU of its programs), total $(( $(date +%s) - T0 ))s"
printf '%s\n' "${PARTS[@]}"
echo "windows: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
