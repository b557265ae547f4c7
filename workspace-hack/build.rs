// Empty on purpose: cargo resolves a package's build-dependencies only when it has a build script,
// and the host features in `Cargo.toml` are there to unify those of build scripts and macros.
fn main() {}
