//! The middleware service, in process: many terminals (TCP terminals keyed by `ip:port`, and the
//! COM connection), one operation per REST endpoint of Nami's Local API Middleware, a durable
//! transaction journal that answers a retry of the same request, persistence of registrations and
//! connections, and automatic recovery of payments whose outcome is unknown.
//!
//! The REST daemon and the C ABI are thin translations of this one service: they hand JSON to
//! [`Service::call`] (or use the typed methods) and return what it gives back.
//!
//! A call goes down once: `json.rs` ([`Service::call`], `dispatch*`) →
//! [`call`] and [`endpoints`] (the router: path → endpoint, body → its typed request, [`api`]) →
//! this file ([`Service`], one typed method per endpoint) → `transact.rs` (the typed core of a
//! transaction: validation, the journal's decision, the exchange; no JSON) → `messages.rs` (the
//! typed result → the REST body). The other endpoints live in `com.rs`, `tcp.rs` and
//! `status.rs`; `targets.rs` finds a request's terminal; `shared.rs` holds the state they share.
//!
//! - [`api`]: the JSON bodies, field for field as the seed documents show them;
//! - [`call`]: the `call(path, json)` router;
//! - `journal.rs`: the transaction journal (SQLite, WAL, `synchronous=FULL`);
//! - `state.rs`: the registration keymap and the saved connections;
//! - [`recovery`]: resolving unknown outcomes with DUPLICATE.
//!
//! See `README.md` in this folder for the decisions taken where the seeds are silent.

pub mod api;
pub mod call;
mod com;
mod config;
mod db;
pub mod endpoints;
mod error;
mod journal;
mod json;
mod messages;
pub mod recovery;
mod shared;
mod state;
mod status;
mod targets;
mod tcp;
mod transact;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use api::{
    ClearTerminalDataRequest, ComConnectRequest, ComConnectResponse, ComPort, ComPortInfo, EntryStateFilter, ErrorBody,
    ExistingConnections, HealthComPort, HealthStatus, JournalList, NextEcrReference, NextEcrReferenceRequest,
    RegisteredTerminal, RegistrationQuery, RegistrationStatus, StatusResponse, TcpConnectionRequest,
    TcpConnectionResponse, TcpTarget, TcpTransactionRequest, TerminalSelector, TransactionParameters,
    TransactionResponse, TransactionsQuery, display_name, masked_fields, parsed_transaction, reply_text,
};
pub use call::CallReply;
pub use config::{CallOptions, CallerCancel, ServiceConfig, ServiceListener, StillWaiting};
pub use db::StoreError;
pub use error::ServiceError;
pub use journal::{EntryState, JournalEntry, JournalError, JournalFilter};
pub use state::SavedConnection;
pub use targets::{COM_KEY, Target};

use crate::error::ValidationError;
use crate::payment_request::PaymentRequest;
use crate::protocol::values::{CashRegisterNo, EcrReference};
use crate::status::StatusCode;
use shared::{Shared, lock};

/// The middleware service. `Send + Sync`; every method takes `&self`, calls for different
/// terminals run in parallel. Dropping it stops recovery and cancels running calls.
pub struct Service {
    shared: Arc<Shared>,
    recovery: Mutex<Option<JoinHandle<()>>>,
}

