#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the Rust workspace (unit, property,
# end-to-end tests against the simulator over real sockets and a real pty), the bindings, the
# dashboard in a browser, the load generator and a mini-soak. On a fresh machine it installs what
# it needs first. Ends with the time of each stage (README.md, "Test time").
#
# Every crate is compiled once: one `cargo build --workspace --all-targets` (dev profile, features
# unified by workspace-hack/) builds what every later step uses, and each later build (cargo test,
# the bindings, maturin, the bench, the soak) fails if it compiles a crate again
# (scripts/build-once.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-once.sh
# What git sees untracked before the run (a developer's new files); the run may add nothing to it.
UNTRACKED_BEFORE=$(git status --porcelain --untracked-files=all 2>/dev/null | sed -n 's/^?? //p' | sort)
T0=$(date +%s)
STAGES=()
STAGE=
STAGE_T0=$T0
# step NAME: starts a stage (and closes the previous one, whose time goes to the summary).
step() {
  local now
  now=$(date +%s)
  [ -z "$STAGE" ] || STAGES+=("$(printf '%5ss  %s' $(( now - STAGE_T0 )) "$STAGE")")
  STAGE=$1
  STAGE_T0=$now
  echo
  echo "==> [$(( now - T0 ))s] $*"
}
summary() {
  [ -z "$STAGE" ] || STAGES+=("$(printf '%5ss  %s (stopped here)' $(( $(date +%s) - STAGE_T0 )) "$STAGE")")
  echo
  echo "==> time per stage (total $(( $(date +%s) - T0 ))s)"
  printf '%s\n' "${STAGES[@]}"
  # CPU time of everything the run started (user + system): unlike the wall times above, it does
  # not grow when other work shares the machine.
  # `times` must run in this shell: inside $(...) it reports the subshell's children (none).
  local cpu times_file
  times_file=$(mktemp)
  times > "$times_file"
  cpu=$(tail -n1 "$times_file" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] } printf "%.0f", t }')
  rm -f "$times_file"
  echo "CPU time of the run's processes: ${cpu}s (user + system)"
}
trap summary EXIT
# A fresh clone (CI) builds everything once: incremental caches would only cost time and disk.
if [ -n "${CI:-}" ] && [ "${CI}" != false ]; then export CARGO_INCREMENTAL=0; fi

step "toolchain check"
cargo --version
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (every package, test and example, once: the later steps reuse it)"
cargo build --workspace --all-targets --locked
export NAMI_BUILT_ONCE=1

step "cargo test (workspace)"
built_once cargo test --workspace --locked

# ---- scripts/run.sh (issue 22): the README's main command as a newcomer runs it --------------
step "run.sh with other ports: curl commands for the address it listens on, and they work (scripts/check-run.sh)"
bash scripts/check-run.sh
# ---- end of the run.sh section ---------------------------------------------------------------

# ---- C ABI (nami-ffi): C programs against libnami.so and libnami.a, under valgrind ----------
step "C tests of libnami (bindings/c/run-tests.sh, valgrind)"
command -v gcc >/dev/null || (apt-get update && apt-get install -y gcc)
command -v valgrind >/dev/null || (apt-get update && apt-get install -y valgrind)
bash bindings/c/run-tests.sh
# ---- end of the C ABI section ------------------------------------------------------------------

# ---- C# binding (bindings/csharp): NUnit 2.6 on Mono against nami-sim ------------------------
step "C# binding tests (bindings/csharp/run-tests.sh, Mono + NUnit)"
bash bindings/csharp/run-tests.sh
# ---- end of the C# section ---------------------------------------------------------------------

# ---- Python and Kotlin bindings (uniffi, nami-ffi/src/uniffi_api): wheel + pytest, jar + JUnit 4 ----
# Kotlin before Python: maturin compiles nami-ffi's library once more (`cargo rustc --crate-type
# cdylib`, which cargo counts as another build of the same crate), and a later plain cargo build
# would compile it back.
step "Kotlin binding tests (bindings/kotlin/run-tests.sh: kotlinc jar, JUnit 4 against nami-sim)"
bash bindings/kotlin/run-tests.sh
step "Python binding tests (bindings/python/run-tests.sh: maturin wheel, pytest against nami-sim)"
bash bindings/python/run-tests.sh
# ---- end of the Python and Kotlin section ----------------------------------------------------

# ---- nami-httpd dashboard: the page in a real headless Chromium (playwright-core) -----------
# Installs Debian's chromium and playwright-core (npm ci) when missing; builds nami-httpd (a no-op
# after `cargo test`). Screenshots: target/dashboard-screenshots/.
step "dashboard browser test (nami-httpd/tests/browser/run.sh, headless Chromium)"
bash nami-httpd/tests/browser/run.sh
# ---- end of the dashboard section ------------------------------------------------------------

