//! Which browser requests may reach the service: the `Host`, `Origin` and `Sec-Fetch-Site` checks.
//!
//! The threat: the daemon answers on the POS PC without authentication (as Nami's middleware
//! does), and the browser on that PC is on the same machine. Without these checks any web page
//! the cashier opens could `fetch()` a purchase or `/clearTerminalData` (a POST with
//! `Content-Type: text/plain` is sent without a CORS preflight: the page cannot read the answer,
//! but the terminal has already acted), and a page on a name the attacker re-points at 127.0.0.1
//! (DNS rebinding) could read `/transactions`. POS programs (C#, Java, curl, Postman) send no
//! `Origin` and name the daemon in `Host`, so they pass unchanged.
//!
//! The rules ([`Policy::check`]), each a 403 with a JSON body when broken:
//! - `Host` must name the daemon: `localhost`, `127.0.0.1` or `[::1]`, the address the client
//!   connected to, and on a non-loopback bind the machine's host name (and `<name>.local`), each
//!   with the daemon's port; or an entry of `allowed_hosts` (`name`, any port, or `name:port`).
//!   A request without `Host` (HTTP/1.0) passes: browsers always send one.
//! - `Origin`, when present, must be the daemon's own (`http` or `https`, a name above, its port:
//!   the dashboard) or an entry of `allowed_origins`, which also get CORS answers (preflight
//!   included). `Origin: null` (sandboxed frames, `file://` pages) is refused. The dashboard's own
//!   actions ([`SAME_ORIGIN_ONLY`]) take the daemon's own origin only.
//! - Without `Origin`, `Sec-Fetch-Site: cross-site` is refused, except a top-level navigation
//!   (`GET`, `Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document`): a link to the dashboard
//!   opens it, and a page it shows cannot be read by the page that linked to it.
//!
//! The check runs before everything else (after the request log line's span), so a refused
//! request reaches neither the service nor the terminal.

use std::net::{IpAddr, SocketAddr};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, AllowPrivateNetwork, CorsLayer};

/// The dashboard's own state-changing actions: only the daemon's own origin may send them from a
/// browser (an allowed POS origin may drive the terminal, not switch HTTPS or run recovery).
pub const SAME_ORIGIN_ONLY: [&str; 2] = ["/api/tls", "/api/recover"];

/// The address a connection was accepted on (a request extension set by the accept loop): a
/// client that connected to `192.0.2.2` may call the daemon `192.0.2.2`.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// A setting the daemon cannot use.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error(
        "allowed_origins: {0:?} is not an origin such as https://pos.example or http://127.0.0.1:3000 \
         (a scheme, a host, a port if not the default; no path)"
    )]
    Origin(String),
    #[error(
        "allowed_origins: \"*\" would let every web page the cashier opens drive the terminal; list the origin \
         of the browser-based POS instead, e.g. https://pos.example"
    )]
    AnyOrigin,
    #[error("allowed_hosts: {0:?} is not a host name or address, optionally with a port (pos-pc.example:9099)")]
    Host(String),
}

/// A host the daemon answers to beyond its own names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// Lower case, an IPv6 address without brackets.
    name: String,
    /// `None`: any port.
    port: Option<u16>,
}

/// The checks, resolved once at start.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The port the daemon listens on.
    port: u16,
    /// Names it answers to with that port (lower case, IPv6 without brackets).
    own_names: Vec<String>,
    allowed_hosts: Vec<AllowedHost>,
    /// ASCII serialisations (`https://pos.example`, `http://127.0.0.1:3000`), as browsers send them.
    allowed_origins: Vec<String>,
}

