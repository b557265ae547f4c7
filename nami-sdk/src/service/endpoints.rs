//! The REST surface, declared once: each endpoint of the middleware with its method, path,
//! documentation and the operation of [`call`](super::call) that serves it. Everything else is
//! read from [`ENDPOINTS`]: `call`'s router (an exact path, as the daemon matches it), the
//! daemon's routes (`nami-httpd`), its OpenAPI document, and the test and fuzz path lists.
//!
//! Adding an endpoint: a `const` here, listed in [`ENDPOINTS`], and its operation in `call.rs`.

use super::call::{self, Call, CallReply};
use super::{
    ClearTerminalDataRequest, ComConnectRequest, ComConnectResponse, ComPortInfo, HealthStatus, JournalList,
    NextEcrReference, NextEcrReferenceRequest, RegistrationQuery, RegistrationStatus, Service, StatusResponse,
    TcpConnectionRequest, TcpConnectionResponse, TcpTransactionRequest, TerminalSelector, TransactionParameters,
    TransactionResponse, TransactionsQuery,
};
use crate::payment_request::PaymentRequest;

#[cfg(feature = "openapi")]
use utoipa::openapi::{self, RefOr};

/// The schemas an OpenAPI document collects while its operations name them (`components`).
#[cfg(feature = "openapi")]
pub type Components = Vec<(String, RefOr<openapi::schema::Schema>)>;

/// The HTTP method an endpoint is served on (`call` itself takes any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// `GET`, `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// How an endpoint answers a body it cannot read (400): in its own answer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadBodyShape {
    /// `{statusCode, statusMessage, responseCode: null, approved: false}` (a transaction answer).
    Transaction,
    /// `{success: false, message}`.
    ComConnect,
    /// `{status: "Error", message}`.
    Status,
}

/// One REST endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: Method,
    /// The path; a last segment `{name}` is a path parameter (axum's and OpenAPI's syntax).
    pub path: &'static str,
    /// The OpenAPI `operationId`.
    pub operation_id: &'static str,
    /// The OpenAPI tag (the group in the document).
    pub tag: &'static str,
    /// What it does (the OpenAPI summary).
    pub summary: &'static str,
    /// A transaction: it takes the `Idempotency-Key` header.
    pub transaction: bool,
    /// The shape of its 400 answers.
    pub bad_body: BadBodyShape,
    /// Its request body, if it reads one.
    pub request: Option<RequestBody>,
    /// Its path and query parameters.
    pub parameters: Parameters,
    /// What it answers, by HTTP status (the daemon adds its own errors: 401, 403, 405, 413, 500).
    pub answers: &'static [Answer],
    serve: fn(&Service, Call<'_>) -> CallReply,
}

/// A request body: its type, and whether it may be left out.
#[derive(Debug, Clone, Copy)]
pub struct RequestBody {
    pub schema: Schema,
    pub required: bool,
}

/// One documented answer.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub schema: Schema,
    /// An example body (JSON text).
    pub example: Option<&'static str>,
}

const fn answer(status: u16, description: &'static str, schema: Schema) -> Answer {
    Answer { status, description, schema, example: None }
}

const fn body(schema: Schema, required: bool) -> Option<RequestBody> {
    Some(RequestBody { schema, required })
}

/// A type's JSON schema, for the OpenAPI document (with the `openapi` feature; without it, only
/// the declaration).
#[derive(Clone, Copy)]
pub struct Schema {
    #[cfg(feature = "openapi")]
    build: fn(&mut Components) -> RefOr<openapi::schema::Schema>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

/// An endpoint's path and query parameters, from a type's `IntoParams`.
#[derive(Clone, Copy)]
pub struct Parameters {
    #[cfg(feature = "openapi")]
    build: Option<fn() -> Vec<openapi::path::Parameter>>,
}

impl std::fmt::Debug for Parameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parameters")
    }
}

#[cfg(feature = "openapi")]
mod schemas {
    use super::{Components, RefOr, openapi};
    use utoipa::{PartialSchema, ToSchema};

    pub(super) fn reference<T: ToSchema>(components: &mut Components) -> RefOr<openapi::schema::Schema> {
        components.push((T::name().into_owned(), T::schema()));
        T::schemas(components);
        RefOr::Ref(openapi::Ref::from_schema_name(T::name()))
    }

    pub(super) fn array<T: ToSchema>(components: &mut Components) -> RefOr<openapi::schema::Schema> {
        openapi::schema::ArrayBuilder::new().items(reference::<T>(components)).build().into()
    }

