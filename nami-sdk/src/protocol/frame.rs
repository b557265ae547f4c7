//! Frames on the wire (docs/protocol.md §3): `STX 0xFC f1 0xFC f2 … 0xFC ETX LRC`, and the LRC modes.

use crate::status::StatusCode;
use std::fmt;
use std::str::FromStr;

use super::field::Field;
use super::request::Request;
use super::values::{Signature, TerminalId};
use crate::error::{EncodeError, ValidationError};

pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;
/// The field separator, a single raw byte (not UTF-8 encoded).
pub const FS: u8 = 0xFC;
/// The fixed last field of every request (the packer's `TIMEOUT_VAL`).
pub const TIMEOUT_FIELD: &str = "120";

/// How the byte after ETX is computed (D3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LrcMode {
    /// The XOR of STX..=ETX with each hex letter nibble lowered by 7, as every official SDK sends.
    #[default]
    Skyband,
    /// Plain XOR of STX..=ETX.
    Xor,
    /// No LRC byte at all.
    None,
}

impl LrcMode {
    /// The LRC byte for `frame` (STX through ETX inclusive), or nothing in [`LrcMode::None`].
    pub fn compute(self, frame: &[u8]) -> Option<u8> {
        let xor = frame.iter().fold(0u8, |acc, b| acc ^ b);
        match self {
            LrcMode::Skyband => {
                // The vendor prints the XOR as lowercase hex and converts it back with a routine
                // that maps 'a'..'f' to 3..8; this reproduces it.
                let mangle = |nibble: u8| if nibble > 9 { nibble - 7 } else { nibble };
                Some((mangle(xor >> 4) << 4) | mangle(xor & 0x0F))
            }
            LrcMode::Xor => Some(xor),
            LrcMode::None => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LrcMode::Skyband => "skyband",
            LrcMode::Xor => "xor",
            LrcMode::None => "none",
        }
    }
}

impl FromStr for LrcMode {
    type Err = ValidationError;
    fn from_str(text: &str) -> Result<Self, ValidationError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "skyband" => Ok(LrcMode::Skyband),
            "xor" | "standard-xor" | "standard_xor" => Ok(LrcMode::Xor),
            "none" => Ok(LrcMode::None),
            _ => Err(ValidationError::other(
                StatusCode::InvalidLrcMode,
                "lrc",
                format!("must be skyband, xor or none, got {text:?}"),
            )),
        }
    }
}

impl fmt::Display for LrcMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds `STX FS f1 FS f2 … FS ETX [LRC]`. Fields are ASCII text; a terminal or a simulator
/// uses this for replies, [`encode_request`] for requests.
pub fn encode_fields<S: AsRef<str>>(fields: &[S], lrc: LrcMode) -> Vec<u8> {
    let len = fields.iter().map(|f| f.as_ref().len() + 1).sum::<usize>() + 4;
    let mut frame = Vec::with_capacity(len);
    frame.push(STX);
    for field in fields {
        frame.push(FS);
        frame.extend_from_slice(field.as_ref().as_bytes());
    }
    frame.push(FS);
    frame.push(ETX);
    if let Some(byte) = lrc.compute(&frame) {
        frame.push(byte);
    }
    frame
}

/// Where the signature of a signed request comes from.
#[derive(Debug, Clone, Copy)]
pub enum Signing<'a> {
    /// Compute it from the terminal ID of the last successful REGISTER (D5).
    TerminalId(&'a TerminalId),
    /// Send this signature as it is.
    Signature(&'a Signature),
    /// No signature: only REGISTER and the sessions can be encoded.
    Unsigned,
}

/// The wire fields of `request` between the command and "120", signature included.
pub fn request_wire_fields(request: &Request, signing: Signing<'_>) -> Result<Vec<String>, EncodeError> {
    request.validate()?;
    let spec = request.txn_type.spec();
    spec.wire_fields
        .iter()
        .map(|field| match field {
            Field::Signature => match signing {
                Signing::Signature(signature) => Ok(signature.as_str().to_owned()),
                Signing::TerminalId(terminal_id) => {
                    let reference =
                        request.ecr_reference.as_ref().expect("validated: signed types carry an ECR reference");
                    Ok(Signature::compute(reference, terminal_id).as_str().to_owned())
                }
                Signing::Unsigned => Err(EncodeError::SignatureRequired { txn_type: spec.name }),
            },
            other => Ok(request.wire_text(*other).expect("validated: required fields are present")),
        })
        .collect()
}

/// Encodes `request` into a frame (D2): the command, the type's fields in wire order, "120".
pub fn encode_request(request: &Request, signing: Signing<'_>, lrc: LrcMode) -> Result<Vec<u8>, EncodeError> {
    let mut fields = Vec::with_capacity(request.txn_type.spec().wire_fields.len() + 2);
    fields.push(request.txn_type.command().to_owned());
    fields.extend(request_wire_fields(request, signing)?);
    fields.push(TIMEOUT_FIELD.to_owned());
    Ok(encode_fields(&fields, lrc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skyband_lrc_reproduces_the_vendor_examples() {
        // XOR 0xB5 is sent as 0x45, 0xDD as 0x66, 0xDA as 0x63, 0x25 unchanged (§3.3).
        let mangle = |xor: u8| LrcMode::Skyband.compute(&[xor]).unwrap();
        assert_eq!(mangle(0xB5), 0x45);
        assert_eq!(mangle(0xDD), 0x66);
        assert_eq!(mangle(0xDA), 0x63);
        assert_eq!(mangle(0x25), 0x25);
        assert_eq!(LrcMode::Xor.compute(&[0xB5]), Some(0xB5));
        assert_eq!(LrcMode::None.compute(&[0xB5]), None);
    }

    #[test]
    fn lrc_modes_parse_by_name() {
        assert_eq!("skyband".parse::<LrcMode>().unwrap(), LrcMode::Skyband);
        assert_eq!("standard-xor".parse::<LrcMode>().unwrap(), LrcMode::Xor);
        assert_eq!("NONE".parse::<LrcMode>().unwrap(), LrcMode::None);
        assert_eq!("crc".parse::<LrcMode>().unwrap_err().code, StatusCode::InvalidLrcMode);
    }
}
