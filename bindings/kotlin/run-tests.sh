#!/usr/bin/env bash
# The Kotlin/JVM bindings, end to end: generates the Kotlin sources of nami-ffi with uniffi-bindgen,
# compiles them with kotlinc into target/bindings/kotlin/nami-kotlin.jar (classes plus the native
# library under linux-x86-64/, where JNA finds it), compiles the JUnit 4 suites and the example
# against that jar, runs the suites against nami-sim, then examples/kotlin/Pos.kt against a
# simulator.
# Installs what is missing first (Debian libjna-java and junit4, npm kotlin-compiler into
# .tools/kotlin). Debug build unless NAMI_PROFILE=release.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PROFILE=${NAMI_PROFILE:-dev}
OUT=$ROOT/target/bindings/kotlin
KHOME=$ROOT/.tools/kotlin/node_modules/kotlin-compiler
T0=$(date +%s)
stamp() { echo "[kotlin $(( $(date +%s) - T0 ))s] $*"; }

stamp "toolchain"
missing=()
for p in libjna-java junit4; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x "$KHOME/bin/kotlinc" ] \
  || npm install --prefix "$ROOT/.tools/kotlin" --no-save --no-audit --no-fund --loglevel=error kotlin-compiler@2.4.20
JAVA_LIBS=/usr/share/java/jna.jar:/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar
KOTLIN_LIBS=$KHOME/lib/kotlin-stdlib.jar:$KHOME/lib/kotlin-test.jar:$KHOME/lib/kotlin-test-junit.jar

stamp "cargo build nami-ffi, uniffi-bindgen, nami-sim (profile $PROFILE)"
source scripts/build-once.sh
built_once cargo build --locked --profile "$PROFILE" -p nami-ffi
# nami-sim with nami-ffi: nami-sim alone would build nami-sdk without its default features (a
# second compile of nami-sdk); beside nami-ffi it gets the workspace build's.
built_once cargo build --locked -p uniffi-bindgen -p nami-sim -p nami-ffi
LIBDIR=$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")

stamp "uniffi-bindgen generate"
rm -rf "$OUT" && mkdir -p "$OUT/src"
"$ROOT/target/debug/uniffi-bindgen" generate --library "$LIBDIR/libnami.so" --language kotlin --no-format \
  --config bindings/kotlin/uniffi.toml --out-dir "$OUT/src" >/dev/null

stamp "kotlinc: nami-kotlin.jar"
# The bindings and the native library: JNA loads linux-x86-64/libnami.so from the class path.
"$KHOME/bin/kotlinc" -jvm-target 17 -nowarn -module-name nami-kotlin -cp "$JAVA_LIBS" \
  "$OUT/src/sa/nami/nami.kt" -d "$OUT/nami-kotlin.jar"
mkdir -p "$OUT/native/linux-x86-64"
cp "$LIBDIR/libnami.so" "$OUT/native/linux-x86-64/"
jar --update --file "$OUT/nami-kotlin.jar" -C "$OUT/native" .

stamp "kotlinc: tests and example against the jar"
"$KHOME/bin/kotlinc" -jvm-target 17 -nowarn -cp "$OUT/nami-kotlin.jar:$JAVA_LIBS:$KOTLIN_LIBS" \
  bindings/kotlin/tests/*.kt examples/kotlin/Pos.kt -d "$OUT/nami-kotlin-tests.jar"
RUN_CP=$OUT/nami-kotlin.jar:$OUT/nami-kotlin-tests.jar:$JAVA_LIBS:$KOTLIN_LIBS

stamp "JUnit 4"
NAMI_SIM=$ROOT/target/debug/nami-sim java -cp "$RUN_CP" sa.nami.tests.RunTestsKt

stamp "example: examples/kotlin/Pos.kt against nami-sim"
LOG=$(mktemp)
"$ROOT/target/debug/nami-sim" --listen 127.0.0.1:0 >"$LOG" 2>/dev/null &
SIM=$!
trap 'kill $SIM 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 200); do grep -q '^listening on ' "$LOG" && break; sleep 0.05; done
ADDR=$(sed -n 's/^listening on //p' "$LOG")
java -cp "$RUN_CP" sa.nami.examples.PosKt "${ADDR%:*}" "${ADDR##*:}"
stamp "done"
