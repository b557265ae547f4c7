//! The C ABI called from Rust, against the simulator in process: the quick check that runs with
//! `cargo test` (the C programs in `bindings/c/tests/` go further, under valgrind).

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nami::capi::{
    NamiClient, NamiResult, NamiStatus, NamiTerminal, nami_call, nami_cancel, nami_client_free, nami_client_new,
    nami_last_error_message, nami_result_free, nami_set_event_callback, nami_string_free, nami_terminal_cancel,
    nami_terminal_free, nami_terminal_purchase, nami_terminal_register, nami_terminal_tcp_new, nami_version,
};
use nami_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(nami_last_error_message()) }.to_str().unwrap().to_owned()
}

struct Client(*mut NamiClient);

// SAFETY: every function taking a client is thread-safe (nami.h); the tests free it only once
// the threads using it have ended.
unsafe impl Sync for Client {}
unsafe impl Send for Client {}

impl Client {
    fn open(dir: &std::path::Path) -> Client {
        let options = json!({"stateDir": dir, "timeouts": {"cardPresentSeconds": 20, "settlementSeconds": 20, "adminSeconds": 20}});
        let mut client = ptr::null_mut();
        let status = unsafe { nami_client_new(c(&options.to_string()).as_ptr(), &mut client) };
        assert_eq!(status, NamiStatus::Ok, "{}", last_error());
        Client(client)
    }

    fn call(&self, endpoint: &str, body: &Value) -> (NamiStatus, Value) {
        let mut out: *mut c_char = ptr::null_mut();
        let status = unsafe { nami_call(self.0, c(endpoint).as_ptr(), c(&body.to_string()).as_ptr(), &mut out) };
        assert!(!out.is_null(), "a body is always returned");
        let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
        unsafe { nami_string_free(out) };
        (status, serde_json::from_str(&text).unwrap())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        unsafe { nami_client_free(self.0) };
    }
}

fn tcp(sim: &Simulator, payment: Value) -> Value {
    json!({"tcpipcomData": {"ip": "127.0.0.1", "port": sim.addr().port()}, "paymentRequest": payment})
}

static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn record(event: *const c_char, user_data: *mut c_void) {
    assert_eq!(user_data as usize, 42);
    EVENTS.lock().unwrap().push(unsafe { CStr::from_ptr(event) }.to_str().unwrap().to_owned());
}

#[test]
fn the_rest_json_goes_through_nami_call_unchanged_and_events_arrive() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path());
    assert_eq!(unsafe { nami_set_event_callback(client.0, Some(record), 42 as *mut c_void) }, NamiStatus::Ok);

    let (status, reply) = client.call(
        "/performTransactionTCPIP",
        &tcp(&sim, json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000000"})),
    );
    assert_eq!((status, reply["statusCode"].as_str()), (NamiStatus::Ok, Some("200")), "{reply}");
    let purchase =
        json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": "12345678000001", "jsonResponse": true});
    let (status, reply) = client.call("/performTransactionTCPIP", &tcp(&sim, purchase));
    assert_eq!(status, NamiStatus::Ok);
    assert_eq!(reply["approved"], true, "{reply}");
    assert_eq!(reply["parsedTransaction"]["cardNumber"], "588845******1234");
    assert!(EVENTS.lock().unwrap().iter().any(|e| e.contains("\"event\":\"responseReceived\"")));

    let (status, reply) = client.call("/no-such-thing", &Value::Null);
    assert_eq!(status, NamiStatus::NotFound, "{reply}");
    let (status, reply) = client.call("/performTransactionTCPIP", &json!({"tcpipcomData": 5}));
    assert_eq!(status, NamiStatus::InvalidArgument, "{reply}");
    assert!(last_error().contains("tcpipcomData"), "{}", last_error());

    assert_eq!(unsafe { nami_set_event_callback(client.0, None, ptr::null_mut()) }, NamiStatus::Ok);
    drop(client);
    sim.shutdown();
}