    pub(super) fn inline<T: PartialSchema>(_: &mut Components) -> RefOr<openapi::schema::Schema> {
        T::schema()
    }

    pub(super) fn parameters<T: utoipa::IntoParams>() -> Vec<openapi::path::Parameter> {
        T::into_params(|| None)
    }
}

#[cfg(feature = "openapi")]
impl Schema {
    /// A reference to `T`'s schema, which goes into the components.
    pub const fn of<T: utoipa::ToSchema>() -> Schema {
        Schema { build: schemas::reference::<T> }
    }

    /// An array of `T`.
    pub const fn array_of<T: utoipa::ToSchema>() -> Schema {
        Schema { build: schemas::array::<T> }
    }

    /// `T`'s schema in place (a number, an object).
    pub const fn inline<T: utoipa::PartialSchema>() -> Schema {
        Schema { build: schemas::inline::<T> }
    }

    /// The schema; the named ones it refers to are added to `components`.
    pub fn build(&self, components: &mut Components) -> RefOr<openapi::schema::Schema> {
        (self.build)(components)
    }
}

#[cfg(not(feature = "openapi"))]
impl Schema {
    pub const fn of<T>() -> Schema {
        Schema {}
    }

    pub const fn array_of<T>() -> Schema {
        Schema {}
    }

    pub const fn inline<T>() -> Schema {
        Schema {}
    }
}

#[cfg(feature = "openapi")]
impl Parameters {
    pub const NONE: Parameters = Parameters { build: None };

    /// The parameters `T` declares.
    pub const fn of<T: utoipa::IntoParams>() -> Parameters {
        Parameters { build: Some(schemas::parameters::<T>) }
    }

    pub fn build(&self) -> Vec<openapi::path::Parameter> {
        self.build.map(|build| build()).unwrap_or_default()
    }
}

#[cfg(not(feature = "openapi"))]
impl Parameters {
    pub const NONE: Parameters = Parameters {};

    pub const fn of<T>() -> Parameters {
        Parameters {}
    }
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Endpoint) -> bool {
        self.method == other.method && self.path == other.path
    }
}

impl Eq for Endpoint {}

impl Endpoint {
    /// The endpoint whose path is exactly `path` (no query string; a path parameter is one
    /// non-empty segment), with that parameter. Case, a trailing slash and white space count,
    /// as in the daemon's router: `/performtransactiontcpip` is no endpoint.
    pub fn find(path: &str) -> Option<(&'static Endpoint, Option<&str>)> {
        ENDPOINTS.iter().find_map(|endpoint| endpoint.matches(path).map(|parameter| (endpoint, parameter)))
    }

    /// `Some(parameter)` when `path` is this endpoint's.
    fn matches<'p>(&self, path: &'p str) -> Option<Option<&'p str>> {
        match self.path.split_once('{') {
            None => (self.path == path).then_some(None),
            Some((prefix, _)) => {
                let rest = path.strip_prefix(prefix)?;
                (!rest.is_empty() && !rest.contains('/')).then_some(Some(rest))
            }
        }
    }

    /// Serves a call on this endpoint (`parameter`: the path parameter's value).
    pub(super) fn serve(&self, service: &Service, call: Call<'_>) -> CallReply {
        (self.serve)(service, call)
    }

    /// Its 400 answer to a body it cannot read, in its own answer's shape.
    pub fn bad_request(&self, message: impl Into<String>) -> CallReply {
        call::bad_request(self.bad_body, message.into())
    }

    /// The path of a call on it: the path parameter replaced by `parameter`.
    pub fn path_with(&self, parameter: &str) -> String {
        match self.path.split_once('{') {
            None => self.path.to_owned(),
            Some((prefix, _)) => format!("{prefix}{parameter}"),
        }
    }

    /// This endpoint's OpenAPI operation; the schemas it refers to are added to `components`.
    #[cfg(feature = "openapi")]
    pub fn operation(&self, components: &mut Components) -> openapi::path::Operation {
        use openapi::content::ContentBuilder;
        use openapi::request_body::RequestBodyBuilder;
        use openapi::response::ResponseBuilder;
        let mut operation = openapi::path::OperationBuilder::new()
            .operation_id(Some(self.operation_id))
            .summary(Some(self.summary))
            .tag(self.tag);
        let parameters = self.parameters.build();
        if !parameters.is_empty() {
            operation = operation.parameters(Some(parameters));
        }
        if let Some(request) = &self.request {
            let content = ContentBuilder::new().schema(Some(request.schema.build(components))).build();
            let required = if request.required { openapi::Required::True } else { openapi::Required::False };
            operation = operation.request_body(Some(
                RequestBodyBuilder::new().content("application/json", content).required(Some(required)).build(),
            ));
        }
        for answer in self.answers {
            let example = answer.example.and_then(|text| serde_json::from_str(text).ok());
            let content = ContentBuilder::new().schema(Some(answer.schema.build(components))).example(example).build();
            let response =
                ResponseBuilder::new().description(answer.description).content("application/json", content).build();
            operation = operation.response(answer.status.to_string(), response);
        }
        operation.build()
    }

    /// The parameter's name (`ecrReferenceNo`), if the path has one.
    pub fn parameter(&self) -> Option<&'static str> {
        let (_, rest) = self.path.split_once('{')?;
        rest.strip_suffix('}')
    }
}

