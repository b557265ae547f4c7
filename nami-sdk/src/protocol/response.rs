//! Terminal replies (docs/protocol.md §5): every raw field is kept; named fields and typed views come
//! from versioned layout tables, so a reply from another terminal version still yields its code,
//! its message and its raw fields.

use super::codes;
use super::decoder::Frame;
use super::txn_type::{ResponseClass, TxnType};
use super::values::{Amount, TerminalId};
use crate::status::StatusCode;

/// Which field layout the terminal application uses for financial replies (D9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// SDK 3.5 / iOS layout (§5.2), the default.
    #[default]
    V35,
    /// The older 2020 layout (§5.3).
    V2020,
}

/// The layout's names, as every layer takes them (`--layout` of the `nami` tool, `layout` of the C
/// ABI's options): `v35`, `3.5` or `v3.5`, and `v2020` or `2020`, in any case.
impl std::str::FromStr for Layout {
    type Err = crate::error::ValidationError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "v35" | "3.5" | "v3.5" => Ok(Layout::V35),
            "v2020" | "2020" => Ok(Layout::V2020),
            _ => Err(crate::error::ValidationError::other(
                StatusCode::InvalidLayout,
                "layout",
                format!("must be v35 (3.5) or v2020 (2020), got {text:?}"),
            )),
        }
    }
}

/// Names of the §5.2 financial fields from index 4 on.
const FINANCIAL_V35: &[&str] = &[
    "pan",
    "amount",
    "businessCode",
    "stan",
    "dateTime",
    "cardExpiry",
    "rrn",
    "approvalCode",
    "terminalId",
    "merchantId",
    "batchNo",
    "aid",
    "applicationCryptogram",
    "cid",
    "cvr",
    "tvr",
    "tsi",
    "kernelId",
    "par",
    "panSuffix",
    "cardEntryMode",
    "merchantCategoryCode",
    "terminalTransactionType",
    "schemeLabel",
    "productInfo",
    "applicationVersion",
    "disclaimer",
    "merchantNameEn",
    "merchantAddressEn",
    "merchantNameAr",
    "merchantAddressAr",
    "ecrReferenceNo",
    "signature",
];
/// §5.3, the 2020 layout.
const FINANCIAL_V2020: &[&str] = &[
    "pan",
    "amount",
    "stan",
    "dateTime",
    "cardExpiry",
    "rrn",
    "approvalCode",
    "terminalId",
    "merchantId",
    "batchNo",
    "aid",
    "applicationCryptogram",
    "cid",
    "cvr",
    "tvr",
    "tsi",
    "cardEntryMode",
    "merchantCategoryCode",
    "terminalTransactionType",
    "schemeLabel",
    "storeCashierInfo",
    "productInfo",
    "applicationVersion",
    "ecrReferenceNo",
    "signature",
];
/// Check status, parameter download, set parameters (§5.4).
const ACK_FIELDS: &[&str] = &["dateTime", "ecrReferenceNo", "signature"];
const PARAMETER_FIELDS: &[&str] = &[
    "dateTime",
    "vendorId",
    "vendorTerminalType",
    "trsmId",
    "vendorKeyIndex",
    "samaKeyIndex",
    "ecrReferenceNo",
    "signature",
];
const RECONCILIATION_HEADER: &[&str] =
    &["dateTime", "merchantId", "traceNumber", "businessCode", "applicationVersion", "schemeCount"];
const REPORT_HEADER: &[&str] = &["dateTime", "merchantId", "businessCode", "applicationVersion", "schemeCount"];
const TOTALS_TRAILER: &[&str] =
    &["merchantNameEn", "merchantAddressEn", "merchantNameAr", "merchantAddressAr", "ecrReferenceNo", "signature"];
const SUMMARY_HEADER: &[&str] = &["dateTime", "requestCount", "totalTransactions"];

/// The named fields that hold an amount in halalas (12 digits, `000000001000` for SAR 10.00).
pub const AMOUNT_FIELDS: &[&str] = &["amount", "cashbackAmount", "totalAmount"];

