//! The JSON entry points of [`Service`]: a REST path and body in, JSON out. They hand the call
//! to the router (`call.rs`), which parses the body and calls the typed method of the endpoint.

use std::sync::Arc;

use super::Service;
use super::call::{self, CallReply};
use super::config::CallOptions;

impl Service {
    /// Routes a REST call (see [`call`]): `path` like `/performTransactionTCPIP` (a query string
    /// is merged into the body), `body` the JSON text (empty for none). Always returns JSON.
    pub fn call(&self, path: &str, body: &str) -> String {
        // Straight into a buffer: `Value`'s `Display` writes through `fmt` piece by piece.
        let reply = self.dispatch(path, body).body;
        serde_json::to_string(&reply).unwrap_or_else(|_| reply.to_string())
    }

    /// [`Service::call`] with the HTTP status the daemon should answer with.
    pub fn dispatch(&self, path: &str, body: &str) -> CallReply {
        call::dispatch(self, path, body, &CallOptions::default())
    }

    /// [`Service::dispatch`] with the caller's options (the daemon: the `Idempotency-Key` header,
    /// and whether the HTTP client is still connected).
    pub fn dispatch_with(&self, path: &str, body: &str, options: &CallOptions) -> CallReply {
        call::dispatch(self, path, body, options)
    }

    /// [`Service::dispatch_with`] on tokio, for a daemon: a TCP transaction's wait for its
    /// terminal holds no thread; the other calls run on tokio's blocking pool.
    pub async fn dispatch_async(self: Arc<Self>, path: String, body: String, options: CallOptions) -> CallReply {
        call::dispatch_async(self, path, body, options).await
    }
}
