//! Bad input through the service: every REST path of `Service::call` gets random JSON, wrong
//! types, huge and unicode strings, negative and overflowing amounts, and text that is not JSON.
//! The promises: never a panic (not even one caught inside the service), never a 500, always a
//! JSON body; transaction answers always carry a `statusCode`, and every 4xx says why.
//!
//! Transaction bodies that happen to be valid go to a simulator on 127.0.0.1 (registered, so they
//! run), with short deadlines. Addresses are never random: a random host name would be looked up
//! in DNS and a random address connected to, so `ip` is always loopback or not a usable string,
//! and ports are the simulator's, a closed one, or invalid.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nami_sdk::service::endpoints::{ENDPOINTS, Endpoint, TRANSACTION};
use nami_sdk::{Service, ServiceConfig, TerminalConfig};
use nami_sim::{SimConfig, Simulator};
use nami_test_kit::daemon::temp_dir;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

static PANICS: AtomicUsize = AtomicUsize::new(0);

struct World {
    service: Service,
    sim: Simulator,
    closed_port: u16,
    _dir: tempfile::TempDir,
}

/// One service and one simulator for every case of this file.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // proptest's own report of a failed test (another test of this file) is no panic of
            // the service.
            let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or("");
            if !message.starts_with("Test failed") {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
        let sim = Simulator::start(SimConfig::default()).unwrap();
        let dir = temp_dir("nami-rest-bodies-");
        let mut config = ServiceConfig::new(dir.path());
        config.terminal = TerminalConfig {
            card_present_timeout: Duration::from_secs(2),
            settlement_timeout: Duration::from_secs(2),
            admin_timeout: Duration::from_secs(2),
            ..TerminalConfig::default()
        };
        let service = Service::open(config).unwrap();
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let world = World { service, sim, closed_port, _dir: dir };
        world.register();
        world
    })
}

impl World {
    fn register(&self) {
        register_with(&self.service, &self.sim);
    }
}

fn register_with(service: &Service, sim: &Simulator) {
    let body = json!({"tcpipcomData": {"ip": "127.0.0.1", "port": sim.addr().port()},
        "paymentRequest": {"txnType": "REGISTER", "ecrReferenceNo": "12345678000001"}});
    let reply = service.dispatch("/performTransactionTCPIP", &body.to_string());
    assert_eq!(reply.body["statusCode"], "200", "{:?}", reply.body);
}

/// A terminal of its own for the amount test, so that its request count is not moved by the
/// other tests running at the same time.
fn quiet_sim() -> &'static Simulator {
    static SIM: OnceLock<Simulator> = OnceLock::new();
    SIM.get_or_init(|| {
        let sim = Simulator::start(SimConfig::default()).unwrap();
        register_with(&world().service, &sim);
        sim
    })
}

const TRANSACTION_CODES: &[&str] = &[
    "200",
    "TIMEOUT",
    "CANCELLED",
    "CableDisconnected",
    "UnableToConnect",
    "REGISTER_REQUIRED",
    "INVALID_AMOUNT",
    "INVALID_ECR_REF",
    "INVALID_TXN_TYPE",
    "TERMINAL_BUSY",
    "ERROR",
    "OUTCOME_UNKNOWN",
];

