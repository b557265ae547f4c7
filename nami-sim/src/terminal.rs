//! The terminal's behaviour without any I/O: request validation, registration, the journal, the
//! amount rules, totals, and every reply in the 3.5 layout of docs/protocol.md §5. The link layer
//! (`exchange`) feeds it decoded frames and writes back what it returns, so all of this can be
//! tested and reasoned about without sockets.

use chrono::{Datelike, Local, Timelike};
use nami_sdk::{Request, ResponseClass, Signature, TerminalId, TxnType};
use serde::Serialize;

/// Merchant fields every reply carries (§5.2 \[31\]-\[34\]). The Arabic ones are hex of ISO-8859-6
/// bytes, as terminals send them: "متجر نامي" and "الرياض".
pub const MERCHANT_NAME: &str = "NAMI TEST MERCHANT";
pub const MERCHANT_ADDRESS: &str = "KING FAHD RD, RIYADH";
pub const MERCHANT_NAME_AR_HEX: &str = "e5caccd120e6c7e5ea";
pub const MERCHANT_ADDRESS_AR_HEX: &str = "c7e4d1eac7d6";
pub const MERCHANT_ID: &str = "800150400566001";
pub const MERCHANT_CATEGORY_CODE: &str = "5411";
pub const APPLICATION_VERSION: &str = "3.5.0-SIM";

/// Outcomes chosen by the last two digits of the amount (halalas % 100), so that tests can
/// produce declines without faults. Anything else is approved.
pub const AMOUNT_RULES: &[AmountRule] = &[
    AmountRule { cents: 51, code: "116", message: "DECLINED", cvm: "NO VERIFICATION REQUIRED" },
    AmountRule { cents: 5, code: "117", message: "INCORRECT PIN", cvm: "CARDHOLDER PIN VERIFICATION FAILED" },
    AmountRule { cents: 54, code: "101", message: "EXPIRED CARD", cvm: "NO VERIFICATION REQUIRED" },
];

/// One amount rule: an amount whose halalas end in `cents` gets `code`.
#[derive(Debug, Clone, Copy)]
pub struct AmountRule {
    pub cents: u64,
    pub code: &'static str,
    pub message: &'static str,
    /// What the card verification line says (§5.2 \[30\]); the PIN rule asks for a PIN.
    pub cvm: &'static str,
}

/// Above this amount (SAR 300, the mada contactless limit) an approved card transaction says the
/// PIN was verified.
const PIN_LIMIT_HALALAS: u64 = 30_000;

/// How many summary-report records one page holds (§5.6).
pub const SUMMARY_PAGE_SIZE: usize = 10;

/// A simulated card: one per scheme. Which one "is tapped" depends on the amount (see
/// [`Card::for_amount`]) so that tests can choose the scheme.
#[derive(Debug, Clone, Copy)]
pub struct Card {
    pub scheme: &'static str,
    pub masked_pan: &'static str,
    /// The whole card number (a Luhn-valid test number with the masked one's first 6 and last
    /// 4 digits), sent instead of the masked one when full card numbers are turned on.
    pub pan: &'static str,
    pub aid: &'static str,
    pub kernel_id: &'static str,
    pub product: &'static str,
    /// The PAN/entry tag of summary-report records.
    pub tag: &'static str,
}

pub const CARDS: &[Card] = &[
    Card {
        scheme: "mada",
        masked_pan: "588845******1234",
        pan: "5888451712711234",
        aid: "A0000002281010",
        kernel_id: "2A",
        product: "mada DEBIT",
        tag: "-P1-CTLS",
    },
    Card {
        scheme: "VISA",
        masked_pan: "476173******0119",
        pan: "4761731554330119",
        aid: "A0000000031010",
        kernel_id: "03",
        product: "VISA CREDIT",
        tag: "-VC-CTLS",
    },
    Card {
        scheme: "MASTERCARD",
        masked_pan: "520473******4321",
        pan: "5204731712714321",
        aid: "A0000000041010",
        kernel_id: "02",
        product: "MASTERCARD CREDIT",
        tag: "-MC-CTLS",
    },
];

impl Card {
    /// The card for an amount: whole SAR ending in 1 is VISA, in 2 MASTERCARD, else mada
    /// (SAR 1.00 and 11.00 are VISA, 2.00 MASTERCARD, 10.00 mada).
    pub fn for_amount(halalas: u64) -> Card {
        match (halalas / 100) % 10 {
            1 => CARDS[1],
            2 => CARDS[2],
            _ => CARDS[0],
        }
    }

    fn for_scheme(scheme: &str) -> Card {
        CARDS.iter().copied().find(|c| c.scheme == scheme).unwrap_or(CARDS[0])
    }
}

