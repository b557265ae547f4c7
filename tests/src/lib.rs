//! Placeholder: end-to-end tests live in `tests/` of this package.
