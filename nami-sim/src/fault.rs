//! Scripted faults: what the simulator does wrong on purpose, for how many requests, and how a
//! fault is named on the command line and in the control API.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::control::FaultInForce;

/// Something the terminal does wrong on purpose. Faults that spoil the reply (everything but
/// [`Fault::Busy`] and [`Fault::Decline`]) do not stop the terminal from carrying out the request:
/// the transaction is made and journaled, only its reply is late, broken or missing, which is
/// exactly the case a POS must resolve with DUPLICATE or CHECK_STATUS (docs/protocol.md D11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long before replying.
    Delay(Duration),
    /// Carry out the request but never reply; the connection stays open.
    NeverAnswer,
    /// Write the reply one byte at a time with this gap between bytes.
    ByteByByte(Duration),
    /// Write the reply in this many writes (at least 2), a short pause between them.
    Split(usize),
    /// Write the reply twice in a single write.
    TwoReplies,
    /// Read the request, carry it out, then close the connection without replying.
    CloseAfterRequest,
    /// Write the first half of the reply, then close the connection.
    CloseMidReply,
    /// Write garbage bytes (no STX, ETX or separators) and then the real reply, in one write.
    Garbage,
    /// Write only garbage bytes instead of the reply; the connection stays open.
    GarbageOnly,
    /// Refuse the request at once with 923 "REQUEST IN PROGRESS", as if another exchange were
    /// running.
    Busy,
    /// Answer with this response code instead of the one the amount rules give.
    Decline(String),
}

/// For how many requests a fault holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultScope {
    /// The next `n` requests (frames received), then the fault is gone.
    Next(u32),
    /// Every request until [`crate::Simulator::clear_faults`].
    Always,
}

/// A fault name or value that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultParseError(pub String);

/// The names accepted on the command line and in the control API, with the argument each takes.
pub const FAULT_NAMES: &[(&str, &str)] = &[
    ("delay", "ms (default 1000)"),
    ("never-answer", ""),
    ("byte-by-byte", "ms between bytes (default 10)"),
    ("split", "number of writes (default 3)"),
    ("two-replies", ""),
    ("close-after-request", ""),
    ("close-mid-reply", ""),
    ("garbage", ""),
    ("garbage-only", ""),
    ("busy", ""),
    ("decline", "response code (default 116)"),
];

