//! Properties of the codec over generated input: every valid request survives encoding, a
//! byte stream cut anywhere and the decoder, and nothing a terminal (or line noise) sends can make
//! the decoder or the reply API panic.

use std::collections::BTreeSet;

use nami_sdk::protocol::field::Charset;
use nami_sdk::protocol::frame::{ETX, FS, STX};
use nami_sdk::{
    Amount, EncodeError, FIELDS, Field, Frame, FrameDecoder, Layout, LrcMode, Request, Response, Signature, Signing,
    TXN_TYPES, TerminalId, TxnType, encode_fields, encode_request,
};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// Generators of valid requests
// ---------------------------------------------------------------------------------------------

/// A real `ddMMyyHHmmss`. The codec checks the calendar (no 31 June, no 29 February 2023): days up
/// to 28 are real in every month of every year.
fn date_text() -> impl Strategy<Value = String> {
    (1u32..=28, 1u32..=12, 0u32..=99, 0u32..=23, 0u32..=59, 0u32..=59)
        .prop_map(|(d, m, y, h, mi, s)| format!("{d:02}{m:02}{y:02}{h:02}{mi:02}{s:02}"))
}

/// Valid text for one input field. Fields with rules beyond the table get their own generator;
/// the rest come from the field table's width and charset, so a new field is covered as soon as
/// it has a row.
fn field_text(field: Field) -> BoxedStrategy<String> {
    match field {
        Field::Date => date_text().boxed(),
        // Integer halalas, unpadded as integrators write them; zero is refused for amounts.
        Field::Amount | Field::CashbackAmount => (1..=Amount::MAX_HALALAS).prop_map(|h| h.to_string()).boxed(),
        Field::EcrReference => "[1-9][0-9]{13}".boxed(),
        Field::Print | Field::PartialFlag => "[01]".boxed(),
        // Six digits, or the original transaction's full timestamp (cut to its date).
        Field::OriginalDate => prop_oneof!["[0-9]{6}", date_text()].boxed(),
        // Six digits, or the full ECR reference of the earlier transaction.
        Field::PreviousEcrNo => prop_oneof!["[0-9]{6}", "[1-9][0-9]{13}"].boxed(),
        other => {
            let spec = other.spec();
            let width = spec.width;
            let pattern = match spec.charset {
                Charset::Digits => format!("[0-9]{{{width}}}"),
                Charset::PaddedDigits => format!("[0-9]{{1,{width}}}"),
                Charset::Alphanumeric => format!("[A-Za-z0-9]{{{width}}}"),
                Charset::LowerHex => format!("[0-9a-f]{{{width}}}"),
            };
            proptest::string::string_regex(&pattern).expect("a valid pattern").boxed()
        }
    }
}

/// An `inputReqData` string of `txn_type` with valid values, and the request it parses to.
fn valid_request(txn_type: TxnType) -> impl Strategy<Value = (String, Request)> {
    let fields = txn_type.spec().input_fields.iter().map(|f| field_text(*f)).collect::<Vec<_>>();
    fields.prop_map(move |values| {
        let input = format!("{}!", values.join(";"));
        let request = Request::from_input_req_data(txn_type, &input)
            .unwrap_or_else(|e| panic!("generated {input:?} for {txn_type} is refused: {e}"));
        (input, request)
    })
}

/// Where the signature comes from.
#[derive(Debug, Clone)]
enum SignWith {
    TerminalId(TerminalId),
    Signature(Signature),
    Nothing,
}

impl SignWith {
    fn signing(&self) -> Signing<'_> {
        match self {
            SignWith::TerminalId(id) => Signing::TerminalId(id),
            SignWith::Signature(signature) => Signing::Signature(signature),
            SignWith::Nothing => Signing::Unsigned,
        }
    }

    /// The signature a frame of `request` must carry.
    fn expected(&self, request: &Request) -> Option<Signature> {
        if !request.txn_type.spec().is_signed() {
            return None;
        }
        match self {
            SignWith::TerminalId(id) => Some(Signature::compute(request.ecr_reference.as_ref()?, id)),
            SignWith::Signature(signature) => Some(signature.clone()),
            SignWith::Nothing => None,
        }
    }
}