/// Runs one call and checks the promises every answer keeps.
fn check(path: &str, body: &str) -> Result<Value, TestCaseError> {
    let world = world();
    let panics = PANICS.load(Ordering::SeqCst);
    let reply = world.service.dispatch(path, body);
    prop_assert_eq!(PANICS.load(Ordering::SeqCst), panics, "a panic (caught or not) on {} {}", path, body);
    prop_assert!(
        matches!(reply.status, 200 | 400 | 404),
        "status {} for {} {}: {}",
        reply.status,
        path,
        body,
        reply.body
    );
    // What `call` (the C ABI's and the bindings' entry) returns is this, as JSON text.
    let text = world.service.call("/get-com-ports", "");
    prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
    let answer = reply.body.clone();
    let message = |v: &Value| {
        ["statusMessage", "message"].iter().find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
    };
    if path.to_ascii_lowercase().starts_with("/performtransaction") {
        let code = answer["statusCode"].as_str();
        // A middleware code, or the validation code of a request field (`INVALID_ORIG_DATE`).
        let typed = |c: &str| TRANSACTION_CODES.contains(&c) || nami_sdk::FIELDS.iter().any(|f| f.error_code == c);
        prop_assert!(code.is_some_and(typed), "statusCode {:?}: {}", code, answer);
        if code != Some("200") || reply.status >= 400 {
            prop_assert!(message(&answer).is_some_and(|m| !m.trim().is_empty()), "no message: {}", answer);
        }
        prop_assert!(answer["approved"].is_boolean(), "{}", answer);
    } else if reply.status == 404
        && Endpoint::find(path.split('?').next().unwrap_or(path)).is_some_and(|(endpoint, _)| *endpoint == TRANSACTION)
    {
        // No journal entry: the documented empty list (another path, `/transactions//`, is an
        // unknown endpoint, as in the daemon: a message).
        prop_assert_eq!(&answer, &json!({"count": 0, "transactions": []}));
    } else if reply.status >= 400 {
        prop_assert!(
            message(&answer).is_some_and(|m| !m.trim().is_empty()),
            "a {} without a message: {}",
            reply.status,
            answer
        );
    }
    Ok(answer)
}

// ---------------------------------------------------------------------------------------------
// Strategies

/// Any JSON, keys from a small alphabet that never spells an address field.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        text(),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-hj-oq-zA-Z]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Strings: short, unicode, control characters, huge.
fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,20}".prop_map(Value::String),
        "\\PC{0,40}".prop_map(Value::String),
        "[0-9]{0,30}".prop_map(Value::String),
        (1usize..70_000).prop_map(|n| Value::String("9".repeat(n))),
        (1usize..5_000).prop_map(|n| Value::String("مرحبا😀\u{0}".repeat(n))),
    ]
}

fn amount() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("10.00")),
        Just(json!("-10.00")),
        Just(json!("-0")),
        Just(json!("0")),
        Just(json!("10.001")),
        Just(json!("1e3")),
        Just(json!("999999999999.99")),
        Just(json!("99999999999999999999999999999999")),
        Just(json!(" 10 ")),
        Just(json!("١٠")),
        Just(json!(-1)),
        Just(json!(1e308)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(10.5)),
        (0u64..100_000).prop_map(|h| json!(format!("{}.{:02}", h / 100, h % 100))),
        any_json(),
    ]
}

fn txn_type() -> impl Strategy<Value = Value> {
    let names = [
        "PURCHASE",
        "purchase",
        "PURCHASE_CASHBACK",
        "REFUND",
        "AUTHORIZATION",
        "PURCHASE_ADVICE",
        "PRE_AUTH_EXTENSION",
        "PRE_AUTH_VOID",
        "CASH_ADVANCE",
        "REVERSAL",
        "RECONCILIATION",
        "PARAMETER_DOWNLOAD",
        "GET_PARAMETER",
        "SET_TERMINAL_LANGUAGE",
        "REGISTER",
        "START_SESSION",
        "END_SESSION",
        "BILL_PAYMENT",
        "DETAIL_REPORT",
        "SUMMARY_REPORT",
        "DUPLICATE",
        "CHECK_STATUS",
        "SNAPSHOT_TOTAL",
        "0",
        "7",
        "15",
        "27",
        "99",
        "-1",
        "",
    ];
    prop_oneof![
        prop::sample::select(names.to_vec()).prop_map(|n| json!(n)),
        (-5i64..40).prop_map(|n| json!(n)),
        any_json(),
    ]
}

fn ecr_reference() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1u32..999_999).prop_map(|n| json!(format!("87654321{n:06}"))),
        Just(json!("02345678000001")),
        Just(json!("1234567800000")),
        Just(json!(12345678000001u64)),
        any_json(),
    ]
}