/// One transaction of the simulated terminal's journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SimulatorTransaction))]
pub struct SimTransaction {
    pub ecr_reference: String,
    /// E.g. `PURCHASE`.
    #[serde(serialize_with = "serialize_txn_type")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub txn_type: TxnType,
    /// The amount of the transaction (for a reversal, the amount reversed).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub amount_halalas: Option<u64>,
    /// The cashback part of a purchase with cashback.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cashback_halalas: Option<u64>,
    pub response_code: String,
    pub response_message: String,
    /// Whether the response code approves the transaction (by its response class, D9).
    pub approved: bool,
    pub rrn: String,
    pub stan: String,
    /// Empty when declined.
    pub approval_code: String,
    pub scheme: String,
    pub masked_pan: String,
    /// Cancelled: reversed by a REVERSAL, or (a pre-authorisation) voided by PRE_AUTH_VOID.
    pub reversed: bool,
    /// Counted by a reconciliation already; no longer in the totals.
    pub settled: bool,
    /// `ddMMyyHHmmss`.
    pub date_time: String,
    /// The reply the terminal sent (its first field the empty STX slot); DUPLICATE sends it again.
    pub reply: Vec<String>,
}

fn serialize_txn_type<S: serde::Serializer>(txn_type: &TxnType, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(txn_type.name())
}

/// Settings of SET_PARAMETER, returned by GET_PARAMETER.
#[derive(Debug, Clone)]
struct Parameters {
    vendor_id: String,
    vendor_terminal_type: String,
    trsm_id: String,
    vendor_key_index: String,
    sama_key_index: String,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            vendor_id: "01".into(),
            vendor_terminal_type: "02".into(),
            trsm_id: "000001".into(),
            vendor_key_index: "01".into(),
            sama_key_index: "01".into(),
        }
    }
}

/// What a received frame turned out to be.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// Answer at once with these fields: a bad frame, an unregistered terminal, a bad signature.
    Reply(Vec<String>),
    /// A well-formed request the terminal will carry out.
    Valid(Box<Valid>),
}

/// A validated request and the signature it carried.
#[derive(Debug)]
pub(crate) struct Valid {
    pub request: Request,
    pub signature: Option<Signature>,
}

impl Valid {
    pub fn txn_type(&self) -> TxnType {
        self.request.txn_type
    }

    /// Whether the type reads a card, so that in card-tap mode it waits for the tap.
    pub fn needs_card(&self) -> bool {
        matches!(
            self.txn_type(),
            TxnType::Purchase
                | TxnType::PurchaseCashback
                | TxnType::Refund
                | TxnType::PreAuthorization
                | TxnType::CashAdvance
                | TxnType::BillPayment
        )
    }

    fn ecr_reference(&self) -> String {
        self.request.ecr_reference.as_ref().map(|r| r.as_str().to_owned()).unwrap_or_default()
    }

    fn signature_text(&self) -> String {
        self.signature.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default()
    }
}

/// The terminal's state.
#[derive(Debug)]
pub(crate) struct Terminal {
    terminal_id: TerminalId,
    registered: bool,
    session_open: bool,
    stan: u32,
    rrn_sequence: u64,
    batch_no: u32,
    journal: Vec<SimTransaction>,
    parameters: Parameters,
    /// Card replies carry the whole card number in field \[4\] (see [`Card::pan`]).
    full_pan: bool,
    /// DUPLICATE repeats a reply without its command (see `Simulator::set_duplicate_without_command`).
    duplicate_without_command: bool,
}

/// A transaction about to be journaled.
struct Draft<'a> {
    valid: &'a Valid,
    amount: Option<u64>,
    cashback: Option<u64>,
    code: String,
    message: String,
    card: Card,
    cvm: &'static str,
    /// Kept from the original (reversal), or `None` for a new one.
    rrn: Option<String>,
    approval_code: Option<String>,
}

impl Terminal {
    pub fn new(terminal_id: TerminalId, registered: bool) -> Self {
        // RRNs start from the time of day so that two runs on one day rarely repeat one.
        let now = Local::now();
        Terminal {
            terminal_id,
            registered,
            session_open: false,
            stan: 0,
            rrn_sequence: u64::from(now.num_seconds_from_midnight()) * 10,
            batch_no: 1,
            journal: Vec::new(),
            parameters: Parameters::default(),
            full_pan: false,
            duplicate_without_command: false,
        }
    }

    pub fn set_duplicate_without_command(&mut self, on: bool) {
        self.duplicate_without_command = on;
    }

