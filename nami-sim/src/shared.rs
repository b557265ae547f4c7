//! What every thread of one simulator shares: the terminal, the faults, the card-tap state, the
//! "one exchange at a time" flag, counters, and the threads and sockets that shutdown must stop.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::SimConfig;
use crate::fault::{Applied, FaultSet};
use crate::terminal::Terminal;

/// How often waits look at the shutdown and link flags. Short enough that shutdown and unplug
/// feel immediate, long enough to cost nothing.
pub(crate) const POLL_SLICE: Duration = Duration::from_millis(50);

/// How many raw request frames [`Shared::received`] keeps (the latest). Tests look at a handful;
/// the cap keeps a simulator that runs for days, or is fed noise, from growing without bound.
pub(crate) const RECEIVED_KEPT: usize = 100_000;

/// Locks a mutex even if a thread panicked while holding it: the simulator's state stays usable,
/// and a test that provoked a bug still gets its replies.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Card-tap state, faults and the busy flag, under one lock with one condition variable.
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub faults: FaultSet,
    pub card_tap: bool,
    /// A tap that no purchase has used yet ("the card is on the reader").
    pub card_presented: bool,
    pub waiting_for_card: bool,
    /// An exchange is running: other requests are refused with 923.
    pub busy: bool,
}

/// How a wait for the card ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tap {
    Tapped,
    TimedOut,
    /// Shutdown, or the link went away.
    Cancelled,
}

/// Something that can be stopped at shutdown (a pty or a serial device).
pub(crate) trait Stoppable: Send + Sync {
    fn stop(&self);

    /// The path clients open, for a pseudo-terminal (the control API's `pty`).
    fn pty_path(&self) -> Option<std::path::PathBuf> {
        None
    }
}

pub(crate) struct Shared {
    pub config: SimConfig,
    pub listen_addr: SocketAddr,
    pub terminal: Mutex<Terminal>,
    pub control: Mutex<Control>,
    pub wake: Condvar,
    requests: AtomicU64,
    received: Mutex<VecDeque<Vec<u8>>>,
    shutdown: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    tcp_streams: Mutex<Vec<(u64, TcpStream)>>,
    next_stream_id: AtomicU64,
    pub control_addr: Mutex<Option<SocketAddr>>,
    pub http: Mutex<Option<Arc<tiny_http::Server>>>,
    stoppables: Mutex<Vec<Weak<dyn Stoppable>>>,
}

impl Shared {
    pub fn new(config: SimConfig, listen_addr: SocketAddr) -> Self {
        let terminal = Terminal::new(config.terminal_id.clone(), config.registered);
        let control = Control { card_tap: config.card_tap, ..Control::default() };
        Shared {
            config,
            listen_addr,
            terminal: Mutex::new(terminal),
            control: Mutex::new(control),
            wake: Condvar::new(),
            requests: AtomicU64::new(0),
            received: Mutex::new(VecDeque::new()),
            shutdown: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            tcp_streams: Mutex::new(Vec::new()),
            next_stream_id: AtomicU64::new(0),
            control_addr: Mutex::new(None),
            http: Mutex::new(None),
            stoppables: Mutex::new(Vec::new()),
        }
    }

