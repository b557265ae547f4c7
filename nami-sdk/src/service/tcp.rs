//! The TCP endpoints: `/tcp-ip/connect`, `/tcp-ip/disconnect`, `/getExistingConnections`.

use std::sync::Arc;

use super::api::{ExistingConnections, TcpTarget};
use super::messages::link_text;
use super::shared::{Shared, lock};
use crate::session::error::TerminalError;

impl Shared {
    /// Opens (or finds open) the terminal's link; a link that works is remembered. A terminal
    /// busy with a call is connected and working.
    pub(crate) fn tcp_connect(self: &Arc<Self>, target: &TcpTarget) -> Result<(), TerminalError> {
        let terminal = self.tcp_terminal(target);
        let connected = match terminal.connect() {
            Err(TerminalError::Busy { .. }) => Ok(()),
            other => other,
        };
        if connected.is_ok() {
            self.remember_tcp(target);
        }
        connected
    }

    /// Closes the terminal's link and forgets the saved connection (idempotent).
    pub(crate) fn tcp_disconnect(&self, target: &TcpTarget) {
        let key = target.key();
        let terminal = lock(&self.tcp).remove(&key);
        if let Some(terminal) = terminal {
            terminal.disconnect();
        }
        lock(&self.saved_tcp).remove(&key);
        if let Err(e) = self.state.remove_connection(&key) {
            self.warn(format!("connection {key} could not be forgotten: {e}"));
        }
    }

    pub(crate) fn existing_connections(&self) -> ExistingConnections {
        self.known_tcp().into_iter().map(|(key, state)| (key, link_text(state).to_owned())).collect()
    }
}