    /// Whether card replies carry the whole card number instead of the masked one.
    pub fn set_full_pan(&mut self, on: bool) {
        self.full_pan = on;
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }

    pub fn session_open(&self) -> bool {
        self.session_open
    }

    pub fn journal(&self) -> &[SimTransaction] {
        &self.journal
    }

    /// Forgets the registration and the session; the journal survives, like a terminal's batch.
    pub fn reboot(&mut self) {
        self.registered = false;
        self.session_open = false;
    }

    /// Validates a frame's fields (\[0\] empty, \[1\] command, ..., last "120"): the command, the
    /// field count and widths, then registration and the signature.
    pub fn prepare(&self, fields: &[String]) -> Prepared {
        let command = echo_command(fields);
        let Some(txn_type) = fields.get(1).and_then(|c| TxnType::from_command(c)) else {
            tracing::info!(command, "unknown command");
            return Prepared::Reply(format_error(&command));
        };
        if fields.len() < 3 || fields.last().map(String::as_str) != Some(nami_sdk::protocol::frame::TIMEOUT_FIELD) {
            tracing::info!(command, "frame does not end with the \"120\" field");
            return Prepared::Reply(format_error(&command));
        }
        let (request, signature) = match Request::from_wire_fields(txn_type, &fields[2..fields.len() - 1]) {
            Ok(parsed) => parsed,
            Err(error) => {
                tracing::info!(command, %error, "malformed request");
                return Prepared::Reply(format_error(&command));
            }
        };
        if txn_type.spec().is_signed() {
            if !self.registered {
                return Prepared::Reply(short(&command, "1003", "DO REGISTER"));
            }
            let expected = request.ecr_reference.as_ref().map(|r| Signature::compute(r, &self.terminal_id));
            if expected.is_none() || expected != signature {
                tracing::info!(command, "signature does not match the terminal ID");
                return Prepared::Reply(short(&command, "916", "MAC INCORRECT"));
            }
        }
        Prepared::Valid(Box::new(Valid { request, signature }))
    }

    /// Carries out a valid request and returns the reply fields. `forced` is a response code a
    /// [`crate::Fault::Decline`] imposes.
    pub fn complete(&mut self, valid: &Valid, forced: Option<&str>) -> Vec<String> {
        let txn_type = valid.txn_type();
        let command = txn_type.command();
        match txn_type {
            TxnType::Register => {
                let code = forced.unwrap_or("800");
                if ResponseClass::Register.approves(code) {
                    self.registered = true;
                }
                vec![String::new(), command.into(), code.into(), self.terminal_id.as_str().into()]
            }
            TxnType::StartSession | TxnType::EndSession => {
                let code = forced.unwrap_or("000");
                if ResponseClass::Session.approves(code) {
                    self.session_open = txn_type == TxnType::StartSession;
                }
                vec![String::new(), command.into(), code.into()]
            }
            TxnType::Purchase
            | TxnType::PurchaseCashback
            | TxnType::PreAuthorization
            | TxnType::CashAdvance
            | TxnType::BillPayment => self.card_sale(valid, forced),
            TxnType::Refund | TxnType::PreAuthCompletion | TxnType::PreAuthExtension | TxnType::PreAuthVoid => {
                self.referenced(valid, forced)
            }
            TxnType::Reversal => self.reversal(valid, forced),
            _ if forced.is_some() => {
                let code = forced.unwrap_or_default();
                let mut reply = short(command, code, &message_for(txn_type, code));
                reply.extend([valid.ecr_reference(), valid.signature_text()]);
                reply
            }
            TxnType::Reconciliation => self.reconciliation(valid),
            TxnType::DetailReport | TxnType::SnapshotTotal => self.report(valid),
            TxnType::SummaryReport => self.summary(valid),
            TxnType::Duplicate => self.duplicate(valid),
            TxnType::GetParameter => {
                let p = &self.parameters;
                let mut reply = short(command, "000", "APPROVED");
                reply.extend([
                    now_long(),
                    p.vendor_id.clone(),
                    p.vendor_terminal_type.clone(),
                    p.trsm_id.clone(),
                    p.vendor_key_index.clone(),
                    p.sama_key_index.clone(),
                    valid.ecr_reference(),
                    valid.signature_text(),
                ]);
                reply
            }
            TxnType::SetParameter => {
                let r = &valid.request;
                let text = |v: Option<&str>, old: &str| v.map(str::to_owned).unwrap_or_else(|| old.to_owned());
                let p = &self.parameters;
                self.parameters = Parameters {
                    vendor_id: text(r.vendor_id.as_ref().map(|v| v.as_str()), &p.vendor_id),
                    vendor_terminal_type: text(
                        r.vendor_terminal_type.as_ref().map(|v| v.as_str()),
                        &p.vendor_terminal_type,
                    ),
                    trsm_id: text(r.trsm_id.as_ref().map(|v| v.as_str()), &p.trsm_id),
                    vendor_key_index: text(r.vendor_key_index.as_ref().map(|v| v.as_str()), &p.vendor_key_index),
                    sama_key_index: text(r.sama_key_index.as_ref().map(|v| v.as_str()), &p.sama_key_index),
                };
                self.acknowledgement(valid, "300")
            }
            TxnType::ParameterDownload | TxnType::PartialDownload | TxnType::SetTerminalLanguage => {
                self.acknowledgement(valid, "300")
            }
            TxnType::CheckStatus => self.acknowledgement(valid, "000"),
        }
    }

