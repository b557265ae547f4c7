#![cfg_attr(not(feature = "service"), allow(dead_code))] // Only `text` without the service.
//! Hand-written OpenAPI schemas (feature `openapi`) for the REST fields whose JSON is wider than
//! their Rust type: text that also takes a number, a port as a number or its text, ... Named in
//! `#[schema(schema_with = ...)]` attributes of the REST types.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type};

/// A text field that also accepts a JSON number (taken as its decimal text) or null.
pub fn text() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Number, Type::Null]))
}

/// A number or its text (`"115200"`).
pub fn number_or_text() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Number, Type::String, Type::Null]))
}

/// The port number regex, 1-65535.
const PORT_TEXT: &str = "^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})$";

/// A TCP port: 1-65535, as a number or its text.
pub fn tcp_port() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(65535)))
            .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(PORT_TEXT)))
            .build(),
    )
}

pub fn optional_tcp_port() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(65535)))
            .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(PORT_TEXT)))
            .build(),
    )
}

/// A host: an IP address or a name, without white space.
pub fn host() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^\S+$"))
}

pub fn optional_host() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])).pattern(Some(r"^\S+$"))
}

/// Any JSON value.
pub fn any() -> ObjectBuilder {
    ObjectBuilder::new()
}

/// A time bound: `YYYY-MM-DD` or RFC 3339 (empty: no bound).
pub fn time_bound() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).max_length(Some(0)))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .build(),
    )
}

/// A cash register number: 8 digits, the first not zero (an ECR reference cannot start with 0),
/// as text or a number.
pub fn cash_register_no() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[1-9][0-9]{7}$")))
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(10_000_000)).maximum(Some(99_999_999)))
            .build(),
    )
}

/// The serial port: the COM number of the seeds (3 for COM3; elsewhere the listed serial port
/// with that number), or a device path (`/dev/ttyACM0`, a pseudo-terminal) or port name (`COM3`).
pub fn com_port() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(4_294_967_295_f64)))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .build(),
    )
}

/// `TcpTarget`, by reference: for a field that keeps its JSON until it is read as one.
pub fn tcp_target_ref() -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_schema_name("TcpTarget")
}

/// The `state` filter of `GET /transactions`: one of [`crate::service::EntryStateFilter::names`].
#[cfg(feature = "service")]
pub fn entry_state_filter() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(crate::service::EntryStateFilter::names()))
            .build(),
    )
}
