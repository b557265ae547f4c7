//! Terminal subcommands for technicians: `nami ports`, and `register`, `purchase`, `transact`
//! (and a few shortcuts) against a terminal named by `--tcp HOST:PORT` or `--serial PATH`.
//!
//! Each run is a new process, so the terminal ID that REGISTER returns is kept in a small state
//! file (per terminal) for the signatures of later runs; `--terminal-id` overrides it.
//!
//! Exit status: 0 approved, 3 answered but not approved (declined), 1 the terminal could not be
//! reached or did not answer, 2 bad input.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use nami_sdk::service::{ServiceConfig, masked_fields};
use nami_sdk::{
    Amount, CashRegisterNo, EcrReference, LrcMode, Parity, PaymentContext, PaymentRequest, PreviousEcrNo, Registration,
    SerialSettings, Terminal, TerminalConfig, TerminalError, TerminalEvent, TerminalId, TxnResult, amount_in_sar,
    list_serial_ports,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{CliError, Output};

/// Exit status of a reply that is not an approval.
pub const DECLINED: u8 = 3;
/// Exit status of a terminal that could not be reached or did not answer.
pub const TERMINAL_FAILED: u8 = 1;

/// Where the terminal is and how to talk to it.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The terminal on the network, e.g. 192.168.1.100:2345.
    #[arg(long, global = true, value_name = "HOST:PORT", conflicts_with = "serial")]
    pub tcp: Option<String>,
    /// The terminal on a serial port, e.g. /dev/ttyACM0 or COM3.
    #[arg(long, global = true, value_name = "PATH")]
    pub serial: Option<String>,
    /// Serial baud rate: 9600, 19200, 38400, 57600 or 115200.
    #[arg(long, global = true, default_value_t = 115_200)]
    pub baud: u32,
    /// Serial parity: none, odd or even.
    #[arg(long, global = true, default_value = "none")]
    pub parity: String,
    /// Serial data bits: 7 or 8.
    #[arg(long, global = true, default_value_t = 8)]
    pub data_bits: u8,
    /// Serial stop bits: 1 or 2.
    #[arg(long, global = true, default_value_t = 1)]
    pub stop_bits: u8,
    /// LRC of request frames: skyband, xor or none.
    #[arg(long, global = true, default_value = "skyband")]
    pub lrc: String,
    /// Seconds to wait for the terminal (default: 150 for card-present types, 60 or 30 otherwise).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// The 16-digit terminal ID to sign with, instead of the one kept from the last REGISTER.
    #[arg(long, global = true, value_name = "DIGITS")]
    pub terminal_id: Option<String>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// The file that keeps terminal IDs between runs (default: <data dir>/nami/cli-state.json).
    #[arg(long, global = true, env = "NAMI_CLI_STATE", value_name = "FILE")]
    pub state_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TerminalCommand {
    /// REGISTER with the terminal and keep its terminal ID for later runs.
    Register {
        /// The 8-digit cash register number.
        #[arg(long, value_name = "DIGITS")]
        cash_register: String,
    },
    /// PURCHASE of an amount in SAR.
    Purchase {
        /// Amount in SAR, e.g. 10.00.
        #[arg(long)]
        amount: String,
        /// The 14-digit ECR reference (default: the cash register number + a new sequence).
        #[arg(long, value_name = "DIGITS")]
        ecr_ref: Option<String>,
        /// Ask the terminal to print the cardholder receipt.
        #[arg(long)]
        print: bool,
    },
    /// CHECK_STATUS: is the terminal there and registered?
    Status {
        #[arg(long, value_name = "DIGITS")]
        ecr_ref: Option<String>,
    },
    /// DUPLICATE: the outcome of an earlier transaction, by its ECR reference.
    Duplicate {
        /// The earlier transaction's ECR reference (14 digits, or its last 6).
        #[arg(long, value_name = "DIGITS")]
        of: String,
        #[arg(long, value_name = "DIGITS")]
        ecr_ref: Option<String>,
    },
    /// Any transaction type with REST `paymentRequest` fields, e.g.
    /// `transact --txn-type REFUND --field amount=5.00 --field rrnNumber=123456789012`.
    Transact {
        /// A code (0, 17, ...) or a name (PURCHASE, REFUND, ...).
        #[arg(long, value_name = "CODE|NAME")]
        txn_type: String,
        /// A paymentRequest field as key=value; repeat for more.
        #[arg(long = "field", value_name = "KEY=VALUE")]
        fields: Vec<String>,
    },
}

/// The terminal IDs kept between runs, by terminal key, and the last ECR sequence number handed
/// out, by cash register number (the SDK's `EcrReference::next_in_sequence` makes the next one).
#[derive(Debug, Default, Serialize, Deserialize)]
struct CliState {
    #[serde(default)]
    registrations: BTreeMap<String, KeptRegistration>,
    #[serde(default)]
    sequences: BTreeMap<String, u32>,
    /// The one counter of state files from before `sequences`: where a cash register without a
    /// counter of its own starts, so that no reference of the old counter is handed out again.
    #[serde(default, rename = "sequence")]
    legacy_sequence: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptRegistration {
    terminal_id: String,
    cash_register_no: String,
}

fn state_path(args: &LinkArgs) -> PathBuf {
    args.state_file.clone().unwrap_or_else(|| ServiceConfig::default_state_dir().join("cli-state.json"))
}

fn load_state(args: &LinkArgs) -> CliState {
    let path = state_path(args);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            eprintln!("warning: {} is not readable ({e}); starting afresh", path.display());
            CliState::default()
        }),
        Err(_) => CliState::default(),
    }
}

