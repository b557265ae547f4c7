//! `uniffi-bindgen`: generates the Python and Kotlin sources of the `nami` library from the
//! metadata uniffi embeds in it, e.g.
//! `uniffi-bindgen generate --library target/debug/libnami.so -l kotlin --no-format -o out/`.
//! Being a workspace member, it always has the same uniffi version as `nami-ffi`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
