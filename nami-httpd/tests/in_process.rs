//! The router in process (`tower::ServiceExt::oneshot`, no socket), and once over a real socket
//! with `Server::start`: the OpenAPI document against the routes, the JSON error answers, auth.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use nami_httpd::config::{Config, TlsSettings};
use nami_httpd::tls::TlsSwitch;
use nami_httpd::{AppParts, AppState, BODY_LIMIT, Server, app, auth};
use nami_sdk::{Service, ServiceConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

fn state(dir: &std::path::Path, token: Option<&str>) -> AppState {
    let service = Service::open(ServiceConfig::new(dir)).unwrap();
    let tls = TlsSwitch::start(TlsSettings::default(), dir, vec!["localhost".into()]).unwrap();
    AppState::new(AppParts {
        service: Arc::new(service),
        tls: Arc::new(tls),
        token: token.map(auth::Token::new),
        port: 9099,
        simulator: None,
        origins: nami_httpd::origin::Policy::new("127.0.0.1:9099".parse().unwrap(), &[], &[]).unwrap(),
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One request through the router: status and JSON body.
async fn call(router: &nami_httpd::App, method: Method, uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let request = Request::builder().method(method).uri(uri).body(body.into()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(content_type.as_deref(), Some("application/json"), "{uri}");
    (status, body)
}

#[test]
fn every_documented_operation_is_routed_and_answers_json() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(state(dir.path(), None));
    let document = nami_httpd::openapi::document();
    assert_eq!(document["openapi"], "3.1.0");
    let mut operations = 0;
    runtime().block_on(async {
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in ["get", "post"] {
                if item.get(method).is_none() {
                    continue;
                }
                operations += 1;
                let uri = path.replace("{ecrReferenceNo}", "12345678000001");
                // Leave the scheme alone: /api/tls is switched in its own test.
                let body = if uri == "/api/tls" { r#"{"enabled": "no"}"# } else { "" };
                let (status, answer) =
                    call(&router, Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &uri, body).await;
                let documented = item[method]["responses"].get(status.as_str()).is_some();
                assert!(documented, "{method} {uri}: {status} is not documented ({answer})");
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
                if status == StatusCode::NOT_FOUND {
                    assert!(
                        uri.starts_with("/simulator/") || uri.starts_with("/transactions/"),
                        "{method} {uri} is documented but not routed: {answer}"
                    );
                }
            }
        }
    });
    assert_eq!(
        operations, 27,
        "every route of `app` is in the document (all but the page, its assets and its event stream)"
    );
}

#[test]
fn every_reference_of_the_document_is_in_it() {
    // A client generated from the document (openapi-generator, NSwag, ...) fails on a `$ref` to a
    // schema the document lacks; the `state` filter of GET /transactions had one.
    fn references(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(serde_json::Value::as_str) {
                    found.push(reference.to_owned());
                }
                map.values().for_each(|v| references(v, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| references(v, found)),
            _ => {}
        }
    }
    let document = nami_httpd::openapi::document();
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(found.len() > 50, "{} references", found.len());
    for reference in found {
        let name = reference.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{reference}"));
        assert!(document["components"]["schemas"].get(name).is_some(), "{reference} is not in the document");
    }
    let state = document["paths"]["/transactions"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "state")
        .unwrap()
        .clone();
    assert_eq!(
        state["schema"]["enum"],
        serde_json::json!(["pending", "approved", "declined", "error", "unknown", "not_found", "attention"])
    );
}

#[test]
fn the_document_names_every_field_of_the_seed_examples() {
    let document = nami_httpd::openapi::document();
    let schemas = &document["components"]["schemas"];
    let has = |schema: &str, fields: &[&str]| {
        let properties = schemas[schema]["properties"].as_object().unwrap_or_else(|| panic!("{schema}"));
        for field in fields {
            assert!(properties.contains_key(*field), "{schema} lacks {field}");
        }
    };
    has("ComPortInfo", &["device_id", "description", "port_number", "vendor_id", "product_id"]);
    has("ComConnectRequest", &["port", "baudRate", "parity", "dataBits", "stopBits"]);
    has("ComConnectResponse", &["success", "message"]);
    has(
        "PaymentRequest",
        &[
            "txnType",
            "amount",
            "date",
            "ecrReferenceNo",
            "jsonResponse",
            "cashBackAmount",
            "preAuthAMount",
            "refundAmount",
            "origTransactionDate",
            "origApproveCode",
            "origTransactionAmt",
            "cashAdvanceAmt",
            "capture",
            "authAmount",
            "prevEcrNo",
            "rrnNumber",
            "originalRefundDate",
            "print",
            "cashRegisterNo",
        ],
    );
    has(
        "TransactionResponse",
        &[
            "statusCode",
            "statusMessage",
            "transaction",
            "parsedTransaction",
            "signature",
            "terminalId",
            "ipAddress",
            "portNumber",
            "isConnected",
            "connectionStatus",
        ],
    );
    has("TcpTransactionRequest", &["tcpipcomData", "paymentRequest"]);
    has("TcpTarget", &["ip", "port"]);
    has("TcpConnectionResponse", &["Ip", "portNumber", "isConnected", "connectionStatus"]);
    has("StatusResponse", &["status", "message"]);
    has("RegistrationStatus", &["registered", "terminalId", "ip", "port"]);
    has("ClearTerminalDataRequest", &["confirmClear"]);
    has(
        "HealthStatus",
        &[
            "status",
            "version",
            "uptime",
            "port",
            "memoryUsedMb",
            "memoryMaxMb",
            "jSerialCommAvailable",
            "availableComPorts",
            "comConnected",
            "activeComPort",
            "tcpConnections",
            "registeredTerminals",
            "scheme",
            "tlsFingerprintSha256",
        ],
    );
    // The two fields kept for compatibility say what they mean here.
    let description = |field: &str| schemas["HealthStatus"]["properties"][field]["description"].as_str().unwrap_or("");
    assert!(description("memoryMaxMb").contains("compatibility"), "{}", description("memoryMaxMb"));
    assert!(description("memoryMaxMb").contains("machine's memory"), "{}", description("memoryMaxMb"));
    assert!(description("jSerialCommAvailable").contains("compatibility"), "{}", description("jSerialCommAvailable"));
    assert!(description("jSerialCommAvailable").contains("Always true"), "{}", description("jSerialCommAvailable"));
    has("HealthComPort", &["systemName", "description", "vendorId", "productId"]);
    has("RegisteredTerminal", &["terminalId", "ipAddress", "portNumber"]);
}

#[test]
fn errors_are_json_unknown_paths_wrong_methods_large_and_malformed_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(state(dir.path(), None));
    runtime().block_on(async {
        let (status, body) = call(&router, Method::GET, "/nope", "").await;
        assert_eq!((status, body["statusCode"].as_str()), (StatusCode::NOT_FOUND, Some("ERROR")));
        let (status, body) = call(&router, Method::DELETE, "/api/health-status", "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(body["statusMessage"].as_str().unwrap().contains("DELETE"), "{body}");
        let request = Request::delete("/api/health-status").body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.headers()["allow"], "GET,HEAD", "the router's Allow header stays");
        let request = Request::post("/dashboard.css").body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "a public path's wrong method");
        assert_eq!(response.headers()["content-type"], "application/json");
        let big = vec![b' '; BODY_LIMIT + 1];
        let (status, _) = call(&router, Method::POST, "/clearTerminalData", big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, body) = call(&router, Method::POST, "/performTransactionTCPIP", "{not json").await;
        assert_eq!((status, body["statusCode"].as_str()), (StatusCode::BAD_REQUEST, Some("ERROR")));
        let (status, body) = call(&router, Method::POST, "/com/connect", r#"{"port": 3, "parity": "none"}"#).await;
        assert_eq!((status, body["success"].as_bool()), (StatusCode::BAD_REQUEST, Some(false)));
        assert!(body["message"].as_str().unwrap().contains("parity"), "{body}");
    });
}

#[test]
fn a_configured_token_is_required_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(state(dir.path(), Some("t0ken")));
    runtime().block_on(async {
        let (status, body) = call(&router, Method::GET, "/api/health-status", "").await;
        assert_eq!((status, body["statusCode"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED")));
        let request = Request::get("/api/health-status").header("authorization", "Bearer t0ken").body(Body::empty());
        let response = router.clone().oneshot(request.unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let request = Request::get("/api/health-status").header("authorization", "Basic t0ken").body(Body::empty());
        assert_eq!(router.clone().oneshot(request.unwrap()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        // The dashboard's page is served without it; an unknown path is not.
        let request = Request::get("/dashboard.css").body(Body::empty());
        assert_eq!(router.clone().oneshot(request.unwrap()).await.unwrap().status(), StatusCode::OK);
        let (status, _) = call(&router, Method::GET, "/nope", "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A declared body over the limit is refused before the token is looked at, as before.
        let big = vec![b' '; BODY_LIMIT + 1];
        let request = Request::post("/clearTerminalData").header("content-length", big.len()).body(Body::from(big));
        assert_eq!(router.clone().oneshot(request.unwrap()).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    });
}

#[test]
fn the_server_serves_over_a_real_socket_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let runtime = runtime();
    let started = std::time::Instant::now();
    let server = runtime.block_on(Server::start(config)).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "serving in {:?}", started.elapsed());
    let url = format!("{}/api/health-status", server.url());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    let health: Value = http.get(&url).send().unwrap().json().unwrap();
    assert_eq!((health["status"].as_str(), health["scheme"].as_str()), (Some("UP"), Some("http")));
    assert_eq!(health["port"], json!(server.local_addr().port().to_string()));
    runtime.block_on(server.shutdown());
}

/// The endpoint table of `nami_sdk::service::endpoints` is what both serve: every endpoint the
/// daemon routes, `call` (what `nami_call` and the bindings use) serves with the same status,
/// and a path the daemon answers with 404 (another case, a trailing slash, a segment more) is
/// refused by `call` too.
#[test]
fn the_daemon_and_call_serve_the_same_paths_from_the_endpoint_table() {
    use nami_sdk::service::endpoints::{ENDPOINTS, Method as EndpointMethod, TRANSACTION};
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), None);
    let service = state.service().clone();
    let router = app(state);
    let method = |endpoint: &nami_sdk::service::endpoints::Endpoint| match endpoint.method {
        EndpointMethod::Get => Method::GET,
        EndpointMethod::Post => Method::POST,
    };
    assert_eq!(ENDPOINTS.len(), 15);
    runtime().block_on(async {
        for endpoint in ENDPOINTS {
            let path = endpoint.path_with("12345678000001");
            let (status, answer) = call(&router, method(endpoint), &path, "").await;
            let reply = service.dispatch(&path, "");
            assert_eq!(status.as_u16(), reply.status, "{path}: the daemon {answer}, call {}", reply.body);
            if *endpoint == TRANSACTION {
                // No entry with that reference: 404 with an empty list, not an unknown path.
                assert_eq!((status, answer["count"].as_u64()), (StatusCode::NOT_FOUND, Some(0)), "{answer}");
            } else {
                assert_ne!(status, StatusCode::NOT_FOUND, "{path} is in the table but not routed: {answer}");
            }
            let variants = [
                path.to_ascii_lowercase(),
                path.to_ascii_uppercase(),
                format!("{path}/"),
                format!("{path}/x"),
                format!("/{path}"),
                format!("/api{path}"),
                path[..path.len() - 1].to_owned(),
            ];
            for variant in variants {
                if variant == path {
                    continue;
                }
                let (status, answer) = call(&router, method(endpoint), &variant, "").await;
                let reply = service.dispatch(&variant, "");
                assert_eq!(status, StatusCode::NOT_FOUND, "{variant}: the daemon answers {answer}");
                assert_eq!(reply.status, 404, "{variant}: the daemon answers 404, call {}", reply.body);
            }
        }
    });
}
