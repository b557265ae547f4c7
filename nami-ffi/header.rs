//! Generating `include/nami.h` with cbindgen, shared by `build.rs` and the drift test
//! (`tests/header.rs`), so both produce the header the same way.

use std::path::{Path, PathBuf};

/// The files the header comes from: every `.rs` file of `src/capi/`, in name order. Only the C ABI
/// module is parsed, so the uniffi exports that live elsewhere in the crate stay out of the header.
pub fn sources(crate_dir: &Path) -> Vec<PathBuf> {
    let dir = crate_dir.join("src").join("capi");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    files
}

/// The text of the header as cbindgen generates it from `src/capi/` and `cbindgen.toml`.
pub fn generate(crate_dir: &Path) -> String {
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    // cbindgen follows the `mod` items of `src/capi/mod.rs` to the other files itself.
    let builder =
        cbindgen::Builder::new().with_config(config).with_src(crate_dir.join("src").join("capi").join("mod.rs"));
    let mut out = Vec::new();
    builder.generate().expect("cbindgen failed").write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}
