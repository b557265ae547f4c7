//! Serving: bind, open the service (and the embedded simulator), accept connections as HTTP or
//! HTTPS (the scheme of the moment, see `tls.rs`), and stop gracefully.
//!
//! Shutdown: the listener closes at once; every connection finishes the request it is serving
//! and closes; exchanges still running after the grace period are cancelled through the service
//! (which records them in the journal: a request that may have reached the terminal stays
//! `unknown` until recovery resolves it at the next start); then the simulator stops.

use nami_sdk::StatusCode as Code;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use nami_sdk::{Service, ServiceConfig, ServiceError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::tls::{TlsError, TlsSwitch};
use crate::{App, AppParts, AppState, app, auth, origin, sim, tls};

/// How long a client has to send a request's headers, and to finish a TLS handshake.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    AuthRequired(#[from] auth::AuthRequired),
    #[error("cannot listen on {addr}: {source} (is another nami-httpd, or Nami's middleware, running there?)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Origins(#[from] crate::origin::SettingError),
    #[error("cannot open the middleware service: {0}")]
    Service(#[from] ServiceError),
    #[error("HTTPS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot start the embedded simulator on {addr}: {source}")]
    Simulator { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A running daemon.
pub struct Server {
    local_addr: SocketAddr,
    state: AppState,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    /// Ends (yields `None`) once every connection task has ended.
    connections: mpsc::Receiver<()>,
    grace: Duration,
}

impl Server {
    /// Checks the auth policy, binds, starts the simulator (if configured), opens the service,
    /// loads the certificate if HTTPS is on, and starts accepting. Returns once the socket
    /// is bound and served.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let token = auth::policy(config.listen, config.token.as_deref(), config.no_auth)?;
        // Checked before binding; the port is filled in once bound (port 0 takes a free one).
        origin::Policy::new(config.listen, &config.allowed_origins, &config.allowed_hosts)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        // The simulator first: the service re-opens saved connections as it opens, and a saved
        // connection to the embedded simulator should find it there.
        let simulator = match &config.simulator {
            Some(settings) => {
                let settings = settings.clone();
                let started = blocking(move || sim::Embedded::start(&settings)).await?;
                let simulator = started.map_err(|source| StartError::Simulator {
                    addr: config.simulator.as_ref().map(|s| s.listen).unwrap_or(local_addr),
                    source,
                })?;
                Some(Arc::new(simulator))
            }
            None => None,
        };
        let mut service_config = ServiceConfig::new(&config.state_dir);
        service_config.http_port = local_addr.port();
        service_config.version = env!("CARGO_PKG_VERSION").to_owned();
        service_config.terminal.card_present_timeout = config.timeouts.card_present;
        service_config.terminal.settlement_timeout = config.timeouts.settlement;
        service_config.terminal.admin_timeout = config.timeouts.admin;
        config.service.apply(&mut service_config)?;
        let opened = blocking(move || Service::open(service_config)).await?;
        let service = match opened {
            Ok(service) => Arc::new(service),
            Err(error) => {
                if let Some(simulator) = &simulator {
                    simulator.shutdown();
                }
                return Err(error.into());
            }
        };
        let (tls_settings, state_dir) = (config.tls.clone(), config.state_dir.clone());
        let names = tls::machine_names(local_addr);
        let switch = match blocking(move || TlsSwitch::start(tls_settings, &state_dir, names)).await? {
            Ok(switch) => Arc::new(switch),
            Err(error) => {
                service.shutdown();
                if let Some(simulator) = &simulator {
                    simulator.shutdown();
                }
                return Err(error.into());
            }
        };
        let state = AppState::new(AppParts {
            service,
            tls: Arc::clone(&switch),
            token,
            port: local_addr.port(),
            simulator,
            origins: origin::Policy::new(local_addr, &config.allowed_origins, &config.allowed_hosts)?,
        });
        let router = app(state.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (guard, connections) = mpsc::channel::<()>(1);
        let accept = tokio::spawn(accept_loop(listener, router, switch, shutdown_rx, guard));
        Ok(Server { local_addr, state, shutdown, accept, connections, grace: config.shutdown_grace })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:9099` or `https://…`, as of now.
    pub fn url(&self) -> String {
        format!("{}://{}", self.state.tls().scheme(), self.local_addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting, lets connections finish their requests (for the grace period), cancels
    /// what still runs, and stops the service and the simulator.
    pub async fn shutdown(mut self) {
        // The dashboard's event streams never end by themselves: end them first.
        self.state.dashboard().close();
        let _ = self.shutdown.send(true);
        let _ = (&mut self.accept).await;
        let finished = tokio::time::timeout(self.grace, self.connections.recv()).await.is_ok();
        if !finished {
            tracing::warn!("exchanges still running after the grace period: cancelling them");
        }
        let service = Arc::clone(self.state.service());
        let _ = tokio::task::spawn_blocking(move || service.shutdown()).await;
        if !finished {
            // The cancelled calls answer their clients; give them a moment to be written.
            let _ = tokio::time::timeout(Duration::from_secs(3), self.connections.recv()).await;
        }
        if let Some(simulator) = self.state.simulator() {
            let _ = tokio::task::spawn_blocking(move || simulator.shutdown()).await;
        }
        tracing::info!("stopped");
    }
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, StartError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StartError::Internal(e.to_string()))
}

/// Starts the daemon, prints where it listens (the readiness line, last), runs until `signal`
/// completes, then shuts down gracefully.
pub async fn serve(config: Config, signal: impl Future<Output = ()>) -> Result<(), StartError> {
    let server = Server::start(config).await?;
    if let Some(simulator) = server.state().simulator() {
        let summary = simulator.summary();
        println!("simulator listening on {}", summary.listen);
        if let Some(pty) = &summary.pty {
            println!("simulator pty: {pty}");
        }
    }
    println!("listening on {}", server.url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    signal.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    router: App,
    switch: Arc<TlsSwitch>,
    mut shutdown: watch::Receiver<bool>,
    guard: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            router: router.clone(),
            shutdown: shutdown.clone(),
            scheme: switch.subscribe(),
            _guard: guard.clone(),
        };
        let acceptor = switch.acceptor();
        tokio::spawn(connection.run(stream, remote, acceptor));
    }
    tracing::debug!("listener closed");
}

struct Connection<S = App> {
    router: S,
    shutdown: watch::Receiver<bool>,
    /// The scheme of the moment (true: HTTPS); a change closes this connection once idle.
    scheme: watch::Receiver<bool>,
    /// Held until the connection ends (see `Server::connections`).
    _guard: mpsc::Sender<()>,
}

impl<S, B> Connection<S>
where
    S: tower::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// The task of one connection. Its future is allocated, and copied whole, for every
    /// connection, idle keep-alive ones included, and is as large as its largest state: the HTTPS
    /// path (the TLS session, the handshake, the plain-HTTP answer's 8 KiB buffer) is boxed, so
    /// that a plain HTTP connection's task holds the HTTP connection alone: 1.3 KB instead of
    /// 10 KB (1,000 idle keep-alive connections: 12.7 MB instead of 21.3 MB; BENCHMARKS.md).
    async fn run(self, stream: TcpStream, remote: SocketAddr, acceptor: Option<tokio_rustls::TlsAcceptor>) {
        let Ok(local) = stream.local_addr() else { return };
        let local = origin::LocalAddr(local);
        match acceptor {
            None => self.serve(stream, false, local).await,
            Some(acceptor) => Box::pin(self.run_tls(stream, remote, acceptor, local)).await,
        }
    }

    async fn run_tls(
        self,
        stream: TcpStream,
        remote: SocketAddr,
        acceptor: tokio_rustls::TlsAcceptor,
        local: origin::LocalAddr,
    ) {
        // A plain HTTP request on the HTTPS port gets a clear answer instead of a failed handshake.
        let mut first = [0u8; 1];
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] != 0x16 => return plain_on_tls_port(stream).await,
            Ok(Ok(1)) => {}
            _ => return,
        }
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => self.serve(tls, true, local).await,
            Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
        }
    }

    async fn serve<I>(mut self, io: I, https: bool, local: origin::LocalAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Each request learns the address its client connected to (the `Host` check).
        let router = tower::util::MapRequest::new(self.router.clone(), move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(local);
            request
        });
        let service = TowerToHyperService::new(router);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut closing = *self.shutdown.borrow() || *self.scheme.borrow() != https;
        if closing {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    break;
                }
                changed = self.shutdown.changed(), if !closing => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
                changed = self.scheme.changed(), if !closing => {
                    if changed.is_err() || *self.scheme.borrow() != https {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

async fn plain_on_tls_port(mut stream: TcpStream) {
    // Read the request's head first: closing with unread bytes would reset the connection and the
    // client might never see the answer.
    let mut head = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut head)).await;
    let body = serde_json::json!({
        "statusCode": Code::Error,
        "statusMessage": "This port serves HTTPS: use https:// (see tlsFingerprintSha256 to pin the certificate)"
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(response.as_bytes())).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain HTTP connection's task stays small (`Connection::run`): with the HTTPS path
    /// inline, the plain-HTTP answer's 8 KiB buffer alone made every connection's task as large.
    #[tokio::test]
    async fn a_plain_connection_task_does_not_carry_the_https_states() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, remote) = listener.accept().await.unwrap();
        let (_shutdown, shutdown) = watch::channel(false);
        let (_scheme, scheme) = watch::channel(false);
        let (guard, _connections) = mpsc::channel(1);
        let connection = Connection { router: axum::Router::new(), shutdown, scheme, _guard: guard };
        let task = connection.run(stream, remote, None);
        let size = std::mem::size_of_val(&task);
        // 1.3 KB in release and debug builds; 10.2 KB (debug) with the HTTPS path inline.
        assert!(size < 4096, "a connection's task is {size} bytes");
    }
}
