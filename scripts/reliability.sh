#!/usr/bin/env bash
# The long reliability runs (not part of scripts/test.sh nor CI): the soak, the kill loop, the
# fuzzers, schemathesis against the daemon's OpenAPI document. Results and how to read them:
# RELIABILITY.md.
#
#   scripts/reliability.sh [all|soak|kill-loop|fuzz|schemathesis]...     (default: all)
#
# Knobs (environment):
#   SOAK_SECS=600 SOAK_TERMINALS=200 SOAK_CLIENTS=32 SOAK_WARMUP_SECS=180 SOAK_SEED=1
#   NAMI_HTTPD_BIN=path           the daemon to soak (default target/debug/nami-httpd); e.g. the
#                                 release build, or a wrapper that sets LD_PRELOAD (RELIABILITY.md)
#   KILL_POINTS=200 KILL_SEED=1
#   FUZZ_SECS=300                 per fuzz target
#   SCHEMATHESIS_EXAMPLES=100     per operation
#   SCHEMATHESIS_CHECKS=not_a_server_error,response_schema_conformance   (or `all`: RELIABILITY.md)
#
# Every run talks to 127.0.0.1 only. The fuzzers and schemathesis generate addresses of their own
# (schemathesis fills `ip` with anything), so they run in a network namespace of their own with
# only a loopback interface (`unshare -n`, needs root) and are skipped when one cannot be made.
# Logs go to target/reliability/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/reliability
mkdir -p "$OUT"
T0=$(date +%s)
step() { echo; echo "==> [$(( $(date +%s) - T0 ))s] $*"; }
FAILED=()

# Runs "$@" in a fresh network namespace with loopback up; returns 99 when none can be made.
in_netns() {
    if unshare -n true 2>/dev/null; then
        unshare -n bash -c 'ip link set lo up 2>/dev/null || ifconfig lo up; exec "$@"' netns "$@"
    else
        echo "cannot create a network namespace (unshare -n needs root): skipped" >&2
        return 99
    fi
}

build() {
    step "build (nami-httpd, the reliability binary)"
    cargo build --locked -p nami-httpd --bin nami-httpd -p nami-e2e --bin reliability
}

soak() {
    step "soak: ${SOAK_TERMINALS:-200} terminals x ${SOAK_SECS:-600} s"
    if ./target/debug/reliability soak --terminals "${SOAK_TERMINALS:-200}" --secs "${SOAK_SECS:-600}" \
        --clients "${SOAK_CLIENTS:-32}" --warmup-secs "${SOAK_WARMUP_SECS:-180}" --seed "${SOAK_SEED:-1}" \
        2>&1 | tee "$OUT/soak.log"; then :; else FAILED+=(soak); fi
}

kill_loop() {
    step "kill loop: ${KILL_POINTS:-200} kill points"
    if ./target/debug/reliability kill-loop --points "${KILL_POINTS:-200}" --seed "${KILL_SEED:-1}" \
        2>&1 | tee "$OUT/kill-loop.log"; then :; else FAILED+=(kill-loop); fi
}

# Builds the fuzz targets with libFuzzer and coverage instrumentation: `cargo fuzz` when it is
# installed, else the same flags by hand with the nightly toolchain.
fuzz_build() {
    rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
    if cargo +nightly fuzz --version >/dev/null 2>&1; then
        (cd fuzz && cargo +nightly fuzz build -O frame_decoder && cargo +nightly fuzz build -O rest_body --features service)
        FUZZ_BIN=$ROOT/fuzz/target/x86_64-unknown-linux-gnu/release
    else
        echo "(cargo-fuzz not installed: building with its flags directly)"
        local flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks \
-Zsanitizer=address"
        local build=(cargo +nightly build --manifest-path fuzz/Cargo.toml --release --target x86_64-unknown-linux-gnu)
        # One target per build: frame_decoder without the service (SQLite), rest_body with it.
        RUSTFLAGS="$flags" "${build[@]}" --bin frame_decoder
        RUSTFLAGS="$flags" "${build[@]}" --bin rest_body --features service
        FUZZ_BIN=$ROOT/fuzz/target/x86_64-unknown-linux-gnu/release
    fi
}