impl Service {
    /// Opens the state directory (rebuilding unreadable state files, which the health status then
    /// reports), marks requests a killed process left pending as unknown, restores the keymap and
    /// the saved connections, and starts recovery.
    pub fn open(config: ServiceConfig) -> Result<Service, ServiceError> {
        let shared = Shared::open(config)?;
        let recovery = recovery::start(&shared);
        Ok(Service { shared, recovery: Mutex::new(recovery) })
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// Receives every terminal event as JSON (see [`ServiceListener`]).
    pub fn set_listener(&self, listener: Option<ServiceListener>) {
        *self.shared.listener.write().unwrap_or_else(|p| p.into_inner()) = listener;
    }

    // -- COM path ------------------------------------------------------------------------------

    /// `GET /get-com-ports`.
    pub fn get_com_ports(&self) -> Vec<ComPortInfo> {
        self.shared.get_com_ports()
    }

    /// `POST /com/connect`.
    pub fn com_connect(&self, request: &ComConnectRequest) -> ComConnectResponse {
        messages::com_connect_response(self.shared.com_connect(request))
    }

    /// `POST /com/disconnect`: 0 on success, 1 when there was no COM connection.
    pub fn com_disconnect(&self) -> i32 {
        self.shared.com_disconnect()
    }

    /// `POST /performTransactionCOM`.
    pub fn perform_transaction_com(&self, request: &PaymentRequest) -> TransactionResponse {
        self.perform_transaction_com_with(request, &CallOptions::default())
    }

    /// [`Service::perform_transaction_com`] with the caller's options.
    pub fn perform_transaction_com_with(&self, request: &PaymentRequest, options: &CallOptions) -> TransactionResponse {
        let transaction = self.shared.perform(&Target::Com, request, options);
        messages::transaction_response(transaction, self.shared.config.terminal.layout)
    }

    // -- TCP path ------------------------------------------------------------------------------

    /// `POST /performTransactionTCPIP`: connects or reuses the connection, then transacts.
    pub fn perform_transaction_tcp(&self, request: &TcpTransactionRequest) -> TransactionResponse {
        self.perform_transaction_tcp_with(request, &CallOptions::default())
    }

    /// [`Service::perform_transaction_tcp`] with the caller's options.
    pub fn perform_transaction_tcp_with(
        &self,
        request: &TcpTransactionRequest,
        options: &CallOptions,
    ) -> TransactionResponse {
        let target = Target::Tcp(request.tcpipcom_data.clone());
        let transaction = self.shared.perform(&target, &request.payment_request, options);
        messages::transaction_response(transaction, self.shared.config.terminal.layout)
    }

    /// [`Service::perform_transaction_tcp_with`] on tokio: the wait for the terminal holds no
    /// thread (the SDK's tokio driver, [`Terminal::transact_async_for`](crate::Terminal::transact_async_for)); the journal's reads and
    /// writes, which wait for the disk, run on tokio's blocking pool. A thousand terminals waiting
    /// for their cards cost a few kilobytes each, not a thread each.
    ///
    /// The request is boxed on its way in: an async function keeps its arguments in its future
    /// for as long as it runs, and the request (760 bytes) would be held twice by every call
    /// waiting for its card.
    pub fn perform_transaction_tcp_async(
        &self,
        request: TcpTransactionRequest,
        options: CallOptions,
    ) -> impl std::future::Future<Output = TransactionResponse> + Send + '_ {
        self.perform_tcp_boxed(Box::new(request), options)
    }

    async fn perform_tcp_boxed(
        &self,
        request: Box<TcpTransactionRequest>,
        options: CallOptions,
    ) -> TransactionResponse {
        let transaction = self.shared.perform_tcp_async(request, options).await;
        messages::transaction_response(transaction, self.shared.config.terminal.layout)
    }

    /// `POST /tcp-ip/connect`.
    pub fn tcp_connect(&self, target: &TcpTarget) -> TcpConnectionResponse {
        messages::tcp_connect_response(target, self.shared.tcp_connect(target))
    }

    /// `POST /tcp-ip/disconnect`.
    pub fn tcp_disconnect(&self, target: &TcpTarget) -> TcpConnectionResponse {
        self.shared.tcp_disconnect(target);
        messages::tcp_disconnect_response(target)
    }

    // -- Utilities -----------------------------------------------------------------------------

    /// `POST /cancelTransaction`: the named terminal's call, or every running call.
    pub fn cancel_transaction(&self, target: Option<&Target>) -> StatusResponse {
        self.shared.cancel(target)
    }

    /// `GET /getExistingConnections`.
    pub fn existing_connections(&self) -> ExistingConnections {
        self.shared.existing_connections()
    }

    /// `GET /registrationStatus`, for one terminal or (none named) all of them.
    pub fn registration_status(&self, target: Option<&Target>) -> RegistrationStatus {
        self.shared.registration_status(target)
    }

    /// `POST /clearTerminalData`: clears the keymap in memory and on disk (never the journal).
    pub fn clear_terminal_data(&self, request: &ClearTerminalDataRequest) -> StatusResponse {
        self.shared.clear_terminal_data(request)
    }

    /// `GET /api/health-status`.
    pub fn health_status(&self) -> HealthStatus {
        self.shared.health_status()
    }

    /// The journal, newest first.
    pub fn transactions(&self, filter: &JournalFilter) -> Result<JournalList, ServiceError> {
        let attention_after = self.shared.config.recovery_attention_after;
        let mut transactions = self.shared.journal.list(filter, attention_after).map_err(JournalError::new)?;
        for row in &mut transactions {
            row.needs_attention = row.state == EntryState::Unknown && row.recovery_attempts >= attention_after;
        }
        Ok(JournalList { count: transactions.len(), transactions })
    }

    /// A fresh ECR reference for `register` (D7): the cash register number and a persisted
    /// 6-digit counter that never repeats a reference the journal holds.
    pub fn next_ecr_reference(&self, register: &CashRegisterNo) -> Result<EcrReference, ServiceError> {
        self.shared.journal.next_reference(register).map_err(JournalError::new)?.ok_or_else(|| {
            ServiceError::Invalid(ValidationError::other(
                StatusCode::InvalidEcrRef,
                "cashRegisterNo",
                "no unused ECR reference is left for this cash register number",
            ))
        })
    }

    /// Runs one recovery pass now; returns how many unknown outcomes it resolved.
    pub fn recover_now(&self) -> usize {
        self.shared.recover_once()
    }

    /// Stops recovery and cancels running calls (also done on drop).
    pub fn shutdown(&self) {
        self.shared.shut_down();
        if let Some(handle) = lock(&self.recovery).take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
