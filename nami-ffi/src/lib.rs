//! C ABI and uniffi bindings of `nami-sdk`: not implemented yet (issues 7 and 8).
