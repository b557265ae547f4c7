//! Fuzzes the REST body parser: whatever bytes a client posts, on any endpoint, go through
//! `Service::dispatch` (what `nami-httpd` and the C ABI call). Any panic, any 500, or an answer
//! that is not JSON is a bug.
//!
//! The first input byte picks the endpoint; the rest is the body. The service runs for real (a
//! state directory in the temporary folder), so a body that parses may be carried out: before
//! dispatching, every `ip` in it is replaced by 127.0.0.1 and every `port` by a closed loopback
//! port (a device path that does not exist for `/com/connect`), so that no input ever makes the
//! fuzzer connect anywhere, look a name up in DNS, or open a serial device.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nami_sdk::service::endpoints::ENDPOINTS;
use nami_sdk::{Service, ServiceConfig, TerminalConfig};
use serde_json::Value;

/// Every endpoint of the table (a path parameter filled in), and one that does not exist.
fn paths() -> &'static [String] {
    static PATHS: OnceLock<Vec<String>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let mut paths: Vec<String> = ENDPOINTS.iter().map(|endpoint| endpoint.path_with("12345678000001")).collect();
        paths.push("/no/such/endpoint".into());
        paths
    })
}

struct World {
    service: Service,
    closed_port: u16,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nami-fuzz-rest-body-{}", std::process::id()));
        let mut config = ServiceConfig::new(&dir);
        config.terminal = TerminalConfig {
            card_present_timeout: Duration::from_millis(200),
            settlement_timeout: Duration::from_millis(200),
            admin_timeout: Duration::from_millis(200),
            ..TerminalConfig::default()
        };
        config.restore_connections = false;
        config.recovery_interval = Duration::from_secs(3600);
        let service = Service::open(config).expect("the service opens");
        // Bound and dropped: nothing listens there.
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        World { service, closed_port }
    })
}

/// Replaces every address in `value` by a harmless one.
fn defuse(value: &mut Value, closed_port: u16, com: bool) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match key.as_str() {
                    "ip" => *inner = Value::String("127.0.0.1".into()),
                    "port" if com => *inner = Value::String("/nonexistent/nami-fuzz-tty".into()),
                    "port" => *inner = Value::from(closed_port),
                    _ => defuse(inner, closed_port, com),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| defuse(v, closed_port, com)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let paths = paths();
    let path = paths[usize::from(pick) % paths.len()].as_str();
    // The daemon answers a body that is not UTF-8 itself (400); the service gets text.
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let world = world();
    let body = match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            defuse(&mut value, world.closed_port, path == "/com/connect");
            value.to_string()
        }
        Err(_) => text.to_owned(),
    };
    let reply = world.service.dispatch(path, &body);
    assert!(matches!(reply.status, 200 | 400 | 404), "{} {path} {body}: {}", reply.status, reply.body);
    if path.starts_with("/performTransaction") {
        assert!(reply.body["statusCode"].is_string(), "{path} {body}: {}", reply.body);
    }
});
