//! Security promises of the real daemon: who may call it, how the token is compared, who may
//! read its key, and that no card number reaches a log, an answer or the journal.
//!
//! Already proven elsewhere (not repeated here): a non-loopback bind without a token refuses
//! to start and one with a token answers 401 to a request without it, on one route
//! (`nami-httpd/tests/daemon.rs`, `a_non_loopback_bind_requires_the_bearer_token`); the
//! generated certificate and key are 0600 (`https_is_switched_on_at_run_time_…` there, and
//! `tls::tests`).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use nami_sim::{CARDS, Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, command, ecr, temp_dir};
use nami_test_kit::http::Http;
use nami_test_kit::pan::{card_numbers_in, full_numbers_in};
use serde_json::{Value, json};

const TOKEN: &str = "correct-horse-battery-staple";

fn full_pans() -> Vec<&'static str> {
    CARDS.iter().map(|c| c.pan).collect()
}

#[test]
fn a_non_loopback_bind_without_a_token_refuses_to_start_whichever_way_it_is_configured() {
    let dir = temp_dir("nami-security-");
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let output = command(dir.path(), &["--listen", listen]).output().unwrap();
        assert!(!output.status.success(), "{listen}: started without a token");
        assert!(String::from_utf8_lossy(&output.stderr).contains("without authentication"), "{listen}");
    }
    // From the config file and the environment too.
    let file = dir.path().join("public.toml");
    std::fs::write(&file, "listen = \"0.0.0.0:0\"\n").unwrap();
    let output = command(dir.path(), &[]).arg("--config").arg(&file).output().unwrap();
    assert!(!output.status.success(), "listen from the file");
    let output = command(dir.path(), &[]).env("NAMI_LISTEN", "0.0.0.0:0").output().unwrap();
    assert!(!output.status.success(), "listen from NAMI_LISTEN");
    // An empty token is no token.
    let output = command(dir.path(), &["--listen", "0.0.0.0:0"]).env("NAMI_TOKEN", " ").output().unwrap();
    assert!(!output.status.success(), "a blank token");
}

/// Every operation of the OpenAPI document, with a concrete path.
fn operations(document: &Value) -> Vec<(String, String)> {
    let mut list = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                list.push((method.to_owned(), path.replace("{ecrReferenceNo}", "12345678000001")));
            }
        }
    }
    list
}

#[test]
fn with_a_token_every_route_refuses_a_request_without_it_and_does_nothing() {
    let dir = temp_dir("nami-security-");
    let mut cmd = command(
        dir.path(),
        &[
            "--listen",
            "0.0.0.0:0",
            "--simulator",
            "--simulator-listen",
            "127.0.0.1:0",
            "--allowed-origin",
            "https://pos.example",
        ],
    );
    cmd.env("NAMI_TOKEN", TOKEN);
    let daemon = Daemon::spawn(dir.path(), cmd);
    let anonymous = daemon.http();
    let authorised = daemon.http().with_token(TOKEN);
    let wrong = daemon.http().with_token("correct-horse-battery-stapl");
    let document = authorised.get("/openapi.json").body;
    let mut routes = operations(&document);
    assert!(routes.len() >= 25, "{routes:?}");
    for extra in ["/api/dashboard", "/api/recover", "/no/such/route"] {
        routes.push(("get".into(), extra.into()));
        routes.push(("post".into(), extra.into()));
    }
    // The dashboard's event stream checks the token itself (header or `?token=`).
    routes.push(("get".into(), "/api/events".into()));
    routes.push(("get".into(), "/api/events?token=wrong".into()));
    for (method, path) in &routes {
        for (who, http) in [("no token", &anonymous), ("a wrong token", &wrong)] {
            let url = format!("{}{path}", http.base);
            let request = match method.as_str() {
                "get" => http.client.get(&url),
                _ => http.client.post(&url).header("content-type", "application/json").body("{\"enabled\": true}"),
            };
            let request =
                if who == "a wrong token" { request.bearer_auth("correct-horse-battery-stapl") } else { request };
            let response =
                request.timeout(Duration::from_secs(10)).send().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!(response.status().as_u16(), 401, "{method} {path} with {who}");
            let body: Value = response.json().unwrap();
            assert_eq!(body["statusCode"], "UNAUTHORIZED", "{method} {path}: {body}");
        }
    }
    // Other schemes and spellings are no token either.
    for header in ["Basic Y29ycmVjdA==", TOKEN, "Bearer", "Bearer  ", "bearer correct-horse-battery-staple x"] {
        let response = anonymous
            .client
            .get(format!("{}/api/health-status", anonymous.base))
            .header("authorization", header)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "Authorization: {header}");
    }
    // Nothing was done: HTTPS is still off, the simulator was not rebooted or faulted.
    assert_eq!(authorised.get("/api/tls").body["enabled"], false);
    assert_eq!(authorised.get("/simulator/state").body["faults"], json!([]));
    // The dashboard's page is static (no data) and public by design; the same with the token.
    for asset in ["/", "/dashboard.js"] {
        let anonymous_page = anonymous.client.get(format!("{}{asset}", anonymous.base)).send().unwrap();
        assert_eq!(anonymous_page.status().as_u16(), 200, "{asset}");
        let anonymous_text = anonymous_page.text().unwrap();
        let authorised_text =
            authorised.client.get(format!("{}{asset}", authorised.base)).send().unwrap().text().unwrap();
        assert_eq!(anonymous_text, authorised_text, "{asset} shows nothing more with the token");
    }
    // And the token works.
    let health = authorised.get("/api/health-status");
    assert_eq!((health.status, health.body["authRequired"].as_bool()), (200, Some(true)));
}