impl Fault {
    /// The fault's name, as the command line and the control API spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Delay(_) => "delay",
            Fault::NeverAnswer => "never-answer",
            Fault::ByteByByte(_) => "byte-by-byte",
            Fault::Split(_) => "split",
            Fault::TwoReplies => "two-replies",
            Fault::CloseAfterRequest => "close-after-request",
            Fault::CloseMidReply => "close-mid-reply",
            Fault::Garbage => "garbage",
            Fault::GarbageOnly => "garbage-only",
            Fault::Busy => "busy",
            Fault::Decline(_) => "decline",
        }
    }

    /// Builds a fault from its name and optional argument (`"delay"`, `Some("500")`).
    pub fn from_parts(name: &str, arg: Option<&str>) -> Result<Fault, FaultParseError> {
        let normalized = name.trim().to_ascii_lowercase().replace('_', "-");
        let number = |default: u64| -> Result<u64, FaultParseError> {
            match arg.map(str::trim).filter(|a| !a.is_empty()) {
                None => Ok(default),
                Some(text) => text
                    .parse::<u64>()
                    .map_err(|_| FaultParseError(format!("fault {normalized:?} takes a whole number, got {text:?}"))),
            }
        };
        let fault = match normalized.as_str() {
            "delay" => Fault::Delay(Duration::from_millis(number(1000)?)),
            "never-answer" | "never" => Fault::NeverAnswer,
            "byte-by-byte" | "slow" => Fault::ByteByByte(Duration::from_millis(number(10)?)),
            "split" => {
                let writes = number(3)?;
                if !(2..=4096).contains(&writes) {
                    return Err(FaultParseError(format!("split takes 2 to 4096 writes, got {writes}")));
                }
                Fault::Split(writes as usize)
            }
            "two-replies" => Fault::TwoReplies,
            "close-after-request" => Fault::CloseAfterRequest,
            "close-mid-reply" => Fault::CloseMidReply,
            "garbage" => Fault::Garbage,
            "garbage-only" => Fault::GarbageOnly,
            "busy" => Fault::Busy,
            "decline" => {
                let code = arg.map(str::trim).filter(|a| !a.is_empty()).unwrap_or("116");
                if code.len() > 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(FaultParseError(format!(
                        "decline takes a response code of 2 to 4 digits, got {code:?}"
                    )));
                }
                Fault::Decline(code.to_owned())
            }
            _ => {
                let names: Vec<&str> = FAULT_NAMES.iter().map(|(n, _)| *n).collect();
                return Err(FaultParseError(format!("unknown fault {name:?}; known faults: {}", names.join(", "))));
            }
        };
        Ok(fault)
    }

    /// The JSON key of the fault's argument in the control API: `ms` (delay, byte-by-byte),
    /// `writes` (split), `code` (decline); none for the others.
    pub fn argument_key(&self) -> Option<&'static str> {
        match self {
            Fault::Delay(_) | Fault::ByteByByte(_) => Some("ms"),
            Fault::Split(_) => Some("writes"),
            Fault::Decline(_) => Some("code"),
            _ => None,
        }
    }

    /// The fault as the control API's state lists it; `remaining`: requests left (scope `next`),
    /// `None` for scope `always`.
    pub fn in_force(&self, remaining: Option<u32>) -> FaultInForce {
        let millis = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (ms, writes, code) = match self {
            Fault::Delay(d) | Fault::ByteByByte(d) => (Some(millis(d)), None, None),
            Fault::Split(n) => (None, Some(*n as u64), None),
            Fault::Decline(code) => (None, None, Some(code.clone())),
            _ => (None, None, None),
        };
        let scope = if remaining.is_some() { "next" } else { "always" };
        FaultInForce { fault: self.name().to_owned(), ms, writes, code, scope: scope.to_owned(), remaining }
    }

    /// The fault as JSON for the control API: `{"fault":"delay","ms":500}`.
    pub fn to_json(&self) -> Value {
        let mut value = json!(self.in_force(None));
        if let Value::Object(map) = &mut value {
            map.remove("scope");
        }
        value
    }

    /// Reads a fault from the control API's JSON: `{"fault":"delay","ms":500}`,
    /// `{"fault":"split","writes":4}`, `{"fault":"decline","code":"116"}`. Each fault reads only
    /// its own argument (a `decline` with `ms` keeps its default code), and every argument
    /// present must be a whole number or its digits, whichever fault reads it.
    pub fn from_json(value: &Value) -> Result<Fault, FaultParseError> {
        let name = value.get("fault").and_then(Value::as_str).ok_or_else(|| {
            FaultParseError("the body needs a \"fault\" name, e.g. {\"fault\":\"never-answer\"}".into())
        })?;
        for key in ARGUMENT_KEYS {
            let well_formed = match value.get(key) {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.is_u64(),
                Some(Value::String(text)) => !text.is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()),
                Some(_) => false,
            };
            if !well_formed {
                return Err(FaultParseError(format!(
                    "`{key}` must be a whole number or its digits, got {}",
                    value[key]
                )));
            }
        }
        let kind = Fault::from_parts(name, None)?;
        let argument = match kind.argument_key().and_then(|key| value.get(key)) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        Fault::from_parts(name, argument.as_deref())
    }
}

/// The keys of faults' arguments in the control API.
const ARGUMENT_KEYS: [&str; 3] = ["ms", "writes", "code"];

impl FromStr for Fault {
    type Err = FaultParseError;

    /// `name` or `name:argument`, e.g. `never-answer`, `delay:500`, `split:4`, `decline:117`.
    fn from_str(text: &str) -> Result<Fault, FaultParseError> {
        match text.split_once([':', '=']) {
            Some((name, arg)) => Fault::from_parts(name, Some(arg)),
            None => Fault::from_parts(text, None),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Delay(d) | Fault::ByteByByte(d) => write!(f, "{}:{}", self.name(), d.as_millis()),
            Fault::Split(n) => write!(f, "{}:{n}", self.name()),
            Fault::Decline(code) => write!(f, "{}:{code}", self.name()),
            _ => f.write_str(self.name()),
        }
    }
}

/// One fault in force and how many more requests it holds for (`None`: always).
#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub fault: Fault,
    pub remaining: Option<u32>,
}

/// The faults in force. Setting a fault of a kind already present replaces it, so a test can
/// change a delay without first clearing it.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    active: Vec<ActiveFault>,
}

