//! The three ways of reaching the terminals, each driven by one worker thread per terminal:
//!
//! - **raw**: a plain `TcpStream` writes the pre-encoded frame and reads until ETX and the LRC
//!   byte. No SDK: the cost of the terminal exchange itself (the simulator and the loopback), the
//!   baseline the others are divided by.
//! - **sdk**: `nami_sdk::Terminal` in process (`purchase` / `check_status`).
//! - **daemon**: `POST /performTransactionTCPIP` to `nami-httpd` over HTTP/1.1 keep-alive.
//!
//! A phase: every worker opens its connection and runs one unmeasured warm-up transaction, all
//! wait at a barrier, then each runs `transactions` measured ones back to back (zero think
//! time). Wall time runs from the barrier to the last worker's end.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use nami_sdk::{Registration, Terminal, TerminalConfig};
use serde::Serialize;

use crate::daemon::Client;
use crate::stats::Samples;
use crate::workload::{BenchTerminal, Txn, reply_code};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Raw,
    Sdk,
    Daemon,
    /// The daemon of `--baseline-daemon-bin`, driven like `daemon` in the same run.
    #[value(skip)]
    #[serde(rename = "daemon-baseline")]
    DaemonBaseline,
    /// raw, sdk and daemon.
    All,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Sdk => "sdk",
            Mode::Daemon => "daemon",
            Mode::DaemonBaseline => "daemon-baseline",
            Mode::All => "all",
        }
    }
}

/// Worker threads do little but block on sockets; small stacks keep 1,000 of them cheap.
pub(crate) const WORKER_STACK: usize = 256 * 1024;

/// Runs one phase of `mode` over every terminal; returns the merged samples and the wall time.
pub fn run_phase(
    mode: Mode,
    terminals: &Arc<Vec<BenchTerminal>>,
    txn: Txn,
    transactions: usize,
    daemon: Option<SocketAddr>,
    on_start: &dyn Fn(),
) -> io::Result<(Samples, Duration)> {
    let barrier = Arc::new(Barrier::new(terminals.len() + 1));
    let mut workers = Vec::with_capacity(terminals.len());
    for index in 0..terminals.len() {
        let (terminals, barrier) = (Arc::clone(terminals), Arc::clone(&barrier));
        let worker = std::thread::Builder::new()
            .name(format!("bench-{}-{index}", mode.label()))
            .stack_size(WORKER_STACK)
            .spawn(move || {
                let terminal = &terminals[index];
                match mode {
                    Mode::Raw => run_worker(RawDriver::open(terminal), terminal, txn, transactions, &barrier),
                    Mode::Sdk => run_worker(SdkDriver::open(terminal), terminal, txn, transactions, &barrier),
                    Mode::Daemon | Mode::DaemonBaseline => run_worker(
                        DaemonDriver::open(terminal, daemon.expect("a daemon for the daemon mode")),
                        terminal,
                        txn,
                        transactions,
                        &barrier,
                    ),
                    Mode::All => unreachable!("expanded before"),
                }
            })?;
        workers.push(worker);
    }
    barrier.wait();
    on_start();
    let started = Instant::now();
    let mut samples = Samples::with_capacity(terminals.len() * transactions);
    for worker in workers {
        match worker.join() {
            Ok(worker_samples) => samples.merge(worker_samples),
            Err(_) => samples.error("a worker panicked"),
        }
    }
    Ok((samples, started.elapsed()))
}

/// One way to send a transaction to one terminal.
pub(crate) trait Driver: Sized {
    /// Prepares the transaction's bytes (not measured).
    type Prepared;
    fn prepare(&mut self, terminal: &BenchTerminal, txn: Txn) -> Self::Prepared;
    /// Sends it and waits for the answer (measured). `Err` is a failed transaction.
    fn send(&mut self, prepared: Self::Prepared) -> Result<Self::Checked, String>;
    /// What is checked after the clock stopped.
    type Checked;
    fn check(&mut self, checked: Self::Checked, txn: Txn) -> Result<(), String>;
}

fn run_worker<D: Driver>(
    driver: io::Result<D>,
    terminal: &BenchTerminal,
    txn: Txn,
    transactions: usize,
    barrier: &Barrier,
) -> Samples {
    let mut samples = Samples::with_capacity(transactions);
    let mut driver = match driver {
        Ok(driver) => driver,
        Err(error) => {
            barrier.wait();
            for _ in 0..transactions {
                samples.error(format!("connect: {error}"));
            }
            return samples;
        }
    };
    // Warm-up: connections open, first-use allocations done, the daemon's session created.
    let warm = driver.prepare(terminal, txn);
    let warmed = driver.send(warm).and_then(|c| driver.check(c, txn));
    barrier.wait();
    if let Err(error) = warmed {
        for _ in 0..transactions {
            samples.error(format!("warm-up: {error}"));
        }
        return samples;
    }
    for _ in 0..transactions {
        let prepared = driver.prepare(terminal, txn);
        let started = Instant::now();
        let sent = driver.send(prepared);
        let latency = started.elapsed();
        match sent.and_then(|c| driver.check(c, txn)) {
            Ok(()) => samples.ok(latency),
            Err(error) => samples.error(error),
        }
    }
    samples
}

// ---------------------------------------------------------------------------------------------

struct RawDriver {
    stream: TcpStream,
    reply: Vec<u8>,
}

