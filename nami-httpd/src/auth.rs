//! Bearer-token authentication for central deployments.
//!
//! The policy (checked by [`policy`] before anything is bound):
//! - a token is configured: every request must carry `Authorization: Bearer <token>`, on any
//!   bind (loopback included: a configured token is never silently ignored);
//! - no token, loopback bind: no authentication (Nami's middleware has none; the POS is local);
//! - no token, non-loopback bind: refused at start, unless the operator passes `--no-auth`.
//!
//! Tokens are compared in constant time (of their SHA-256, so the length leaks nothing either).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;

/// The expected token, kept as its SHA-256.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn new(token: &str) -> Token {
        Token { digest: Sha256::digest(token.as_bytes()).into() }
    }

    /// Whether `candidate` is the token, in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        self.digest.ct_eq(&digest).into()
    }
}

/// Why the daemon refuses to start.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to listen on {listen} without authentication: this address is reachable from other machines. \
     Set a token (NAMI_TOKEN, `token` in the config file, or --token) so that every request must carry \
     `Authorization: Bearer <token>`, or pass --no-auth if the network is protected otherwise, \
     or listen on 127.0.0.1"
)]
pub struct AuthRequired {
    pub listen: std::net::SocketAddr,
}

/// The token to enforce, if any, or the refusal to start.
pub fn policy(listen: std::net::SocketAddr, token: Option<&str>, no_auth: bool) -> Result<Option<Token>, AuthRequired> {
    match token {
        Some(token) if !no_auth => Ok(Some(Token::new(token))),
        _ if no_auth || listen.ip().is_loopback() => Ok(None),
        _ => Err(AuthRequired { listen }),
    }
}

/// The token check of every request but the dashboard's public files (`stack::Checks`): `Err`
/// is the 401 with a JSON body when the daemon has a token and the request does not carry it.
#[expect(clippy::result_large_err, reason = "the error is the HTTP answer, returned at once")]
pub fn check_token(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = state.token() else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, value)| value.trim());
    let message = match presented {
        Some(value) if token.matches(value) => return Ok(()),
        Some(_) => "the bearer token is not the configured one",
        None => "this daemon requires `Authorization: Bearer <token>`",
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        crate::routes::json_body(&nami_sdk::service::ErrorBody::new(nami_sdk::StatusCode::Unauthorized, message)),
    )
        .into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Err(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_bind_needs_a_token_or_an_explicit_no_auth() {
        let public = "0.0.0.0:9099".parse().unwrap();
        let local = "127.0.0.1:9099".parse().unwrap();
        assert!(policy(public, None, false).is_err());
        assert!(policy(public, None, true).unwrap().is_none());
        assert!(policy(public, Some("t"), false).unwrap().is_some());
        assert!(policy(local, None, false).unwrap().is_none());
        assert!(policy(local, Some("t"), false).unwrap().is_some(), "a configured token is enforced");
        let message = policy(public, None, false).unwrap_err().to_string();
        assert!(message.contains("--no-auth") && message.contains("NAMI_TOKEN"), "{message}");
    }

    #[test]
    fn tokens_match_only_exactly() {
        let token = Token::new("s3cret");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cret "));
        assert!(!token.matches(""));
        assert!(!token.matches("S3CRET"));
    }
}