impl FaultSet {
    pub fn set(&mut self, fault: Fault, scope: FaultScope) {
        self.active.retain(|a| std::mem::discriminant(&a.fault) != std::mem::discriminant(&fault));
        let remaining = match scope {
            FaultScope::Next(0) => return,
            FaultScope::Next(n) => Some(n),
            FaultScope::Always => None,
        };
        self.active.push(ActiveFault { fault, remaining });
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    pub fn list(&self) -> &[ActiveFault] {
        &self.active
    }

    /// The faults that apply to the request just received; each `Next` fault loses one count.
    pub fn take_for_request(&mut self) -> Applied {
        let mut applied = Applied::default();
        for active in &mut self.active {
            applied.add(&active.fault);
            if let Some(n) = active.remaining.as_mut() {
                *n = n.saturating_sub(1);
            }
        }
        self.active.retain(|a| a.remaining != Some(0));
        applied
    }
}

/// The faults that apply to one request, merged.
#[derive(Debug, Default, Clone)]
pub(crate) struct Applied {
    pub delay: Duration,
    pub never_answer: bool,
    pub byte_gap: Option<Duration>,
    pub split: Option<usize>,
    pub two_replies: bool,
    pub close_after_request: bool,
    pub close_mid_reply: bool,
    pub garbage: bool,
    pub garbage_only: bool,
    pub busy: bool,
    pub decline: Option<String>,
}

impl Applied {
    fn add(&mut self, fault: &Fault) {
        match fault {
            Fault::Delay(d) => self.delay += *d,
            Fault::NeverAnswer => self.never_answer = true,
            Fault::ByteByByte(gap) => self.byte_gap = Some(*gap),
            Fault::Split(n) => self.split = Some(*n),
            Fault::TwoReplies => self.two_replies = true,
            Fault::CloseAfterRequest => self.close_after_request = true,
            Fault::CloseMidReply => self.close_mid_reply = true,
            Fault::Garbage => self.garbage = true,
            Fault::GarbageOnly => self.garbage_only = true,
            Fault::Busy => self.busy = true,
            Fault::Decline(code) => self.decline = Some(code.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::FaultName;

    /// `FaultName`, which documents `POST /fault`'s names, has exactly the names the parser takes.
    #[test]
    fn the_documented_fault_names_are_the_parsers() {
        for (name, _) in FAULT_NAMES {
            let documented: Result<FaultName, _> = serde_json::from_value(json!(name));
            assert!(documented.is_ok(), "FaultName lacks {name}");
            assert!(Fault::from_parts(name, None).is_ok(), "the parser refuses {name}");
        }
        let all = serde_json::to_value([
            FaultName::Delay,
            FaultName::NeverAnswer,
            FaultName::ByteByByte,
            FaultName::Split,
            FaultName::TwoReplies,
            FaultName::CloseAfterRequest,
            FaultName::CloseMidReply,
            FaultName::Garbage,
            FaultName::GarbageOnly,
            FaultName::Busy,
            FaultName::Decline,
        ])
        .unwrap();
        let names: Vec<&str> = FAULT_NAMES.iter().map(|(name, _)| *name).collect();
        assert_eq!(all, json!(names));
    }

    #[test]
    fn faults_parse_from_their_names_and_print_back() {
        for text in ["delay:500", "never-answer", "byte-by-byte:5", "split:4", "two-replies", "decline:117", "busy"] {
            let fault: Fault = text.parse().unwrap();
            assert_eq!(fault.to_string(), text);
            assert_eq!(Fault::from_json(&fault.to_json()).unwrap(), fault);
        }
        assert_eq!("DELAY".parse::<Fault>().unwrap(), Fault::Delay(Duration::from_secs(1)));
        assert_eq!("garbage_only".parse::<Fault>().unwrap(), Fault::GarbageOnly);
    }

    #[test]
    fn bad_fault_names_and_arguments_are_errors_that_say_why() {
        assert!("explode".parse::<Fault>().unwrap_err().0.contains("known faults"));
        assert!("delay:soon".parse::<Fault>().unwrap_err().0.contains("whole number"));
        assert!("split:1".parse::<Fault>().is_err());
        assert!("decline:abc".parse::<Fault>().is_err());
        assert!(Fault::from_json(&json!({"ms": 5})).is_err());
        assert!(Fault::from_json(&json!({"fault": "busy", "ms": "soon"})).unwrap_err().0.contains("`ms`"));
        assert!(Fault::from_json(&json!({"fault": "delay", "ms": 1.5})).is_err());
        assert_eq!(
            Fault::from_json(&json!({"fault": "decline", "ms": 5})).unwrap(),
            Fault::Decline("116".into()),
            "each fault reads only its own argument"
        );
    }

    #[test]
    fn next_faults_run_out_and_always_faults_stay() {
        let mut set = FaultSet::default();
        set.set(Fault::Busy, FaultScope::Next(2));
        set.set(Fault::Delay(Duration::from_millis(5)), FaultScope::Always);
        assert!(set.take_for_request().busy);
        assert!(set.take_for_request().busy);
        let third = set.take_for_request();
        assert!(!third.busy);
        assert_eq!(third.delay, Duration::from_millis(5));
        set.set(Fault::Delay(Duration::from_millis(7)), FaultScope::Next(1));
        assert_eq!(set.take_for_request().delay, Duration::from_millis(7), "same kind replaces");
        assert_eq!(set.take_for_request().delay, Duration::ZERO);
    }
}