#[test]
fn the_token_is_compared_in_constant_time() {
    // Behaviour: only the exact token matches.
    let token = nami_httpd::auth::Token::new(TOKEN);
    assert!(token.matches(TOKEN));
    for other in
        ["", "c", "correct-horse-battery-stapl", "correct-horse-battery-staple ", "CORRECT-HORSE-BATTERY-STAPLE"]
    {
        assert!(!token.matches(other), "{other:?}");
    }
    // How: a timing test would be flaky, so read the code. The token is kept as its SHA-256 and
    // compared with `subtle::ConstantTimeEq` (fixed length: the candidate's length leaks nothing),
    // and every check of a presented token goes through `Token::matches`.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nami-httpd/src");
    let auth = std::fs::read_to_string(root.join("auth.rs")).unwrap();
    assert!(auth.contains("use subtle::ConstantTimeEq;"), "auth.rs uses subtle");
    let matches = auth.split("pub fn matches").nth(1).expect("Token::matches").split("\n    }").next().unwrap();
    assert!(matches.contains(".ct_eq(&"), "Token::matches compares with ct_eq: {matches}");
    assert!(!matches.contains("=="), "no short-circuit comparison in Token::matches: {matches}");
    let token_struct = auth.split("pub struct Token {").nth(1).unwrap().split('}').next().unwrap();
    assert!(token_struct.contains("[u8; 32]") && !token_struct.contains("String"), "only the digest is kept");
    for entry in walk(&root) {
        let text = std::fs::read_to_string(&entry).unwrap();
        for (n, line) in text.lines().enumerate() {
            let suspicious =
                line.contains("token") && (line.contains("== ") || line.contains("!= ") || line.contains(".eq("));
            let harmless = line.trim_start().starts_with("//") || line.contains("is_empty") || line.contains("None");
            assert!(
                !suspicious || harmless,
                "{}:{}: a token compared outside Token::matches: {line}",
                entry.display(),
                n + 1
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn the_https_key_and_certificate_are_owner_only_even_under_a_permissive_umask() {
    let dir = temp_dir("nami-security-");
    let mut cmd = command(dir.path(), &["--listen", "127.0.0.1:0"]);
    // SAFETY: umask is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            Ok(())
        });
    }
    let daemon = Daemon::spawn(dir.path(), cmd);
    let switched = daemon.http().post("/api/tls", &json!({"enabled": true}));
    assert_eq!(switched.body["scheme"], "https", "{:?}", switched.body);
    for file in ["tls/key.pem", "tls/cert.pem", "httpd-settings.json"] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file} under umask 000");
    }
    drop(daemon);

    // HTTPS from the first start (`--tls`) writes them the same way.
    let fresh = temp_dir("nami-security-");
    let mut cmd = command(fresh.path(), &["--listen", "127.0.0.1:0", "--tls"]);
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            Ok(())
        });
    }
    let _daemon = Daemon::spawn(fresh.path(), cmd);
    for file in ["tls/key.pem", "tls/cert.pem"] {
        assert_eq!(mode(&fresh.path().join(file)), 0o600, "{file} with --tls under umask 000");
    }
}

