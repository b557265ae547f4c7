//! Generates the C header `include/nami.h` from `src/capi/` with cbindgen.
//!
//! The header is committed. Outside CI the build rewrites it when the C ABI changes, so the diff
//! shows up in `git status`; under CI (`CI` set and not `false`) it is left alone and the test
//! `tests/header.rs` fails if the committed header differs from a fresh one.

use std::path::PathBuf;

#[path = "header.rs"]
mod header;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src/capi");
    for file in header::sources(&crate_dir) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=header.rs");
    println!("cargo:rerun-if-env-changed=CI");
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if in_ci {
        return;
    }
    let text = header::generate(&crate_dir);
    let path = crate_dir.join("include").join("nami.h");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::create_dir_all(path.parent().expect("include/")).expect("include/ can be created");
        std::fs::write(&path, text).expect("include/nami.h can be written");
    }
}
