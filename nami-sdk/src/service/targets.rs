//! Which terminal a request goes to: the TCP sessions (keyed by `ip:port`, created on first
//! use with their remembered registration), the COM connection, the registration keymap kept in
//! step with the sessions, the saved connections and their restoring at start.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::api::TcpTarget;
use super::shared::{Shared, lock, spawn};
use super::state::SavedConnection;
use crate::protocol::values::TerminalId;
use crate::session::events::{EventListener, TerminalEvent};
use crate::session::ports::list_serial_ports;
use crate::session::terminal::{LinkState, Registration, Terminal};

/// The key of the COM connection in the journal, the keymap and events (TCP terminals are keyed
/// by `ip:port`). There is one COM connection at a time; the device path is kept beside it.
pub const COM_KEY: &str = "COM";

/// Which terminal a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp(TcpTarget),
    Com,
}

/// The COM connection.
#[derive(Clone)]
pub(crate) struct ComConnection {
    pub(crate) terminal: Terminal,
    /// The device path opened.
    pub(crate) device: String,
    /// What the API calls it: `COM3` on Windows, the device path elsewhere.
    pub(crate) label: String,
    pub(crate) port_number: Option<u32>,
    /// Held while the connection re-registers silently; COM transactions wait for it.
    pub(crate) settling: Arc<Mutex<()>>,
}

pub(crate) fn parse_key(key: &str) -> Option<TcpTarget> {
    let (host, port) = crate::session::link::split_host_port(key).ok().filter(|(_, port)| *port != 0)?;
    Some(TcpTarget { ip: host.to_owned(), port })
}

