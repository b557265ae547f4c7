//! Every request frame of the vendor's packer (`nami-sdk/tests/data/request-frames.json`, docs/protocol.md
//! §2.3) must come out of our encoder byte for byte, and decode
//! back into the same request.

use nami_sdk::{FrameDecoder, LrcMode, Request, Signature, Signing, TerminalId, TxnType, encode_request};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/request-frames.json");
    let text = std::fs::read_to_string(path).expect("vector file");
    let json: Value = serde_json::from_str(&text).expect("vector JSON");
    json["vectors"].as_array().expect("vectors array").clone()
}

#[test]
fn every_vendor_vector_is_encoded_byte_for_byte() {
    let vectors = vectors();
    assert!(vectors.len() >= 24, "expected the full vector set, got {}", vectors.len());
    for vector in vectors {
        let code = vector["txnType"].as_u64().unwrap() as u8;
        let input = vector["inputReqData"].as_str().unwrap();
        let txn_type = TxnType::from_code(code).unwrap();
        let request = Request::from_input_req_data(txn_type, input).unwrap();
        let terminal_id = vector["terminalId"].as_str().map(|t| TerminalId::parse(t).unwrap());
        let signing = terminal_id.as_ref().map_or(Signing::Unsigned, Signing::TerminalId);
        let frame = encode_request(&request, signing, LrcMode::Skyband).unwrap();
        assert_eq!(hex::encode(&frame), vector["frameHex"].as_str().unwrap(), "type {code}: {input}");

        // The same frame signed with the vector's explicit signature is identical.
        if let Some(signature) = vector["signature"].as_str() {
            let signature = Signature::parse(signature).unwrap();
            let again = encode_request(&request, Signing::Signature(&signature), LrcMode::Skyband).unwrap();
            assert_eq!(again, frame, "type {code} with explicit signature");
        }
    }
}

#[test]
fn every_vendor_vector_decodes_back_to_its_request() {
    for vector in vectors() {
        let bytes = hex::decode(vector["frameHex"].as_str().unwrap()).unwrap();
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        let frame = decoder.next_frame().expect("a complete frame");
        assert_eq!(frame.lrc_matches(LrcMode::Skyband), Some(true));
        let txn_type = TxnType::from_command(frame.command()).unwrap();
        assert_eq!(txn_type.code() as u64, vector["txnType"].as_u64().unwrap());
        let wire = &frame.fields[2..frame.fields.len() - 1];
        assert_eq!(frame.fields.last().unwrap(), "120");
        let (request, signature) = Request::from_wire_fields(txn_type, wire).unwrap();
        let expected = Request::from_input_req_data(txn_type, vector["inputReqData"].as_str().unwrap()).unwrap();
        // The refund's original date is not on the wire (§2.3).
        let mut expected = expected;
        if txn_type == TxnType::Refund {
            expected.original_date = None;
        }
        assert_eq!(request, expected);
        assert_eq!(signature.map(|s| s.as_str().to_owned()), vector["signature"].as_str().map(str::to_owned));
    }
}
