//! Empty on purpose: this crate exists for its `Cargo.toml` (see there), which gives every
//! dependency one feature set across the workspace so that each crate is compiled once.
