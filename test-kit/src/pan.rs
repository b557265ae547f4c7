//! Finding card numbers in logs.
//!
//! A card number here is a run of 13 to 19 digits that passes the Luhn check, standing alone
//! (not part of a longer run of letters and digits), in the text itself or inside a hex dump
//! (the SDK logs frames in hex at trace level: a hex run is decoded and searched too). Runs of
//! exactly 14 digits are not counted: they are ECR references (docs/protocol.md D7), which the logs
//! name on purpose and which pass the Luhn check one time in ten; the suite's own references are
//! chosen to fail it (see [`crate::daemon::ecr`]), and the simulator's card numbers have 16
//! digits, which [`full_numbers_in`] looks for by value as well.

/// Whether `digits` (ASCII digits) passes the Luhn check.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
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

/// The card numbers in `text` (see the module's rules), each with its line number.
pub fn card_numbers_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        for token in tokens(line.as_bytes()) {
            if is_card_number(token) {
                found.push(format!("line {}: {}", number + 1, String::from_utf8_lossy(token)));
            }
            if let Some(decoded) = hex_decode(token) {
                for inner in tokens(&decoded) {
                    if is_card_number(inner) {
                        found.push(format!("line {} (hex): {}", number + 1, String::from_utf8_lossy(inner)));
                    }
                }
            }
        }
    }
    found
}

/// Where any of `numbers` appears in `text`, as it is or hex-encoded (either case).
pub fn full_numbers_in(text: &str, numbers: &[&str]) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    for number in numbers {
        let hex: String = number.bytes().map(|b| format!("{b:02x}")).collect();
        if text.contains(number) {
            found.push(format!("{number} in clear"));
        }
        if lower.contains(&hex) {
            found.push(format!("{number} in hex"));
        }
    }
    found
}

/// Identifiers of the simulated terminal that pass the Luhn check but are no card numbers: its
/// merchant ID (15 digits, sent in every card reply and logged on purpose).
pub const NOT_CARD_NUMBERS: &[&str] = &[nami_sim::MERCHANT_ID];

fn is_card_number(token: &[u8]) -> bool {
    (13..=19).contains(&token.len())
        && token.len() != 14
        && luhn(token)
        && !NOT_CARD_NUMBERS.iter().any(|n| n.as_bytes() == token)
}

/// Maximal runs of ASCII letters and digits.
fn tokens(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|b| !b.is_ascii_alphanumeric()).filter(|t| !t.is_empty())
}

/// A run of at least 26 hex digits (13 bytes) of even length, decoded.
fn hex_decode(token: &[u8]) -> Option<Vec<u8>> {
    if token.len() < 26 || !token.len().is_multiple_of(2) || !token.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    token.chunks(2).map(|pair| Some(digit(pair[0])? * 16 + digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_number_is_found_in_clear_and_in_a_hex_dump() {
        assert_eq!(card_numbers_in("pan=4761731554330119 ok").len(), 1);
        let hex: String = "\u{2}A1\u{fc}000\u{fc}5888451712711234\u{fc}".bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(card_numbers_in(&format!("frame={hex}")).len(), 1, "{hex}");
        assert_eq!(full_numbers_in(&hex, &["5888451712711234"]).len(), 1);
    }

    #[test]
    fn masked_numbers_references_and_ids_are_not_card_numbers() {
        let line = "588845******1234 ecr=12345678000101 tid=8184000200000077 rrn=123456789012 mid=800150400566001";
        assert!(card_numbers_in(line).is_empty(), "{:?}", card_numbers_in(line));
        assert!(!luhn(b"8184000200000077"));
        assert!(card_numbers_in("x4761731554330119y").is_empty(), "part of a longer word");
    }
}