fn sign_with() -> impl Strategy<Value = SignWith> {
    prop_oneof![
        3 => "[0-9]{16}".prop_map(|t| SignWith::TerminalId(TerminalId::parse(&t).unwrap())),
        2 => "[0-9a-f]{64}".prop_map(|s| SignWith::Signature(Signature::parse(&s).unwrap())),
        1 => Just(SignWith::Nothing),
    ]
}

fn lrc_mode() -> impl Strategy<Value = LrcMode> {
    select(vec![LrcMode::Skyband, LrcMode::Xor, LrcMode::None])
}

fn any_txn_type() -> impl Strategy<Value = TxnType> {
    select(TxnType::all().collect::<Vec<_>>())
}

/// One generated request with how it is signed and which LRC it gets.
#[derive(Debug, Clone)]
struct Case {
    input: String,
    request: Request,
    sign: SignWith,
    lrc: LrcMode,
}

fn case() -> impl Strategy<Value = Case> {
    (any_txn_type().prop_flat_map(valid_request), sign_with(), lrc_mode())
        .prop_map(|((input, request), sign, lrc)| Case { input, request, sign, lrc })
}

/// Bytes a noisy line may carry before the first frame: anything but STX (which would start a
/// frame) and ETX (which would end a `;` text reply).
fn line_noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>().prop_filter("not STX/ETX", |b| *b != STX && *b != ETX), 0..24)
}