#[test]
fn null_and_non_utf8_arguments_are_errors_not_crashes() {
    let mut out: *mut c_char = ptr::null_mut();
    let status = unsafe { nami_call(ptr::null(), c("/get-com-ports").as_ptr(), ptr::null(), &mut out) };
    assert_eq!(status, NamiStatus::InvalidArgument);
    let body: Value = serde_json::from_str(unsafe { CStr::from_ptr(out) }.to_str().unwrap()).unwrap();
    assert!(body["statusMessage"].as_str().unwrap().contains("client"), "{body}");
    unsafe { nami_string_free(out) };
    assert_eq!(
        unsafe { nami_call(ptr::null(), ptr::null(), ptr::null(), ptr::null_mut()) },
        NamiStatus::InvalidArgument
    );
    assert_eq!(unsafe { nami_client_new(ptr::null(), ptr::null_mut()) }, NamiStatus::InvalidArgument);
    let bad = [0x7b_u8, 0xff, 0xfe, 0x7d, 0];
    let mut client = ptr::null_mut();
    assert_eq!(unsafe { nami_client_new(bad.as_ptr().cast(), &mut client) }, NamiStatus::InvalidArgument);
    assert!(client.is_null());
    assert!(last_error().contains("UTF-8"), "{}", last_error());
    assert_eq!(unsafe { nami_client_new(c(r#"{"bogus":1}"#).as_ptr(), &mut client) }, NamiStatus::InvalidArgument);
    assert!(last_error().contains("bogus"), "{}", last_error());
    unsafe {
        nami_client_free(ptr::null_mut());
        nami_terminal_free(ptr::null_mut());
        nami_string_free(ptr::null_mut());
        nami_result_free(ptr::null_mut());
    }
    assert_eq!(unsafe { nami_cancel(ptr::null()) }, NamiStatus::InvalidArgument);
    let version = unsafe { CStr::from_ptr(nami_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn typed_terminal_calls_fill_a_result_and_a_cancel_from_another_thread_ends_the_wait() {
    let sim = Simulator::start(SimConfig { card_tap: true, ..SimConfig::default() }).unwrap();
    let mut terminal = ptr::null_mut();
    let options = c(r#"{"timeouts":{"cardPresentSeconds":20}}"#);
    let status =
        unsafe { nami_terminal_tcp_new(c("127.0.0.1").as_ptr(), sim.addr().port(), options.as_ptr(), &mut terminal) };
    assert_eq!(status, NamiStatus::Ok, "{}", last_error());
    let mut result = unsafe { std::mem::zeroed::<NamiResult>() };
    assert_eq!(unsafe { nami_terminal_register(terminal, c("12345678").as_ptr(), &mut result) }, NamiStatus::Ok);
    assert_eq!(result.approved, 1);
    assert_eq!(unsafe { CStr::from_ptr(result.terminal_id) }.to_str().unwrap(), "8184000200000077");
    unsafe { nami_result_free(&mut result) };

    let status =
        unsafe { nami_terminal_purchase(terminal, c("10.005").as_ptr(), c("12345678000001").as_ptr(), 1, &mut result) };
    assert_eq!(status, NamiStatus::InvalidAmount);
    assert!(last_error().contains("`amount`"), "{}", last_error());
    unsafe { nami_result_free(&mut result) };

    let address = terminal as usize;
    let canceller = {
        let sim = sim.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !sim.waiting_for_card() {
                assert!(start.elapsed() < Duration::from_secs(20), "the purchase never waited for the card");
                std::thread::sleep(Duration::from_millis(20));
            }
            unsafe { nami_terminal_cancel(address as *const NamiTerminal) }
        })
    };
    let start = Instant::now();
    let status =
        unsafe { nami_terminal_purchase(terminal, c("10.00").as_ptr(), c("12345678000002").as_ptr(), 1, &mut result) };
    assert_eq!(canceller.join().unwrap(), NamiStatus::Ok);
    assert_eq!(status, NamiStatus::Cancelled, "{}", last_error());
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(unsafe { CStr::from_ptr(result.unknown_outcome_ecr_reference) }.to_str().unwrap(), "12345678000002");
    unsafe {
        nami_result_free(&mut result);
        nami_terminal_free(terminal);
    }
    sim.shutdown();
}

#[test]
fn nami_cancel_means_a_call_still_waiting_to_be_sent_is_never_sent() {
    let sim = Simulator::start(SimConfig { card_tap: true, ..SimConfig::default() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // With waitWhenBusy a second call waits for the terminal instead of TERMINAL_BUSY.
    let options = json!({"stateDir": dir.path(), "waitWhenBusy": true, "timeouts": {"cardPresentSeconds": 20}});
    let mut raw = ptr::null_mut();
    assert_eq!(unsafe { nami_client_new(c(&options.to_string()).as_ptr(), &mut raw) }, NamiStatus::Ok);
    let client = Client(raw);
    let (_, registered) = client.call(
        "/performTransactionTCPIP",
        &tcp(&sim, json!({"txnType": "REGISTER", "ecrReferenceNo": "12345678000000"})),
    );
    assert_eq!(registered["statusCode"], "200", "{registered}");
    let purchase = |reference: &str| {
        tcp(
            &sim,
            json!({"txnType": "PURCHASE", "amount": "10.00", "date": "090625143000", "ecrReferenceNo": reference}),
        )
    };
    let client_ref = &client;
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| client_ref.call("/performTransactionTCPIP", &purchase("12345678000701")).1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sim.waiting_for_card() {
            assert!(Instant::now() < deadline, "the card wait");
            std::thread::sleep(Duration::from_millis(20));
        }
        let second = scope.spawn(|| client_ref.call("/performTransactionTCPIP", &purchase("12345678000702")).1);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(unsafe { nami_cancel(client_ref.0) }, NamiStatus::Ok);
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!(first["statusCode"], "CANCELLED", "{first}");
    assert_eq!(second["statusCode"], "CANCELLED", "{second}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(sim.journal().iter().all(|t| t.ecr_reference != "12345678000702"), "the second purchase was never sent");
    let received = sim.received();
    assert!(
        !received.iter().any(|frame| String::from_utf8_lossy(frame).contains("12345678000702")),
        "no frame of the second purchase"
    );
}