/// Why a request was refused (the 403's `statusMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl Policy {
    /// The policy of a daemon listening on `listen` (its actual port), with the operator's
    /// `allowed_origins` and `allowed_hosts`.
    pub fn new(
        listen: SocketAddr,
        allowed_origins: &[String],
        allowed_hosts: &[String],
    ) -> Result<Policy, SettingError> {
        let allowed_origins = parse_each(allowed_origins, parse_allowed_origin)?;
        let allowed_hosts = parse_each(allowed_hosts, parse_allowed_host)?;
        let own_names = if listen.ip().is_loopback() {
            vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()]
        } else {
            // Also the loopback names, the host name (and `.local`) and a specific address.
            crate::tls::machine_names(listen)
        };
        Ok(Policy { port: listen.port(), own_names, allowed_hosts, allowed_origins })
    }

    /// Whether `origin` (an `Origin` header's value) is listed in `allowed_origins`.
    pub fn is_allowed_origin(&self, origin: &str) -> bool {
        canonical_origin(origin).is_some_and(|origin| self.allowed_origins.contains(&origin))
    }

    /// CORS answers for the allowed origins (preflight included); `None` when there are none.
    pub fn cors_layer(&self) -> Option<CorsLayer> {
        if self.allowed_origins.is_empty() {
            return None;
        }
        let policy = self.clone();
        let allow = AllowOrigin::predicate(move |origin: &HeaderValue, _: &Parts| {
            origin.to_str().is_ok_and(|origin| policy.is_allowed_origin(origin))
        });
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods(AllowMethods::list([Method::GET, Method::POST]))
                .allow_headers(AllowHeaders::list([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    header::HeaderName::from_static("idempotency-key"),
                ]))
                // Chrome asks before a public web site's page calls a loopback address.
                .allow_private_network(AllowPrivateNetwork::yes())
                .max_age(std::time::Duration::from_secs(600)),
        )
    }

    /// Whether the request (its method, path, headers, and the address its connection was
    /// accepted on) may go on.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        local: Option<LocalAddr>,
    ) -> Result<(), Refusal> {
        let local_ip = local.map(|LocalAddr(addr)| addr.ip());
        self.check_host(headers, local_ip)?;
        match single(headers, header::ORIGIN)? {
            Some(origin) => self.check_origin(origin, method, path, local_ip),
            None => check_fetch_site(method, headers),
        }
    }

    fn check_host(&self, headers: &HeaderMap, local_ip: Option<IpAddr>) -> Result<(), Refusal> {
        let Some(value) = single(headers, header::HOST)? else {
            return Ok(());
        };
        let refusal = || {
            Refusal(format!(
                "Host {value:?} does not name this daemon: call it as 127.0.0.1:{port} or localhost:{port}, \
                 or add the name to allowed_hosts (--allowed-host, NAMI_ALLOWED_HOSTS)",
                port = self.port
            ))
        };
        let authority: axum::http::uri::Authority = value.parse().map_err(|_| refusal())?;
        if value.contains('@') {
            // `user@127.0.0.1:9099` parses, and names a user no browser would send.
            return Err(refusal());
        }
        let name = normalise_name(authority.host());
        let port = authority.port_u16();
        let own_port = match port {
            Some(port) => port == self.port,
            // The scheme's default port.
            None => self.port == 80 || self.port == 443,
        };
        if own_port && self.is_own_name(&name, local_ip) {
            return Ok(());
        }
        if self.allowed_hosts.iter().any(|host| host.name == name && host.port.is_none_or(|p| Some(p) == port)) {
            return Ok(());
        }
        Err(refusal())
    }

    fn check_origin(&self, origin: &str, method: &Method, path: &str, local_ip: Option<IpAddr>) -> Result<(), Refusal> {
        if origin.trim().eq_ignore_ascii_case("null") {
            return Err(Refusal("Origin null (a sandboxed frame or a local file) may not call this daemon".to_owned()));
        }
        if self.is_own_origin(origin, local_ip) {
            return Ok(());
        }
        if !self.is_allowed_origin(origin) {
            return Err(Refusal(format!(
                "Origin {origin:?} may not call this daemon: a browser-based POS must be listed in allowed_origins \
                 (--allowed-origin, NAMI_ALLOWED_ORIGINS)"
            )));
        }
        if *method != Method::GET
            && *method != Method::HEAD
            && *method != Method::OPTIONS
            && SAME_ORIGIN_ONLY.contains(&path)
        {
            return Err(Refusal(format!("{method} {path} is the dashboard's own action: only its page may send it")));
        }
        Ok(())
    }

    /// `http` or `https`, a name of the daemon's, its port.
    fn is_own_origin(&self, origin: &str, local_ip: Option<IpAddr>) -> bool {
        let Ok(url) = url::Url::parse(origin.trim()) else { return false };
        matches!(url.scheme(), "http" | "https")
            && url.port_or_known_default() == Some(self.port)
            && url.host_str().is_some_and(|host| self.is_own_name(&normalise_name(host), local_ip))
    }

    fn is_own_name(&self, name: &str, local_ip: Option<IpAddr>) -> bool {
        self.own_names.iter().any(|own| own == name)
            // `to_canonical`: on a dual-stack bind an IPv4 client arrives as `::ffff:a.b.c.d`.
            || local_ip.is_some_and(|ip| {
                name.parse::<IpAddr>().is_ok_and(|named| named.to_canonical() == ip.to_canonical())
            })
    }
}

