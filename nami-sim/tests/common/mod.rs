//! Test helpers: a minimal POS built only from the `nami-sdk` codec. It encodes requests, writes
//! them to a TCP socket or a serial port, and reads replies with `FrameDecoder`.

#![allow(dead_code)] // each test file uses a different part of the helpers

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use nami_sdk::protocol::frame::{Signing, encode_request};
use nami_sdk::{
    Amount, ApprovalCode, CashRegisterNo, EcrReference, Frame, FrameDecoder, Layout, LrcMode, OriginalDate,
    PreviousEcrNo, Request, Response, Rrn, TerminalId, TxnDate, TxnType,
};
use nami_sim::{SimConfig, Simulator};

/// Long enough for any reply the simulator gives without a fault.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

pub const CASH_REGISTER: &str = "12345678";

/// A byte stream whose reads can time out.
pub trait Port: Read + Write {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()>;
}

impl Port for TcpStream {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
}

impl Port for Box<dyn serialport::SerialPort> {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        serialport::SerialPort::set_timeout(self.as_mut(), timeout).map_err(io::Error::other)
    }
}

pub fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).expect("simulator starts")
}

/// A simulator that starts registered.
pub fn start_registered() -> Simulator {
    start(SimConfig { registered: true, ..SimConfig::default() })
}

pub fn tid() -> TerminalId {
    TerminalId::parse(nami_sim::DEFAULT_TERMINAL_ID).unwrap()
}

/// A POS on one link.
pub struct Pos<P: Port> {
    pub port: P,
    decoder: FrameDecoder,
    pub terminal_id: TerminalId,
    /// Every byte read so far.
    pub bytes: Vec<u8>,
    /// How many reads returned data.
    pub reads: usize,
}

impl Pos<TcpStream> {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to the simulator");
        stream.set_nodelay(true).unwrap();
        Pos::new(stream)
    }
}