# ---- nami-bench smoke run (issue 11): the load harness end to end, debug build ----------------
# 4 simulated terminals x 50 transactions each (PURCHASE and CHECK STATUS) through a raw socket,
# the SDK and the nami-httpd binary over HTTP keep-alive. nami-bench exits non-zero if any
# transaction fails, which fails this script. The figures themselves are in BENCHMARKS.md.
step "nami-bench smoke run (4 terminals x 50 transactions: raw, sdk, daemon)"
built_once cargo build -p nami-httpd -p nami-bench --locked
BENCH_BIN="${CARGO_TARGET_DIR:-target}/debug"
timeout 120 "$BENCH_BIN/nami-bench" --terminals 4 --transactions 50 --mode all --daemon-bin "$BENCH_BIN/nami-httpd"
# The daemon as built for shipping (release: mimalloc, the code laid out by use): its code
# layout's list still current (a dependency or toolchain change renames functions; a stale list
# costs idle memory, not a build) and its idle RSS within the 10 MB promise, through
# nami-bench's idle-memory mode (one fresh start, the binary dropped from the page cache).
step "the release daemon: code layout current, idle RSS within 10 MB"
cargo build --locked --release -p nami-httpd
RELEASE_HTTPD="${CARGO_TARGET_DIR:-target}/release/nami-httpd"
bash scripts/symbol-order.sh --check "$RELEASE_HTTPD"
timeout 120 "$BENCH_BIN/nami-bench" --idle-only 1 --daemon-bin "$RELEASE_HTTPD" --json target/idle-release.json
python3 - target/idle-release.json <<'EOF_IDLE'
import json, sys
for run in json.load(open(sys.argv[1]))["idle"]:
    rss_mb = run["idle"]["rss_kib"] / 1024
    print(f"release nami-httpd idle RSS {rss_mb:.1f} MB (promise: 10 MB), ready in {run['ready_health_ms']:.0f} ms")
    if rss_mb > 10:
        sys.exit("the release daemon's idle RSS is over its 10 MB promise (BENCHMARKS.md, issue 23)")
EOF_IDLE
# ---- end of the nami-bench section -----------------------------------------------------------

# ---- Reliability and security (issue 12): the fast part -------------------------------------
# The fault matrix through the real daemon, the 20-point SIGKILL loop, the pty pull/plug, the
# REST-body property tests and the security tests (auth on every route, constant-time token,
# 0600 key files, no card number in any log) run in `cargo test --workspace` above
# (tests/tests/reliability_*.rs, security_*.rs). Here: a 30 s miniature of the soak, so that the
# long-run tool keeps working, and a short schemathesis run. The long runs (10-minute soak, 200-point kill loop, fuzzing,
# schemathesis) are scripts/reliability.sh; the fuzz targets (their own workspace, fuzz/) are
# built there, not here, to keep this command well inside CI's 30 minutes.
step "reliability: 30 s mini-soak through the daemon (20 terminals, random faults)"
built_once cargo build --locked -p nami-httpd --bin nami-httpd -p nami-e2e --bin reliability
target/debug/reliability soak --terminals 20 --secs 30 --clients 8 --warmup-secs 10 --sample-secs 2 --idle-secs 3 \
  | tee target/mini-soak.txt
# Its summary names the faults it injected on purpose before it counts error and unknown answers.
awk '/^faults injected on purpose/ { f = NR } /^answers:/ { a = NR } END { exit !(f && a && f < a) }' target/mini-soak.txt \
  || { echo "the mini-soak's summary does not name the injected faults before the answers"; exit 1; }
# schemathesis against the daemon's own OpenAPI document: generated requests to every operation
# but POST /api/tls, none answered 5xx, every answer as documented (20 examples per operation,
# seed 1, in a loopback-only network namespace; RELIABILITY.md has the 300-example run).
step "reliability: schemathesis against /openapi.json (20 examples per operation)"
SCHEMATHESIS_EXAMPLES=20 bash scripts/reliability.sh schemathesis
# ---- end of the reliability section ----------------------------------------------------------

# ---- Windows (issue 19): nami.dll, nami-httpd.exe, nami.exe, nami-sim.exe under Wine -----------
# Cross-builds both architectures (x86_64 and i686 -pc-windows-gnu: Debian's rustc-web with
# -Zbuild-std, mingw-w64), then under Wine 8.0: the DLL's exports and imports, the C tests and
# examples/c against the DLL and the static library, the daemon with its simulator, the COM path,
# the Windows service, and the Rust tests that compile for Windows on both architectures (built with
# the shipped files, each crate once per architecture). Installs what it needs. Its outputs,
# target/windows/<triple>/, are what the release section packs.
step "Windows: cross-build and Wine (scripts/windows.sh)"
bash scripts/windows.sh
# ---- end of the Windows section -------------------------------------------------------------

# ---- Release packages (issue 20): dist/ from this run's builds, each package used as its users would ----
# scripts/release.sh packs the debug builds made above (libnami, the programs, the Kotlin jar, the
# Windows builds of scripts/windows.sh) plus a glibc-2.17 wheel (maturin --zig); release-check.sh
# installs each package outside the repository (nuget + mcs + Mono, a fresh venv, a fresh JVM,
# dpkg -i and the unit's ExecStart) and runs a purchase against nami-sim. The Windows section
# (scripts/windows.sh) must run before this one: its builds are what the Windows packages hold,
# and once they exist release-check.sh requires every Windows package.
step "release: bash scripts/release.sh, then scripts/release-check.sh"
bash scripts/release.sh
bash scripts/release-check.sh
# ---- end of the release section ----------------------------------------------------------------

# ---- Build outputs (issue 22): everything a run or a documented build writes is ignored by git ----
step "build outputs are ignored by git"
if git rev-parse --git-dir >/dev/null 2>&1; then
  untracked_now=$(git status --porcelain --untracked-files=all | sed -n 's/^?? //p' | sort)
  left=$(comm -13 <(echo "$UNTRACKED_BEFORE") <(echo "$untracked_now"))
  [ -z "$left" ] || { echo "files this run left that git does not ignore (add them to .gitignore):"; echo "$left"; exit 1; }
  for output in bindings/python/dist/nami_sdk-0.1.0-py3-none-any.whl bindings/python/python/nami/libnami.so \
    bindings/python/python/nami/nami/nami.py target/debug/nami dist/SHA256SUMS; do
    git check-ignore -q "$output" || { echo "$output (a documented build output) is not ignored by git"; exit 1; }
  done
else
  echo "not a git checkout: nothing to check"
fi
# ---- end of the build outputs section --------------------------------------------------------

step "all tests passed"
STAGE=