/// Without `Origin`: `Sec-Fetch-Site: cross-site` only for a top-level navigation.
fn check_fetch_site(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    let fetch = |name: &'static str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    if fetch("sec-fetch-site").as_deref() != Some("cross-site") {
        return Ok(());
    }
    let navigation = (*method == Method::GET || *method == Method::HEAD)
        && fetch("sec-fetch-mode").as_deref() == Some("navigate")
        && fetch("sec-fetch-dest").as_deref() == Some("document");
    if navigation {
        return Ok(());
    }
    Err(Refusal("a request from another web site (Sec-Fetch-Site: cross-site) may not call this daemon".to_owned()))
}

/// The header's one value as text; two values, or one that is not text, are refused.
fn single(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, Refusal> {
    let mut values = headers.get_all(&name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Refusal(format!("more than one {name} header")));
    }
    value.to_str().map(Some).map_err(|_| Refusal(format!("the {name} header is not text")))
}

/// Lower case, without IPv6 brackets or a trailing dot.
fn normalise_name(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

/// The origin as browsers serialise it, or `None` when it is not an http(s) origin.
fn canonical_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

/// Each non-blank entry, trimmed, through `parse`.
fn parse_each<T>(list: &[String], parse: fn(&str) -> Result<T, SettingError>) -> Result<Vec<T>, SettingError> {
    list.iter().map(|text| text.trim()).filter(|text| !text.is_empty()).map(parse).collect()
}

fn parse_allowed_origin(text: &str) -> Result<String, SettingError> {
    if text == "*" {
        return Err(SettingError::AnyOrigin);
    }
    let url = url::Url::parse(text).map_err(|_| SettingError::Origin(text.to_owned()))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !bare || !url.username().is_empty() || url.password().is_some() {
        return Err(SettingError::Origin(text.to_owned()));
    }
    canonical_origin(text).ok_or_else(|| SettingError::Origin(text.to_owned()))
}

fn parse_allowed_host(text: &str) -> Result<AllowedHost, SettingError> {
    let invalid = || SettingError::Host(text.to_owned());
    let authority: axum::http::uri::Authority = text.parse().map_err(|_| invalid())?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(invalid());
    }
    Ok(AllowedHost { name: normalise_name(authority.host()), port: authority.port_u16() })
}