impl Shared {
    /// The listener of one terminal's session: forwards events as JSON and keeps the keymap in
    /// step with silent re-registers.
    pub(crate) fn terminal_listener(self: &Arc<Self>, key: String) -> EventListener {
        let weak = Arc::downgrade(self);
        Arc::new(move |_device: &str, event: &TerminalEvent| {
            let Some(shared) = weak.upgrade() else { return };
            if let TerminalEvent::Registered { terminal_id } = event
                && let Ok(terminal_id) = TerminalId::parse(terminal_id)
            {
                let known = lock(&shared.keymap).get_mut(&key).map(|r| r.terminal_id = terminal_id.clone()).is_some();
                if known && let Err(e) = shared.state.update_terminal_id(&key, terminal_id.as_str()) {
                    shared.warn(format!("the keymap could not be saved: {e}"));
                }
            }
            // No one listening (the SDK and FFI without a listener): no JSON to build.
            if shared.listener.read().unwrap_or_else(|p| p.into_inner()).is_none() {
                return;
            }
            let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("terminal".into(), Value::String(key.clone()));
            }
            shared.emit(value);
        })
    }

    /// The session of a TCP terminal, created (with its remembered registration) on first use.
    pub(crate) fn tcp_terminal(self: &Arc<Self>, target: &TcpTarget) -> Terminal {
        let key = target.key();
        let mut map = lock(&self.tcp);
        if let Some(terminal) = map.get(&key) {
            return terminal.clone();
        }
        let terminal = Terminal::tcp(target.ip.clone(), target.port, self.config.terminal.clone());
        terminal.restore_registration(lock(&self.keymap).get(&key).cloned());
        terminal.set_listener(Some(self.terminal_listener(key.clone())));
        map.insert(key, terminal.clone());
        terminal
    }

    pub(crate) fn com_connection(&self) -> Option<ComConnection> {
        lock(&self.com).clone()
    }

    /// The registration of a terminal: its session's, or the keymap's when it has no session.
    pub(crate) fn registration_of(&self, key: &str) -> Option<Registration> {
        let session =
            if key == COM_KEY { self.com_connection().map(|c| c.terminal) } else { lock(&self.tcp).get(key).cloned() };
        match session {
            Some(terminal) => terminal.registration(),
            None => lock(&self.keymap).get(key).cloned(),
        }
    }

    /// Brings the keymap (memory and disk) in step with a session's registration after a call:
    /// a REGISTER adds it, a 1003/1008 reply drops it.
    pub(crate) fn sync_registration(&self, key: &str, terminal: &Terminal) {
        let current = terminal.registration();
        let mut keymap = lock(&self.keymap);
        if keymap.get(key) == current.as_ref() {
            return;
        }
        let saved = match &current {
            Some(registration) => {
                keymap.insert(key.to_owned(), registration.clone());
                self.state.put_registration(key, registration)
            }
            None => {
                keymap.remove(key);
                self.state.remove_registration(key)
            }
        };
        drop(keymap);
        if let Err(e) = saved {
            self.warn(format!("the keymap could not be saved: {e}"));
        }
    }

    pub(crate) fn remember(&self, saved: &SavedConnection) {
        if let Err(e) = self.state.save_connection(saved) {
            self.warn(format!("connection {} could not be saved: {e}", saved.key()));
        }
    }

    /// Whether the keymap already holds the terminal's registration as it is now (nothing to
    /// save).
    pub(crate) fn registration_in_step(&self, key: &str, terminal: &Terminal) -> bool {
        lock(&self.keymap).get(key) == terminal.registration().as_ref()
    }

    /// Whether the TCP connection is already among the saved ones.
    pub(crate) fn tcp_remembered(&self, target: &TcpTarget) -> bool {
        lock(&self.saved_tcp).contains(&target.key())
    }

    pub(crate) fn remember_tcp(&self, target: &TcpTarget) {
        let key = target.key();
        if lock(&self.saved_tcp).insert(key) {
            self.remember(&SavedConnection::Tcp { host: target.ip.clone(), port: target.port });
        }
    }

    // -- Start ---------------------------------------------------------------------------------

    /// Re-opens the saved connections in the background: TCP sockets (no REGISTER is sent: the
    /// keymap's registration is used as it is), and the COM port, which then re-registers
    /// silently.
    pub(crate) fn restore_connections(self: &Arc<Self>) {
        let saved = match self.state.load_connections() {
            Ok(saved) => saved,
            Err(e) => {
                self.warn(format!("the saved connections could not be read: {e}"));
                return;
            }
        };
        for connection in saved {
            match connection {
                SavedConnection::Tcp { host, port } => {
                    let target = TcpTarget { ip: host, port };
                    lock(&self.saved_tcp).insert(target.key());
                    let terminal = self.tcp_terminal(&target);
                    let weak = Arc::downgrade(self);
                    spawn(format!("nami-restore {}", target.key()), move || {
                        match terminal.connect() {
                            Ok(()) => tracing::info!(terminal = %target.key(), "TCP connection restored"),
                            Err(e) => {
                                tracing::info!(terminal = %target.key(), error = %e, "TCP connection not restored yet; it is opened on the next call")
                            }
                        }
                        if let Some(shared) = weak.upgrade() {
                            shared.kick_recovery();
                        }
                    });
                }
                SavedConnection::Com { device, port_number, settings, vendor_id, product_id } => {
                    // The device may have come back under another name: find it by VID/PID.
                    let device = if std::path::Path::new(&device).exists() || cfg!(windows) || vendor_id == 0 {
                        device
                    } else {
                        list_serial_ports()
                            .into_iter()
                            .find(|p| p.vendor_id == vendor_id && p.product_id == product_id)
                            .map(|p| p.device_id)
                            .unwrap_or(device)
                    };
                    let label = device.clone();
                    let connection = self.open_com(device, label, port_number, settings);
                    tracing::info!(device = %connection.device, "restoring the COM connection");
                    self.start_com(connection, true);
                }
            }
        }
    }

    /// The known TCP connections, with their link state: those connected now or once
    /// (remembered, restored at start). A target that never connected (a typo, a terminal that
    /// was off) is no connection: listing it as "Disconnected" for as long as the service ran
    /// misled the dashboard's readers.
    pub(crate) fn known_tcp(&self) -> Vec<(String, LinkState)> {
        let remembered = lock(&self.saved_tcp).clone();
        lock(&self.tcp)
            .iter()
            .map(|(key, t)| (key.clone(), t.link_state()))
            .filter(|(key, state)| *state == LinkState::Connected || remembered.contains(key))
            .collect()
    }
}