impl RawDriver {
    fn open(terminal: &BenchTerminal) -> io::Result<RawDriver> {
        let stream = TcpStream::connect(("127.0.0.1", terminal.port()))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(RawDriver { stream, reply: Vec::with_capacity(4096) })
    }
}

impl Driver for RawDriver {
    type Prepared = Vec<u8>;
    type Checked = ();

    fn prepare(&mut self, terminal: &BenchTerminal, txn: Txn) -> Vec<u8> {
        terminal.frame(txn, &terminal.next_reference())
    }

    fn send(&mut self, frame: Vec<u8>) -> Result<(), String> {
        self.stream.write_all(&frame).map_err(|e| format!("write: {e}"))?;
        self.reply.clear();
        let mut chunk = [0u8; 4096];
        loop {
            // The first ETX ends the frame (fields never hold one); the LRC byte follows it.
            if let Some(etx) = self.reply.iter().position(|b| *b == nami_sdk::protocol::frame::ETX)
                && self.reply.len() > etx + 1
            {
                return Ok(());
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("the terminal closed the connection".into()),
                Ok(n) => self.reply.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    fn check(&mut self, _: (), txn: Txn) -> Result<(), String> {
        match reply_code(&self.reply) {
            Some(code) if code == txn.expected_code() => Ok(()),
            other => Err(format!("raw reply code {other:?}")),
        }
    }
}

// ---------------------------------------------------------------------------------------------

struct SdkDriver {
    terminal: Terminal,
}

impl SdkDriver {
    fn open(terminal: &BenchTerminal) -> io::Result<SdkDriver> {
        let session = Terminal::tcp("127.0.0.1", terminal.port(), TerminalConfig::default());
        // The simulator starts registered; the session is told so, as the daemon's keymap would.
        session.restore_registration(Some(Registration {
            terminal_id: terminal.terminal_id(),
            cash_register_no: terminal.cash_register_no.clone(),
        }));
        session.connect().map_err(|e| io::Error::other(e.to_string()))?;
        Ok(SdkDriver { terminal: session })
    }
}

impl Driver for SdkDriver {
    type Prepared = (nami_sdk::EcrReference, Txn);
    type Checked = nami_sdk::TxnResult;

    fn prepare(&mut self, terminal: &BenchTerminal, txn: Txn) -> (nami_sdk::EcrReference, Txn) {
        (terminal.next_reference(), txn)
    }

    fn send(&mut self, (reference, txn): (nami_sdk::EcrReference, Txn)) -> Result<nami_sdk::TxnResult, String> {
        // The SDK's public operations, as a POS calls them.
        let result = match txn {
            Txn::Purchase => self.terminal.purchase(crate::workload::amount(), &reference, false),
            Txn::CheckStatus => self.terminal.check_status(&reference),
        };
        result.map_err(|e| format!("sdk: {e}"))
    }

    fn check(&mut self, result: nami_sdk::TxnResult, txn: Txn) -> Result<(), String> {
        if result.response_code == txn.expected_code() {
            Ok(())
        } else {
            Err(format!("sdk reply code {} ({})", result.response_code, result.message))
        }
    }
}

impl Drop for SdkDriver {
    fn drop(&mut self) {
        self.terminal.disconnect();
    }
}

// ---------------------------------------------------------------------------------------------

pub(crate) struct DaemonDriver {
    client: Client,
    port: u16,
}

impl DaemonDriver {
    pub(crate) fn open(terminal: &BenchTerminal, addr: SocketAddr) -> io::Result<DaemonDriver> {
        let mut client = Client::connect(addr)?;
        let port = terminal.port();
        // The daemon keeps registrations in its keymap: REGISTER once through it (the simulator,
        // already registered, simply answers 800 again).
        let register = body(
            port,
            serde_json::json!({
                "txnType": "REGISTER", "ecrReferenceNo": terminal.next_reference().as_str(),
            }),
        );
        let reply = client.post_json("/performTransactionTCPIP", &register)?;
        let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        if reply.status != 200 || value["responseCode"] != "800" {
            return Err(io::Error::other(format!("REGISTER through the daemon: {value}")));
        }
        Ok(DaemonDriver { client, port })
    }
}

fn body(port: u16, payment: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"tcpipcomData": {"ip": "127.0.0.1", "port": port}, "paymentRequest": payment}),
    )
    .expect("JSON")
}

impl Driver for DaemonDriver {
    type Prepared = Vec<u8>;
    type Checked = crate::daemon::Reply;

    fn prepare(&mut self, terminal: &BenchTerminal, txn: Txn) -> Vec<u8> {
        body(self.port, txn.payment_json(&terminal.next_reference()))
    }

    fn send(&mut self, body: Vec<u8>) -> Result<crate::daemon::Reply, String> {
        self.client.post_json("/performTransactionTCPIP", &body).map_err(|e| format!("http: {e}"))
    }

    fn check(&mut self, reply: crate::daemon::Reply, txn: Txn) -> Result<(), String> {
        let value: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|e| format!("daemon reply is not JSON: {e}"))?;
        if reply.status == 200 && value["statusCode"] == "200" && value["responseCode"] == txn.expected_code() {
            Ok(())
        } else {
            Err(format!("daemon: HTTP {} {}", reply.status, value))
        }
    }
}