/// What a request the policy refuses gets (`stack::Guard`): a logged 403 with a JSON body; the
/// request reaches nothing else.
pub fn refused(Refusal(reason): Refusal) -> Response {
    tracing::warn!(%reason, "refused");
    crate::routes::error_response(StatusCode::FORBIDDEN, nami_sdk::StatusCode::Forbidden, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(listen: &str, origins: &[&str], hosts: &[&str]) -> Policy {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Policy::new(listen.parse().unwrap(), &owned(origins), &owned(hosts)).unwrap()
    }

    fn headers(list: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn post(policy: &Policy, path: &str, list: &[(&'static str, &str)]) -> Result<(), Refusal> {
        policy.check(&Method::POST, path, &headers(list), None)
    }

    #[test]
    fn a_pos_program_passes_on_every_loopback_name_with_the_port() {
        let p = policy("127.0.0.1:9099", &[], &[]);
        for host in ["127.0.0.1:9099", "localhost:9099", "LOCALHOST:9099", "[::1]:9099"] {
            assert_eq!(post(&p, "/performTransactionTCPIP", &[("host", host)]), Ok(()), "{host}");
        }
        assert_eq!(post(&p, "/performTransactionTCPIP", &[]), Ok(()), "HTTP/1.0 without Host");
        for host in [
            "evil.example:9099",
            "localhost:9098",
            "localhost",
            "127.0.0.1.evil.example:9099",
            "vm:9099",
            "evil.example@127.0.0.1:9099",
        ] {
            assert!(post(&p, "/clearTerminalData", &[("host", host)]).is_err(), "{host}");
        }
    }

    #[test]
    fn origins_other_than_the_daemons_own_and_the_allowed_ones_are_refused() {
        let p = policy("127.0.0.1:9099", &["https://pos.example/", "http://127.0.0.1:3000"], &[]);
        let host = ("host", "127.0.0.1:9099");
        for own in ["http://127.0.0.1:9099", "http://localhost:9099", "https://localhost:9099", "http://[::1]:9099"] {
            assert_eq!(post(&p, "/api/tls", &[host, ("origin", own)]), Ok(()), "{own}");
        }
        for allowed in ["https://pos.example", "https://POS.example:443", "http://127.0.0.1:3000"] {
            assert_eq!(post(&p, "/performTransactionTCPIP", &[host, ("origin", allowed)]), Ok(()), "{allowed}");
            assert!(post(&p, "/api/tls", &[host, ("origin", allowed)]).is_err(), "the dashboard's own: {allowed}");
        }
        for refused in
            ["http://evil.example", "null", "http://127.0.0.1:3001", "http://localhost:9098", "file://", "garbage"]
        {
            let refusal = post(&p, "/clearTerminalData", &[host, ("origin", refused)]).unwrap_err();
            assert!(!refusal.0.is_empty(), "{refused}");
        }
        let twice = headers(&[host, ("origin", "http://127.0.0.1:9099"), ("origin", "http://evil.example")]);
        assert!(p.check(&Method::POST, "/clearTerminalData", &twice, None).is_err());
    }

    #[test]
    fn cross_site_without_origin_is_refused_except_a_top_level_navigation() {
        let p = policy("127.0.0.1:9099", &[], &[]);
        let host = ("host", "127.0.0.1:9099");
        assert!(post(&p, "/clearTerminalData", &[host, ("sec-fetch-site", "cross-site")]).is_err());
        let image = headers(&[host, ("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "no-cors")]);
        assert!(p.check(&Method::GET, "/transactions", &image, None).is_err());
        for site in ["same-origin", "none", "same-site"] {
            assert_eq!(post(&p, "/clearTerminalData", &[host, ("sec-fetch-site", site)]), Ok(()), "{site}");
        }
        let link = headers(&[
            host,
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ]);
        assert_eq!(p.check(&Method::GET, "/", &link, None), Ok(()));
        assert!(p.check(&Method::POST, "/clearTerminalData", &link, None).is_err(), "a form post is no link");
    }

    #[test]
    fn a_non_loopback_bind_answers_to_the_address_connected_to_and_the_allowed_hosts() {
        let p = policy("0.0.0.0:9099", &[], &["pos-pc.example", "proxy.example:8443"]);
        let lan = Some(LocalAddr("192.0.2.2:9099".parse().unwrap()));
        let check = |host: &str| p.check(&Method::GET, "/transactions", &headers(&[("host", host)]), lan);
        for host in ["192.0.2.2:9099", "localhost:9099", "pos-pc.example:9099", "pos-pc.example", "proxy.example:8443"]
        {
            assert_eq!(check(host), Ok(()), "{host}");
        }
        for host in ["192.0.2.3:9099", "evil.example:9099", "proxy.example:9099"] {
            assert!(check(host).is_err(), "{host}");
        }
        let dual_stack = Some(LocalAddr("[::ffff:192.0.2.2]:9099".parse().unwrap()));
        let by_address = headers(&[("host", "192.0.2.2:9099")]);
        assert_eq!(p.check(&Method::GET, "/", &by_address, dual_stack), Ok(()), "an IPv4 client of [::]");
        let lan_page = headers(&[("host", "192.0.2.2:9099"), ("origin", "http://192.0.2.2:9099")]);
        assert_eq!(p.check(&Method::POST, "/api/recover", &lan_page, lan), Ok(()), "the dashboard opened by address");
    }

    #[test]
    fn settings_that_are_not_origins_or_hosts_are_refused_naming_them() {
        let origin = |text: &str| Policy::new("127.0.0.1:1".parse().unwrap(), &[text.to_owned()], &[]).map(|_| ());
        assert!(matches!(origin("*"), Err(SettingError::AnyOrigin)));
        for bad in ["pos.example", "https://pos.example/app", "null", "https://user@pos.example", "ftp://x"] {
            let message = origin(bad).unwrap_err().to_string();
            assert!(message.contains("allowed_origins") && message.contains(bad), "{message}");
        }
        let host = |text: &str| Policy::new("127.0.0.1:1".parse().unwrap(), &[], &[text.to_owned()]).map(|_| ());
        for bad in ["http://pos.example", "pos.example/x", "a b"] {
            assert!(host(bad).unwrap_err().to_string().contains("allowed_hosts"), "{bad}");
        }
    }
}