/// The named fields that hold hex-encoded ISO-8859-6 (Arabic) text.
const ARABIC_HEX_FIELDS: &[&str] = &["merchantNameAr", "merchantAddressAr"];

/// A terminal reply. Its `Debug` form masks card numbers (as the logs do, see `redact`), so
/// that `{:?}` in a POS's log never shows one; the fields themselves stay as received.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The type the echoed command stands for.
    pub txn_type: Option<TxnType>,
    /// Every field as received; [0] is the STX slot, [1] the command, [2] the response code.
    pub fields: Vec<String>,
    /// The LRC byte, if one came.
    pub lrc: Option<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("txn_type", &self.txn_type)
            .field("fields", &redacted_fields(&self.fields))
            .field("lrc", &self.lrc)
            .finish()
    }
}

/// `fields` with card numbers masked, by the log's rules (`redact::redact_frame`).
pub fn redacted_fields(fields: &[String]) -> Vec<String> {
    let joined = fields.iter().map(|f| f.as_bytes()).collect::<Vec<_>>().join(&super::frame::FS);
    super::redact::redact_frame(&joined)
        .split(|b| *b == super::frame::FS)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// Named fields in reply order, values normalised for people (PAN masked, Arabic decoded).
pub type ParsedFields = Vec<(&'static str, String)>;

impl Response {
    pub fn from_frame(frame: Frame) -> Self {
        let mut response = Self::from_fields(frame.fields);
        response.lrc = frame.lrc;
        response
    }

    pub fn from_fields(fields: Vec<String>) -> Self {
        let txn_type = fields.get(1).and_then(|c| TxnType::from_command(c));
        Response { txn_type, fields, lrc: None }
    }

    fn field(&self, index: usize) -> &str {
        self.fields.get(index).map(String::as_str).unwrap_or("")
    }

    /// Field [1], the echoed command.
    pub fn command(&self) -> &str {
        self.field(1)
    }

    /// Field [2], the terminal's response code.
    pub fn code(&self) -> &str {
        self.field(2).trim()
    }

    pub fn class(&self) -> Option<ResponseClass> {
        self.txn_type.map(|t| t.spec().response)
    }

    /// The terminal's message ([3]), or the code's meaning for replies that carry none (register
    /// puts the terminal ID in [3], sessions stop after the code).
    pub fn message(&self) -> String {
        let carries_message = !matches!(self.class(), Some(ResponseClass::Register | ResponseClass::Session));
        if carries_message && self.fields.len() > 3 {
            return self.field(3).trim().to_owned();
        }
        codes::meaning(self.code()).unwrap_or("").to_owned()
    }

    /// Whether the terminal approved, by the code and the class of the reply (D9). A duplicate is
    /// judged by the transaction it repeats.
    pub fn approved(&self) -> bool {
        match self.class() {
            Some(ResponseClass::Repeat) => self.repeated().is_some_and(|inner| inner.approved()),
            Some(class) => class.approves(self.code()),
            None => false,
        }
    }

    /// Whether the terminal says it must be registered first (1003 / 1008).
    pub fn requires_registration(&self) -> bool {
        codes::requires_registration(self.code())
    }

    /// The ECR reference the reply echoes, wherever the layout puts it.
    pub fn ecr_reference(&self) -> Option<String> {
        if self.class() == Some(ResponseClass::Repeat) {
            // The duplicate's own echo closes the reply; the repeated reply inside has its own.
            let own = self.fields.len().checked_sub(2).and_then(|i| self.fields.get(i))?;
            return (own.len() == 14 && own.bytes().all(|b| b.is_ascii_digit())).then(|| own.clone());
        }
        // The raw field, without building every named field (this runs on every reply).
        let mut found = None;
        self.each_named(Layout::default(), &mut |name, value| {
            if name == "ecrReferenceNo" {
                found = Some(value.to_owned());
            }
        });
        found
    }

    /// For a DUPLICATE reply: the repeated transaction's reply, found at the first field from [4]
    /// on that is a known command (§5.7), without the duplicate's own ECR reference and signature.
    pub fn repeated(&self) -> Option<Response> {
        let start = (4..self.fields.len()).find(|i| TxnType::from_command(&self.fields[*i]).is_some())?;
        let end = self.fields.len().saturating_sub(2).max(start + 1);
        let mut inner = vec![String::new()];
        inner.extend_from_slice(&self.fields[start..end]);
        Some(Response::from_fields(inner))
    }

    /// The named fields of the reply under `layout`. Fields beyond the layout are omitted (they
    /// stay in [`Response::fields`]); a short reply yields the names it reaches.
    pub fn parsed(&self, layout: Layout) -> ParsedFields {
        let mut out = ParsedFields::new();
        let Some(class) = self.class() else { return out };
        match class {
            ResponseClass::Repeat => {
                if let Some(inner) = self.repeated() {
                    out.push(("repeatedCommand", inner.command().to_owned()));
                    out.push(("repeatedResponseCode", inner.code().to_owned()));
                    out.push(("repeatedResponseMessage", inner.message()));
                    out.extend(inner.parsed(layout));
                } else if let Some(message) = self.fields.iter().skip(3).find(|f| f.contains("NO DATA")) {
                    out.push(("repeatedResponseMessage", message.clone()));
                }
            }
            _ => self.each_named(layout, &mut |name, value| out.push((name, present(name, value)))),
        }
        out
    }

    /// Calls `f` with each named field of the reply under `layout` and its value as received, in
    /// reply order (every class but DUPLICATE's, whose fields belong to the reply it repeats).
    fn each_named(&self, layout: Layout, f: &mut dyn FnMut(&'static str, &str)) {
        let Some(class) = self.class() else { return };
        let mut named = |names: &[&'static str], from: usize| {
            for (name, value) in names.iter().zip(self.fields.iter().skip(from)) {
                f(name, value);
            }
        };
        match class {
            ResponseClass::Financial | ResponseClass::FinancialCashback | ResponseClass::Reversal => {
                named(&financial_layout(class, layout), 4)
            }
            ResponseClass::Register => named(&["terminalId"], 3),
            ResponseClass::Session | ResponseClass::Repeat => {}
            ResponseClass::Status | ResponseClass::FileAction => named(ACK_FIELDS, 4),
            ResponseClass::Parameters => named(PARAMETER_FIELDS, 4),
            ResponseClass::Reconciliation | ResponseClass::Report => {
                let header = if class == ResponseClass::Reconciliation { RECONCILIATION_HEADER } else { REPORT_HEADER };
                named(header, 4);
                let trailer_from = self.fields.len().saturating_sub(TOTALS_TRAILER.len()).max(4 + header.len());
                named(TOTALS_TRAILER, trailer_from);
            }
            ResponseClass::SummaryReport => named(SUMMARY_HEADER, 4),
        }
    }

    /// A typed view of the reply.
    pub fn view(&self, layout: Layout) -> ResponseView {
        let parsed = self.parsed(layout);
        let get =
            |name: &str| parsed.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
        let amount = |name: &str| {
            debug_assert!(AMOUNT_FIELDS.contains(&name));
            get(name).and_then(|v| v.parse::<u64>().ok()).and_then(|h| Amount::from_halalas(h).ok())
        };
        let Some(class) = self.class() else { return ResponseView::Unknown };
        match class {
            ResponseClass::Financial | ResponseClass::FinancialCashback | ResponseClass::Reversal => {
                if parsed.is_empty() {
                    return ResponseView::Short;
                }
                ResponseView::Card(Box::new(CardTransaction {
                    masked_pan: get("pan"),
                    amount: amount("amount"),
                    cashback_amount: amount("cashbackAmount"),
                    total_amount: amount("totalAmount"),
                    stan: get("stan"),
                    date_time: get("dateTime"),
                    card_expiry: get("cardExpiry"),
                    rrn: get("rrn"),
                    approval_code: get("approvalCode"),
                    terminal_id: get("terminalId"),
                    merchant_id: get("merchantId"),
                    batch_no: get("batchNo"),
                    aid: get("aid"),
                    card_entry_mode: get("cardEntryMode"),
                    scheme_label: get("schemeLabel"),
                    cardholder_verification: get("disclaimer"),
                    merchant_name: get("merchantNameEn"),
                    merchant_address: get("merchantAddressEn"),
                    merchant_name_arabic: get("merchantNameAr"),
                    merchant_address_arabic: get("merchantAddressAr"),
                    ecr_reference: get("ecrReferenceNo"),
                    signature: get("signature"),
                }))
            }
            ResponseClass::Register => ResponseView::Register {
                terminal_id: get("terminalId").and_then(|t| TerminalId::parse(t.get(..16).unwrap_or(&t)).ok()),
            },
            ResponseClass::Session => ResponseView::Session,
            ResponseClass::Status | ResponseClass::FileAction => {
                ResponseView::Acknowledgement { date_time: get("dateTime"), ecr_reference: get("ecrReferenceNo") }
            }
            ResponseClass::Parameters => ResponseView::Parameters {
                vendor_id: get("vendorId"),
                vendor_terminal_type: get("vendorTerminalType"),
                trsm_id: get("trsmId"),
                vendor_key_index: get("vendorKeyIndex"),
                sama_key_index: get("samaKeyIndex"),
            },
            ResponseClass::Reconciliation | ResponseClass::Report => {
                let first_block = if class == ResponseClass::Reconciliation { 10 } else { 9 };
                let scheme_count = get("schemeCount").and_then(|c| c.parse().ok()).unwrap_or(0);
                ResponseView::Totals(TotalsReport {
                    date_time: get("dateTime"),
                    merchant_id: get("merchantId"),
                    schemes: parse_scheme_blocks(&self.fields, first_block, scheme_count),
                })
            }
            ResponseClass::SummaryReport => ResponseView::SummaryPage(SummaryPage {
                total_transactions: get("totalTransactions").and_then(|c| c.parse().ok()),
                records: parse_summary_records(&self.fields),
            }),
            ResponseClass::Repeat => match self.repeated() {
                Some(inner) => ResponseView::Repeat(Box::new(inner)),
                None => ResponseView::NothingToRepeat,
            },
        }
    }
}

/// The named fields of a card reply from index 4 on. Purchase with cashback inserts its cashback
/// and total after the amount (§5.2); the 2020 reversal has no card entry mode (§5.3).
fn financial_layout(class: ResponseClass, layout: Layout) -> Vec<&'static str> {
    let base = if layout == Layout::V2020 { FINANCIAL_V2020 } else { FINANCIAL_V35 };
    let mut names = Vec::with_capacity(base.len() + 2);
    for name in base {
        if class == ResponseClass::Reversal && layout == Layout::V2020 && *name == "cardEntryMode" {
            continue;
        }
        names.push(*name);
        if class == ResponseClass::FinancialCashback && *name == "amount" {
            names.extend(["cashbackAmount", "totalAmount"]);
        }
    }
    names
}

/// A field value as shown to people: card numbers masked, Arabic decoded.
fn present(name: &str, value: &str) -> String {
    if name == "pan" {
        return mask_pan(value);
    }
    if ARABIC_HEX_FIELDS.contains(&name) {
        return decode_arabic_hex(value).unwrap_or_else(|| value.to_owned());
    }
    value.to_owned()
}

/// A named field's value in SAR as people read it (`SAR 10.00` for `000000001000`); `None` for a
/// field that holds no amount (`AMOUNT_FIELDS`) or a value that is not one.
pub fn amount_in_sar(name: &str, value: &str) -> Option<String> {
    if !AMOUNT_FIELDS.contains(&name) {
        return None;
    }
    let amount = Amount::from_halalas(value.trim().parse().ok()?).ok()?;
    Some(format!("SAR {amount}"))
}

/// Masks a card number as the terminal prints it: first 6, last 4. Values that are already
/// masked, or too short to be a card number, are returned unchanged.
pub fn mask_pan(value: &str) -> String {
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    if digits < 10 || value.contains('*') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return value.to_owned();
    }
    let len = value.len();
    format!("{}{}{}", &value[..6], "*".repeat(len - 10), &value[len - 4..])
}

/// Decodes hex of ISO-8859-6 bytes (how terminals send Arabic text) into UTF-8.
pub fn decode_arabic_hex(hex_text: &str) -> Option<String> {
    let bytes = hex::decode(hex_text.trim()).ok()?;
    bytes.iter().map(|b| iso_8859_6(*b)).collect()
}

fn iso_8859_6(byte: u8) -> Option<char> {
    let code = match byte {
        0x00..=0xA0 => u32::from(byte),
        0xA4 => 0xA4,
        0xAC => 0x060C,
        0xAD => 0xAD,
        0xBB => 0x061B,
        0xBF => 0x061F,
        0xC1..=0xDA => 0x0621 + u32::from(byte - 0xC1),
        0xE0..=0xF2 => 0x0640 + u32::from(byte - 0xE0),
        _ => return None,
    };
    char::from_u32(code)
}

/// A typed view of a reply, by response class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseView {
    Card(Box<CardTransaction>),
    Register {
        terminal_id: Option<TerminalId>,
    },
    Session,
    Acknowledgement {
        date_time: Option<String>,
        ecr_reference: Option<String>,
    },
    Parameters {
        vendor_id: Option<String>,
        vendor_terminal_type: Option<String>,
        trsm_id: Option<String>,
        vendor_key_index: Option<String>,
        sama_key_index: Option<String>,
    },
    Totals(TotalsReport),
    SummaryPage(SummaryPage),
    Repeat(Box<Response>),
    NothingToRepeat,
    /// A reply shorter than its layout: only the code and the message mean something.
    Short,
    /// A reply whose command is not known.
    Unknown,
}