    /// The reply of a card transaction whose card never came (card-tap mode timed out).
    pub fn no_card(&mut self, valid: &Valid) -> Vec<String> {
        let amount = valid.request.amount.map(|a| a.halalas());
        self.commit(Draft {
            valid,
            amount,
            cashback: valid.request.cashback_amount.map(|a| a.halalas()),
            code: "100".into(),
            message: "CARD READ TIMEOUT".into(),
            card: Card::for_amount(amount.unwrap_or(0)),
            cvm: "NO VERIFICATION REQUIRED",
            rrn: None,
            approval_code: None,
        })
    }

    fn acknowledgement(&self, valid: &Valid, code: &str) -> Vec<String> {
        let mut reply = short(valid.txn_type().command(), code, "APPROVED");
        reply.extend([now_long(), valid.ecr_reference(), valid.signature_text()]);
        reply
    }

    /// Purchase, purchase with cashback, pre-authorisation, cash advance, bill payment: the
    /// amount rules decide.
    fn card_sale(&mut self, valid: &Valid, forced: Option<&str>) -> Vec<String> {
        let amount = valid.request.amount.map(|a| a.halalas()).unwrap_or(0);
        let rule = AMOUNT_RULES.iter().find(|r| r.cents == amount % 100);
        let (code, message, cvm) = match (forced, rule) {
            (Some(code), _) => (code.to_owned(), message_for(valid.txn_type(), code), "NO VERIFICATION REQUIRED"),
            (None, Some(rule)) => (rule.code.to_owned(), rule.message.to_owned(), rule.cvm),
            (None, None) => ("000".to_owned(), "APPROVED".to_owned(), cvm_for(amount)),
        };
        self.commit(Draft {
            valid,
            amount: Some(amount),
            cashback: valid.request.cashback_amount.map(|a| a.halalas()),
            code,
            message,
            card: Card::for_amount(amount),
            cvm,
            rrn: None,
            approval_code: None,
        })
    }

    /// Refund, completion, extension, void: the RRN (and approval code, where the frame has one)
    /// must name an approved, uncancelled transaction of the right kind, else 187.
    fn referenced(&mut self, valid: &Valid, forced: Option<&str>) -> Vec<String> {
        let request = &valid.request;
        let txn_type = request.txn_type;
        let rrn = request.rrn.as_ref().map(|r| r.as_str()).unwrap_or_default();
        let approval = request.approval_code.as_ref().map(|a| a.as_str());
        let originals: &[TxnType] = if txn_type == TxnType::Refund {
            &[TxnType::Purchase, TxnType::PurchaseCashback, TxnType::PreAuthCompletion, TxnType::BillPayment]
        } else {
            &[TxnType::PreAuthorization]
        };
        let original = self.journal.iter().rposition(|t| {
            t.approved
                && !t.reversed
                && t.rrn == rrn
                && originals.contains(&t.txn_type)
                && approval.is_none_or(|a| a == t.approval_code)
        });
        let request_amount = request.amount.map(|a| a.halalas());
        let Some(index) = original else {
            let code = forced.unwrap_or("187");
            return self.commit(Draft {
                valid,
                amount: request_amount,
                cashback: None,
                code: code.to_owned(),
                message: if forced.is_some() { message_for(txn_type, code) } else { "ORIGINAL NOT FOUND".into() },
                card: Card::for_amount(request_amount.unwrap_or(0)),
                cvm: "NO VERIFICATION REQUIRED",
                rrn: None,
                approval_code: None,
            });
        };
        let original_amount =
            self.journal[index].amount_halalas.unwrap_or(0) + self.journal[index].cashback_halalas.unwrap_or(0);
        let amount = request_amount.unwrap_or(original_amount);
        let code = match forced {
            Some(code) => code.to_owned(),
            None if txn_type == TxnType::Refund && amount > original_amount => "198".to_owned(),
            None => "000".to_owned(),
        };
        let card = Card::for_scheme(&self.journal[index].scheme);
        let reply = self.commit(Draft {
            valid,
            amount: Some(amount),
            cashback: None,
            message: message_for(txn_type, &code),
            code,
            card,
            cvm: "NO VERIFICATION REQUIRED",
            rrn: None,
            approval_code: None,
        });
        if txn_type == TxnType::PreAuthVoid && self.journal.last().is_some_and(|t| t.approved) {
            self.journal[index].reversed = true;
        }
        reply
    }

