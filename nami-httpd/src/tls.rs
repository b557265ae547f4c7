//! HTTPS on the API's own port: the certificate (the operator's, or a self-signed one generated
//! once and kept in `<state_dir>/tls/`), its SHA-256 fingerprint for pinning, the persisted
//! on/off switch (`POST /api/tls`, the dashboard's "Switch to HTTPS"), and the acceptor the
//! accept loop asks for on every new connection.
//!
//! Switching never closes the listener: connections accepted after the switch speak the new
//! scheme; connections of the old scheme finish the request they are serving (the switch's own
//! response included) and are then closed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use utoipa::ToSchema;

use crate::config::TlsSettings;

/// Where the switch is remembered across restarts.
pub const SETTINGS_FILE: &str = "httpd-settings.json";
/// The generated certificate and key, inside the state directory.
pub const CERT_FILE: &str = "tls/cert.pem";
pub const KEY_FILE: &str = "tls/key.pem";

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("certificate: {0}")]
    Certificate(String),
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.to_owned(), reason: error.to_string() }
}

/// A loaded certificate with its server configuration.
pub struct TlsMaterial {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the leaf certificate (DER), uppercase hex pairs joined by colons, as
    /// `openssl x509 -fingerprint -sha256` and browsers show it.
    pub fingerprint: String,
    pub cert_path: PathBuf,
    /// True when the certificate is the generated self-signed one.
    pub self_signed: bool,
}

/// `AB:CD:…` — the SHA-256 of `der`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The names the generated certificate is valid for: localhost, the loopback addresses, this
/// machine's host name, and the listen address when it is a specific one.
pub fn machine_names(listen: std::net::SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Some(host) = host_name() {
        names.push(host.clone());
        if !host.contains('.') {
            names.push(format!("{host}.local"));
        }
    }
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    let mut unique = Vec::new();
    for name in names {
        let name = name.to_ascii_lowercase();
        if !name.is_empty() && !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique
}

fn host_name() -> Option<String> {
    #[cfg(unix)]
    {
        nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).filter(|h| !h.is_empty())
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").ok().filter(|h| !h.is_empty())
    }
}

/// Loads the operator's certificate and key, or the generated pair (generating it the first
/// time).
pub fn load_material(settings: &TlsSettings, state_dir: &Path, names: &[String]) -> Result<TlsMaterial, TlsError> {
    let (cert_path, key_path, self_signed) = match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
        _ => {
            let cert = state_dir.join(CERT_FILE);
            let key = state_dir.join(KEY_FILE);
            if !(cert.is_file() && key.is_file()) {
                generate(&cert, &key, names)?;
            }
            (cert, key, true)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| file_error(&cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&cert_path, e))?;
    let Some(leaf) = certs.first() else {
        return Err(file_error(&cert_path, "no certificate in the file (PEM expected)"));
    };
    let fingerprint = fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| file_error(&key_path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Certificate(format!("{} with {}: {e}", cert_path.display(), key_path.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial { acceptor: TlsAcceptor::from(Arc::new(config)), fingerprint, cert_path, self_signed })
}

/// A self-signed certificate (ECDSA P-256) for `names`, written with mode 0600.
fn generate(cert_path: &Path, key_path: &Path, names: &[String]) -> Result<(), TlsError> {
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| TlsError::Certificate(e.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "Nami Local API Middleware");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "nami-httpd (self-signed)");
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Certificate(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| TlsError::Certificate(e.to_string()))?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    }
    write_private(key_path, key.serialize_pem().as_bytes())?;
    write_private(cert_path, cert.pem().as_bytes())?;
    tracing::info!(cert = %cert_path.display(), names = ?names, "generated a self-signed certificate");
    Ok(())
}

/// Writes a file readable by its owner only (0600 on Unix), replacing it atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    let temp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temp).map_err(|e| file_error(&temp, e))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(|e| file_error(&temp, e))?;
    drop(file);
    std::fs::rename(&temp, path).map_err(|e| file_error(path, e))
}

/// The switch remembered by `POST /api/tls`, if any.
pub fn read_persisted(state_dir: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(state_dir.join(SETTINGS_FILE)).ok()?;
    serde_json::from_str::<Value>(&text).ok()?.get("tlsEnabled")?.as_bool()
}

fn write_persisted(state_dir: &Path, enabled: bool) -> Result<(), TlsError> {
    let path = state_dir.join(SETTINGS_FILE);
    let mut settings = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    settings["tlsEnabled"] = json!(enabled);
    write_private(&path, format!("{settings:#}\n").as_bytes())
}

/// The HTTPS state of a running daemon.
pub struct TlsSwitch {
    settings: TlsSettings,
    state_dir: PathBuf,
    names: Vec<String>,
    /// The certificate, once loaded (kept when switching back to HTTP, so the fingerprint stays
    /// known).
    material: Mutex<Option<Arc<TlsMaterial>>>,
    /// `Some` while HTTPS is on.
    active: RwLock<Option<Arc<TlsMaterial>>>,
    /// Tells connections the scheme changed (true: HTTPS).
    scheme: watch::Sender<bool>,
}

