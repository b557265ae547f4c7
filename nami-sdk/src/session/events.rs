//! State changes of a terminal session, for cashier screens ("present card", "reconnecting").

use std::sync::Arc;

use serde::Serialize;

/// Something that happened on a terminal's link. Serialises as JSON with an `event` tag, e.g.
/// `{"event":"requestSent","txnType":"PURCHASE","ecrReferenceNo":"12345678000001"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum TerminalEvent {
    Connecting,
    Connected,
    /// A request frame was written.
    RequestSent {
        txn_type: String,
        ecr_reference_no: Option<String>,
    },
    /// The terminal waits for the cardholder (card-present types).
    WaitingForCard,
    /// The terminal is working (other types).
    WaitingForTerminal,
    ResponseReceived {
        response_code: String,
        approved: bool,
    },
    /// REGISTER succeeded (also the silent re-register after a serial reconnect).
    Registered {
        terminal_id: String,
    },
    /// The link is being re-opened (a dropped socket, a serial device that came back).
    Reconnecting,
    /// The serial device vanished (cable pulled).
    CableDisconnected,
    Disconnected {
        reason: String,
    },
}

/// Receives events: the terminal's key (`ip:port` or the port path) and the event. Called on the
/// session's thread; keep it short.
pub type EventListener = Arc<dyn Fn(&str, &TerminalEvent) + Send + Sync>;