    /// Reverses the last transaction, if it was approved, not yet cancelled and not yet settled;
    /// otherwise 480 (original not found).
    fn reversal(&mut self, valid: &Valid, forced: Option<&str>) -> Vec<String> {
        let last = self.journal.iter().rposition(|t| t.txn_type != TxnType::Reversal);
        let target = last.filter(|i| {
            let t = &self.journal[*i];
            t.approved && !t.reversed && !t.settled
        });
        let Some(index) = target else {
            let code = forced.unwrap_or("480");
            return self.commit(Draft {
                valid,
                amount: None,
                cashback: None,
                code: code.to_owned(),
                message: if forced.is_some() {
                    message_for(TxnType::Reversal, code)
                } else {
                    "NO TRANSACTION TO REVERSE".into()
                },
                card: CARDS[0],
                cvm: "NO VERIFICATION REQUIRED",
                rrn: None,
                approval_code: None,
            });
        };
        let original = self.journal[index].clone();
        let code = forced.unwrap_or("400").to_owned();
        let reply = self.commit(Draft {
            valid,
            amount: Some(original.amount_halalas.unwrap_or(0) + original.cashback_halalas.unwrap_or(0)),
            cashback: None,
            message: message_for(TxnType::Reversal, &code),
            code,
            card: Card::for_scheme(&original.scheme),
            cvm: "NO VERIFICATION REQUIRED",
            rrn: Some(original.rrn.clone()),
            approval_code: Some(original.approval_code.clone()),
        });
        if self.journal.last().is_some_and(|t| t.approved) {
            self.journal[index].reversed = true;
        }
        reply
    }

    /// Assigns STAN, RRN and approval code, builds the §5.2 reply and journals the transaction.
    fn commit(&mut self, draft: Draft<'_>) -> Vec<String> {
        let valid = draft.valid;
        let txn_type = valid.txn_type();
        let approved = txn_type.spec().response.approves(&draft.code);
        let stan = self.next_stan();
        let rrn = draft.rrn.unwrap_or_else(|| self.next_rrn());
        let approval_code = match draft.approval_code {
            Some(code) => code,
            None if approved => approval_code_for(self.rrn_sequence),
            None => String::new(),
        };
        let now = Local::now();
        let amount_wire = format!("{:012}", draft.amount.unwrap_or(0));
        let mut reply = vec![
            String::new(),
            txn_type.command().to_owned(),
            draft.code.clone(),
            draft.message.clone(),
            if self.full_pan { draft.card.pan } else { draft.card.masked_pan }.to_owned(),
            amount_wire,
        ];
        if txn_type == TxnType::PurchaseCashback {
            let cashback = draft.cashback.unwrap_or(0);
            reply.push(format!("{cashback:012}"));
            reply.push(format!("{:012}", draft.amount.unwrap_or(0) + cashback));
        }
        let cryptogram = format!("{:016X}", mix(self.rrn_sequence ^ u64::from(stan)));
        reply.extend([
            "00".to_owned(), // business code
            format!("{stan:06}"),
            now.format("%m%d%H%M%S").to_string(),
            "2912".to_owned(), // card expiry, YYMM
            rrn.clone(),
            approval_code.clone(),
            self.terminal_id.as_str().to_owned(),
            MERCHANT_ID.to_owned(),
            format!("{:06}", self.batch_no),
            draft.card.aid.to_owned(),
            cryptogram,
            if approved { "40" } else { "00" }.to_owned(), // CID: TC or AAC
            "000000".to_owned(),                           // CVR
            "0000000000".to_owned(),                       // TVR
            "E800".to_owned(),                             // TSI
            draft.card.kernel_id.to_owned(),
            format!("V0010013{:021}", mix(u64::from(stan))), // PAR: 29 characters
            "00".to_owned(),                                 // PAN sequence number
            "CONTACTLESS".to_owned(),
            MERCHANT_CATEGORY_CODE.to_owned(),
            receipt_name(txn_type).to_owned(),
            draft.card.scheme.to_owned(),
            draft.card.product.to_owned(),
            APPLICATION_VERSION.to_owned(),
            draft.cvm.to_owned(),
        ]);
        reply.extend(merchant_trailer(valid));
        self.journal.push(SimTransaction {
            ecr_reference: valid.ecr_reference(),
            txn_type,
            amount_halalas: draft.amount,
            cashback_halalas: draft.cashback.filter(|_| txn_type == TxnType::PurchaseCashback),
            response_code: draft.code,
            response_message: draft.message,
            approved,
            rrn,
            stan: format!("{stan:06}"),
            approval_code,
            scheme: draft.card.scheme.to_owned(),
            masked_pan: draft.card.masked_pan.to_owned(),
            reversed: false,
            settled: false,
            date_time: now.format("%d%m%y%H%M%S").to_string(),
            reply: reply.clone(),
        });
        reply
    }