impl TlsSwitch {
    /// Resolves whether HTTPS is on at start (flag/env, then the persisted switch, then the file)
    /// and loads the certificate if it is.
    pub fn start(settings: TlsSettings, state_dir: &Path, names: Vec<String>) -> Result<TlsSwitch, TlsError> {
        let enabled = settings.forced.or_else(|| read_persisted(state_dir)).or(settings.file_enabled).unwrap_or(false);
        let switch = TlsSwitch {
            settings,
            state_dir: state_dir.to_owned(),
            names,
            material: Mutex::new(None),
            active: RwLock::new(None),
            scheme: watch::channel(false).0,
        };
        if enabled {
            let material = switch.material()?;
            *switch.active.write().unwrap_or_else(|p| p.into_inner()) = Some(material);
            switch.scheme.send_replace(true);
        }
        Ok(switch)
    }

    fn material(&self) -> Result<Arc<TlsMaterial>, TlsError> {
        let mut slot = self.material.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(material) = slot.as_ref() {
            return Ok(Arc::clone(material));
        }
        let material = Arc::new(load_material(&self.settings, &self.state_dir, &self.names)?);
        *slot = Some(Arc::clone(&material));
        Ok(material)
    }

    /// The acceptor for a new connection: `None` while serving plain HTTP.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.active.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|m| m.acceptor.clone())
    }

    pub fn is_https(&self) -> bool {
        self.active.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    pub fn scheme(&self) -> &'static str {
        if self.is_https() { "https" } else { "http" }
    }

    /// The certificate's fingerprint, once a certificate has been loaded.
    pub fn fingerprint(&self) -> Option<String> {
        self.material.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|m| m.fingerprint.clone())
    }

    fn certificate(&self) -> Option<(PathBuf, bool)> {
        self.material.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|m| (m.cert_path.clone(), m.self_signed))
    }

    /// A receiver that sees every change of scheme (true: HTTPS).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.scheme.subscribe()
    }

    /// Turns HTTPS on or off for new connections and remembers the choice. Blocking (file I/O,
    /// perhaps a key generation). A flag or `NAMI_TLS` still wins at the next start.
    pub fn set(&self, enabled: bool) -> Result<(), TlsError> {
        let material = if enabled { Some(self.material()?) } else { None };
        write_persisted(&self.state_dir, enabled)?;
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = material;
        self.scheme.send_replace(enabled);
        tracing::info!(scheme = self.scheme(), "switched the API's scheme");
        Ok(())
    }

    /// The body of `GET /api/tls` and `POST /api/tls`.
    pub fn status(&self, port: u16) -> TlsStatus {
        let https = self.is_https();
        let scheme = if https { "https" } else { "http" };
        let (certificate, self_signed) = match self.certificate() {
            Some((path, self_signed)) => (Some(path.display().to_string()), Some(self_signed)),
            None => (None, None),
        };
        TlsStatus {
            enabled: https,
            scheme,
            port,
            url: format!("{scheme}://localhost:{port}"),
            tls_fingerprint_sha256: self.fingerprint(),
            certificate,
            self_signed,
            forced_by_config: self.settings.forced,
            status: None,
            message: None,
        }
    }
}

// `GET /api/tls`; the answer of `POST` adds `status` and `message`.
/// The HTTPS state.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsStatus {
    /// Whether the API is served over HTTPS now.
    pub enabled: bool,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub port: u16,
    /// `https://localhost:9099`.
    pub url: String,
    /// The certificate's SHA-256 fingerprint (`AB:CD:…`); null until a certificate is loaded.
    #[schema(required = true)]
    pub tls_fingerprint_sha256: Option<String>,
    /// The certificate file (PEM).
    #[schema(required = true)]
    pub certificate: Option<String>,
    /// Whether it is the generated self-signed certificate.
    #[schema(required = true)]
    pub self_signed: Option<bool>,
    /// Set when a flag or `NAMI_TLS` decides the scheme at the next start.
    #[schema(required = true)]
    pub forced_by_config: Option<bool>,
    /// `Success` (answers of `POST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What to do now (answers of `POST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_certificate_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let names = machine_names("127.0.0.1:9099".parse().unwrap());
        let first = load_material(&TlsSettings::default(), dir.path(), &names).unwrap();
        let again = load_material(&TlsSettings::default(), dir.path(), &names).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "generated once, then reused");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in [CERT_FILE, KEY_FILE] {
                let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
        }
    }

    #[test]
    fn the_switch_is_remembered_and_a_flag_wins_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let switch = TlsSwitch::start(TlsSettings::default(), dir.path(), vec!["localhost".into()]).unwrap();
        assert_eq!(switch.scheme(), "http");
        switch.set(true).unwrap();
        assert!(switch.acceptor().is_some() && switch.fingerprint().is_some());
        assert_eq!(read_persisted(dir.path()), Some(true));
        let restarted = TlsSwitch::start(TlsSettings::default(), dir.path(), vec![]).unwrap();
        assert_eq!(restarted.scheme(), "https");
        let forced = TlsSettings { forced: Some(false), ..TlsSettings::default() };
        assert_eq!(TlsSwitch::start(forced, dir.path(), vec![]).unwrap().scheme(), "http");
    }

    #[test]
    fn fingerprints_are_colon_separated_uppercase_hex() {
        assert!(fingerprint(b"x").starts_with("2D:71:16:42:"));
    }
}
