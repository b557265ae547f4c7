//! `nami-sim`: a simulated Nami terminal that speaks the real wire protocol (docs/protocol.md) over
//! TCP and over a pseudo-terminal, for tests and for integrators without hardware. On Windows it
//! serves TCP and the control API; the pty and serial side are Unix only.
//!
//! ```no_run
//! use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
//!
//! let sim = Simulator::start(SimConfig::default())?; // 127.0.0.1, a free port
//! println!("terminal at {}", sim.addr());
//! sim.set_fault(Fault::NeverAnswer, FaultScope::Next(1));
//! // ... drive it with a POS ...
//! sim.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Files: `terminal.rs` is the terminal's behaviour (validation, registration, journal, amount
//! rules, replies), free of I/O; `fault.rs` the faults; `link.rs` reading frames and delivering
//! replies on any link; `tcp.rs` and `pty.rs` the TCP and serial sides; `control.rs` the control
//! API (one function for every server that carries it) and its HTTP server; `shared.rs` the state every thread shares. See README.md for the rules.

mod control;
mod fault;
mod link;
#[cfg(unix)]
mod pty;
mod shared;
mod tcp;
mod terminal;

use std::net::{SocketAddr, TcpListener};
#[cfg(unix)]
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use control::{
    CONTROL_PATHS, CardTapRequest, ControlAnswer, ControlError, FaultInForce, FaultName, FaultRequest, FaultScopeName,
    SimState, SimSummary, Tapped,
};
pub use fault::{FAULT_NAMES, Fault, FaultParseError, FaultScope};
pub use nami_sdk::{LrcMode, TerminalId};
#[cfg(unix)]
pub use pty::{SimPty, SimSerial};
pub use terminal::{
    AMOUNT_RULES, APPLICATION_VERSION, AmountRule, CARDS, Card, MERCHANT_ADDRESS, MERCHANT_ADDRESS_AR_HEX,
    MERCHANT_CATEGORY_CODE, MERCHANT_ID, MERCHANT_NAME, MERCHANT_NAME_AR_HEX, SUMMARY_PAGE_SIZE, SimTransaction,
};

use shared::Shared;
pub(crate) use shared::lock;

/// The terminal ID the simulator reports unless told otherwise (the vendor's example, §4).
pub const DEFAULT_TERMINAL_ID: &str = "8184000200000077";

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where the TCP side listens. The library's default takes a free port on 127.0.0.1; the
    /// binary's default is 127.0.0.1:8888.
    pub listen: SocketAddr,
    /// The ID REGISTER returns and signatures are checked against.
    pub terminal_id: TerminalId,
    /// How replies' LRC byte is computed.
    pub lrc: LrcMode,
    /// Where the HTTP control API listens (port 0 for a free one); `None` turns it off.
    pub control_listen: Option<SocketAddr>,
    /// Whether card transactions wait for [`Simulator::tap_card`].
    pub card_tap: bool,
    /// How long a card transaction waits for the tap before it declines (100 CARD READ TIMEOUT).
    /// The request's own timeout field says 120 s, hence the default.
    pub card_tap_timeout: Duration,
    /// Added before every reply (except the immediate 923 of a busy terminal).
    pub response_delay: Duration,
    /// Start registered, as if REGISTER had already succeeded.
    pub registered: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            terminal_id: TerminalId::parse(DEFAULT_TERMINAL_ID).expect("the default terminal ID has 16 digits"),
            lrc: LrcMode::Skyband,
            control_listen: None,
            card_tap: false,
            card_tap_timeout: Duration::from_secs(120),
            response_delay: Duration::ZERO,
            registered: false,
        }
    }
}

/// A running simulator. Cheap to clone; every clone drives the same terminal. It keeps running
/// until [`Simulator::shutdown`] (dropping the handles does not stop it).
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").field("addr", &self.addr()).field("control_addr", &self.control_addr()).finish()
    }
}

