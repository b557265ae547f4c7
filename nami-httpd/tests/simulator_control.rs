//! nami-sim's control API and the daemon's `/simulator/*` answer alike: the same requests, sent
//! over real HTTP to the `--control` server of a simulator and to the daemon binary's embedded
//! one, get the same status and the same JSON (once the addresses, which differ by instance, are
//! set aside), bad faults included. Both servers call `Simulator::control`.

#![cfg(unix)]

use nami_sim::{SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, state_dir};
use nami_test_kit::http::{client, get, post, post_text, tcp_body};
use serde_json::{Value, json};

/// The answer without what differs between two simulators: their addresses and pty paths, the
/// journal's times and ECR references (each terminal gets its own), the replies that carry them.
fn comparable(mut body: Value) -> Value {
    fn scrub(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for key in ["listen", "pty", "dateTime", "ecrReference"] {
                    if let Some(field) = map.get_mut(key) {
                        *field = json!(if field.is_null() { "(none)" } else { "(instance)" });
                    }
                }
                if let Some(reply) = map.get_mut("reply") {
                    *reply = json!(reply.as_array().map(Vec::len));
                }
                map.values_mut().for_each(scrub);
            }
            Value::Array(items) => items.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    scrub(&mut body);
    body
}

#[test]
fn nami_sim_and_the_daemon_answer_every_control_request_alike() {
    let sim =
        Simulator::start(SimConfig { control_listen: Some("127.0.0.1:0".parse().unwrap()), ..SimConfig::default() })
            .unwrap();
    let _pty = sim.open_pty().unwrap();
    let sim_control = format!("http://{}", sim.control_addr().unwrap());
    let dir = state_dir();
    let daemon = Daemon::start(dir.path(), &["--simulator", "--simulator-listen", "127.0.0.1:0"]);
    let embedded_port: u16 =
        daemon.banner_value("simulator listening on ").unwrap().rsplit(':').next().unwrap().parse().unwrap();
    let http = client();

    let compared = std::cell::Cell::new(0);
    let both = |method: &str, path: &str, body: &str| -> Value {
        let (own, embedded) = match method {
            "GET" => {
                (get(&http, &format!("{sim_control}{path}")), get(&http, &daemon.at(&format!("/simulator{path}"))))
            }
            _ => (
                post_text(&http, &format!("{sim_control}{path}"), body),
                post_text(&http, &daemon.at(&format!("/simulator{path}")), body),
            ),
        };
        assert_eq!(own.status, embedded.status, "{method} {path} {body}: {} / {}", own.body, embedded.body);
        assert_eq!(comparable(own.body.clone()), comparable(embedded.body), "{method} {path} {body}");
        if own.status != 200 {
            assert!(own.body["error"].as_str().is_some_and(|m| !m.is_empty()), "{}", own.body);
        }
        compared.set(compared.get() + 1);
        own.body
    };

    let state = both("GET", "/state", "");
    assert_eq!(state["faults"], json!([]));
    assert!(state["pty"].is_string(), "{state}");
    for body in [
        r#"{"fault":"never-answer","scope":"next","count":2}"#,
        r#"{"fault":"decline","code":"117","scope":"always"}"#,
        r#"{"fault":"decline","ms":5}"#,
        r#"{"fault":"delay","ms":"200","count":null}"#,
        r#"{"fault":"split","writes":4,"scope":"always"}"#,
        r#"{"fault":"byte-by-byte","ms":5,"count":3}"#,
        r#"{"fault":"busy","count":0}"#,
    ] {
        assert_eq!(both("POST", "/fault", body).as_object().map(|m| m.contains_key("faults")), Some(true));
    }
    let faults = both("GET", "/state", "")["faults"].clone();
    assert_eq!(faults.as_array().map(Vec::len), Some(5), "{faults}");
    assert!(
        faults
            .as_array()
            .unwrap()
            .contains(&json!({"fault": "decline", "code": "116", "scope": "next", "remaining": 1}))
    );
    for bad in [
        "not json",
        "",
        r#"{"fault":"explode"}"#,
        r#"{"ms":5}"#,
        r#"{"fault":7}"#,
        r#"{"fault":"delay","ms":"soon"}"#,
        r#"{"fault":"busy","ms":1.5}"#,
        r#"{"fault":"busy","code":"-1"}"#,
        r#"{"fault":"split","writes":1}"#,
        r#"{"fault":"decline","code":"12345"}"#,
        r#"{"fault":"busy","scope":"sometimes"}"#,
        r#"{"fault":"busy","count":-1}"#,
        r#"{"fault":"busy","count":4294967296}"#,
    ] {
        let answer = both("POST", "/fault", bad);
        assert!(answer["error"].is_string(), "{bad}: {answer}");
    }
    assert_eq!(both("POST", "/faults/clear", "")["faults"], json!([]));

    assert_eq!(both("POST", "/card-tap", r#"{"enabled":true}"#)["cardTap"], true);
    for bad in [r#"{"enabled":"yes"}"#, "{}", "nope"] {
        assert!(both("POST", "/card-tap", bad)["error"].is_string());
    }
    assert_eq!(both("POST", "/tap", ""), json!({"tapped": true, "purchaseWasWaiting": false}));
    assert_eq!(both("POST", "/card-tap", r#"{"enabled":false}"#)["cardTap"], false);

    // The same transactions on each terminal, through the daemon: same state, same journal.
    for (port, first) in [(sim.addr().port(), 401), (embedded_port, 411)] {
        for (n, payment) in [
            json!({"txnType": "REGISTER"}),
            json!({"txnType": "PURCHASE", "amount": "10.00"}),
            json!({"txnType": "PURCHASE", "amount": "10.51"}),
        ]
        .into_iter()
        .enumerate()
        {
            let mut payment = payment;
            payment["ecrReferenceNo"] = json!(format!("12345678000{}", first + n));
            let answer = post(&http, &daemon.at("/performTransactionTCPIP"), &tcp_body(port, payment));
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
    }
    let state = both("GET", "/state", "");
    assert_eq!((state["registered"].clone(), state["journalLength"].clone()), (json!(true), json!(2)));
    let journal = both("GET", "/journal", "");
    assert_eq!(journal[1]["responseCode"], "116");
    assert_eq!(both("POST", "/reboot", "")["registered"], false);
    assert!(compared.get() > 30, "{} requests compared", compared.get());
    sim.shutdown();
}