/// Feeds `stream` to a decoder in chunks of the given sizes (cycled) and collects every frame,
/// draining after each push as a reader does, and calling `finish` at the end as a reader does
/// after the closing silence.
fn decode_in_chunks(stream: &[u8], chunks: &[usize]) -> (Vec<Frame>, FrameDecoder) {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    let mut at = 0;
    for size in chunks.iter().cycle() {
        if at >= stream.len() {
            break;
        }
        let end = (at + size).min(stream.len());
        decoder.push(&stream[at..end]);
        at = end;
        while let Some(frame) = decoder.next_frame() {
            frames.push(frame);
        }
    }
    frames.extend(decoder.finish());
    (frames, decoder)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Encode → cut into chunks (with noise before, several frames back to back) → decode →
    /// rebuild gives back the request and its signature, and the LRC verifies.
    #[test]
    fn every_valid_request_survives_encoding_chunking_and_decoding(
        cases in prop::collection::vec(case(), 1..=3),
        noise in line_noise(),
        chunks in prop::collection::vec(1usize..48, 1..16),
        all_at_once in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        let mut sent = Vec::new();
        for case in &cases {
            let encoded = encode_request(&case.request, case.sign.signing(), case.lrc);
            if case.request.txn_type.spec().is_signed() && matches!(case.sign, SignWith::Nothing) {
                let refused = matches!(encoded, Err(EncodeError::SignatureRequired { .. }));
                prop_assert!(refused, "a signed type encoded without a signature");
                continue;
            }
            let bytes = encoded.map_err(|e| TestCaseError::fail(format!("{}: {e}", case.input)))?;
            stream.extend_from_slice(&bytes);
            sent.push((case, bytes));
        }
        // Noise only makes sense before a frame: alone, a `;` in it is a text reply (§3.4).
        if !sent.is_empty() {
            stream.splice(0..0, noise);
        }
        let chunks = if all_at_once { vec![stream.len().max(1)] } else { chunks };
        let (frames, decoder) = decode_in_chunks(&stream, &chunks);

        prop_assert!(decoder.is_empty(), "bytes left in the decoder");
        prop_assert_eq!(frames.len(), sent.len());
        for ((case, bytes), frame) in sent.iter().zip(&frames) {
            let request = &case.request;
            let spec = request.txn_type.spec();
            prop_assert_eq!(&frame.raw, bytes, "the frame's bytes are the bytes sent");
            prop_assert_eq!(frame.command(), spec.command);
            prop_assert_eq!(frame.fields.first().map(String::as_str), Some(""));
            prop_assert_eq!(frame.fields.last().map(String::as_str), Some("120"));
            match case.lrc {
                LrcMode::None => prop_assert_eq!(frame.lrc, None),
                mode => prop_assert_eq!(frame.lrc_matches(mode), Some(true), "LRC {:?}", frame.lrc),
            }

            let wire = &frame.fields[2..frame.fields.len() - 1];
            let (decoded, signature) = Request::from_wire_fields(request.txn_type, wire)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", case.input)))?;
            // Fields the type does not send (the refund's original date) cannot come back.
            let mut expected = request.clone();
            if !spec.wire_fields.contains(&Field::OriginalDate) {
                expected.original_date = None;
            }
            prop_assert_eq!(decoded, expected, "{}", case.input);
            prop_assert_eq!(signature, case.sign.expected(request));
        }
    }

    /// The inputReqData form round-trips through the codec's canonical form.
    #[test]
    fn input_req_data_round_trips((_, request) in any_txn_type().prop_flat_map(valid_request)) {
        let again = Request::from_input_req_data(request.txn_type, &request.to_input_req_data());
        prop_assert_eq!(again, Ok(request));
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness: arbitrary bytes and fields
// ---------------------------------------------------------------------------------------------

/// Text that steers the reply parsers into their branches: commands, codes, block markers,
/// numbers, hex, and arbitrary Unicode (for slicing bugs).
fn reply_token() -> BoxedStrategy<String> {
    let mut words: Vec<String> = TXN_TYPES.iter().map(|s| s.command.to_owned()).collect();
    words.extend(
        [
            "",
            "D1",
            "000",
            "001",
            "00",
            "0",
            "1",
            "2",
            "116",
            "300",
            "400",
            "500",
            "501",
            "800",
            "1003",
            "1004",
            "1008",
            "APPROVED",
            "DECLINED",
            "NO DATA FOUND",
            "mada HOST",
            "POS TERMINAL",
            "POS TERMINAL DETAILS",
            "mada",
            "Yes",
            "No",
            "120",
            " 000 ",
            "\u{fffd}",
        ]
        .map(str::to_owned),
    );
    prop_oneof![
        4 => select(words),
        2 => "[0-9]{0,20}",
        1 => "[0-9a-f]{0,16}",
        1 => "[0-9*]{10,19}",
        1 => "[1-9][0-9]{13}",
        1 => "[0-9a-f]{64}",
        2 => ".{0,12}",
    ]
    .boxed()
}

/// A reply's fields (at most `max` after the command) as `Response::from_fields` gets them:
/// usually the STX slot and a command first, sometimes anything at all.
fn reply_fields(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        3 => (select(TXN_TYPES.iter().map(|s| s.command).collect::<Vec<_>>()), prop::collection::vec(reply_token(), 0..max))
            .prop_map(|(command, rest)| {
                let mut fields = vec![String::new(), command.to_owned()];
                fields.extend(rest);
                fields
            }),
        1 => prop::collection::vec(reply_token(), 0..max),
    ]
}

/// Bytes as they might come down a line: separators and frame bytes often, reply words, noise,
/// the start of a reply to a known command, and whole replies of any shape.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    let commands: Vec<&str> = TXN_TYPES.iter().map(|s| s.command).collect();
    let piece = prop_oneof![
        4 => any::<u8>().prop_map(|b| vec![b]),
        2 => select(vec![STX, ETX, FS, b';', b' ', b'\n']).prop_map(|b| vec![b]),
        3 => reply_token().prop_map(String::into_bytes),
        1 => select(commands).prop_map(|c| [&[STX, FS][..], c.as_bytes(), &[FS]].concat()),
        1 => (reply_fields(40), lrc_mode()).prop_map(|(fields, lrc)| encode_fields(&fields[1.min(fields.len())..], lrc)),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Calls every reply accessor under both layouts; a panic fails the property.
fn exercise(response: &Response) {
    for layout in [Layout::V35, Layout::V2020] {
        let _ = response.parsed(layout);
        let _ = response.view(layout);
    }
    let _ = (response.approved(), response.message(), response.code(), response.command());
    let _ = (response.class(), response.requires_registration(), response.ecr_reference());
    if let Some(inner) = response.repeated() {
        exercise(&inner);
    }
}

/// What a reader may ask of the decoder.
#[derive(Debug, Clone)]
enum Op {
    Push(Vec<u8>),
    Next,
    Finish,
    HasCompleteField,
    AwaitingLrc,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => wire_bytes().prop_map(Op::Push),
        4 => Just(Op::Next),
        1 => Just(Op::Finish),
        1 => Just(Op::HasCompleteField),
        1 => Just(Op::AwaitingLrc),
        1 => Just(Op::Clear),
    ]
}

fn check_frame(frame: Frame) -> Result<(), TestCaseError> {
    prop_assert_eq!(frame.fields.first().map(String::as_str), Some(""), "[0] is the empty STX slot");
    for mode in [LrcMode::Skyband, LrcMode::Xor, LrcMode::None] {
        let _ = frame.lrc_matches(mode);
    }
    let _ = frame.command();
    exercise(&Response::from_frame(frame));
    Ok(())
}

proptest! {
    // Generating the byte streams dominates the run time; 1024 cases keep this near a few
    // seconds in a debug build. The fuzz target (fuzz/) goes further.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever arrives, in whatever pieces, and whatever the reader asks in between: no panic,
    /// and every frame that comes out can be read as a reply.
    #[test]
    fn the_decoder_and_the_reply_api_never_panic_on_arbitrary_bytes(ops in prop::collection::vec(op(), 0..12)) {
        let mut decoder = FrameDecoder::new();
        for op in ops {
            match op {
                Op::Push(bytes) => decoder.push(&bytes),
                Op::Next => {
                    if let Some(frame) = decoder.next_frame() {
                        check_frame(frame)?;
                    }
                }
                Op::Finish => {
                    if let Some(frame) = decoder.finish() {
                        check_frame(frame)?;
                    }
                }
                Op::HasCompleteField => {
                    let _ = decoder.has_complete_field();
                }
                Op::AwaitingLrc => {
                    let _ = decoder.awaiting_lrc();
                }
                Op::Clear => decoder.clear(),
            }
            let _ = decoder.is_empty();
        }
        while let Some(frame) = decoder.next_frame() {
            check_frame(frame)?;
        }
        if let Some(frame) = decoder.finish() {
            check_frame(frame)?;
        }
        // A reader drains `next_frame` and then ends on the silence: nothing may stay behind,
        // or it would be taken for the start of the next exchange's reply.
        prop_assert!(decoder.is_empty(), "bytes left after the closing silence");
    }

    /// Any field list, for any command (or none): the reply API answers without panicking.
    #[test]
    fn replies_of_any_shape_never_panic(fields in reply_fields(48)) {
        exercise(&Response::from_fields(fields));
    }
}

/// The generators above must cover the whole field table; a field added to the table without a
/// generator case would otherwise be tested only through its charset default.
#[test]
fn every_field_of_the_table_has_a_generator() {
    let used: BTreeSet<Field> =
        TXN_TYPES.iter().flat_map(|s| s.input_fields.iter().chain(s.wire_fields)).copied().collect();
    for spec in FIELDS {
        assert!(used.contains(&spec.field) || spec.field == Field::Signature, "{:?} is in no type", spec.field);
        // Building the strategy checks its pattern compiles.
        let _ = field_text(spec.field);
    }
}