#[test]
fn no_card_number_reaches_the_daemon_log_an_answer_or_the_journal_at_trace_level() {
    // The terminal sends whole card numbers (some do): the daemon must mask them everywhere.
    let sim = Simulator::start(SimConfig::default()).unwrap();
    sim.set_full_pan(true);
    let port = sim.addr().port();
    let dir = temp_dir("nami-security-");
    let daemon = Daemon::start(dir.path(), &["--card-present-timeout-secs", "5"]);
    let http: Http = daemon.http();
    let mut answers = Vec::new();
    let mut tcp = |payment: Value| {
        let reply = http.tcp(port, payment);
        answers.push(reply.to_string());
        reply
    };
    assert_eq!(tcp(json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}))["statusCode"], "200");
    let mut sale = String::new();
    // One card of each scheme (10.00 mada, 1.00 VISA, 2.00 MASTERCARD), both answer formats.
    for (amount, json_response) in [("10.00", false), ("1.00", true), ("2.00", false), ("12.00", true), ("20.51", true)]
    {
        let reference = ecr();
        let reply = tcp(
            json!({"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": reference, "jsonResponse": json_response}),
        );
        assert_eq!(reply["statusCode"], "200", "{reply}");
        sale = reference;
    }
    tcp(
        json!({"txnType": "PURCHASE_CASHBACK", "amount": "10.00", "cashBackAmount": "5.00", "ecrReferenceNo": ecr(), "jsonResponse": true}),
    );
    tcp(json!({"txnType": "DUPLICATE", "prevEcrNo": sale, "ecrReferenceNo": ecr(), "jsonResponse": true}));
    tcp(json!({"txnType": "DUPLICATE", "prevEcrNo": sale, "ecrReferenceNo": ecr()}));
    tcp(json!({"txnType": "REVERSAL", "ecrReferenceNo": ecr()}));
    // The reply arrives in pieces, twice, or is lost (recovery repeats it with DUPLICATE).
    for fault in [Fault::ByteByByte(Duration::from_millis(1)), Fault::TwoReplies, Fault::CloseAfterRequest] {
        sim.set_fault(fault, FaultScope::Next(1));
        let reference = ecr();
        tcp(json!({"txnType": "PURCHASE", "amount": "11.00", "ecrReferenceNo": reference}));
        tcp(json!({"txnType": "PURCHASE", "amount": "11.00", "ecrReferenceNo": reference}));
    }
    let journal = http.get("/transactions?limit=1000").body.to_string();
    let health = http.get("/api/health-status").body.to_string();
    drop(daemon); // stops it, and scans its log for any card number (see nami_test_kit::daemon)
    sim.shutdown();

    let pans = full_pans();
    assert!(sim.received().len() > 10, "the terminal was used");
    let log = std::fs::read_to_string(
        dir.path().join(
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with("daemon-"))
                .unwrap()
                .file_name(),
        ),
    )
    .unwrap();
    assert!(log.contains("TRACE"), "the log is at trace level");
    assert!(log.to_ascii_lowercase().contains("fc"), "frames are logged (in hex)");
    for (what, text) in [
        ("the log", log.as_str()),
        ("the answers", &answers.join("\n")),
        ("the journal", journal.as_str()),
        ("health", health.as_str()),
    ] {
        assert_eq!(full_numbers_in(text, &pans), Vec::<String>::new(), "{what}");
        assert_eq!(card_numbers_in(text), Vec::<String>::new(), "{what}");
    }
    assert!(answers.join("").contains("588845******1234"), "masked numbers are still shown");
    // Nor in the files of the state directory (journal, state, WAL).
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(full_numbers_in(&text, &pans), Vec::<String>::new(), "{}", entry.path().display());
    }
}
