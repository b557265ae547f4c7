#!/usr/bin/env bash
# The Python bindings, end to end: builds the wheel with maturin (uniffi bindings of nami-ffi),
# installs it into a fresh virtual environment under target/ so the tests import `nami` as a user
# would, runs the pytest suite against nami-sim, then examples/python/pos.py against a simulator.
# Installs what is missing first (python3-venv, pytest, maturin). Debug build unless
# NAMI_PROFILE=release.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PROFILE=${NAMI_PROFILE:-dev}
VENV=$ROOT/target/pyenv
WHEELS=$ROOT/target/wheels/python
T0=$(date +%s)
stamp() { echo "[python $(( $(date +%s) - T0 ))s] $*"; }

stamp "toolchain"
source scripts/python-venv.sh
python_venv "$VENV" pytest==8.3.5 maturin==1.16.0

stamp "cargo build nami-sim"
source scripts/build-once.sh
# Beside nami-ffi, so that nami-sdk has the default features of the workspace build (nami-sim alone
# depends on it without them, and cargo would compile it a second time).
built_once cargo build --locked -p nami-sim -p nami-ffi

stamp "maturin build (profile $PROFILE)"
rm -rf "$WHEELS"
# maturin builds nami-ffi's library with `cargo rustc --crate-type cdylib`: cargo compiles that one
# crate again (the same code as a cdylib only); every dependency is reused (workspace-hack/).
(cd bindings/python && built_once --may-compile nami-ffi \
  "$VENV/bin/maturin" build --locked --profile "$PROFILE" --out "$WHEELS")
WHEEL=$(ls "$WHEELS"/nami_sdk-*.whl)
stamp "pip install $(basename "$WHEEL")"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"

stamp "pytest"
# From target/, so that nothing but the installed wheel can be imported as `nami`.
(cd "$ROOT/target" && NAMI_SIM="$ROOT/target/debug/nami-sim" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  "$ROOT/bindings/python/tests")

stamp "example: examples/python/pos.py against nami-sim"
LOG=$(mktemp)
"$ROOT/target/debug/nami-sim" --listen 127.0.0.1:0 >"$LOG" 2>/dev/null &
SIM=$!
trap 'kill $SIM 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 200); do grep -q '^listening on ' "$LOG" && break; sleep 0.05; done
ADDR=$(sed -n 's/^listening on //p' "$LOG")
"$VENV/bin/python" examples/python/pos.py "${ADDR%:*}" "${ADDR##*:}"
stamp "done"