/// A card transaction's reply (§5.2 / §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardTransaction {
    /// First 6 and last 4 digits; never the full number.
    pub masked_pan: Option<String>,
    pub amount: Option<Amount>,
    pub cashback_amount: Option<Amount>,
    pub total_amount: Option<Amount>,
    pub stan: Option<String>,
    pub date_time: Option<String>,
    pub card_expiry: Option<String>,
    pub rrn: Option<String>,
    pub approval_code: Option<String>,
    pub terminal_id: Option<String>,
    pub merchant_id: Option<String>,
    pub batch_no: Option<String>,
    pub aid: Option<String>,
    pub card_entry_mode: Option<String>,
    /// `mada`, `VISA`, `MASTERCARD`, ...
    pub scheme_label: Option<String>,
    /// The CVM text, e.g. `CARDHOLDER PIN VERIFIED`.
    pub cardholder_verification: Option<String>,
    pub merchant_name: Option<String>,
    pub merchant_address: Option<String>,
    pub merchant_name_arabic: Option<String>,
    pub merchant_address_arabic: Option<String>,
    pub ecr_reference: Option<String>,
    pub signature: Option<String>,
}

/// Reconciliation and report totals (§5.5), parsed best-effort.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TotalsReport {
    pub date_time: Option<String>,
    pub merchant_id: Option<String>,
    pub schemes: Vec<SchemeTotals>,
}

