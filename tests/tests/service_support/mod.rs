//! Helpers of the service's end-to-end tests: a state directory, a service with short deadlines,
//! JSON calls, and a shape check against the seed documents' examples.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nami_sdk::{Service, ServiceConfig, TerminalConfig};
use nami_sim::Simulator;
use serde_json::{Value, json};

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct StateDir(PathBuf);

impl StateDir {
    pub fn new() -> StateDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "nami-service-e2e-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        StateDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deadlines short enough for tests, long enough for a loaded 2-core machine; recovery looks
/// every 200 ms.
pub fn config(dir: &StateDir) -> ServiceConfig {
    let mut config = ServiceConfig::new(dir.path());
    config.terminal = TerminalConfig {
        card_present_timeout: Duration::from_secs(10),
        settlement_timeout: Duration::from_secs(10),
        admin_timeout: Duration::from_secs(10),
        serial_poll: Duration::from_millis(50),
        ..TerminalConfig::default()
    };
    config.recovery_interval = Duration::from_millis(200);
    config
}

pub fn open(dir: &StateDir) -> Service {
    Service::open(config(dir)).expect("service opens")
}

pub fn call(service: &Service, path: &str, body: Value) -> Value {
    let text = if body.is_null() { String::new() } else { body.to_string() };
    serde_json::from_str(&service.call(path, &text)).expect("call answers JSON")
}

pub fn tcp_body(sim: &Simulator, payment: Value) -> Value {
    json!({"tcpipcomData": {"ip": "127.0.0.1", "port": sim.addr().port()}, "paymentRequest": payment})
}

pub fn register_tcp(service: &Service, sim: &Simulator) -> Value {
    let reply = call(
        service,
        "/performTransactionTCPIP",
        tcp_body(sim, json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000000"})),
    );
    assert_eq!(reply["statusCode"], "200", "REGISTER: {reply}");
    reply
}

pub fn purchase(ecr: &str, amount: &str) -> Value {
    json!({"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": ecr})
}

pub fn pay_tcp(service: &Service, sim: &Simulator, ecr: &str, amount: &str) -> Value {
    call(service, "/performTransactionTCPIP", tcp_body(sim, purchase(ecr, amount)))
}

/// The journal entry of `ecr` (the newest), or null.
pub fn entry(service: &Service, ecr: &str) -> Value {
    call(service, &format!("/transactions/{ecr}"), Value::Null)["transactions"][0].clone()
}

/// How many times the simulator processed a transaction with this ECR reference.
pub fn charges(sim: &Simulator, ecr: &str) -> usize {
    sim.journal().iter().filter(|t| t.ecr_reference == ecr).count()
}

/// Waits until `condition` holds; fails the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks that `actual` has every field of the seed `example`, each of the same JSON type (a
/// null in the example allows null or a string, as the seeds' "no device" entries show),
/// recursively; arrays are checked element by element against the example's first element.
pub fn assert_shape(actual: &Value, example: &Value, at: &str) {
    match (example, actual) {
        (Value::Object(fields), Value::Object(got)) => {
            for (name, value) in fields {
                let inner = got.get(name).unwrap_or_else(|| panic!("{at}.{name} is missing in {actual}"));
                assert_shape(inner, value, &format!("{at}.{name}"));
            }
        }
        (Value::Array(items), Value::Array(got)) => {
            if let Some(first) = items.first() {
                for (i, item) in got.iter().enumerate() {
                    assert_shape(item, first, &format!("{at}[{i}]"));
                }
            }
        }
        (Value::Null, Value::Null | Value::String(_)) => {}
        (example, actual) => {
            assert_eq!(kind(actual), kind(example), "{at}: {actual} should be a {} like {example}", kind(example))
        }
    }
}