/// A `paymentRequest`: some of the real fields with plausible or hostile values, and noise.
fn payment_request() -> impl Strategy<Value = Value> {
    let field = |name: &'static str, value: BoxedStrategy<Value>| {
        prop::option::weighted(0.6, value).prop_map(move |v| (name, v))
    };
    (
        (
            field("txnType", txn_type().boxed()),
            field("amount", amount().boxed()),
            field("ecrReferenceNo", ecr_reference().boxed()),
            field("refundAmount", amount().boxed()),
            field("cashBackAmount", amount().boxed()),
            field("authAmount", amount().boxed()),
            field("origTransactionAmt", amount().boxed()),
        ),
        (
            field("rrnNumber", prop_oneof![Just(json!("123456789012")), any_json()].boxed()),
            field("origApproveCode", prop_oneof![Just(json!("123456")), any_json()].boxed()),
            field("origTransactionDate", prop_oneof![Just(json!("211126")), any_json()].boxed()),
            field("prevEcrNo", ecr_reference().boxed()),
            field("print", prop_oneof![Just(json!("0")), Just(json!("2")), any_json()].boxed()),
            field("jsonResponse", prop_oneof![any::<bool>().prop_map(Value::Bool), any_json()].boxed()),
            field("requestAttemptNo", amount().boxed()),
        ),
        prop::collection::btree_map("[a-hj-oq-zA-Z]{1,8}", any_json(), 0..3),
    )
        .prop_map(|(a, b, extra)| {
            let mut map: Map<String, Value> = extra.into_iter().collect();
            let fields = [a.0, a.1, a.2, a.3, a.4, a.5, a.6, b.0, b.1, b.2, b.3, b.4, b.5, b.6];
            for (name, value) in fields {
                if let Some(value) = value {
                    map.insert(name.to_owned(), value);
                }
            }
            Value::Object(map)
        })
}

/// A request the service will mostly accept: a real type with its usual fields, then up to
/// three fields replaced by hostile strings or numbers (text fields take both), so that the
/// validation behind the JSON shape (and the terminal) is reached too.
fn plausible_payment_request() -> impl Strategy<Value = Value> {
    let names = vec![
        "PURCHASE",
        "PURCHASE_CASHBACK",
        "REFUND",
        "AUTHORIZATION",
        "PURCHASE_ADVICE",
        "PRE_AUTH_EXTENSION",
        "PRE_AUTH_VOID",
        "CASH_ADVANCE",
        "REVERSAL",
        "RECONCILIATION",
        "REGISTER",
        "START_SESSION",
        "BILL_PAYMENT",
        "DETAIL_REPORT",
        "SUMMARY_REPORT",
        "DUPLICATE",
        "CHECK_STATUS",
        "SNAPSHOT_TOTAL",
        "GET_PARAMETER",
        "7",
    ];
    let hostile = prop_oneof![
        Just(json!("-10.00")),
        Just(json!("99999999999999999999999")),
        Just(json!("10.005")),
        Just(json!("")),
        Just(json!("١٢٣")),
        Just(json!(-1)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        ".{0,20}".prop_map(Value::String),
        (1usize..70_000).prop_map(|n| Value::String("7".repeat(n))),
        "[0-9]{1,20}".prop_map(Value::String),
    ];
    let fields = vec![
        "txnType",
        "amount",
        "ecrReferenceNo",
        "refundAmount",
        "cashBackAmount",
        "authAmount",
        "origTransactionAmt",
        "rrnNumber",
        "origApproveCode",
        "origTransactionDate",
        "prevEcrNo",
        "print",
        "billerId",
        "billNumber",
        "requestAttemptNo",
        "cashRegisterNo",
        "capture",
        "date",
    ];
    (
        prop::sample::select(names),
        1u32..999_999,
        prop::collection::vec((prop::sample::select(fields), hostile), 0..3),
        any::<bool>(),
    )
        .prop_map(|(txn, n, changes, json_response)| {
            let mut payment = json!({
                "txnType": txn, "amount": "10.00", "ecrReferenceNo": format!("87654321{n:06}"),
                "refundAmount": "5.00", "cashBackAmount": "1.00", "rrnNumber": "123456789012",
                "origApproveCode": "123456", "origTransactionDate": "211126", "prevEcrNo": format!("{n:06}"),
                "billerId": "001", "billNumber": "12345", "jsonResponse": json_response,
            });
            for (field, value) in changes {
                payment[field] = value;
            }
            payment
        })
}

/// `ip` values that never leave the machine and never reach DNS.
fn safe_ip() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("127.0.0.1")),
        Just(json!("[127.0.0.1]")),
        Just(json!("")),
        Just(json!("   ")),
        Just(json!("no such host")),
        Just(json!(2130706433u64)),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!(["127.0.0.1"])),
        Just(json!({"ip": "127.0.0.1"})),
    ]
}

