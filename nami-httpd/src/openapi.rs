//! The OpenAPI 3.1 document (`GET /openapi.json`). The service's endpoints come from their table,
//! `nami_sdk::service::endpoints` (path, method, request and answer types), their schemas from the
//! SDK's own REST types (its `openapi` feature derives utoipa's `ToSchema` on them); the daemon's
//! own endpoints (`/api/tls`, `/openapi.json`, the dashboard's, `/simulator/*`) from their
//! handlers' `#[utoipa::path]` attributes: the simulator's bodies are nami-sim's own types (its
//! `openapi` feature), the HTTPS switch's request is the type below.
//!
//! The tests check the daemon's real answers against this document both ways (every field an
//! answer has is documented with its type, every field the schema requires is there):
//! `tests/common/mod.rs`, `conforms`.

use std::sync::OnceLock;

use nami_sdk::service::endpoints::{ENDPOINTS, Method};
use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::{routes, sim};

// ---------------------------------------------------------------------------------------------
// HTTPS

/// `POST /api/tls`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TlsSwitchRequest)]
pub struct TlsSwitchRequestDoc {
    /// true: HTTPS on the same port; false: back to HTTP.
    pub enabled: bool,
}

// ---------------------------------------------------------------------------------------------
// The document

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Nami Local API Middleware (nami-httpd)",
        description = "Drop-in REST API of Nami's Local API Middleware (port 9099) over the nami-sdk \
            middleware service. HTTP status is 200 for every answer that carries a middleware or \
            terminal result (read `statusCode` in the body); 4xx only for requests the API cannot \
            parse. Authentication: none on loopback; `Authorization: Bearer <token>` when a token \
            is configured (always on a non-loopback bind unless `--no-auth`).",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        routes::tls_status,
        routes::tls_switch,
        routes::openapi_json,
        sim::state,
        sim::journal,
        sim::fault,
        sim::clear_faults,
        sim::tap,
        sim::card_tap,
        sim::reboot,
        crate::dashboard::dashboard_snapshot,
        crate::dashboard::recover,
    ),
    components(schemas(nami_sdk::service::ErrorBody)),
    modifiers(&Common),
    tags(
        (name = "COM path", description = "A terminal on a serial (USB) port"),
        (name = "TCP/IP path", description = "A terminal on the network"),
        (name = "Utilities", description = "Cancel, connections, registration, health"),
        (name = "Journal", description = "Beyond Nami's API: the transaction journal"),
        (name = "HTTPS", description = "Beyond Nami's API: the dashboard's \"Switch to HTTPS\""),
        (name = "Dashboard", description = "Beyond Nami's API: what the page at `/` reads (its live stream, `GET /api/events`, is server-sent events and not described here)"),
        (name = "Simulator", description = "Beyond Nami's API: the embedded simulated terminal (`--simulator`); 404 when none runs"),
    )
)]
pub struct ApiDoc;

/// The service's endpoints from their table, the daemon's fields of the health status, and what
/// every operation shares: the bearer scheme (optional), and the daemon's own errors.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut schemas = Vec::new();
        for endpoint in ENDPOINTS {
            let method = match endpoint.method {
                Method::Get => HttpMethod::Get,
                Method::Post => HttpMethod::Post,
            };
            openapi.paths.add_path_operation(endpoint.path, vec![method], endpoint.operation(&mut schemas));
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.extend(schemas);
        // `GET /api/health-status` answers the service's health and the daemon's fields.
        if let Some(RefOr::T(Schema::Object(health))) = components.schemas.get_mut("HealthStatus")
            && let RefOr::T(Schema::Object(daemon)) = <routes::DaemonHealth as PartialSchema>::schema()
        {
            health.properties.extend(daemon.properties);
            health.required.extend(daemon.required);
        }
        let mut daemon_schemas = Vec::new();
        <routes::DaemonHealth as ToSchema>::schemas(&mut daemon_schemas);
        components.schemas.extend(daemon_schemas);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Required when the daemon has a token (central deployments)"))
                    .build(),
            ),
        );
        openapi.security =
            Some(vec![SecurityRequirement::default(), SecurityRequirement::new("bearer", Vec::<String>::new())]);
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations: [&mut Option<Operation>; 2] = [&mut item.get, &mut item.post];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if operation.request_body.is_some() {
                    responses.entry("413".into()).or_insert_with(|| error("The body is over 64 KiB").into());
                }
                responses.entry("401".into()).or_insert_with(|| error("Missing or wrong bearer token").into());
                responses.entry("403".into()).or_insert_with(|| {
                    error(
                        "From a web page that may not call the daemon: a `Host` that does not name it, an `Origin` \
                        neither its own nor in `allowed_origins`, or `Sec-Fetch-Site: cross-site`",
                    )
                    .into()
                });
                responses.entry("405".into()).or_insert_with(|| error("Wrong method for this path").into());
                responses.entry("500".into()).or_insert_with(|| error("Internal failure").into());
            }
        }
    }
}

/// The document as JSON (built once).
pub fn document() -> Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
            close_answers(&mut document);
            document
        })
        .clone()
}

/// Marks the object schemas of every answer (and those they contain) `additionalProperties:
/// false`: the daemon sends no field it does not document (the tests check it). The SDK's types
/// do not refuse unknown fields themselves, so that a client of a newer daemon still reads them.
fn close_answers(document: &mut Value) {
    let mut names: Vec<String> = Vec::new();
    let collect = |value: &Value, names: &mut Vec<String>| {
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(reference)) = map.get("$ref")
                        && let Some(name) = reference.strip_prefix("#/components/schemas/")
                        && !names.iter().any(|n| n == name)
                    {
                        names.push(name.to_owned());
                    }
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    };
    for item in document["paths"].as_object().into_iter().flat_map(|paths| paths.values()) {
        for operation in item.as_object().into_iter().flat_map(|item| item.values()) {
            collect(&operation["responses"], &mut names);
        }
    }
    let mut index = 0;
    while index < names.len() {
        let schema = document["components"]["schemas"][&names[index]].clone();
        collect(&schema, &mut names);
        index += 1;
    }
    for name in names {
        if let Some(Value::Object(schema)) = document["components"]["schemas"].get_mut(&name)
            && schema.contains_key("properties")
        {
            schema.entry("additionalProperties").or_insert(Value::Bool(false));
        }
    }
}