    pub fn terminal(&self) -> MutexGuard<'_, Terminal> {
        lock(&self.terminal)
    }

    pub fn control(&self) -> MutexGuard<'_, Control> {
        lock(&self.control)
    }

    pub fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub fn record_request(&self, raw: &[u8]) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut received = lock(&self.received);
        if received.len() >= RECEIVED_KEPT {
            received.pop_front();
        }
        received.push_back(raw.to_vec());
    }

    pub fn requests_received(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Vec<u8>> {
        lock(&self.received).iter().cloned().collect()
    }

    /// Starts an exchange unless one is running (D10: one at a time, no queueing).
    pub fn begin_exchange(self: &Arc<Self>) -> Option<ExchangeGuard> {
        let mut control = self.control();
        if control.busy {
            return None;
        }
        control.busy = true;
        Some(ExchangeGuard { shared: Arc::clone(self), released: false })
    }

    /// The faults for the request just received.
    pub fn take_faults(&self) -> Applied {
        self.control().faults.take_for_request()
    }

    /// Waits for a card tap, up to the configured timeout. `link_closed` says whether the link
    /// the request came on went away, which ends the wait.
    pub fn wait_for_tap(&self, link_closed: &dyn Fn() -> bool) -> Tap {
        let deadline = Instant::now() + self.config.card_tap_timeout;
        let mut control = self.control();
        control.waiting_for_card = true;
        let outcome = loop {
            if control.card_presented {
                control.card_presented = false;
                break Tap::Tapped;
            }
            // Card-tap mode switched off while waiting: the card is taken as presented.
            if !control.card_tap {
                break Tap::Tapped;
            }
            if self.is_shut_down() || link_closed() {
                break Tap::Cancelled;
            }
            let now = Instant::now();
            if now >= deadline {
                break Tap::TimedOut;
            }
            let slice = POLL_SLICE.min(deadline - now);
            control = self.wake.wait_timeout(control, slice).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        };
        control.waiting_for_card = false;
        outcome
    }

    pub fn tap_card(&self) {
        self.control().card_presented = true;
        self.wake.notify_all();
    }

    /// Sleeps `duration`, waking early at shutdown or when the link closes. Returns whether the
    /// whole duration passed.
    pub fn sleep(&self, duration: Duration, link_closed: &dyn Fn() -> bool) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.is_shut_down() || link_closed() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep(POLL_SLICE.min(deadline - now));
        }
    }

    /// Spawns a thread that shutdown will join. Finished threads are forgotten on the way.
    pub fn spawn(&self, name: &str, body: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let handle = std::thread::Builder::new().name(name.to_owned()).spawn(body)?;
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
        Ok(())
    }

    /// Keeps a handle to join at shutdown.
    pub fn track(&self, handle: JoinHandle<()>) {
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }

    /// Remembers a connection so that shutdown can close it; returns its key.
    pub fn register_stream(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let id = self.next_stream_id.fetch_add(1, Ordering::SeqCst);
        lock(&self.tcp_streams).push((id, clone));
        Some(id)
    }

    pub fn forget_stream(&self, id: u64) {
        lock(&self.tcp_streams).retain(|(i, _)| *i != id);
    }

    #[cfg_attr(not(unix), allow(dead_code))] // Only the pty and serial side register.
    pub fn register_stoppable(&self, item: Weak<dyn Stoppable>) {
        let mut items = lock(&self.stoppables);
        items.retain(|w| w.strong_count() > 0);
        items.push(item);
    }

    /// The path of the first pseudo-terminal opened that is still open.
    pub fn pty_path(&self) -> Option<std::path::PathBuf> {
        lock(&self.stoppables).iter().filter_map(Weak::upgrade).find_map(|item| item.pty_path())
    }

    /// Closes listeners, connections, the control API and serial links, and joins the threads.
    pub fn shutdown(&self) {
        if self.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        self.wake.notify_all();
        // A connection to ourselves unblocks the accept() of the listener thread.
        let _ = TcpStream::connect_timeout(&connectable(self.listen_addr), Duration::from_secs(1));
        for (_, stream) in lock(&self.tcp_streams).drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(server) = lock(&self.http).take() {
            server.unblock();
        }
        let stoppables: Vec<_> = lock(&self.stoppables).drain(..).collect();
        for item in stoppables.iter().filter_map(Weak::upgrade) {
            item.stop();
        }
        // Threads may still register while we join (a connection accepted just before the flag
        // was seen), so drain until nothing is left.
        let me = std::thread::current().id();
        loop {
            let threads: Vec<_> = lock(&self.threads).drain(..).collect();
            if threads.is_empty() {
                break;
            }
            for handle in threads {
                if handle.thread().id() != me {
                    let _ = handle.join();
                }
            }
            // Connections accepted during the drain were registered after the first sweep.
            for (_, stream) in lock(&self.tcp_streams).drain(..) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// An address a client can connect to: the unspecified address becomes loopback.
pub(crate) fn connectable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into()),
            SocketAddr::V6(_) => addr.set_ip(std::net::Ipv6Addr::LOCALHOST.into()),
        }
    }
    addr
}

/// Held while an exchange runs; releasing it (or dropping it) lets the next request in.
pub(crate) struct ExchangeGuard {
    shared: Arc<Shared>,
    released: bool,
}

impl ExchangeGuard {
    pub fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.shared.control().busy = false;
        }
    }
}

impl Drop for ExchangeGuard {
    fn drop(&mut self) {
        self.release();
    }
}