/// The totals of one scheme.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemeTotals {
    pub scheme: String,
    /// `mada HOST`, `POS TERMINAL`, ... when the block has one.
    pub label: Option<String>,
    pub totals: Vec<CountAmount>,
}

/// A count and an amount under a name (`debit`, `credit`, `naqd`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountAmount {
    pub name: &'static str,
    pub count: u64,
    pub amount: Amount,
}

/// The pairs of the 15-field block, in order.
const HOST_BLOCK_TOTALS: &[&str] = &["debit", "credit", "naqd", "cashAdvance", "authorisation", "total"];
const DETAIL_BLOCK_TOTALS: &[&str] = &["purchaseOffline", "purchaseOnline", "naqd", "reversal", "refund", "completion"];

fn parse_scheme_blocks(fields: &[String], first: usize, count: usize) -> Vec<SchemeTotals> {
    let at = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
    let pairs = |names: &'static [&'static str], from: usize| -> Vec<CountAmount> {
        names
            .iter()
            .enumerate()
            .filter_map(|(n, name)| {
                let count = at(from + 2 * n).trim().parse().ok()?;
                let amount = Amount::from_halalas(at(from + 2 * n + 1).trim().parse().ok()?).ok()?;
                Some(CountAmount { name, count, amount })
            })
            .collect()
    };
    let mut schemes = Vec::new();
    let mut k = first - 1;
    while schemes.len() < count && k + 2 < fields.len() {
        if at(k + 3) == "mada HOST" || at(k + 3) == "POS TERMINAL" {
            schemes.push(SchemeTotals {
                scheme: at(k + 1).to_owned(),
                label: Some(at(k + 3).to_owned()),
                totals: pairs(HOST_BLOCK_TOTALS, k + 4),
            });
            k += 15;
        } else if at(k + 2) == "POS TERMINAL DETAILS" || at(k + 2) == "POS TERMINAL" {
            let names = if at(k + 2) == "POS TERMINAL" { HOST_BLOCK_TOTALS } else { DETAIL_BLOCK_TOTALS };
            schemes.push(SchemeTotals {
                scheme: at(k + 2).to_owned(),
                label: Some(at(k + 2).to_owned()),
                totals: pairs(names, k + 3),
            });
            k += 14;
        } else if at(k + 2) == "0" {
            schemes.push(SchemeTotals { scheme: at(k + 1).to_owned(), label: None, totals: Vec::new() });
            k += 2;
        } else {
            break;
        }
    }
    schemes
}

