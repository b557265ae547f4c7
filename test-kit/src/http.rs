//! A real HTTP client for the daemon (and any JSON server of the tests, such as nami-sim's
//! control API): by full URL ([`get`], [`post`], [`post_text`] with a [`client`]) or by path of
//! one daemon ([`Http`], which can send a bearer token). Every answer must be JSON with a JSON
//! content type: the daemon promises it for errors too.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

/// A status and a JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

/// A plain HTTP client (no proxy: the loopback address must be reached directly).
pub fn client() -> Client {
    client_with_timeout(Duration::from_secs(30))
}

fn client_with_timeout(timeout: Duration) -> Client {
    // reqwest is built without a default crypto provider: this process uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().no_proxy().timeout(timeout).build().expect("HTTP client")
}

/// The response as an [`Answer`], or why it is not one (a body that is not JSON, another
/// content type).
pub fn try_answer(response: Response) -> Result<Answer, String> {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().map_err(|e| format!("reading the body: {e}"))?;
    let body = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {status} {text:?}"))?;
    if !content_type.starts_with("application/json") {
        return Err(format!("content type {content_type:?} of {status} {text}"));
    }
    Ok(Answer { status, body, content_type })
}

/// The response as an [`Answer`]; panics if it is not JSON.
pub fn answer(response: Response) -> Answer {
    try_answer(response).unwrap_or_else(|e| panic!("{e}"))
}

pub fn get(client: &Client, url: &str) -> Answer {
    answer(client.get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}")))
}

/// POSTs `body` as JSON (nothing for `Value::Null`).
pub fn post(client: &Client, url: &str, body: &Value) -> Answer {
    post_text(client, url, json_text(body))
}

pub fn post_text(client: &Client, url: &str, body: impl Into<String>) -> Answer {
    answer(json_post(client.post(url), body.into()).send().unwrap_or_else(|e| panic!("POST {url}: {e}")))
}

fn json_text(body: &Value) -> String {
    if body.is_null() { String::new() } else { body.to_string() }
}

fn json_post(request: RequestBuilder, body: String) -> RequestBuilder {
    request.header("content-type", "application/json").body(body)
}

/// The body of a `/performTransactionTCPIP` to the terminal at 127.0.0.1:`port`.
pub fn tcp_body(port: u16, payment: Value) -> Value {
    json!({"tcpipcomData": {"ip": "127.0.0.1", "port": port}, "paymentRequest": payment})
}

/// A blocking HTTP client for one daemon (no proxy: loopback is reached directly).
#[derive(Clone)]
pub struct Http {
    pub base: String,
    pub client: Client,
    token: Option<String>,
}

impl Http {
    pub fn new(base: &str, timeout: Duration) -> Http {
        Http { base: base.trim_end_matches('/').to_owned(), client: client_with_timeout(timeout), token: None }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: &str) -> Http {
        self.token = Some(token.to_owned());
        self
    }

    fn send(&self, request: RequestBuilder) -> Result<Answer, String> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        try_answer(request.send().map_err(|e| format!("{e:?}"))?)
    }

    pub fn try_get(&self, path: &str) -> Result<Answer, String> {
        self.send(self.client.get(format!("{}{path}", self.base)))
    }

    pub fn try_post_text(&self, path: &str, body: String) -> Result<Answer, String> {
        self.send(json_post(self.client.post(format!("{}{path}", self.base)), body))
    }

    pub fn try_post(&self, path: &str, body: &Value) -> Result<Answer, String> {
        self.try_post_text(path, json_text(body))
    }

    pub fn get(&self, path: &str) -> Answer {
        self.try_get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.try_post(path, body).unwrap_or_else(|e| panic!("POST {path} {body}: {e}"))
    }

    /// `POST /performTransactionTCPIP` to the terminal at 127.0.0.1:`port`; the body of the answer.
    pub fn tcp(&self, port: u16, payment: Value) -> Value {
        self.post("/performTransactionTCPIP", &tcp_body(port, payment)).body
    }

    /// `POST /performTransactionCOM`; the body of the answer.
    pub fn com(&self, payment: Value) -> Value {
        self.post("/performTransactionCOM", &payment).body
    }

    /// The journal entries of one ECR reference, newest first (empty when none).
    pub fn journal_of(&self, ecr: &str) -> Vec<Value> {
        let answer = self.get(&format!("/transactions/{ecr}"));
        answer.body["transactions"].as_array().cloned().unwrap_or_default()
    }

    /// The whole journal (up to `limit` entries), newest first.
    pub fn journal(&self, limit: u32) -> Vec<Value> {
        let answer = self.get(&format!("/transactions?limit={limit}"));
        answer.body["transactions"].as_array().cloned().unwrap_or_default()
    }
}