impl<P: Port> Pos<P> {
    pub fn new(port: P) -> Self {
        Pos { port, decoder: FrameDecoder::new(), terminal_id: tid(), bytes: Vec::new(), reads: 0 }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).expect("write request");
        self.port.flush().unwrap();
    }

    /// Encodes `request` signed with this POS's terminal ID and writes it.
    pub fn send(&mut self, request: &Request) {
        let frame = encode(request, &self.terminal_id);
        self.send_raw(&frame);
    }

    /// Reads until a whole frame arrives. `TimedOut` if none comes in time, `UnexpectedEof` if
    /// the link closes first.
    pub fn read_frame(&mut self, timeout: Duration) -> io::Result<Frame> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(frame) = self.decoder.next_frame() {
                return Ok(frame);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let mut wait = deadline - now;
            if self.decoder.awaiting_lrc() {
                wait = wait.min(Duration::from_millis(200));
            }
            self.port.set_timeout(wait)?;
            match self.port.read(&mut buf) {
                Ok(0) => {
                    return self.decoder.finish().ok_or_else(|| io::ErrorKind::UnexpectedEof.into());
                }
                Ok(n) => {
                    self.reads += 1;
                    self.bytes.extend_from_slice(&buf[..n]);
                    self.decoder.push(&buf[..n]);
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    if self.decoder.awaiting_lrc()
                        && let Some(frame) = self.decoder.finish()
                    {
                        return Ok(frame);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads raw bytes until EOF or `timeout`; returns what came and whether EOF was seen.
    pub fn read_until_eof(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            self.port.set_timeout(deadline - Instant::now()).unwrap();
            match self.port.read(&mut buf) {
                Ok(0) => return (got, true),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => return (got, true),
            }
        }
        (got, false)
    }

    pub fn read_response(&mut self) -> Response {
        let frame = self.read_frame(REPLY_TIMEOUT).expect("a reply");
        Response::from_frame(frame)
    }

    /// Sends `request` and reads its reply, checking that the reply echoes its command and that
    /// the codec can parse it in the 3.5 layout.
    pub fn exchange(&mut self, request: &Request) -> Response {
        self.send(request);
        let response = self.read_response();
        assert_eq!(response.command(), request.txn_type.command(), "reply to {:?}: {:?}", request.txn_type, response);
        let _ = response.parsed(Layout::V35);
        response
    }

    pub fn register(&mut self) -> Response {
        self.exchange(&register())
    }
}

pub fn encode(request: &Request, terminal_id: &TerminalId) -> Vec<u8> {
    let signing =
        if request.txn_type.spec().is_signed() { Signing::TerminalId(terminal_id) } else { Signing::Unsigned };
    encode_request(request, signing, LrcMode::Skyband).expect("request encodes")
}

/// The named field of a reply, as the codec parses the 3.5 layout.
pub fn field(response: &Response, name: &str) -> String {
    response
        .parsed(Layout::V35)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {:?}", response.fields))
}

pub fn date() -> TxnDate {
    TxnDate::parse("210320144000").unwrap()
}

/// ECR reference `12345678` + the six-digit `sequence`.
pub fn ecr(sequence: u32) -> EcrReference {
    EcrReference::from_parts(&CashRegisterNo::parse(CASH_REGISTER).unwrap(), sequence).unwrap()
}

fn amount(halalas: u64) -> Option<Amount> {
    Some(Amount::from_halalas(halalas).unwrap())
}

fn signed(txn_type: TxnType, sequence: u32) -> Request {
    let mut request = Request::new(txn_type, date());
    request.ecr_reference = Some(ecr(sequence));
    if txn_type.spec().has_print_flag() {
        request.print = Some(false);
    }
    request
}

pub fn register() -> Request {
    setup(TxnType::Register)
}

pub fn setup(txn_type: TxnType) -> Request {
    let mut request = Request::new(txn_type, date());
    request.cash_register_no = Some(CashRegisterNo::parse(CASH_REGISTER).unwrap());
    request
}

/// Purchase, pre-auth, cash advance: a type with just an amount.
pub fn card(txn_type: TxnType, sequence: u32, halalas: u64) -> Request {
    let mut request = signed(txn_type, sequence);
    request.amount = amount(halalas);
    request
}

pub fn purchase(sequence: u32, halalas: u64) -> Request {
    card(TxnType::Purchase, sequence, halalas)
}

pub fn cashback(sequence: u32, halalas: u64, cashback: u64) -> Request {
    let mut request = card(TxnType::PurchaseCashback, sequence, halalas);
    request.cashback_amount = amount(cashback);
    request
}

pub fn bill_payment(sequence: u32, halalas: u64) -> Request {
    let mut request = card(TxnType::BillPayment, sequence, halalas);
    request.biller_id = Some(nami_sdk::protocol::values::BillerId::parse("000123").unwrap());
    request.bill_number = Some(nami_sdk::protocol::values::BillNumber::parse("004567").unwrap());
    request
}

pub fn refund(sequence: u32, halalas: u64, rrn: &str) -> Request {
    let mut request = card(TxnType::Refund, sequence, halalas);
    request.rrn = Some(Rrn::parse(rrn).unwrap());
    request
}

/// Completion, extension or void of a pre-authorisation.
pub fn preauth_followup(txn_type: TxnType, sequence: u32, halalas: u64, rrn: &str, approval: &str) -> Request {
    let mut request = signed(txn_type, sequence);
    if txn_type != TxnType::PreAuthExtension {
        request.amount = amount(halalas);
    }
    if txn_type == TxnType::PreAuthCompletion {
        request.partial_flag = Some(true);
    }
    request.rrn = Some(Rrn::parse(rrn).unwrap());
    request.original_date = Some(OriginalDate::parse("210320").unwrap());
    request.approval_code = Some(ApprovalCode::parse(approval).unwrap());
    request
}

/// Reversal, reconciliation and the types that carry only date, ECR reference and signature.
pub fn plain(txn_type: TxnType, sequence: u32) -> Request {
    let mut request = signed(txn_type, sequence);
    match txn_type {
        TxnType::SummaryReport => request.request_attempt_no = Some(0),
        TxnType::SetTerminalLanguage => {
            request.language = Some(nami_sdk::protocol::values::Language::parse("1").unwrap());
        }
        TxnType::SetParameter => {
            use nami_sdk::protocol::values::{SamaKeyIndex, TrsmId, VendorId, VendorKeyIndex, VendorTerminalType};
            request.vendor_id = Some(VendorId::parse("07").unwrap());
            request.vendor_terminal_type = Some(VendorTerminalType::parse("03").unwrap());
            request.trsm_id = Some(TrsmId::parse("ABC123").unwrap());
            request.vendor_key_index = Some(VendorKeyIndex::parse("04").unwrap());
            request.sama_key_index = Some(SamaKeyIndex::parse("05").unwrap());
        }
        _ => {}
    }
    request
}

pub fn summary_page(sequence: u32, attempt: u16) -> Request {
    let mut request = plain(TxnType::SummaryReport, sequence);
    request.request_attempt_no = Some(attempt);
    request
}

pub fn duplicate(sequence: u32, previous: &EcrReference) -> Request {
    let mut request = signed(TxnType::Duplicate, sequence);
    request.previous_ecr_no = Some(PreviousEcrNo::from(previous));
    request
}

/// Waits until `condition` holds, polling; panics after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