/// The answers of both transaction endpoints.
const TRANSACTION_ANSWERS: &[Answer] = &[
    answer(
        200,
        "The terminal's answer (`statusCode` \"200\") or a middleware status code",
        Schema::of::<TransactionResponse>(),
    ),
    answer(
        400,
        "The body is not JSON or a field has the wrong type; `statusMessage` names it",
        Schema::of::<TransactionResponse>(),
    ),
];

// ---------------------------------------------------------------------------------------------
// COM path

pub const GET_COM_PORTS: Endpoint = Endpoint {
    method: Method::Get,
    path: "/get-com-ports",
    operation_id: "get_com_ports",
    tag: "COM path",
    summary: "Lists the serial ports detected on this machine (real hardware ports only), or the seeds'\n\
        special entries: \"No devices connected\", \"Reconnecting to COM3...\", \"Disconnected \u{2014} last seen\n\
        on COM3\".",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: None,
    parameters: Parameters::NONE,
    answers: &[answer(200, "Detected ports", Schema::array_of::<ComPortInfo>())],
    serve: call::get_com_ports,
};

pub const COM_CONNECT: Endpoint = Endpoint {
    method: Method::Post,
    path: "/com/connect",
    operation_id: "com_connect",
    tag: "COM path",
    summary: "Opens the serial connection to the terminal. Must succeed before any COM transaction.\n\
        `port` is the COM number (3 for COM3; elsewhere the listed port with that number) or a device\n\
        path; the settings default to 115200 8-N-1.",
    transaction: false,
    bad_body: BadBodyShape::ComConnect,
    request: body(Schema::of::<ComConnectRequest>(), true),
    parameters: Parameters::NONE,
    answers: &[
        answer(200, "Connected, or why not (`success: false`)", Schema::of::<ComConnectResponse>()),
        answer(
            400,
            "The body is not JSON or not of this shape; `message` names the field",
            Schema::of::<ComConnectResponse>(),
        ),
    ],
    serve: call::com_connect,
};

pub const PERFORM_TRANSACTION_COM: Endpoint = Endpoint {
    method: Method::Post,
    path: "/performTransactionCOM",
    operation_id: "perform_transaction_com",
    tag: "COM path",
    summary: "Runs any transaction type over the COM connection. The body is a bare `paymentRequest`\n\
        (a `{\"paymentRequest\": {...}}` wrapper is accepted too). `/com/connect` and a REGISTER must\n\
        come first.",
    transaction: true,
    bad_body: BadBodyShape::Transaction,
    request: body(Schema::of::<PaymentRequest>(), false),
    parameters: Parameters::NONE,
    answers: TRANSACTION_ANSWERS,
    serve: call::perform_transaction_com,
};

pub const COM_DISCONNECT: Endpoint = Endpoint {
    method: Method::Post,
    path: "/com/disconnect",
    operation_id: "com_disconnect",
    tag: "COM path",
    summary: "Closes the serial port and forgets the saved COM connection (not its registration). No body.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: None,
    parameters: Parameters::NONE,
    answers: &[Answer {
        status: 200,
        description: "`0` on success, `1` when there was no COM connection",
        schema: Schema::inline::<i32>(),
        example: Some("0"),
    }],
    serve: call::com_disconnect,
};

// ---------------------------------------------------------------------------------------------
// TCP/IP path

pub const PERFORM_TRANSACTION_TCPIP: Endpoint = Endpoint {
    method: Method::Post,
    path: "/performTransactionTCPIP",
    operation_id: "perform_transaction_tcp",
    tag: "TCP/IP path",
    summary: "Connects to the terminal at `tcpipcomData` (or reuses the connection) and runs a transaction.",
    transaction: true,
    bad_body: BadBodyShape::Transaction,
    request: body(Schema::of::<TcpTransactionRequest>(), true),
    parameters: Parameters::NONE,
    answers: TRANSACTION_ANSWERS,
    serve: call::perform_transaction_tcp,
};