    /// Totals per scheme of the open batch: approved, uncancelled, unsettled transactions.
    fn totals(&self) -> Vec<(&'static str, Totals)> {
        CARDS
            .iter()
            .map(|card| {
                let mut totals = Totals::default();
                for t in
                    self.journal.iter().filter(|t| t.scheme == card.scheme && t.approved && !t.reversed && !t.settled)
                {
                    totals.add(t);
                }
                (card.scheme, totals)
            })
            .collect()
    }

    /// Scheme blocks (§5.5): 15 fields for a scheme with transactions, `name, "0"` without.
    fn scheme_blocks(&self, label: &str) -> Vec<String> {
        let mut out = vec![CARDS.len().to_string()];
        for (scheme, totals) in self.totals() {
            out.push(scheme.to_owned());
            if totals.is_empty() {
                out.push("0".to_owned());
                continue;
            }
            out.extend(["1".to_owned(), label.to_owned()]);
            for (count, amount) in totals.pairs() {
                out.extend([count.to_string(), amount.to_string()]);
            }
        }
        out
    }

    /// Reconciliation: totals per scheme, then the batch is closed (totals reset).
    fn reconciliation(&mut self, valid: &Valid) -> Vec<String> {
        let trace = self.next_stan();
        let mut reply = short(TxnType::Reconciliation.command(), "500", "APPROVED");
        reply.extend([now_long(), MERCHANT_ID.to_owned(), format!("{trace:06}"), "00".to_owned()]);
        reply.push(APPLICATION_VERSION.to_owned());
        reply.extend(self.scheme_blocks("mada HOST"));
        reply.extend(merchant_trailer(valid));
        for t in &mut self.journal {
            t.settled = true;
        }
        self.batch_no += 1;
        reply
    }

    /// Detail report and snapshot total: the open batch's totals, nothing reset.
    fn report(&self, valid: &Valid) -> Vec<String> {
        let mut reply = short(valid.txn_type().command(), "00", "APPROVED");
        reply.extend([now_long(), MERCHANT_ID.to_owned(), "00".to_owned(), APPLICATION_VERSION.to_owned()]);
        reply.extend(self.scheme_blocks("POS TERMINAL"));
        reply.extend(merchant_trailer(valid));
        reply
    }

    /// Summary report page `attempt` (0 first): \[5\] how many more pages the ECR should ask for,
    /// \[6\] the number of transactions in the open batch, then 9-field records.
    fn summary(&self, valid: &Valid) -> Vec<String> {
        let records: Vec<&SimTransaction> = self.journal.iter().filter(|t| !t.settled).collect();
        let pages = records.len().div_ceil(SUMMARY_PAGE_SIZE).max(1);
        let attempt = usize::from(valid.request.request_attempt_no.unwrap_or(0));
        let remaining = pages.saturating_sub(attempt + 1);
        let mut reply = short(TxnType::SummaryReport.command(), "00", "APPROVED");
        reply.extend([now_long(), remaining.to_string(), records.len().to_string()]);
        for t in records.iter().skip(attempt * SUMMARY_PAGE_SIZE).take(SUMMARY_PAGE_SIZE) {
            let amount = t.amount_halalas.unwrap_or(0) + t.cashback_halalas.unwrap_or(0);
            let state = match (t.approved, t.reversed) {
                (true, false) => "APP",
                (true, true) => "REV",
                (false, _) => "DEC",
            };
            reply.extend([
                summary_label(t.txn_type).to_owned(),
                t.date_time.get(..6).unwrap_or_default().to_owned(),
                t.rrn.clone(),
                format!("{:010}.{:02}", amount / 100, amount % 100),
                state.to_owned(),
                t.date_time.get(6..10).unwrap_or_default().to_owned(),
                Card::for_scheme(&t.scheme).tag.to_owned(),
                t.approval_code.clone(),
                t.stan.clone(),
            ]);
        }
        reply.extend([valid.ecr_reference(), valid.signature_text()]);
        reply
    }