/// One record of a summary-report page (§5.6): the raw record fields, 9 or 10 of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SummaryPage {
    pub total_transactions: Option<u64>,
    pub records: Vec<Vec<String>>,
}

fn parse_summary_records(fields: &[String]) -> Vec<Vec<String>> {
    let mut body = fields.get(7..).unwrap_or(&[]);
    // Drop a trailing ECR reference and signature when present.
    if body.len() >= 2 {
        let (reference, signature) = (&body[body.len() - 2], &body[body.len() - 1]);
        if reference.len() == 14 && signature.len() == 64 {
            body = &body[..body.len() - 2];
        }
    }
    // Older terminals send 10-field records with a "claim" Yes/No as the 6th field.
    let width = if body.get(5).is_some_and(|f| f == "Yes" || f == "No") { 10 } else { 9 };
    body.chunks(width).filter(|c| c.len() == width).map(<[String]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn layout_names_are_read_in_one_place() {
        for (text, layout) in [
            ("v35", Layout::V35),
            ("3.5", Layout::V35),
            (" V3.5 ", Layout::V35),
            ("v2020", Layout::V2020),
            ("2020", Layout::V2020),
        ] {
            assert_eq!(text.parse::<Layout>(), Ok(layout), "{text}");
        }
        let error = "v9".parse::<Layout>().unwrap_err();
        assert_eq!((error.code, error.field.as_str()), (StatusCode::InvalidLayout, "layout"));
    }

    #[test]
    fn amounts_are_shown_in_sar_and_other_fields_are_not_amounts() {
        assert_eq!(amount_in_sar("amount", "000000001000").as_deref(), Some("SAR 10.00"));
        assert_eq!(amount_in_sar("totalAmount", "000000000005").as_deref(), Some("SAR 0.05"));
        assert_eq!(amount_in_sar("stan", "000000001000"), None);
        assert_eq!(amount_in_sar("amount", "12x"), None);
    }

    use super::*;

    fn response(fields: &[&str]) -> Response {
        Response::from_fields(fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn the_debug_form_never_shows_a_whole_card_number() {
        // A terminal that sends the whole PAN (4761731554330119 passes the Luhn check).
        let reply = response(&["", "A1", "000", "APPROVED", "4761731554330119", "000000001000"]);
        let text = format!("{reply:?}");
        assert!(!text.contains("4761731554330119"), "{text}");
        assert!(text.contains("476173******0119") && text.contains("000000001000"), "{text}");
        assert_eq!(reply.fields[4], "4761731554330119", "the fields themselves stay as received");
    }

    #[test]
    fn register_reply_yields_the_terminal_id() {
        let r = response(&["", "A0", "800", "8184000200000077"]);
        assert!(r.approved());
        assert_eq!(r.message(), "Registration success");
        assert_eq!(
            r.view(Layout::V35),
            ResponseView::Register { terminal_id: Some(TerminalId::parse("8184000200000077").unwrap()) }
        );
    }

    #[test]
    fn a_short_financial_reply_keeps_code_and_message() {
        let r = response(&["", "A1", "116", "DECLINED"]);
        assert!(!r.approved());
        assert_eq!((r.code(), r.message().as_str()), ("116", "DECLINED"));
        assert_eq!(r.view(Layout::V35), ResponseView::Short);
    }

    #[test]
    fn layouts_put_each_field_where_the_protocol_says() {
        let v35 = financial_layout(ResponseClass::Financial, Layout::V35);
        assert_eq!((v35[10 - 4], v35[35 - 4], v35.len()), ("rrn", "ecrReferenceNo", 33));
        let cashback = financial_layout(ResponseClass::FinancialCashback, Layout::V35);
        assert_eq!(
            (cashback[6 - 4], cashback[7 - 4], cashback[37 - 4]),
            ("cashbackAmount", "totalAmount", "ecrReferenceNo")
        );
        let v2020 = financial_layout(ResponseClass::Financial, Layout::V2020);
        assert_eq!((v2020[9 - 4], v2020[27 - 4]), ("rrn", "ecrReferenceNo"));
        let cashback = financial_layout(ResponseClass::FinancialCashback, Layout::V2020);
        assert_eq!(cashback[29 - 4], "ecrReferenceNo");
        let reversal = financial_layout(ResponseClass::Reversal, Layout::V2020);
        assert_eq!((reversal[20 - 4], reversal[26 - 4]), ("merchantCategoryCode", "ecrReferenceNo"));
    }

    #[test]
    fn pans_are_masked_first_six_last_four() {
        assert_eq!(mask_pan("5588123412341234"), "558812******1234");
        assert_eq!(mask_pan("558812******1234"), "558812******1234");
        assert_eq!(mask_pan("1234"), "1234");
    }

    #[test]
    fn arabic_hex_is_decoded_from_iso_8859_6() {
        // "نامي" in ISO-8859-6: E6 C7 E5 EA
        assert_eq!(decode_arabic_hex("e6c7e5ea").unwrap(), "نامي");
        assert!(decode_arabic_hex("zz").is_none());
    }

    #[test]
    fn a_duplicate_is_judged_by_the_transaction_it_repeats() {
        let r =
            response(&["", "C2", "000", "APPROVED", "210320144000", "A1", "116", "DECLINED", "12345678000002", "sig"]);
        assert_eq!(r.repeated().unwrap().code(), "116");
        assert!(!r.approved());
    }

    #[test]
    fn reconciliation_blocks_are_read_per_scheme() {
        let mut fields = vec!["", "B1", "500", "RECONCILED", "210320144000", "MID1", "000123", "BC", "1.0", "2"];
        fields.extend(["mada", "1", "mada HOST", "2", "3000", "1", "500", "0", "0", "0", "0", "0", "0", "3", "3500"]);
        fields.extend(["VISA", "0"]);
        fields.extend(["Shop", "Riyadh", "", "", "12345678000001", "sig"]);
        let r = response(&fields);
        assert!(r.approved());
        let ResponseView::Totals(report) = r.view(Layout::V35) else { panic!("not totals") };
        assert_eq!(report.schemes.len(), 2);
        assert_eq!(report.schemes[0].scheme, "mada");
        assert_eq!(report.schemes[0].totals[0].count, 2);
        assert_eq!(report.schemes[0].totals[0].amount.halalas(), 3000);
        assert_eq!(report.schemes[1].scheme, "VISA");
        assert_eq!(r.ecr_reference().as_deref(), Some("12345678000001"));
    }
}
