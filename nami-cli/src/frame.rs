//! `nami frame encode|decode`: the codec on the command line, for checking what a POS would send
//! and reading what a terminal (or a capture of one) answered, without a terminal.
//!
//! Values are taken as plain strings from clap and validated here with the codec's own parsers,
//! so a bad value gets the codec's one-line error (`INVALID_AMOUNT: `amount` …`) instead of a
//! clap usage block.

use clap::{Args, Subcommand};
use nami_sdk::{
    EncodeError, Frame, FrameDecoder, Layout, LrcMode, Request, Response, Signature, Signing, TerminalId, TxnType,
    encode_request,
};
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::CliError;

#[derive(Debug, Args)]
pub struct FrameArgs {
    #[command(subcommand)]
    action: FrameAction,
}

#[derive(Debug, Subcommand)]
enum FrameAction {
    /// Build a request frame from Nami's inputReqData string; prints it as lowercase hex.
    Encode(EncodeArgs),
    /// Decode the first frame in hex bytes (a request or a reply); prints JSON. A request frame
    /// has no response code: its fields are shown by request name and under "request".
    Decode(DecodeArgs),
}

#[derive(Debug, Args)]
struct EncodeArgs {
    /// Transaction type: a code (0, 17, …) or a name (PURCHASE, REGISTER, …).
    #[arg(long, value_name = "CODE|NAME")]
    txn_type: String,
    /// The type's fields separated by ';' and ending in '!', e.g. "210320144000;100;0;12345678000001!"
    /// (date;amount in halalas;print;ecrRef for a purchase).
    #[arg(long, value_name = "DATA", allow_hyphen_values = true)]
    input_req_data: String,
    /// The 16-digit terminal ID from REGISTER; the signature is computed from it.
    #[arg(long, value_name = "DIGITS", conflicts_with = "signature")]
    terminal_id: Option<String>,
    /// A ready-made 64-character lowercase hex signature, sent as it is.
    #[arg(long, value_name = "HEX")]
    signature: Option<String>,
    /// How the byte after ETX is computed: skyband, xor or none.
    #[arg(long, value_name = "MODE", default_value = "skyband")]
    lrc: String,
}

#[derive(Debug, Args)]
struct DecodeArgs {
    /// The frame's bytes as hex; spaces and colons are ignored ("02 fc 41 30 …", "02:fc:…").
    #[arg(value_name = "HEX", allow_hyphen_values = true)]
    hex: String,
    /// Which LRC the frame is checked against: skyband, xor or none.
    #[arg(long, value_name = "MODE", default_value = "skyband")]
    lrc: String,
    /// Field layout of financial replies: v35 (SDK 3.5) or v2020.
    #[arg(long, value_name = "LAYOUT", default_value = "v35")]
    layout: String,
}

pub fn run(args: FrameArgs) -> Result<String, CliError> {
    match args.action {
        FrameAction::Encode(args) => encode(&args),
        FrameAction::Decode(args) => decode(&args),
    }
}

fn encode(args: &EncodeArgs) -> Result<String, CliError> {
    let txn_type = TxnType::parse(&args.txn_type).map_err(CliError::bad_input)?;
    let lrc = parse_lrc(&args.lrc)?;
    let terminal_id = args.terminal_id.as_deref().map(TerminalId::parse).transpose().map_err(CliError::bad_input)?;
    let signature = args.signature.as_deref().map(Signature::parse).transpose().map_err(CliError::bad_input)?;
    let request = Request::from_input_req_data(txn_type, &args.input_req_data).map_err(CliError::bad_input)?;
    let signing = match (&terminal_id, &signature) {
        (Some(terminal_id), _) => Signing::TerminalId(terminal_id),
        (None, Some(signature)) => Signing::Signature(signature),
        (None, None) => Signing::Unsigned,
    };
    let frame = encode_request(&request, signing, lrc).map_err(|error| match error {
        EncodeError::SignatureRequired { .. } => CliError::bad_input(format!("{error} (--terminal-id or --signature)")),
        EncodeError::Invalid(_) => CliError::bad_input(error),
    })?;
    Ok(hex::encode(frame))
}

fn decode(args: &DecodeArgs) -> Result<String, CliError> {
    let lrc_mode = parse_lrc(&args.lrc)?;
    let layout = parse_layout(&args.layout)?;
    let bytes = parse_hex(&args.hex)?;
    let frame = first_frame(&bytes).ok_or_else(|| {
        CliError::bad_input(format!(
            "INVALID_FRAME: `hex` holds no frame ({} bytes without STX … 0xFC … ETX or ';'-separated fields)",
            bytes.len()
        ))
    })?;
    let json = serde_json::to_string_pretty(&Decoded::new(frame, lrc_mode, layout))
        .map_err(|e| CliError::bad_input(format!("cannot render the frame as JSON: {e}")))?;
    Ok(json)
}

/// The first frame in `bytes`, as a terminal link would deliver it: whatever the decoder yields
/// once all bytes are in, or what it makes of them when the peer falls silent.
fn first_frame(bytes: &[u8]) -> Option<Frame> {
    let mut decoder = FrameDecoder::new();
    decoder.push(bytes);
    decoder.next_frame().or_else(|| decoder.finish())
}