fn save_state(args: &LinkArgs, state: &CliState) -> Result<(), CliError> {
    let path = state_path(args);
    let failed = |e: std::io::Error| CliError { status: TERMINAL_FAILED, message: format!("{}: {e}", path.display()) };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let text = serde_json::to_string_pretty(state).unwrap_or_default();
    std::fs::write(&path, text).map_err(failed)
}

/// `nami ports`: the serial ports that are really there.
pub fn ports(json: bool) -> Result<String, CliError> {
    let ports = list_serial_ports();
    if json {
        return Ok(serde_json::to_string_pretty(&ports).unwrap_or_default());
    }
    if ports.is_empty() {
        return Ok("No devices connected".into());
    }
    Ok(ports
        .iter()
        .map(|p| format!("{}\t{}\tVID {:04x} PID {:04x}", p.device_id, p.description, p.vendor_id, p.product_id))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn open_terminal(args: &LinkArgs) -> Result<Terminal, CliError> {
    let mut config = TerminalConfig {
        lrc: args.lrc.parse::<LrcMode>().map_err(CliError::bad_input)?,
        reconnect_serial: false,
        ..TerminalConfig::default()
    };
    if let Some(seconds) = args.timeout {
        let timeout = Duration::from_secs(seconds.max(1));
        config.card_present_timeout = timeout;
        config.settlement_timeout = timeout;
        config.admin_timeout = timeout;
    }
    match (&args.tcp, &args.serial) {
        (Some(address), None) => {
            let link = nami_sdk::TcpLink::parse(address).map_err(CliError::bad_input)?;
            Ok(Terminal::new(Box::new(link), config))
        }
        (None, Some(path)) => {
            let parity = args.parity.parse::<Parity>().map_err(CliError::bad_input)?;
            let settings =
                SerialSettings::new(args.baud, args.data_bits, parity, args.stop_bits).map_err(CliError::bad_input)?;
            Ok(Terminal::serial(path, settings, config))
        }
        _ => Err(CliError::bad_input("name the terminal with --tcp HOST:PORT or --serial PATH")),
    }
}

/// Runs one terminal subcommand.
pub fn run(args: &LinkArgs, command: &TerminalCommand) -> Result<Output, CliError> {
    let terminal = open_terminal(args)?;
    let mut state = load_state(args);
    let kept = state.registrations.get(terminal.key()).cloned();
    let terminal_id = match &args.terminal_id {
        Some(text) => Some(TerminalId::parse(text).map_err(CliError::bad_input)?),
        None => kept.as_ref().and_then(|k| TerminalId::parse(&k.terminal_id).ok()),
    };
    let cash_register = kept.as_ref().and_then(|k| CashRegisterNo::parse(&k.cash_register_no).ok());
    if let Some(terminal_id) = terminal_id {
        let cash_register_no =
            cash_register.clone().unwrap_or_else(|| CashRegisterNo::parse("00000000").expect("valid"));
        terminal.restore_registration(Some(Registration { terminal_id, cash_register_no }));
    }
    let mut next_reference = |given: &Option<String>| -> Result<EcrReference, CliError> {
        match given {
            Some(text) => EcrReference::parse(text).map_err(CliError::bad_input),
            None => {
                let Some(register) = cash_register.clone() else {
                    // No reference can be made without a kept REGISTER; first say whether the
                    // terminal is there at all, which matters more.
                    terminal.connect().map_err(terminal_error)?;
                    return Err(CliError {
                        status: TERMINAL_FAILED,
                        message: format!(
                            "REGISTER_REQUIRED: no registration of {} is kept in {}: run `nami ... register \
                             --cash-register <8 digits>` first (or give --ecr-ref and --terminal-id)",
                            terminal.key(),
                            state_path(args).display()
                        ),
                    });
                };
                let previous = state.sequences.get(register.as_str()).copied().unwrap_or(state.legacy_sequence);
                let (reference, sequence) =
                    EcrReference::next_in_sequence(&register, previous).map_err(CliError::bad_input)?;
                state.sequences.insert(register.as_str().to_owned(), sequence);
                Ok(reference)
            }
        }
    };

    let spinner = Spinner::attach(&terminal, args.json);
    let cancel = terminal.clone();
    // Ctrl-C cancels the waiting call (CANCELLED) instead of killing the process mid-exchange.
    let _ = ctrlc::set_handler(move || {
        cancel.cancel();
    });
    let outcome = match command {
        TerminalCommand::Register { cash_register } => {
            let crn = CashRegisterNo::parse(cash_register).map_err(CliError::bad_input)?;
            terminal.register(&crn)
        }
        TerminalCommand::Purchase { amount, ecr_ref, print } => {
            let amount = Amount::from_sar(amount).map_err(CliError::bad_input)?;
            let reference = next_reference(ecr_ref)?;
            terminal.purchase(amount, &reference, *print)
        }
        TerminalCommand::Status { ecr_ref } => terminal.check_status(&next_reference(ecr_ref)?),
        TerminalCommand::Duplicate { of, ecr_ref } => {
            let previous = PreviousEcrNo::parse(of).map_err(CliError::bad_input)?;
            terminal.duplicate(&previous, &next_reference(ecr_ref)?)
        }
        TerminalCommand::Transact { txn_type, fields } => {
            let mut body = payment_body(txn_type, fields)?;
            if body.get("ecrReferenceNo").is_none() && cash_register.is_some() {
                body.insert("ecrReferenceNo".into(), Value::String(next_reference(&None)?.to_string()));
            }
            let payment: PaymentRequest = serde_json::from_value(Value::Object(body)).map_err(CliError::bad_input)?;
            let context = PaymentContext { last_ecr_reference: None, ..PaymentContext::default() };
            let request = payment.to_request(&context).map_err(CliError::bad_input)?;
            terminal.transact(&request)
        }
    };
    drop(spinner);
    // The sequence advances even when the call fails: a reference that may have been sent is
    // never reused.
    save_state(args, &state)?;
    let result = outcome.map_err(terminal_error)?;
    if let Some(registration) = terminal.registration().filter(|_| result.txn_type == nami_sdk::TxnType::Register) {
        state.registrations.insert(
            terminal.key().to_owned(),
            KeptRegistration {
                terminal_id: registration.terminal_id.to_string(),
                cash_register_no: registration.cash_register_no.to_string(),
            },
        );
        save_state(args, &state)?;
    }
    let text = if args.json { result_json(&result) } else { result_text(&result) };
    Ok(Output { text, status: if result.approved { 0 } else { DECLINED } })
}

/// `--field key=value` pairs as a paymentRequest object; unknown keys are refused by name.
fn payment_body(txn_type: &str, fields: &[String]) -> Result<Map<String, Value>, CliError> {
    let known = match serde_json::to_value(PaymentRequest::default()) {
        Ok(Value::Object(map)) => map.keys().cloned().collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    let mut body = Map::new();
    body.insert("txnType".into(), Value::String(txn_type.to_owned()));
    for pair in fields {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::bad_input(format!("--field must be key=value, got {pair:?}")))?;
        if !known.iter().any(|k| k == key) {
            return Err(CliError::bad_input(format!(
                "--field {key:?} is not a paymentRequest field (known: {})",
                known.join(", ")
            )));
        }
        body.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(body)
}

fn terminal_error(error: TerminalError) -> CliError {
    let status = if matches!(error, TerminalError::Invalid(_)) { CliError::BAD_INPUT } else { TERMINAL_FAILED };
    CliError { status, message: error.to_string() }
}

fn result_json(result: &TxnResult) -> String {
    let parsed: Map<String, Value> =
        result.parsed().into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect();
    let value = json!({
        "txnType": result.txn_type.name(),
        "responseCode": result.response_code,
        "message": result.message,
        "approved": result.approved,
        "terminalId": result.terminal_id.as_ref().map(ToString::to_string),
        "signature": result.signature.as_ref().map(ToString::to_string),
        "ecrReferenceNo": result.ecr_reference.as_ref().map(ToString::to_string),
        "fields": masked_fields(&result.response),
        "parsed": parsed,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn result_text(result: &TxnResult) -> String {
    let verdict = if result.approved { "APPROVED" } else { "NOT APPROVED" };
    let mut lines =
        vec![format!("{verdict}: {} {} ({})", result.response_code, result.message, result.txn_type.name())];
    if let Some(reference) = &result.ecr_reference {
        lines.push(format!("  ecrReferenceNo: {reference}"));
    }
    if let Some(terminal_id) = &result.terminal_id {
        lines.push(format!("  terminalId: {terminal_id}"));
    }
    for (name, value) in result.parsed() {
        if !value.is_empty() && !matches!(name, "terminalId" | "ecrReferenceNo" | "signature") {
            // Amounts in SAR (`SAR 10.00`, not `000000001000`).
            lines.push(format!("  {name}: {}", amount_in_sar(name, &value).unwrap_or(value)));
        }
    }
    lines.join("\n")
}

/// A spinner on stderr while the terminal works, with what it waits for. Hidden when stderr is
/// not a terminal or JSON output is asked for.
struct Spinner {
    bar: indicatif::ProgressBar,
}

impl Spinner {
    fn attach(terminal: &Terminal, quiet: bool) -> Self {
        let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
        bar.enable_steady_tick(Duration::from_millis(100));
        bar.set_message(format!("connecting to {}", terminal.key()));
        let shown = bar.clone();
        terminal.set_listener(Some(Arc::new(move |_key: &str, event: &TerminalEvent| {
            let message = match event {
                TerminalEvent::WaitingForCard => "waiting for the card (present the card on the terminal)".to_owned(),
                TerminalEvent::WaitingForTerminal => "waiting for the terminal".to_owned(),
                TerminalEvent::Connected => "connected".to_owned(),
                TerminalEvent::ResponseReceived { .. } => "reply received".to_owned(),
                _ => return,
            };
            shown.set_message(message);
        })));
        Spinner { bar }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_must_be_payment_request_keys() {
        let body = payment_body("REFUND", &["amount=5.00".into(), "rrnNumber=123456789012".into()]).unwrap();
        assert_eq!(body["amount"], "5.00");
        let error = payment_body("REFUND", &["amont=5.00".into()]).unwrap_err();
        assert!(error.message.contains("amont"), "{}", error.message);
        assert!(payment_body("REFUND", &["amount".into()]).is_err());
    }
}