fuzz() {
    step "fuzz: frame_decoder and rest_body, ${FUZZ_SECS:-300} s each"
    fuzz_build
    for target in frame_decoder rest_body; do
        mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
        echo "--- $target"
        local status=0
        # ASan flags the bundled SQLite's C globals as ODR violations (a false positive here).
        ASAN_OPTIONS=detect_odr_violation=0:detect_leaks=0 in_netns "$FUZZ_BIN/$target" "fuzz/corpus/$target" -max_total_time="${FUZZ_SECS:-300}" \
            -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1 -rss_limit_mb=4096 \
            >"$OUT/fuzz-$target.log" 2>&1 || status=$?
        grep -E "^(stat::|Done|#[0-9]+ *DONE)" "$OUT/fuzz-$target.log" | tail -12 || true
        if [ "$status" = 99 ]; then continue; fi
        if [ "$status" != 0 ]; then
            tail -30 "$OUT/fuzz-$target.log"
            FAILED+=("fuzz-$target")
        fi
    done
}

# Inside the namespace: the daemon with its embedded simulator, then schemathesis against it.
schemathesis_inner() {
    local state port pid status=0
    state=$(mktemp -d)
    ./target/debug/nami-httpd --state-dir "$state" --config /dev/null --listen 127.0.0.1:0 \
        --simulator --simulator-listen 127.0.0.1:0 --card-present-timeout-secs 2 --settlement-timeout-secs 2 \
        --admin-timeout-secs 2 --log warn >"$OUT/schemathesis-daemon.out" 2>"$OUT/schemathesis-daemon.log" &
    pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's#^listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$OUT/schemathesis-daemon.out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "the daemon did not start"; cat "$OUT/schemathesis-daemon.log"; kill "$pid"; return 1; }
    # POST /api/tls would switch this very port to HTTPS under schemathesis's feet.
    schemathesis run "http://127.0.0.1:$port/openapi.json" \
        --checks ${SCHEMATHESIS_CHECKS:-not_a_server_error,response_schema_conformance} \
        --exclude-operation-id tls_switch \
        --max-examples "${SCHEMATHESIS_EXAMPLES:-100}" --seed 1 --request-timeout 30 \
        --report junit --report-dir "$OUT/schemathesis-report" --no-color || status=$?
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$state"
    return "$status"
}

schemathesis_run() {
    step "schemathesis against /openapi.json (not_a_server_error, response_schema_conformance)"
    # Debian's python3 takes no pip install outside a virtual environment (PEP 668).
    source scripts/python-venv.sh
    python_venv "$ROOT/target/schemathesis-venv" schemathesis==4.32.5
    export PATH="$ROOT/target/schemathesis-venv/bin:$PATH"
    local status=0
    in_netns bash "$0" --schemathesis-inner 2>&1 | tee "$OUT/schemathesis.log" || status=${PIPESTATUS[0]}
    if [ "$status" != 0 ] && [ "$status" != 99 ]; then FAILED+=(schemathesis); fi
}

if [ "${1:-}" = "--schemathesis-inner" ]; then
    schemathesis_inner
    exit $?
fi

RUNS=("$@")
[ ${#RUNS[@]} -gt 0 ] || RUNS=(all)
build
for run in "${RUNS[@]}"; do
    case $run in
        all) soak; kill_loop; fuzz; schemathesis_run ;;
        soak) soak ;;
        kill-loop) kill_loop ;;
        fuzz) fuzz ;;
        schemathesis) schemathesis_run ;;
        *) echo "unknown run: $run (all, soak, kill-loop, fuzz, schemathesis)"; exit 2 ;;
    esac
done
step "done; logs in $OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "FAILED: ${FAILED[*]}"
    exit 1
fi
echo "all reliability runs passed"
