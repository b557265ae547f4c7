//! Card numbers out of logs. Frames are logged in hex at trace level; before that, every field
//! that is or may be a card number is masked as the terminal masks it (first 6, last 4).

use super::frame::FS;
use super::txn_type::{ResponseClass, TxnType};

/// The frame as lowercase hex, with card numbers masked.
pub fn frame_hex_for_log(frame: &[u8]) -> String {
    hex::encode(redact_frame(frame))
}

/// A copy of `frame` with card numbers masked: field [4] of card replies (the PAN, §5.2) and any
/// field of 15 to 19 digits that passes the Luhn check, wherever it stands.
pub fn redact_frame(frame: &[u8]) -> Vec<u8> {
    let separator = if frame.contains(&FS) { FS } else { b';' };
    let segments: Vec<&[u8]> = frame.split(|b| *b == separator).collect();
    let command = segments.get(1).and_then(|c| std::str::from_utf8(c).ok()).and_then(TxnType::from_command);
    let card_reply = command.is_some_and(|t| {
        matches!(
            t.spec().response,
            ResponseClass::Financial
                | ResponseClass::FinancialCashback
                | ResponseClass::Reversal
                | ResponseClass::Repeat
        )
    });
    let mut out = Vec::with_capacity(frame.len());
    for (index, segment) in segments.iter().enumerate() {
        if index > 0 {
            out.push(separator);
        }
        let digits = segment.iter().filter(|b| b.is_ascii_digit()).count();
        let pan_slot = card_reply && index == 4 && digits >= 10;
        let looks_like_card = segment.len() >= 15 && segment.len() <= 19 && digits == segment.len() && luhn(segment);
        if pan_slot || looks_like_card {
            out.extend(mask(segment));
        } else {
            out.extend_from_slice(segment);
        }
    }
    out
}

fn mask(segment: &[u8]) -> Vec<u8> {
    let len = segment.len();
    if len <= 10 {
        return vec![b'*'; len];
    }
    segment.iter().enumerate().map(|(i, b)| if i < 6 || i >= len - 4 { *b } else { b'*' }).collect()
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{LrcMode, encode_fields};

    #[test]
    fn the_pan_of_a_card_reply_never_reaches_the_log() {
        let frame = encode_fields(&["A1", "000", "APPROVED", "5588123412341234", "000000001000"], LrcMode::None);
        let redacted = redact_frame(&frame);
        let text = String::from_utf8_lossy(&redacted);
        assert!(text.contains("558812******1234"), "{text}");
        assert!(!text.contains("5588123412341234"));
        assert!(!frame_hex_for_log(&frame).contains(&hex::encode("5588123412341234")));
    }

    #[test]
    fn a_card_number_anywhere_is_masked() {
        // 4111111111111111 passes the Luhn check.
        let frame = b"\x02;XX;000;4111111111111111;\x03".to_vec();
        assert!(String::from_utf8_lossy(&redact_frame(&frame)).contains("411111******1111"));
    }

    #[test]
    fn ecr_references_and_amounts_stay_readable() {
        let frame = encode_fields(&["C3", "000", "12345678000001", "000000001000"], LrcMode::None);
        assert_eq!(redact_frame(&frame), frame);
    }
}