fn safe_port() -> impl Strategy<Value = Value> {
    let world = world();
    let (sim, closed) = (world.sim.addr().port(), world.closed_port);
    prop_oneof![
        Just(json!(sim)),
        Just(json!(sim.to_string())),
        Just(json!(closed)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(65536)),
        Just(json!(u64::MAX)),
        Just(json!(8888.5)),
        Just(json!("x")),
        Just(json!(null)),
        Just(json!([sim])),
    ]
}

fn target() -> impl Strategy<Value = Value> {
    prop_oneof![
        (safe_ip(), safe_port()).prop_map(|(ip, port)| json!({"ip": ip, "port": port})),
        Just(json!({})),
        Just(json!({"ip": "127.0.0.1"})),
        Just(json!(null)),
        Just(json!("127.0.0.1:8888")),
        Just(json!([])),
    ]
}

/// A body for `path`, of the endpoint's shape or not.
fn body_for(path: &'static str) -> BoxedStrategy<String> {
    let json_body: BoxedStrategy<Value> = match path {
        "/performTransactionTCPIP" => prop_oneof![
            4 => plausible_payment_request().prop_map(|p| {
                json!({"tcpipcomData": {"ip": "127.0.0.1", "port": world().sim.addr().port()}, "paymentRequest": p})
            }),
            2 => (target(), payment_request()).prop_map(|(t, p)| json!({"tcpipcomData": t, "paymentRequest": p})),
            1 => (target(), any_json()).prop_map(|(t, p)| json!({"tcpipcomData": t, "paymentRequest": p})),
            1 => any_json(),
        ]
        .boxed(),
        "/performTransactionCOM" => {
            prop_oneof![payment_request(), payment_request().prop_map(|p| json!({"paymentRequest": p})), any_json(),]
                .boxed()
        }
        "/tcp-ip/connect" | "/tcp-ip/disconnect" | "/cancelTransaction" | "/registrationStatus" => prop_oneof![
            target(),
            target().prop_map(|t| json!({"tcpipcomData": t})),
            any_json().prop_map(|v| json!({"com": v})),
            any_json(),
        ]
        .boxed(),
        "/com/connect" => (
            prop_oneof![
                Just(json!("/nonexistent/ttyNAMI")),
                Just(json!("/nonexistent/tty\u{0}NAMI")),
                Just(json!("COM99999")),
                Just(json!("")),
                (1000i64..i64::MAX).prop_map(|n| json!(n)),
                (i64::MIN..0).prop_map(|n| json!(n)),
                Just(json!(1.5)),
                Just(json!(null)),
                Just(json!([3])),
            ],
            any_json(),
            any_json(),
        )
            .prop_map(|(port, baud, parity)| json!({"port": port, "baudRate": baud, "parity": parity}))
            .boxed(),
        "/clearTerminalData" => prop_oneof![any_json().prop_map(|v| json!({"confirmClear": v})), any_json()].boxed(),
        "/nextEcrReference" => prop_oneof![any_json().prop_map(|v| json!({"cashRegisterNo": v})), any_json()].boxed(),
        "/transactions" => (any_json(), any_json(), amount(), any_json())
            .prop_map(|(from, to, limit, state)| json!({"from": from, "to": to, "limit": limit, "state": state}))
            .boxed(),
        _ => any_json().boxed(),
    };
    prop_oneof![
        8 => json_body.prop_map(|v| v.to_string()),
        1 => ".{0,40}",
        1 => Just(String::new()),
        1 => Just("{\"paymentRequest\": {\"amount\": ".to_owned()),
        1 => Just("[".repeat(10_000)),
    ]
    .boxed()
}

