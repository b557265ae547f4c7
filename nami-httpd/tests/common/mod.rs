//! Helpers of the daemon's tests: the real `nami-httpd` binary started with a temporary state
//! directory on a free port, a real HTTP client (reqwest, rustls), and an HTTPS client that
//! verifies the server by pinning its certificate's SHA-256 fingerprint.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A running `nami-httpd`. SIGTERM and wait on drop.
pub struct Daemon {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    pub port: u16,
    /// Lines the daemon printed on stdout before it was ready.
    pub banner: Vec<String>,
    pub state_dir: PathBuf,
    log: PathBuf,
}

/// The binary's path.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_nami-httpd")
}

/// A command for the binary with a clean environment (no `NAMI_*` from the caller's shell) and
/// no config file from the user's data directory.
pub fn command(state_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NAMI_") {
            command.env_remove(name);
        }
    }
    let empty_config = state_dir.join("empty.toml");
    if !empty_config.exists() {
        std::fs::create_dir_all(state_dir).unwrap();
        std::fs::write(&empty_config, "").unwrap();
    }
    command
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--config")
        .arg(&empty_config)
        .args(args)
        .env("RUST_LOG", "info,nami_httpd=debug")
        .stdin(Stdio::null());
    command
}

impl Daemon {
    /// Starts the binary on 127.0.0.1 (a free port) unless `args` has `--listen`, and waits for
    /// `listening on …`.
    pub fn start(state_dir: &Path, args: &[&str]) -> Daemon {
        let mut all: Vec<&str> = Vec::new();
        if !args.contains(&"--listen") {
            all.extend(["--listen", "127.0.0.1:0"]);
        }
        all.extend_from_slice(args);
        Daemon::start_command(state_dir, command(state_dir, &all))
    }

    /// Starts this command (from [`command`]) and waits for `listening on …`.
    pub fn start_command(state_dir: &Path, mut command: Command) -> Daemon {
        let log = state_dir.join(format!("daemon-{}.log", unique()));
        std::fs::create_dir_all(state_dir).unwrap();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("nami-httpd starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        let url = url.trim().to_owned();
                        let port = url.rsplit(':').next().unwrap().parse().unwrap();
                        banner.push(line.clone());
                        return Daemon { child, url, port, banner, state_dir: state_dir.to_owned(), log };
                    }
                    banner.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "nami-httpd did not print `listening on` (printed {banner:?}); log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn at(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn https_at(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The banner line that starts with `prefix`, without it.
    pub fn banner_value(&self, prefix: &str) -> Option<String> {
        self.banner.iter().find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_owned()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit (at most `within`).
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        signal_term(&self.child);
        wait_exit(&mut self.child, within).unwrap_or_else(|| {
            let _ = self.child.kill();
            panic!("nami-httpd did not exit within {within:?} of SIGTERM; log:\n{}", self.log())
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_term(&self.child);
            if wait_exit(&mut self.child, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

pub fn signal_term(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
}

pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A plain HTTP client (no proxy: the loopback address must be reached directly).
pub fn client() -> Client {
    // reqwest is built without a default crypto provider: this process uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

/// An answer: status and JSON body (panics if the body is not JSON: every answer must be).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

pub fn answer(response: reqwest::blocking::Response) -> Answer {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {status} {text:?}"));
    assert!(content_type.starts_with("application/json"), "content type {content_type:?} of {text}");
    Answer { status, body, content_type }
}

pub fn get(client: &Client, url: &str) -> Answer {
    answer(client.get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}")))
}

pub fn post(client: &Client, url: &str, body: &Value) -> Answer {
    let text = if body.is_null() { String::new() } else { body.to_string() };
    post_text(client, url, text)
}

pub fn post_text(client: &Client, url: &str, body: impl Into<String>) -> Answer {
    answer(
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}")),
    )
}

pub fn tcp_body(port: u16, payment: Value) -> Value {
    json!({"tcpipcomData": {"ip": "127.0.0.1", "port": port}, "paymentRequest": payment})
}

/// Polls `condition` every 20 ms until it holds or `within` passes.
pub fn wait_for(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh temporary state directory.
pub fn state_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("nami-httpd-test-").tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// HTTPS with a pinned certificate

/// Accepts exactly the certificate whose SHA-256 (of its DER) is the pinned fingerprint, and
/// checks the handshake signatures with it: no CA, no host name, no "verification off".
#[derive(Debug)]
pub struct PinnedCertificate {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

/// `AB:CD:…` or `abcd…` → lowercase hex without separators.
fn normalise(fingerprint: &str) -> String {
    fingerprint.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase()
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = hex::encode(Sha256::digest(end_entity.as_ref()));
        if seen == normalise(&self.fingerprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!("certificate fingerprint {seen} is not the pinned one")))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// An HTTPS client that trusts only the certificate with this fingerprint.
pub fn pinned_client(fingerprint: &str) -> Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCertificate { fingerprint: fingerprint.to_owned(), provider: provider.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Client::builder().no_proxy().timeout(Duration::from_secs(30)).use_preconfigured_tls(config).build().unwrap()
}
