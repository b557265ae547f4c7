#!/usr/bin/env bash
# Checks dist/ (scripts/release.sh) as its users would use it, each package from outside the
# repository's build: every file there and in SHA256SUMS; one version everywhere; the C SDK
# compiled against and run (shared and static) and its Windows import libraries linked; the NuGet
# package installed with nuget into an empty folder, a program compiled against it with mcs and
# run on Mono; the wheel checked by auditwheel and installed into a fresh venv; the jar on a fresh
# JVM without -Djna.library.path; the Windows zips' programs and a program linked through nami.lib
# under Wine; the .deb installed with dpkg and its unit's ExecStart line run as the unit's user;
# no file of the repository pointing outside it; with --release, the daemon's code layout current
# (nami-httpd/symbol-order.txt). Each purchase goes to a fresh nami-sim. Prints
# "release: N passed, N failed, N skipped".
#
#   bash scripts/release-check.sh             # after bash scripts/release.sh
#   bash scripts/release-check.sh --release   # after bash scripts/release.sh --release
#
# Runs as root (dpkg -i, the unit's user); removes the .deb again at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=$ROOT/dist
BIN=$TARGET/$([ "${1:-}" = --release ] && echo release || echo debug)
WORK=$(mktemp -d /tmp/nami-release-check.XXXXXX)
T0=$(date +%s)
say() { echo "[release-check $(( $(date +%s) - T0 ))s] $*"; }
VERSION=$(cargo metadata --no-deps --format-version 1 --locked \
  | python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "nami-ffi"))')