/// Every endpoint of the table without a path parameter (`/transactions/{ecrReferenceNo}` has
/// its own property below).
fn paths() -> Vec<&'static str> {
    ENDPOINTS.iter().filter(|endpoint| endpoint.parameter().is_none()).map(|endpoint| endpoint.path).collect()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(160))]

    #[test]
    fn every_endpoint_answers_any_body_with_typed_json_and_never_panics(
        path in prop::sample::select(paths()),
        seed in any::<u64>(),
    ) {
        // A body strategy per path: draw it with a runner seeded from this case.
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(
            ProptestConfig::default(),
            proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &{
                let mut bytes = [0u8; 32];
                bytes[..8].copy_from_slice(&seed.to_le_bytes());
                bytes
            }),
        );
        let body = body_for(path).new_tree(&mut runner).unwrap().current();
        check(path, &body)?;
    }

    #[test]
    fn transaction_bodies_of_any_shape_get_a_status_code_and_never_panic(
        body in body_for("/performTransactionTCPIP"),
    ) {
        check("/performTransactionTCPIP", &body)?;
    }

    #[test]
    fn journal_paths_with_any_reference_answer_json(reference in "[^?#]{0,40}", filters in any_json()) {
        check(&format!("/transactions/{reference}"), &filters.to_string())?;
    }

    #[test]
    fn unknown_paths_are_404_with_a_message(path in "/[a-zA-Z/]{1,30}") {
        // Paths match exactly, as in the daemon: `/performtransactiontcpip` is unknown too.
        prop_assume!(Endpoint::find(&path).is_none());
        let reply = world().service.dispatch(&path, "{}");
        prop_assert_eq!(reply.status, 404);
        prop_assert!(reply.body["statusMessage"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// Found by the `rest_body` fuzzer: a serial port path with a NUL byte made the watchdog's thread
/// name panic (a 500, and the terminal's watchdog flag left set).
#[test]
fn a_serial_port_path_with_a_nul_byte_is_refused_without_a_panic() {
    for body in [r#"{"port": "/dev/nami\u0000x"}"#, r#"["0eu887\\W\u000887"]"#] {
        let panics = PANICS.load(Ordering::SeqCst);
        world(); // the panic counter is installed
        let reply = world().service.dispatch("/com/connect", body);
        assert_eq!(PANICS.load(Ordering::SeqCst), panics, "{body}");
        assert_eq!((reply.status, reply.body["success"].as_bool()), (200, Some(false)), "{body}: {}", reply.body);
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn negative_fractional_and_overflowing_amounts_are_invalid_amount_and_never_sent(
        amount in prop_oneof![
            (1u64..u64::MAX).prop_map(|n| json!(format!("-{n}"))),
            (0u64..1_000_000, 3usize..8).prop_map(|(n, d)| json!(format!("1.{n:0d$}"))),
            (13usize..40).prop_map(|n| json!("9".repeat(n))),
            Just(json!("0")),
            Just(json!("1e3")),
            Just(json!("+10")),
            Just(json!(-5)),
        ],
        field in prop::sample::select(vec!["amount", "refundAmount", "cashBackAmount"]),
        n in 1u32..999_999,
    ) {
        let _ = world();
        // Zero is refused where an amount must be positive (a cashback of zero may be sent).
        prop_assume!(field != "cashBackAmount" || amount != json!("0"));
        let txn = match field { "refundAmount" => "REFUND", "cashBackAmount" => "PURCHASE_CASHBACK", _ => "PURCHASE" };
        let mut payment = json!({"txnType": txn, "amount": "10.00", "ecrReferenceNo": format!("87654321{n:06}"),
            "rrnNumber": "123456789012", "origApproveCode": "123456", "origTransactionDate": "211126"});
        payment[field] = amount.clone();
        let sim = quiet_sim();
        let body = json!({"tcpipcomData": {"ip": "127.0.0.1", "port": sim.addr().port()}, "paymentRequest": payment});
        let sent = sim.requests_received();
        let answer = check("/performTransactionTCPIP", &body.to_string())?;
        prop_assert_eq!(answer["statusCode"].as_str(), Some("INVALID_AMOUNT"), "{} = {}: {}", field, amount, answer);
        prop_assert!(answer["statusMessage"].as_str().is_some_and(|m| m.contains(field)), "names {}: {}", field, answer);
        prop_assert_eq!(sim.requests_received(), sent, "nothing was sent");
    }
}