/// What `nami frame decode` prints. Field order is the order of this struct.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Decoded {
    command: String,
    txn_type: Option<u8>,
    txn_type_name: Option<&'static str>,
    /// Null for a request frame, which carries no response code.
    response_code: Option<String>,
    response_message: Option<String>,
    approved: bool,
    lrc: Option<String>,
    lrc_valid: Option<bool>,
    fields: Vec<String>,
    parsed: Parsed,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<DecodedRequest>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DecodedRequest {
    input_req_data: String,
    signature: Option<String>,
}

impl Decoded {
    fn new(frame: Frame, lrc_mode: LrcMode, layout: Layout) -> Self {
        let lrc_valid = frame.lrc_matches(lrc_mode);
        let request = as_request(&frame.fields);
        let response = Response::from_frame(frame);
        let txn_type = response.txn_type;
        let lrc = response.lrc.map(|b| format!("{b:02x}"));
        let head = Decoded {
            command: response.command().to_owned(),
            txn_type: txn_type.map(TxnType::code),
            txn_type_name: txn_type.map(TxnType::name),
            response_code: None,
            response_message: None,
            approved: false,
            lrc,
            lrc_valid,
            fields: Vec::new(),
            parsed: Parsed(Vec::new()),
            request: None,
        };
        match request {
            // Read as a reply, a request's amount would pass for a response code and its RRN for
            // a card number; show its fields under their request names instead.
            Some((request, named)) => {
                Decoded { fields: response.fields, parsed: Parsed(named), request: Some(request), ..head }
            }
            // Card numbers masked in the raw fields as well (the SDK's rule, also for the reply a
            // DUPLICATE repeats).
            None => Decoded {
                response_code: Some(response.code().to_owned()),
                response_message: Some(response.message()),
                approved: response.approved(),
                parsed: Parsed(response.parsed(layout)),
                fields: nami_sdk::service::masked_fields(&response),
                ..head
            },
        }
    }
}

/// The request a frame carries, if it is one, with its wire fields by name: requests end with
/// the fixed "120" field and their fields between the command and "120" decode as the command's
/// type.
fn as_request(fields: &[String]) -> Option<(DecodedRequest, Vec<(&'static str, String)>)> {
    if fields.len() < 3 || fields.last().map(String::as_str) != Some("120") {
        return None;
    }
    let txn_type = TxnType::from_command(&fields[1])?;
    let wire = &fields[2..fields.len() - 1];
    let (request, signature) = Request::from_wire_fields(txn_type, wire).ok()?;
    let named =
        txn_type.spec().wire_fields.iter().zip(wire).map(|(field, text)| (field.name(), text.clone())).collect();
    let request = DecodedRequest {
        input_req_data: request.to_input_req_data(),
        signature: signature.map(|s| s.as_str().to_owned()),
    };
    Some((request, named))
}

/// Named reply fields as a JSON object in reply order (serde_json's `Map` would sort them).
struct Parsed(Vec<(&'static str, String)>);

impl Serialize for Parsed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A layout never names a field twice, but a JSON object must not repeat a key whatever
        // the layout tables say: the first occurrence wins.
        let mut seen: Vec<&str> = Vec::with_capacity(self.0.len());
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in &self.0 {
            if !seen.contains(name) {
                seen.push(name);
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

fn parse_lrc(text: &str) -> Result<LrcMode, CliError> {
    text.parse::<LrcMode>().map_err(CliError::bad_input)
}

fn parse_layout(text: &str) -> Result<Layout, CliError> {
    text.parse::<Layout>().map_err(CliError::bad_input)
}

/// Hex digits to bytes; whitespace and ':' separators are ignored so captures can be pasted.
fn parse_hex(text: &str) -> Result<Vec<u8>, CliError> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    let bad = |reason: String| CliError::bad_input(format!("INVALID_HEX: `hex` {reason}"));
    if digits.is_empty() {
        return Err(bad("is empty".into()));
    }
    if let Some((at, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(bad(format!("has a non-hex character {c:?} at digit {}", at + 1)));
    }
    if digits.len() % 2 == 1 {
        return Err(bad(format!("has an odd number of digits ({})", digits.len())));
    }
    hex::decode(&digits).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_separators_are_ignored_and_bad_hex_is_named() {
        assert_eq!(parse_hex("02 FC:41\n30").unwrap(), [0x02, 0xfc, 0x41, 0x30]);
        assert!(parse_hex("0").unwrap_err().message.contains("odd number of digits (1)"));
        assert!(parse_hex("0g").unwrap_err().message.contains("'g' at digit 2"));
        assert!(parse_hex(" : ").unwrap_err().message.contains("is empty"));
    }

    #[test]
    fn parsed_fields_keep_reply_order_and_never_repeat_a_key() {
        let parsed = Parsed(vec![("b", "1".into()), ("a", "2".into()), ("b", "3".into())]);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), r#"{"b":"1","a":"2"}"#);
    }

    #[test]
    fn a_reply_is_not_taken_for_a_request() {
        let fields = ["", "A0", "800", "8184000200000077"].map(String::from);
        assert!(as_request(&fields).is_none());
        assert!(as_request(&["".to_owned(), "120".to_owned()]).is_none());
    }
}