    /// DUPLICATE: the latest journaled transaction whose ECR reference ends in the requested
    /// six digits, wrapped as §5.7 says; else 187 NO DATA FOUND.
    fn duplicate(&self, valid: &Valid) -> Vec<String> {
        let wanted = valid.request.previous_ecr_no.as_ref().map(|p| p.as_str()).unwrap_or_default();
        let found =
            self.journal.iter().rev().find(|t| t.ecr_reference.len() == 14 && t.ecr_reference.ends_with(wanted));
        let command = TxnType::Duplicate.command();
        let mut reply = match found {
            Some(t) if self.duplicate_without_command => {
                let mut reply = short(command, "000", "APPROVED");
                reply.extend(t.reply.iter().skip(2).cloned());
                reply
            }
            Some(t) => {
                let mut reply = short(command, "000", "APPROVED");
                reply.push(now_long());
                reply.extend(t.reply.iter().skip(1).cloned());
                reply
            }
            None => {
                let mut reply = short(command, "187", "NO DATA FOUND");
                reply.push(now_long());
                reply
            }
        };
        reply.extend([valid.ecr_reference(), valid.signature_text()]);
        reply
    }

    fn next_stan(&mut self) -> u32 {
        self.stan = if self.stan >= 999_999 { 1 } else { self.stan + 1 };
        self.stan
    }

    /// 12 digits: `yyddd` and a 7-digit sequence, so RRNs increase.
    fn next_rrn(&mut self) -> String {
        self.rrn_sequence += 1;
        let now = Local::now();
        format!("{:02}{:03}{:07}", now.year() % 100, now.ordinal(), self.rrn_sequence % 10_000_000)
    }
}

/// Counts and amounts of one scheme.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    debit: (u64, u64),
    credit: (u64, u64),
    naqd: (u64, u64),
    cash_advance: (u64, u64),
    authorisation: (u64, u64),
}

impl Totals {
    /// Purchases, bill payments and completions are debits (a purchase with cashback with its
    /// cashback, which NAQD counts again); refunds are credits; pre-authorisations count apart.
    fn add(&mut self, t: &SimTransaction) {
        let amount = t.amount_halalas.unwrap_or(0);
        let add = |pair: &mut (u64, u64), value: u64| {
            pair.0 += 1;
            pair.1 += value;
        };
        match t.txn_type {
            TxnType::Purchase | TxnType::BillPayment | TxnType::PreAuthCompletion => add(&mut self.debit, amount),
            TxnType::PurchaseCashback => {
                let cashback = t.cashback_halalas.unwrap_or(0);
                add(&mut self.debit, amount + cashback);
                add(&mut self.naqd, cashback);
            }
            TxnType::Refund => add(&mut self.credit, amount),
            TxnType::CashAdvance => add(&mut self.cash_advance, amount),
            TxnType::PreAuthorization => add(&mut self.authorisation, amount),
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.pairs().iter().all(|(count, _)| *count == 0)
    }

    /// debit, credit, NAQD, cash advance, authorisation, total (debit + credit + cash advance).
    fn pairs(&self) -> [(u64, u64); 6] {
        let total =
            (self.debit.0 + self.credit.0 + self.cash_advance.0, self.debit.1 + self.credit.1 + self.cash_advance.1);
        [self.debit, self.credit, self.naqd, self.cash_advance, self.authorisation, total]
    }
}

/// The trailer of card and totals replies: merchant fields, then the request's ECR reference and
/// signature echoed.
fn merchant_trailer(valid: &Valid) -> [String; 6] {
    [
        MERCHANT_NAME.to_owned(),
        MERCHANT_ADDRESS.to_owned(),
        MERCHANT_NAME_AR_HEX.to_owned(),
        MERCHANT_ADDRESS_AR_HEX.to_owned(),
        valid.ecr_reference(),
        valid.signature_text(),
    ]
}

/// A reply of just command, code and message.
pub(crate) fn short(command: &str, code: &str, message: &str) -> Vec<String> {
    vec![String::new(), command.to_owned(), code.to_owned(), message.to_owned()]
}

/// The reply to a frame the terminal cannot read.
pub(crate) fn format_error(command: &str) -> Vec<String> {
    short(command, "904", "FORMAT ERROR")
}

/// The reply to a request that arrives while another exchange runs.
pub(crate) fn busy(command: &str) -> Vec<String> {
    short(command, "923", "REQUEST IN PROGRESS")
}

/// The command to echo in an error reply: the frame's own if it looks like one, else `??`.
pub(crate) fn echo_command(fields: &[String]) -> String {
    match fields.get(1) {
        Some(c) if (1..=4).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()) => c.clone(),
        _ => "??".to_owned(),
    }
}

