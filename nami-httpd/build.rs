//! Code layout of the daemon's binary: on x86_64 Linux, where rustc links with its own lld, the
//! functions listed in `symbol-order.txt` (what runs at start-up, on a health request and under a
//! short load; written by `scripts/symbol-order.sh`) are laid out first and together in `.text`.
//! The kernel maps a binary's code a page cache folio or a fault-around window at a time, so the
//! pages the idle daemon touched held 5.9 MB of code, mostly cold functions beside the 1.7 MB it
//! ran; together, they hold little else (README.md, "Code layout"). Names the file lists that the
//! build no longer has are skipped: a stale file costs memory, not a build. `NAMI_SYMBOL_ORDER=0`
//! turns it off (e.g. for a linker other than lld).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=NAMI_SYMBOL_ORDER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let off = std::env::var_os("NAMI_SYMBOL_ORDER").is_some_and(|value| value == "0");
    // The names are those of the release build (a hash of each crate's build is in them): debug
    // builds, which the tests run, are linked as before.
    let release = std::env::var("PROFILE").is_ok_and(|profile| profile == "release");
    if off || !release || target != "x86_64-unknown-linux-gnu" || !rustc_links_with_lld() {
        return;
    }
    let file = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("symbol-order.txt");
    println!("cargo:rustc-link-arg-bin=nami-httpd=-Wl,--symbol-ordering-file={}", file.display());
    println!("cargo:rustc-link-arg-bin=nami-httpd=-Wl,--no-warn-symbol-ordering");
}

/// rustc links x86_64 Linux programs with its own lld since 1.90; an older rustc, or a linker
/// chosen through RUSTFLAGS, may be GNU ld, which has no `--symbol-ordering-file`.
fn rustc_links_with_lld() -> bool {
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker") || flags.contains("fuse-ld") || flags.contains("link-self-contained") {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(output) = std::process::Command::new(rustc).arg("-V").output() else { return false };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&output.stdout);
    let minor = version.split_whitespace().nth(1).and_then(|v| v.split('.').nth(1)).and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|minor| minor >= 90)
}
