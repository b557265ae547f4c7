//! The TCP endpoints: `/tcp-ip/connect`, `/tcp-ip/disconnect`, `/getExistingConnections`.

use std::sync::Arc;

use super::api::{ExistingConnections, TcpConnectionResponse, TcpTarget};
use super::messages::link_text;
use super::shared::{Shared, lock};
use crate::session::error::TerminalError;

impl Shared {
    pub(crate) fn tcp_connect(self: &Arc<Self>, target: &TcpTarget) -> TcpConnectionResponse {
        let terminal = self.tcp_terminal(target);
        let (is_connected, status) = match terminal.connect() {
            Ok(()) => ("Connected".to_owned(), true),
            // Busy means connected and working.
            Err(TerminalError::Busy { .. }) => ("Connected".to_owned(), true),
            Err(e) => (format!("{}: {}", e.status_code(), e.message()), false),
        };
        if status {
            self.remember_tcp(target);
        }
        TcpConnectionResponse {
            ip: target.ip.clone(),
            port_number: target.port,
            is_connected,
            connection_status: status,
        }
    }

    pub(crate) fn tcp_disconnect(&self, target: &TcpTarget) -> TcpConnectionResponse {
        let key = target.key();
        let terminal = lock(&self.tcp).remove(&key);
        if let Some(terminal) = terminal {
            terminal.disconnect();
        }
        lock(&self.saved_tcp).remove(&key);
        if let Err(e) = self.state.remove_connection(&key) {
            self.warn(format!("connection {key} could not be forgotten: {e}"));
        }
        TcpConnectionResponse {
            ip: target.ip.clone(),
            port_number: target.port,
            is_connected: "Connection Disconnected".into(),
            connection_status: false,
        }
    }

    pub(crate) fn existing_connections(&self) -> ExistingConnections {
        self.known_tcp().into_iter().map(|(key, state)| (key, link_text(state).to_owned())).collect()
    }
}