PASSED=0; FAILED=0; FAILURES=()
# check NAME COMMAND...: runs the command, its output into $WORK/log/NAME; counts the outcome.
mkdir -p "$WORK/log"
check() {
  local name=$1; shift
  local log=$WORK/log/${name//[^A-Za-z0-9_.-]/_}
  if "$@" >"$log" 2>&1; then
    PASSED=$(( PASSED + 1 )); say "ok   $name"
  else
    FAILED=$(( FAILED + 1 )); FAILURES+=("$name"); say "FAIL $name"; tail -n 30 "$log" | sed 's/^/    /'
  fi
}
# Like check, and the command's output must contain the expected text.
check_says() {
  local name=$1 expected=$2; shift 2
  check "$name" bash -c '"$@" 2>&1 | tee /dev/stderr | grep -cF -- "$0"' "$expected" "$@"
}

SIMS=()
cleanup() {
  for pid in "${SIMS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
# start_sim: a fresh simulated terminal on a free port; sets SIM_PORT.
start_sim() {
  local log=$WORK/sim.$RANDOM.log
  "$BIN/nami-sim" --listen 127.0.0.1:0 >"$log" 2>&1 &
  SIMS+=($!)
  for _ in $(seq 1 200); do grep -qs '^listening on ' "$log" && break; sleep 0.05; done
  SIM_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log" | head -n1)
  [ -n "$SIM_PORT" ] || { echo "nami-sim did not start" >&2; cat "$log" >&2; return 1; }
}
# glibc_at_most FILE X.Y: the newest GLIBC_ symbol version FILE needs is at most X.Y.
glibc_at_most() {
  local newest
  newest=$(objdump -T "$1" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/GLIBC_//' | sort -V | tail -n1)
  echo "newest GLIBC symbol version in $1: $newest"
  [ "$(printf '%s\n%s\n' "$newest" "$2" | sort -V | tail -n1)" = "$2" ]
}
zip_has() {  # zip_has ZIP PATH...: every PATH is in the archive
  local zip=$1; shift
  local list; list=$(unzip -Z1 "$zip")
  for path in "$@"; do grep -qxF -- "$path" <<<"$list" || { echo "$zip lacks $path"; return 1; }; done
}

say "nami $VERSION: dist/ = $(ls "$DIST" | tr '\n' ' ')"
# The Windows packages need scripts/windows.sh's builds (target/windows/<triple>/). Once a Windows
# build or a Windows package is there, a missing Windows package fails its checks; without any,
# they are skipped (and said so).
SKIPPED=0
check_windows() {
  if compgen -G "$TARGET/windows/*-pc-windows-gnu/nami.dll" >/dev/null || compgen -G "$DIST/*win-x*" >/dev/null; then
    check "$@"
  else
    SKIPPED=$(( SKIPPED + 1 )); say "skip $1 (no Windows build in $TARGET/windows: bash scripts/windows.sh)"
  fi
}

# ---- the files ----------------------------------------------------------------------------------
EXPECTED=(SHA256SUMS LICENSE-MIT LICENSE-APACHE THIRD-PARTY-LICENSES.txt CHANGELOG.md "nami-c-sdk-$VERSION-linux-x64.zip"
  "Nami.$VERSION.nupkg" "nami_sdk-$VERSION-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
  "nami-kotlin-$VERSION.jar" "nami-httpd_$VERSION-1_amd64.deb")
EXPECTED_WINDOWS=("nami-c-sdk-$VERSION-win-x64.zip" "nami-c-sdk-$VERSION-win-x86.zip"
  "nami_sdk-$VERSION-py3-none-win_amd64.whl" "nami-httpd-$VERSION-win-x64.zip" "nami-httpd-$VERSION-win-x86.zip")
all_there() { local f; for f in "$@"; do [ -f "$DIST/$f" ] || { echo "missing: dist/$f"; return 1; }; done; }
check "dist has every Linux and cross-platform package" all_there "${EXPECTED[@]}"
check_windows "dist has every Windows package" all_there "${EXPECTED_WINDOWS[@]}"
check "SHA256SUMS covers dist/ and matches" bash -c 'cd "$0" && sha256sum -c SHA256SUMS &&
  [ "$(ls | grep -vx SHA256SUMS | sort)" = "$(sed "s/^[0-9a-f]*  //" SHA256SUMS | sort)" ]' "$DIST"
third_party() {
  local f=$DIST/THIRD-PARTY-LICENSES.txt
  # Crates every package links: their names, licence expressions and licence texts.
  for crate in tokio rusqlite serde sha2 windows-sys; do
    grep -qE "^$crate [0-9.]+$" "$f" || { echo "no section for $crate"; return 1; }
  done
  grep -q 'Permission is hereby granted' "$f" && grep -q 'Apache License' "$f"
}
check "third-party licences list the linked crates with their texts" third_party
check "CHANGELOG.md has a section for $VERSION" grep -E "^## \[$VERSION\]" "$DIST/CHANGELOG.md"
# What a clone holds must be all it needs: no file points at the reference material kept beside
# the repository on the development machine (docs/protocol.md holds what it established) or at a
# machine's own paths (the patterns below are bracketed so that this file does not match itself).
points_inside() {
  git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || { echo "not a git checkout: nothing to check"; return 0; }
  ! git -C "$ROOT" grep -nE '\.\./shared|/wor[k]/|/roo[t]/|/hom[e]/[a-z]'
}
check "no file of the repository points outside it (a shared folder beside it, a machine's paths)" points_inside

# ---- one version -----------------------------------------------------------------------------
check_says "nami --version" "nami $VERSION" "$BIN/nami" --version
check_says "nami-httpd --version" "nami-httpd $VERSION" "$BIN/nami-httpd" --version
health_version() {
  local log=$WORK/httpd.log state=$WORK/httpd-state
  "$BIN/nami-httpd" --listen 127.0.0.1:0 --state-dir "$state" >"$log" 2>&1 &
  DAEMON=$!
  for _ in $(seq 1 200); do grep -qs 'listening on http' "$log" && break; sleep 0.05; done
  local url; url=$(grep -oE 'listening on http://[0-9.:]+' "$log" | head -n1 | sed 's/listening on //')
  curl -fsS "$url/api/health-status" | python3 -c 'import json, sys; v = json.load(sys.stdin)["version"]; print(v); sys.exit(v != sys.argv[1])' "$VERSION"
  local rc=$?
  kill "$DAEMON"; wait "$DAEMON" 2>/dev/null; DAEMON=
  return $rc
}
check "/api/health-status version" health_version
# The release build's code layout (nami-httpd/build.rs): symbol-order.txt still names its functions.
if [ "${1:-}" = --release ]; then
  check "nami-httpd's code layout is current (90 % of symbol-order.txt's functions in the build)" \
    bash scripts/symbol-order.sh --check "$BIN/nami-httpd"
fi

# ---- C SDK -------------------------------------------------------------------------------------
c_sdk_linux() {
  local sdk=$WORK/c-linux
  mkdir -p "$sdk" && unzip -q "$DIST/nami-c-sdk-$VERSION-linux-x64.zip" -d "$sdk"
  local dir=$sdk/nami-c-sdk-$VERSION-linux-x64
  zip_has "$DIST/nami-c-sdk-$VERSION-linux-x64.zip" "nami-c-sdk-$VERSION-linux-x64/include/nami.h" \
    "nami-c-sdk-$VERSION-linux-x64/lib/libnami.so" "nami-c-sdk-$VERSION-linux-x64/lib/libnami.a" \
    "nami-c-sdk-$VERSION-linux-x64/examples/c/pos.c" "nami-c-sdk-$VERSION-linux-x64/LICENSE-MIT" \
    "nami-c-sdk-$VERSION-linux-x64/LICENSE-APACHE" "nami-c-sdk-$VERSION-linux-x64/THIRD-PARTY-LICENSES.txt" || return 1
  glibc_at_most "$dir/lib/libnami.so" 2.17 || return 1
  (cd "$dir" && gcc -std=c11 -Wall -I include examples/c/pos.c -L lib -lnami -Wl,-rpath,'$ORIGIN/lib' -o pos-shared \
     && gcc -std=c11 -Wall -I include examples/c/pos.c lib/libnami.a -lpthread -ldl -lm -o pos-static) || return 1
  start_sim || return 1
  "$dir/pos-shared" 127.0.0.1 "$SIM_PORT" 12345678 "$WORK/c-state-shared" | tee "$WORK/c-shared.out" || return 1
  grep -qx "libnami $VERSION" "$WORK/c-shared.out" || { echo "pos did not print libnami $VERSION"; return 1; }
  start_sim || return 1
  "$dir/pos-static" 127.0.0.1 "$SIM_PORT" 12345678 "$WORK/c-state-static"
}
check "C SDK linux-x64: pos.c built against the zip (shared, static) buys from nami-sim; glibc <= 2.17; nami_version()" c_sdk_linux

c_sdk_windows() {  # $1: win-x64 | win-x86
  local arch=$1 gcc
  gcc=$([ "$arch" = win-x64 ] && echo x86_64-w64-mingw32-gcc || echo i686-w64-mingw32-gcc)
  local zip=$DIST/nami-c-sdk-$VERSION-$arch.zip dir=$WORK/c-$arch/nami-c-sdk-$VERSION-$arch
  local p=nami-c-sdk-$VERSION-$arch
  zip_has "$zip" "$p/include/nami.h" "$p/bin/nami.dll" "$p/lib/libnami.a" "$p/lib/libnami.dll.a" \
    "$p/lib/nami.lib" "$p/lib/nami.def" "$p/examples/c/pos.c" "$p/LICENSE-MIT" "$p/LICENSE-APACHE" \
    "$p/THIRD-PARTY-LICENSES.txt" || return 1
  mkdir -p "$WORK/c-$arch" && unzip -q "$zip" -d "$WORK/c-$arch" || return 1
  # Every function of nami.h is in the .def (and so in both import libraries).
  local missing
  missing=$(comm -23 <(grep -oE '\bnami_[a-z0-9_]+\(' "$dir/include/nami.h" | tr -d '(' | sort -u) \
                     <(grep -oE 'nami_[a-z0-9_]+' "$dir/lib/nami.def" | sort -u))
  [ -z "$missing" ] || { echo "in nami.h but not exported: $missing"; return 1; }
  command -v "$gcc" >/dev/null || { echo "$gcc is not installed (scripts/windows.sh installs it)"; return 1; }
  # A program linked through each import library imports its functions from nami.dll.
  for lib in nami.lib libnami.dll.a; do
    (cd "$dir" && "$gcc" -std=c11 -I include examples/c/pos.c "lib/$lib" -o "pos-$lib.exe") || return 1
    "${gcc%-gcc}-objdump" -p "$dir/pos-$lib.exe" | grep -c 'DLL Name: nami.dll' || { echo "pos-$lib.exe does not import nami.dll"; return 1; }
  done
  # The static library links with the system libraries its README lists (posix-threads gcc, as
  # Rust's std for windows-gnu expects), and the program then needs no nami.dll.
  command -v "$gcc-posix" >/dev/null && gcc=$gcc-posix
  (cd "$dir" && "$gcc" -std=c11 -pthread -I include examples/c/pos.c lib/libnami.a -lws2_32 -luserenv -lntdll \
     -ladvapi32 -lsetupapi -lcfgmgr32 -lbcrypt -lkernel32 -static-libgcc -Wl,-Bstatic -lwinpthread -Wl,-Bdynamic \
     -o pos-static.exe) || return 1
  ! "${gcc%-gcc*}-objdump" -p "$dir/pos-static.exe" | grep -c 'DLL Name: nami.dll'
}
check_windows "C SDK win-x64: contents, exports of nami.h in the .def, pos.c linked through nami.lib, libnami.dll.a and libnami.a" c_sdk_windows win-x64
check_windows "C SDK win-x86: contents, exports of nami.h in the .def, pos.c linked through nami.lib, libnami.dll.a and libnami.a" c_sdk_windows win-x86

# ---- NuGet ------------------------------------------------------------------------------------
nuget_consumer() {
  local feed=$WORK/nuget-packages app=$WORK/nuget-app
  mkdir -p "$feed" "$app"
  nuget install Nami -Version "$VERSION" -Source "$DIST" -OutputDirectory "$feed" -NonInteractive || return 1
  local pkg=$feed/Nami.$VERSION
  for f in lib/netstandard2.0/Nami.dll lib/netstandard2.0/Nami.xml runtimes/linux-x64/native/libnami.so \
           build/net461/Nami.targets LICENSE-MIT LICENSE-APACHE THIRD-PARTY-LICENSES.txt; do
    [ -f "$pkg/$f" ] || { echo "the installed package lacks $f"; return 1; }
  done
  unzip -p "$DIST/Nami.$VERSION.nupkg" Nami.nuspec | grep -c "<version>$VERSION</version>" || { echo "nuspec version"; return 1; }
  # As a build would: the assembly and the runtime's native library next to the program.
  mcs -langversion:7.2 -nologo -r:"$pkg/lib/netstandard2.0/Nami.dll" -out:"$app/Pos.exe" examples/csharp/Pos.cs || return 1
  cp "$pkg/lib/netstandard2.0/Nami.dll" "$pkg/runtimes/linux-x64/native/libnami.so" "$app/"
  start_sim || return 1
  (cd "$app" && mono Pos.exe 127.0.0.1 "$SIM_PORT" 12345678 "$WORK/nuget-state") | tee "$WORK/nuget.out" || return 1
  grep -qx "libnami $VERSION" "$WORK/nuget.out" || { echo "Pos.exe did not print libnami $VERSION"; return 1; }
  # The assembly's own version attributes.
  cat > "$app/AssemblyVersion.cs" <<'EOF'
using System.Reflection;
static class AssemblyVersion {
    static void Main() {
        var assembly = typeof(Nami.Terminal).Assembly;
        var informational = (AssemblyInformationalVersionAttribute)assembly.GetCustomAttributes(
            typeof(AssemblyInformationalVersionAttribute), false)[0];
        System.Console.WriteLine(assembly.GetName().Version + " " + informational.InformationalVersion);
    }
}
EOF
  mcs -nologo -r:"$app/Nami.dll" -out:"$app/AssemblyVersion.exe" "$app/AssemblyVersion.cs" || return 1
  (cd "$app" && mono AssemblyVersion.exe) | tee "$WORK/assembly.out"
  grep -qx "$VERSION.0 $VERSION" "$WORK/assembly.out" || { echo "Nami.dll's assembly version"; return 1; }
}
check "NuGet: nuget install from dist/, Pos.cs compiled with mcs against it, run on Mono against nami-sim; versions" nuget_consumer
nuget_windows() {
  zip_has "$DIST/Nami.$VERSION.nupkg" runtimes/win-x64/native/nami.dll runtimes/win-x86/native/nami.dll || return 1
  local dir=$WORK/nuget-win; mkdir -p "$dir" && unzip -q -o "$DIST/Nami.$VERSION.nupkg" 'runtimes/*' -d "$dir" || return 1
  objdump -f "$dir/runtimes/win-x64/native/nami.dll" | grep -c 'pei-x86-64' \
    && objdump -f "$dir/runtimes/win-x86/native/nami.dll" | grep -c 'pei-i386'
}
check_windows "NuGet: runtimes/win-x64 and win-x86 hold the 64- and 32-bit nami.dll" nuget_windows

# ---- Python -----------------------------------------------------------------------------------
python_consumer() {
  local venv=$WORK/venv wheel=$DIST/nami_sdk-$VERSION-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
  python3 -m venv "$venv" || return 1
  "$venv/bin/pip" install -q --no-index --disable-pip-version-check "$wheel" || return 1
  unzip -q -o "$wheel" 'nami/nami/libnami.so' -d "$WORK/wheel-so" && glibc_at_most "$WORK/wheel-so/nami/nami/libnami.so" 2.17 || return 1
  # auditwheel (PyPI's own checker of the manylinux rules: symbol versions, allowed libraries).
  "$ROOT/.tools/release-venv/bin/auditwheel" show "$wheel" >"$WORK/auditwheel.txt" || { cat "$WORK/auditwheel.txt"; return 1; }
  cat "$WORK/auditwheel.txt"
  tr -s ' \n' ' ' <"$WORK/auditwheel.txt" | grep -cF 'consistent with the following platform tag: "manylinux_2_17_x86_64"' \
    || { echo "auditwheel does not call the wheel manylinux_2_17_x86_64"; return 1; }
  (cd "$WORK" && "$venv/bin/python" -c 'import importlib.metadata as m, nami, sys
print(nami.version(), m.version("nami-sdk")); sys.exit({nami.version(), m.version("nami-sdk")} != {sys.argv[1]})' "$VERSION") || return 1
  start_sim || return 1
  (cd "$WORK" && "$venv/bin/python" "$ROOT/examples/python/pos.py" 127.0.0.1 "$SIM_PORT")
}
check "Python: the manylinux2014 wheel (glibc <= 2.17, auditwheel show) in a fresh venv (version) buys from nami-sim" python_consumer
python_windows_wheel() {
  local wheel=$DIST/nami_sdk-$VERSION-py3-none-win_amd64.whl
  zip_has "$wheel" nami/__init__.py nami/nami/nami.py nami/nami/nami.dll "nami_sdk-$VERSION.dist-info/WHEEL" || return 1
  ! unzip -Z1 "$wheel" | grep -c 'libnami.so' && unzip -p "$wheel" "nami_sdk-$VERSION.dist-info/WHEEL" | grep -cx 'Tag: py3-none-win_amd64' \
    && unzip -p "$wheel" "nami_sdk-$VERSION.dist-info/METADATA" | grep -cx "Version: $VERSION"
}
check_windows "Python: the win_amd64 wheel holds nami.dll, no libnami.so, tag win_amd64, version $VERSION" python_windows_wheel

# ---- JVM -----------------------------------------------------------------------------------------
jvm_consumer() {
  local jar=$DIST/nami-kotlin-$VERSION.jar
  local kotlin_stdlib=$ROOT/.tools/kotlin/node_modules/kotlin-compiler/lib/kotlin-stdlib.jar
  local examples=$TARGET/bindings/kotlin/nami-kotlin-tests.jar
  zip_has "$jar" linux-x86-64/libnami.so sa/nami/NamiKt.class META-INF/licenses/LICENSE-MIT || return 1
  unzip -p "$jar" META-INF/MANIFEST.MF | tr -d '\r' | grep -cx "Implementation-Version: $VERSION" || { echo "manifest version"; return 1; }
  mkdir -p "$WORK/jvm"
  cat > "$WORK/jvm/PrintVersion.java" <<'EOF'
public class PrintVersion {
    public static void main(String[] args) { System.out.println("nami " + sa.nami.NamiKt.version()); }
}
EOF
  javac -cp "$jar" -d "$WORK/jvm" "$WORK/jvm/PrintVersion.java" || return 1
  local cp=$jar:/usr/share/java/jna.jar:$kotlin_stdlib
  # A fresh JVM: no -Djna.library.path, no jna.* settings, JNA's cache in an empty home.
  HOME=$WORK/jvm java -cp "$cp:$WORK/jvm" PrintVersion | tee "$WORK/jvm.out" || return 1
  grep -qx "nami $VERSION" "$WORK/jvm.out" || return 1
  start_sim || return 1
  HOME=$WORK/jvm java -cp "$cp:$examples" sa.nami.examples.PosKt 127.0.0.1 "$SIM_PORT"
}
check "JVM: the jar's manifest; version() and examples/kotlin/Pos.kt on a fresh JVM against nami-sim" jvm_consumer
jvm_windows() {
  local jar=$DIST/nami-kotlin-$VERSION.jar dir=$WORK/jar-win
  zip_has "$jar" win32-x86-64/nami.dll win32-x86/nami.dll || return 1
  mkdir -p "$dir" && unzip -q -o "$jar" 'win32-*' -d "$dir" || return 1
  objdump -f "$dir/win32-x86-64/nami.dll" | grep -c 'pei-x86-64' && objdump -f "$dir/win32-x86/nami.dll" | grep -c 'pei-i386'
}
check_windows "JVM: the jar holds the 64- and 32-bit nami.dll where JNA looks (win32-x86-64, win32-x86)" jvm_windows

# ---- the daemon ----------------------------------------------------------------------------------
daemon_windows_zip() {
  local p=nami-httpd-$VERSION-$1
  zip_has "$DIST/$p.zip" "$p/nami-httpd.exe" "$p/nami.exe" "$p/nami-sim.exe" "$p/README.txt" \
    "$p/LICENSE-MIT" "$p/LICENSE-APACHE" "$p/THIRD-PARTY-LICENSES.txt" || return 1
  unzip -p "$DIST/$p.zip" "$p/README.txt" | grep -c "service install"
}
check_windows "daemon win-x64 zip" daemon_windows_zip win-x64
check_windows "daemon win-x86 zip" daemon_windows_zip win-x86

# The Windows files as shipped, run under Wine in the prefixes scripts/windows.sh made (with its
# bcryptprimitives.dll stand-in): each program of the daemon zip reports the version, and pos.c
# linked through the C SDK's nami.lib (dlltool's, from the .def) loads the zip's nami.dll, reports
# its nami_version() and buys from nami-sim.
windows_under_wine() {  # $1: win-x64 | win-x86
  local arch=$1 wine prefix gcc
  case $arch in
    win-x64) wine=/usr/lib/wine/wine64 prefix=$TARGET/windows/run/prefix-x86_64 gcc=x86_64-w64-mingw32-gcc ;;
    win-x86) wine=/usr/lib/wine/wine prefix=$TARGET/windows/run/prefix-i686 gcc=i686-w64-mingw32-gcc ;;
  esac
  [ -x "$wine" ] && [ -d "$prefix/drive_c/windows/system32" ] \
    || { echo "no Wine or no Wine prefix at $prefix (scripts/windows.sh installs and makes them)"; return 1; }
  local -x WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  local daemon=$WORK/wine-$arch/nami-httpd-$VERSION-$arch exe out
  mkdir -p "$WORK/wine-$arch" && unzip -q -o "$DIST/nami-httpd-$VERSION-$arch.zip" -d "$WORK/wine-$arch" || return 1
  for exe in nami-httpd nami nami-sim; do
    out=$(timeout 120 "$wine" "$daemon/$exe.exe" --version 2>&1 | tr -d '\r')
    echo "$exe.exe --version: $out"
    grep -qx "$exe $VERSION" <<<"$out" || { echo "$exe.exe does not report $exe $VERSION"; return 1; }
  done
  local sdk=$WORK/wine-$arch/nami-c-sdk-$VERSION-$arch
  unzip -q -o "$DIST/nami-c-sdk-$VERSION-$arch.zip" -d "$WORK/wine-$arch" || return 1
  (cd "$sdk" && "$gcc" -std=c11 -I include examples/c/pos.c lib/nami.lib -o pos.exe && cp bin/nami.dll .) || return 1
  start_sim || return 1
  (cd "$sdk" && timeout 120 "$wine" ./pos.exe 127.0.0.1 "$SIM_PORT" 12345678 "Z:$WORK/wine-$arch/pos-state") 2>&1 \
    | tr -d '\r' | tee "$WORK/wine-$arch/pos.out"
  grep -qx "libnami $VERSION" "$WORK/wine-$arch/pos.out" || { echo "pos.exe did not print libnami $VERSION"; return 1; }
  grep -q ': APPROVED$' "$WORK/wine-$arch/pos.out" || { echo "the purchase through nami.lib was not approved"; return 1; }
}
check_windows "win-x64 under Wine: the daemon zip's programs report $VERSION; pos.c linked through nami.lib buys from nami-sim" windows_under_wine win-x64
check_windows "win-x86 under Wine: the daemon zip's programs report $VERSION; pos.c linked through nami.lib buys from nami-sim" windows_under_wine win-x86

# dpkg, waiting for the lock while another apt or dpkg runs (up to 10 minutes).
dpkg_waiting() {
  local out
  for _ in $(seq 1 120); do
    out=$(dpkg "$@" 2>&1) && { echo "$out"; return 0; }
    grep -q 'lock' <<<"$out" || { echo "$out"; return 1; }
    sleep 5
  done
  echo "$out"; return 1
}
deb_install() {
  local deb=$DIST/nami-httpd_${VERSION}-1_amd64.deb
  dpkg-deb --field "$deb" Version | grep -cx "$VERSION-1" || return 1
  dpkg_waiting -i "$deb" || return 1
  local exe
  for exe in nami-httpd nami nami-sim; do
    [ "$(/usr/bin/$exe --version)" = "$exe $VERSION" ] || { echo "/usr/bin/$exe does not report $exe $VERSION"; return 1; }
  done
  getent passwd nami-httpd || { echo "no user nami-httpd"; return 1; }
  local unit=/lib/systemd/system/nami-httpd.service
  for line in User=nami-httpd StateDirectory=nami-httpd Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict \
              ProtectHome=yes PrivateTmp=yes; do
    grep -qx "$line" "$unit" || { echo "$unit lacks $line"; return 1; }
  done
  [ "$(stat -c '%U %a' /var/lib/nami-httpd)" = "nami-httpd 700" ] || { echo "state dir: $(stat -c '%U %a' /var/lib/nami-httpd)"; return 1; }
  # systemd's own reading of the unit, and its exposure (shown 0.0-10.0, 0 = locked down, below 4
  # "OK"; --threshold counts in tenths): at most 3.0.
  if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" || return 1
    systemd-analyze security --offline=yes --threshold=30 "$unit" >"$WORK/security.txt" || { cat "$WORK/security.txt"; return 1; }
    tail -n 1 "$WORK/security.txt"
  else
    echo "systemd-analyze is not installed: the unit's syntax and exposure are not checked"
  fi
}
check "deb: dpkg -i, the programs, the user, the hardened unit, the state directory" deb_install
deb_execstart() {
  # The unit's ExecStart line as systemd would run it: as the unit's user, the configuration the
  # package installed; only the port is moved (NAMI_LISTEN wins over the file) to a free one.
  local unit=/lib/systemd/system/nami-httpd.service exec log=$WORK/execstart.log
  exec=$(sed -n 's/^ExecStart=//p' "$unit")
  echo "ExecStart: $exec"
  # shellcheck disable=SC2086
  NAMI_LISTEN=127.0.0.1:0 setpriv --reuid=nami-httpd --regid=nami-httpd --init-groups $exec >"$log" 2>&1 &
  DAEMON=$!
  for _ in $(seq 1 200); do grep -qs 'listening on http' "$log" && break; sleep 0.05; done
  local url; url=$(grep -oE 'listening on http://[0-9.:]+' "$log" | head -n1 | sed 's/listening on //')
  [ -n "$url" ] || { cat "$log"; return 1; }
  start_sim || return 1
  local terminal="\"tcpipcomData\":{\"ip\":\"127.0.0.1\",\"port\":$SIM_PORT}"
  curl -fsS -X POST -H 'Content-Type: application/json' "$url/performTransactionTCPIP" \
    -d "{$terminal,\"paymentRequest\":{\"txnType\":\"REGISTER\",\"cashRegisterNo\":\"12345678\"}}" || return 1
  echo
  curl -fsS -X POST -H 'Content-Type: application/json' "$url/performTransactionTCPIP" \
    -d "{$terminal,\"paymentRequest\":{\"txnType\":\"PURCHASE\",\"amount\":\"10.00\",\"ecrReferenceNo\":\"12345678000001\"}}" \
    | tee "$WORK/purchase.json" || return 1
  echo
  grep -q 'APPROVED' "$WORK/purchase.json" || { echo "the purchase was not approved"; return 1; }
  kill -TERM "$DAEMON"; wait "$DAEMON"; local rc=$?; DAEMON=
  [ $rc -eq 0 ] || { echo "exit status $rc after SIGTERM"; cat "$log"; return 1; }
  # Its journal is in the state directory, owned by the unit's user.
  find /var/lib/nami-httpd -maxdepth 1 -type f -user nami-httpd | grep -c . || { ls -la /var/lib/nami-httpd; return 1; }
}
check "deb: the unit's ExecStart run as nami-httpd serves REGISTER and PURCHASE and stops on SIGTERM (exit 0)" deb_execstart
deb_purge() {
  dpkg -s nami-httpd >/dev/null 2>&1 || { echo "nami-httpd is not installed"; return 1; }
  dpkg_waiting --purge nami-httpd || return 1
  ! [ -e /usr/bin/nami-httpd ] && ! [ -e /var/lib/nami-httpd ] && ! getent passwd nami-httpd
}
check "deb: dpkg --purge removes the programs, the state and the user" deb_purge

echo
[ ${#FAILURES[@]} -eq 0 ] || { echo "failed:"; printf '  %s\n' "${FAILURES[@]}"; }
echo "release: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