pub const TCP_CONNECT: Endpoint = Endpoint {
    method: Method::Post,
    path: "/tcp-ip/connect",
    operation_id: "tcp_connect",
    tag: "TCP/IP path",
    summary: "Opens (and remembers) the connection to a TCP terminal without a transaction.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: body(Schema::of::<TcpConnectionRequest>(), true),
    parameters: Parameters::NONE,
    answers: &[
        answer(
            200,
            "`connectionStatus` true when connected; `isConnected` says why not",
            Schema::of::<TcpConnectionResponse>(),
        ),
        answer(400, "No or a malformed `tcpipcomData`", Schema::of::<StatusResponse>()),
    ],
    serve: call::tcp_connect,
};

pub const TCP_DISCONNECT: Endpoint = Endpoint {
    method: Method::Post,
    path: "/tcp-ip/disconnect",
    operation_id: "tcp_disconnect",
    tag: "TCP/IP path",
    summary: "Closes the connection to a TCP terminal and forgets it. Idempotent.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: body(Schema::of::<TcpConnectionRequest>(), true),
    parameters: Parameters::NONE,
    answers: &[
        answer(200, "Disconnected", Schema::of::<TcpConnectionResponse>()),
        answer(400, "No or a malformed `tcpipcomData`", Schema::of::<StatusResponse>()),
    ],
    serve: call::tcp_disconnect,
};

// ---------------------------------------------------------------------------------------------
// Utilities

pub const CANCEL_TRANSACTION: Endpoint = Endpoint {
    method: Method::Post,
    path: "/cancelTransaction",
    operation_id: "cancel_transaction",
    tag: "Utilities",
    summary: "Cancels the running transaction of one terminal (`{ip, port}`, `{tcpipcomData}` or\n\
        `{com: true}`), or of every terminal when the body is empty.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: body(Schema::of::<TerminalSelector>(), false),
    parameters: Parameters::NONE,
    answers: &[
        answer(200, "`Success` (cancelled) or `Info` (nothing running)", Schema::of::<StatusResponse>()),
        answer(400, "A malformed terminal selector", Schema::of::<StatusResponse>()),
    ],
    serve: call::cancel_transaction,
};

pub const GET_EXISTING_CONNECTIONS: Endpoint = Endpoint {
    method: Method::Get,
    path: "/getExistingConnections",
    operation_id: "get_existing_connections",
    tag: "Utilities",
    summary: "The known TCP connections and their state, keyed `ip:port`.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: None,
    parameters: Parameters::NONE,
    answers: &[answer(
        200,
        "`ip:port` \u{2192} `Connected` / `Disconnected`",
        Schema::of::<super::api::ExistingConnectionsSchema>(),
    )],
    serve: call::get_existing_connections,
};

pub const REGISTRATION_STATUS: Endpoint = Endpoint {
    method: Method::Get,
    path: "/registrationStatus",
    operation_id: "registration_status",
    tag: "Utilities",
    summary: "Whether REGISTER has been completed: for the terminal picked by `?ip=&port=` or `?com=`, or,\n\
        without a selector, the first registered terminal (COM first) plus `terminals`, every one.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: None,
    parameters: Parameters::of::<RegistrationQuery>(),
    answers: &[
        answer(200, "The registration", Schema::of::<RegistrationStatus>()),
        answer(400, "A malformed selector (e.g. a port that is not a number)", Schema::of::<StatusResponse>()),
    ],
    serve: call::registration_status,
};

pub const CLEAR_TERMINAL_DATA: Endpoint = Endpoint {
    method: Method::Post,
    path: "/clearTerminalData",
    operation_id: "clear_terminal_data",
    tag: "Utilities",
    summary: "Clears the registration keymap (memory and disk). Requires `{\"confirmClear\": true}`; without\n\
        it nothing is cleared and `status` is `Error`. The journal and the connections stay.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: body(Schema::of::<ClearTerminalDataRequest>(), false),
    parameters: Parameters::NONE,
    answers: &[
        answer(200, "`Success`, or `Error` without `confirmClear: true`", Schema::of::<StatusResponse>()),
        answer(400, "The body is not JSON or `confirmClear` is not a boolean", Schema::of::<StatusResponse>()),
    ],
    serve: call::clear_terminal_data,
};

