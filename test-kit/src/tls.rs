//! HTTPS with a pinned certificate: a client that verifies the daemon by its certificate's
//! SHA-256 fingerprint (what `/api/tls` and the banner print), with no CA and no host name.

use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::Client;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

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