impl Simulator {
    /// Binds the TCP listener (and the control API, if configured), starts serving on background
    /// threads and returns at once.
    pub fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(config.listen)?;
        let listen_addr = listener.local_addr()?;
        let control_listen = config.control_listen;
        let shared = Arc::new(Shared::new(config, listen_addr));
        let sim = Simulator { shared: Arc::clone(&shared) };
        let accept_shared = Arc::clone(&shared);
        shared.spawn("nami-sim-accept", move || tcp::accept_loop(accept_shared, listener))?;
        if let Some(addr) = control_listen {
            let server = match tiny_http::Server::http(addr) {
                Ok(server) => Arc::new(server),
                Err(error) => {
                    sim.shutdown();
                    return Err(std::io::Error::other(format!("control API on {addr}: {error}")));
                }
            };
            *lock(&shared.control_addr) = server.server_addr().to_ip();
            *lock(&shared.http) = Some(Arc::clone(&server));
            let control_sim = sim.clone();
            shared.spawn("nami-sim-control", move || control::serve(control_sim, server))?;
        }
        tracing::info!(addr = %listen_addr, terminal_id = %shared.config.terminal_id, "simulator listening");
        Ok(sim)
    }

    /// The bound TCP address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.listen_addr
    }

    /// The bound address of the HTTP control API, if it runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        *lock(&self.shared.control_addr)
    }

    pub fn terminal_id(&self) -> TerminalId {
        self.shared.config.terminal_id.clone()
    }

    /// Sets a fault. A fault of the same kind already set is replaced.
    pub fn set_fault(&self, fault: Fault, scope: FaultScope) {
        tracing::info!(%fault, ?scope, "fault set");
        self.shared.control().faults.set(fault, scope);
    }

    pub fn clear_faults(&self) {
        self.shared.control().faults.clear();
    }

    /// The faults in force and how many requests each still holds for (`None`: always).
    pub fn faults(&self) -> Vec<(Fault, Option<u32>)> {
        self.shared.control().faults.list().iter().map(|a| (a.fault.clone(), a.remaining)).collect()
    }

    /// Taps the card: completes the card transaction waiting in card-tap mode. With none
    /// waiting, the card stays "on the reader" for the next one.
    pub fn tap_card(&self) {
        self.shared.tap_card();
    }

    /// Whether a card transaction is waiting for [`Simulator::tap_card`].
    pub fn waiting_for_card(&self) -> bool {
        self.shared.control().waiting_for_card
    }

    /// Whether an exchange is running (a request now would get 923). Tests wait for this to be
    /// false before the next request, since an exchange outlives its card wait by its reply.
    pub fn exchange_in_progress(&self) -> bool {
        self.shared.control().busy
    }

    /// Turns card-tap mode on or off. Off releases a waiting transaction as if tapped; either way
    /// a tap not yet used is forgotten.
    pub fn set_card_tap(&self, on: bool) {
        {
            let mut control = self.shared.control();
            control.card_tap = on;
            control.card_presented = false;
        }
        self.shared.wake.notify_all();
    }

    pub fn card_tap(&self) -> bool {
        self.shared.control().card_tap
    }

    /// Card replies carry the whole card number (a Luhn-valid test number, [`Card::pan`]) in
    /// field \[4\] instead of the masked one, as some terminals do: for testing that a POS or
    /// the SDK masks it before it reaches a log, a response or a journal. The simulator's own
    /// journal keeps the masked number.
    pub fn set_full_pan(&self, on: bool) {
        self.shared.terminal().set_full_pan(on);
    }

    /// DUPLICATE repeats the transaction without its command code: the repeated reply's fields
    /// follow the DUPLICATE's own code and message directly (`C2;000;APPROVED;000;APPROVED;<pan>…`),
    /// the layout the iOS SDK reads with the type of the last transaction (PROTOCOL.md §5.7).
    pub fn set_duplicate_without_command(&self, on: bool) {
        self.shared.terminal().set_duplicate_without_command(on);
    }

    /// Forgets the registration and the session, as a power cycle would; the journal survives
    /// (like a terminal's batch) and connections stay open.
    pub fn reboot(&self) {
        tracing::info!("reboot");
        self.shared.terminal().reboot();
    }

    pub fn is_registered(&self) -> bool {
        self.shared.terminal().is_registered()
    }

    pub fn session_open(&self) -> bool {
        self.shared.terminal().session_open()
    }

    /// Frames received so far, on every link, including refused and malformed ones.
    pub fn requests_received(&self) -> u64 {
        self.shared.requests_received()
    }

    /// The raw request frames received, in order (the latest 100,000).
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.shared.received()
    }

    /// The journal of card transactions and reversals, oldest first.
    pub fn journal(&self) -> Vec<SimTransaction> {
        self.shared.terminal().journal().to_vec()
    }

    /// The path of the pseudo-terminal serving this terminal (the first opened that is still
    /// open; always `None` on Windows).
    pub fn pty_path(&self) -> Option<std::path::PathBuf> {
        self.shared.pty_path()
    }

    /// Opens a new pseudo-terminal pair serving the same terminal as the TCP side (Unix only).
    #[cfg(unix)]
    pub fn open_pty(&self) -> std::io::Result<SimPty> {
        SimPty::open(&self.shared)
    }

    /// Serves an existing serial device (or any tty) at `baud`, 8-N-1, raw (Unix only).
    #[cfg(unix)]
    pub fn open_serial(&self, path: &Path, baud: u32) -> std::io::Result<SimSerial> {
        SimSerial::open(&self.shared, path, baud)
    }

    /// Closes the listeners, every connection, ptys and serial devices, and the control API,
    /// and waits for the simulator's threads to end. Idempotent.
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }

    pub fn is_shut_down(&self) -> bool {
        self.shared.is_shut_down()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Simulator>();
        #[cfg(unix)]
        {
            assert_send_sync::<SimPty>();
            assert_send_sync::<SimSerial>();
        }
    }
}
