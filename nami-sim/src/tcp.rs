//! The TCP side: a listener thread that accepts connections, one reader thread per connection.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::link::{Link, TcpReader, serve};
use crate::shared::Shared;

/// Accepts connections until shutdown; the shutdown connects to the listener to wake it.
pub(crate) fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = listener.accept();
        if shared.is_shut_down() {
            break;
        }
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of descriptors and the like: wait a little instead of spinning.
                tracing::warn!(%error, "accept failed");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        tracing::debug!(%peer, "connection");
        // Faults such as byte-by-byte rely on each write leaving at once.
        let _ = stream.set_nodelay(true);
        let Ok(read_half) = stream.try_clone() else { continue };
        let Some(id) = shared.register_stream(&stream) else { continue };
        let link = Arc::new(Link::tcp(format!("tcp {peer}"), stream));
        let conn_shared = Arc::clone(&shared);
        let spawned = shared.spawn("nami-sim-conn", move || {
            serve(&conn_shared, &link, &mut TcpReader { stream: read_half, shared: Arc::clone(&conn_shared) });
            link.detach();
            conn_shared.forget_stream(id);
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start a connection thread");
            shared.forget_stream(id);
        }
    }
    tracing::debug!("listener closed");
}