/// The daemon adds its own fields (scheme, certificate, token, simulator) to the service's.
pub const HEALTH_STATUS: Endpoint = Endpoint {
    method: Method::Get,
    path: "/api/health-status",
    operation_id: "health_status",
    tag: "Utilities",
    summary: "Service health: version, uptime, memory, COM ports, connections, registered terminals, and\n\
        the daemon's scheme and certificate fingerprint.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: None,
    parameters: Parameters::NONE,
    answers: &[answer(200, "Health", Schema::of::<HealthStatus>())],
    serve: call::health_status,
};

// ---------------------------------------------------------------------------------------------
// Beyond the seeds: the journal

pub const TRANSACTIONS: Endpoint = Endpoint {
    method: Method::Get,
    path: "/transactions",
    operation_id: "transactions",
    tag: "Journal",
    summary: "The transaction journal, newest first, with filters.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: None,
    parameters: Parameters::of::<TransactionsQuery>(),
    answers: &[
        answer(200, "Matching journal entries", Schema::of::<JournalList>()),
        answer(400, "A malformed filter, named", Schema::of::<StatusResponse>()),
        answer(500, "The journal could not be read", Schema::of::<StatusResponse>()),
    ],
    serve: call::transactions,
};

pub const TRANSACTION: Endpoint = Endpoint {
    method: Method::Get,
    path: "/transactions/{ecrReferenceNo}",
    operation_id: "transaction",
    tag: "Journal",
    summary: "The journal entries of one ECR reference (404 when there is none).",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: None,
    parameters: Parameters::of::<TransactionParameters>(),
    answers: &[
        answer(200, "The entries", Schema::of::<JournalList>()),
        answer(404, "No entry has this reference", Schema::of::<JournalList>()),
        answer(400, "A malformed filter, named", Schema::of::<StatusResponse>()),
        answer(500, "The journal could not be read", Schema::of::<StatusResponse>()),
    ],
    serve: call::transaction,
};

pub const NEXT_ECR_REFERENCE: Endpoint = Endpoint {
    method: Method::Post,
    path: "/nextEcrReference",
    operation_id: "next_ecr_reference",
    tag: "Journal",
    summary: "A fresh ECR reference for a cash register (docs/protocol.md D7): its 8-digit number and a\n\
        persisted 6-digit counter that skips every reference in the journal.",
    transaction: false,
    bad_body: BadBodyShape::Status,
    request: body(Schema::of::<NextEcrReferenceRequest>(), true),
    parameters: Parameters::NONE,
    answers: &[
        answer(200, "The reference", Schema::of::<NextEcrReference>()),
        answer(400, "`cashRegisterNo` missing or not 8 digits", Schema::of::<StatusResponse>()),
        answer(500, "No unused reference is left, or the journal failed", Schema::of::<StatusResponse>()),
    ],
    serve: call::next_ecr_reference,
};

/// Every endpoint of the service, in the document's order.
pub const ENDPOINTS: &[Endpoint] = &[
    GET_COM_PORTS,
    COM_CONNECT,
    PERFORM_TRANSACTION_COM,
    COM_DISCONNECT,
    PERFORM_TRANSACTION_TCPIP,
    TCP_CONNECT,
    TCP_DISCONNECT,
    CANCEL_TRANSACTION,
    GET_EXISTING_CONNECTIONS,
    REGISTRATION_STATUS,
    CLEAR_TERMINAL_DATA,
    HEALTH_STATUS,
    TRANSACTIONS,
    TRANSACTION,
    NEXT_ECR_REFERENCE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_exactly_as_the_daemon_routes_them() {
        assert_eq!(Endpoint::find("/performTransactionTCPIP").map(|(e, _)| e.path), Some("/performTransactionTCPIP"));
        for path in [
            "/performtransactiontcpip",
            "/performTransactionTCPIP/",
            " /performTransactionTCPIP",
            "/PerformTransactionTCPIP",
        ] {
            assert!(Endpoint::find(path).is_none(), "{path}");
        }
        assert_eq!(Endpoint::find("/transactions/12345678000001"), Some((&TRANSACTION, Some("12345678000001"))));
        assert_eq!(Endpoint::find("/transactions"), Some((&TRANSACTIONS, None)));
        for path in ["/transactions/", "/transactions/1/2", "/Transactions/1"] {
            assert!(Endpoint::find(path).is_none(), "{path}");
        }
        assert_eq!(TRANSACTION.path_with("1"), "/transactions/1");
        assert_eq!(TRANSACTION.parameter(), Some("ecrReferenceNo"));
    }

    #[test]
    fn each_endpoint_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for endpoint in ENDPOINTS {
            assert!(seen.insert(endpoint.path), "{} twice", endpoint.path);
            assert_eq!(Endpoint::find(&endpoint.path_with("1")).map(|(e, _)| e), Some(endpoint));
        }
    }
}
