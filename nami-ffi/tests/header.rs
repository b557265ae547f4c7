//! The committed `include/nami.h` is what cbindgen generates from `src/capi/` now.

use std::path::Path;

#[path = "../header.rs"]
#[allow(dead_code)] // `sources` is for build.rs
mod header;

#[test]
fn the_committed_header_matches_a_freshly_generated_one() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fresh = header::generate(crate_dir);
    // Kept after the test, for a diff when it fails.
    let fresh_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nami.h");
    std::fs::write(&fresh_path, &fresh).unwrap();
    let committed = std::fs::read_to_string(crate_dir.join("include").join("nami.h")).unwrap_or_default();
    assert!(
        committed == std::fs::read_to_string(&fresh_path).unwrap(),
        "nami-ffi/include/nami.h is stale: run `cargo build -p nami-ffi` (outside CI) and commit the header \
         (fresh copy: {})",
        fresh_path.display()
    );
}