/// The message for a response code: APPROVED for codes the type's class approves, else the
/// code's meaning in capitals.
fn message_for(txn_type: TxnType, code: &str) -> String {
    if txn_type.spec().response.approves(code) {
        return "APPROVED".to_owned();
    }
    if let Some(rule) = AMOUNT_RULES.iter().find(|r| r.code == code) {
        return rule.message.to_owned();
    }
    nami_sdk::response_code_meaning(code).map(str::to_ascii_uppercase).unwrap_or_else(|| "DECLINED".to_owned())
}

fn cvm_for(amount: u64) -> &'static str {
    if amount > PIN_LIMIT_HALALAS { "CARDHOLDER PIN VERIFIED" } else { "NO VERIFICATION REQUIRED" }
}

/// The transaction name a receipt prints (§5.2 \[26\]).
fn receipt_name(txn_type: TxnType) -> &'static str {
    match txn_type {
        TxnType::Purchase => "PURCHASE",
        TxnType::PurchaseCashback => "PURCHASE WITH NAQD",
        TxnType::Refund => "REFUND",
        TxnType::PreAuthorization => "PRE-AUTHORIZATION",
        TxnType::PreAuthCompletion => "PURCHASE ADVICE",
        TxnType::PreAuthExtension => "AUTHORIZATION EXTENSION",
        TxnType::PreAuthVoid => "AUTHORIZATION VOID",
        TxnType::CashAdvance => "CASH ADVANCE",
        TxnType::Reversal => "REVERSAL",
        TxnType::BillPayment => "BILL PAYMENT",
        _ => "",
    }
}

/// The type tag of a summary-report record (§5.6).
fn summary_label(txn_type: TxnType) -> &'static str {
    match txn_type {
        TxnType::Purchase => "PUR",
        TxnType::PurchaseCashback => "NAQD",
        TxnType::Refund => "REF",
        TxnType::PreAuthorization => "AUTH",
        TxnType::PreAuthCompletion => "ADV",
        TxnType::PreAuthExtension => "EXT",
        TxnType::PreAuthVoid => "VOID",
        TxnType::CashAdvance => "CADV",
        TxnType::Reversal => "REV",
        TxnType::BillPayment => "BILL",
        _ => "OTHER",
    }
}

/// Date and time as non-card replies carry it: `ddMMyyHHmmss`.
fn now_long() -> String {
    Local::now().format("%d%m%y%H%M%S").to_string()
}

/// A six-digit approval code that looks random but is reproducible from the RRN sequence.
fn approval_code_for(sequence: u64) -> String {
    format!("{:06}", mix(sequence) % 1_000_000)
}

/// SplitMix64's finaliser: spreads a counter into pseudo-random bits (no `rand` needed).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arabic_merchant_fields_decode_to_arabic() {
        let decode = nami_sdk::protocol::response::decode_arabic_hex;
        assert_eq!(decode(MERCHANT_NAME_AR_HEX).as_deref(), Some("متجر نامي"));
        assert_eq!(decode(MERCHANT_ADDRESS_AR_HEX).as_deref(), Some("الرياض"));
    }

    #[test]
    fn the_test_card_numbers_pass_the_luhn_check_and_match_their_masked_form() {
        for card in CARDS {
            let digits: Vec<u32> = card.pan.chars().map(|c| c.to_digit(10).unwrap()).collect();
            let sum: u32 = digits
                .iter()
                .rev()
                .enumerate()
                .map(|(i, d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { *d })
                .sum();
            assert_eq!(sum % 10, 0, "{}", card.pan);
            assert_eq!((&card.pan[..6], &card.pan[12..]), (&card.masked_pan[..6], &card.masked_pan[12..]));
        }
    }

    #[test]
    fn the_card_follows_the_whole_sar_digit() {
        assert_eq!(Card::for_amount(1000).scheme, "mada");
        assert_eq!(Card::for_amount(100).scheme, "VISA");
        assert_eq!(Card::for_amount(1150).scheme, "VISA");
        assert_eq!(Card::for_amount(250).scheme, "MASTERCARD");
    }

    #[test]
    fn error_replies_echo_a_plausible_command_or_question_marks() {
        let fields = |c: &str| vec![String::new(), c.to_owned()];
        assert_eq!(echo_command(&fields("Z9")), "Z9");
        assert_eq!(echo_command(&fields("\u{1}x")), "??");
        assert_eq!(echo_command(&fields("TOOLONG")), "??");
        assert_eq!(echo_command(&[]), "??");
    }
}
