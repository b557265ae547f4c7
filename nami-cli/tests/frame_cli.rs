//! `nami frame` as a user runs it: the built binary, its stdout, stderr and exit status.

use std::process::{Command, Output};

use nami_sdk::{LrcMode, Request, TxnType, encode_fields};
use serde_json::Value;

fn nami(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nami")).args(args).output().expect("the nami binary runs")
}

/// Runs `nami` and expects success; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = nami(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "nami {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Runs `nami` and expects bad-input status 2 with one line on stderr; returns that line.
fn bad_input(args: &[&str]) -> String {
    let out = nami(args);
    let stderr = String::from_utf8(out.stderr).expect("stderr is UTF-8");
    assert_eq!(out.status.code(), Some(2), "nami {args:?}: expected exit 2, stderr: {stderr}");
    assert!(out.stdout.is_empty(), "nami {args:?} printed output on failure");
    assert_eq!(stderr.lines().count(), 1, "nami {args:?}: stderr is not one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr.trim_end().to_owned()
}

fn decode_json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).expect("decode prints JSON")
}

struct Vector {
    txn_type: u8,
    input_req_data: String,
    terminal_id: Option<String>,
    signature: Option<String>,
    frame_hex: String,
}

fn vendor_vectors() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../nami-sdk/tests/data/request-frames.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).unwrap();
    let text = |v: &Value, key: &str| v[key].as_str().map(str::to_owned);
    let vectors: Vec<Vector> = data["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .map(|v| Vector {
            txn_type: v["txnType"].as_u64().expect("txnType") as u8,
            input_req_data: text(v, "inputReqData").expect("inputReqData"),
            terminal_id: text(v, "terminalId"),
            signature: text(v, "signature"),
            frame_hex: text(v, "frameHex").expect("frameHex"),
        })
        .collect();
    assert!(vectors.len() >= 20, "the vector file lost its vectors");
    vectors
}

#[test]
fn every_vendor_vector_encodes_byte_for_byte_through_the_cli() {
    for v in vendor_vectors() {
        let code = v.txn_type.to_string();
        let base = ["frame", "encode", "--txn-type", &code, "--input-req-data", &v.input_req_data];
        let mut runs: Vec<Vec<&str>> = Vec::new();
        match (&v.terminal_id, &v.signature) {
            (Some(terminal_id), Some(signature)) => {
                runs.push([&base[..], &["--terminal-id", terminal_id]].concat());
                runs.push([&base[..], &["--signature", signature]].concat());
            }
            _ => runs.push(base.to_vec()),
        }
        for args in runs {
            assert_eq!(ok(&args).trim_end(), v.frame_hex, "nami {args:?}");
        }
    }
}

#[test]
fn types_are_accepted_by_name_and_the_lrc_mode_is_selectable() {
    let args = |txn: &'static str, lrc: &'static str| {
        ["frame", "encode", "--txn-type", txn, "--input-req-data", "130623194300;00000000!", "--lrc", lrc]
    };
    // XOR 0xB5 is sent as 0x45 in skyband mode (docs/protocol.md §3.3).
    let body = "02fc4130fc313330363233313934333030fc3030303030303030fc313230fc03";
    assert_eq!(ok(&args("register", "skyband")).trim_end(), format!("{body}45"));
    assert_eq!(ok(&args("REGISTER", "xor")).trim_end(), format!("{body}b5"));
    assert_eq!(ok(&args("17", "none")).trim_end(), body);
}

#[test]
fn register_encodes_without_a_terminal_id() {
    let hex = ok(&["frame", "encode", "--txn-type", "17", "--input-req-data", "130623194300;12345678!"]);
    assert_eq!(hex.trim_end(), "02fc4130fc313330363233313934333030fc3132333435363738fc313230fc0346");
}

#[test]
fn decoding_a_vendor_vector_names_its_type_and_gives_back_its_request() {
    for v in vendor_vectors() {
        let json = decode_json(&["frame", "decode", &v.frame_hex]);
        let txn_type = TxnType::from_code(v.txn_type).unwrap();
        assert_eq!(json["command"], txn_type.command(), "{}", v.input_req_data);
        assert_eq!(json["txnType"], v.txn_type);
        assert_eq!(json["txnTypeName"], txn_type.name());
        assert_eq!(json["lrcValid"], true, "{}", v.input_req_data);
        // The CLI prints the codec's canonical form (zero-padded amounts); the refund's original
        // date is not on the wire, so it comes back empty.
        let mut expected = Request::from_input_req_data(txn_type, &v.input_req_data).unwrap();
        if txn_type == TxnType::Refund {
            expected.original_date = None;
        }
        assert_eq!(json["request"]["inputReqData"], expected.to_input_req_data(), "{}", v.input_req_data);
        assert_eq!(json["request"]["signature"], v.signature.as_deref().map_or(Value::Null, Value::from));
        // A request has no response code.
        assert_eq!(json["responseCode"], Value::Null);
        assert_eq!(json["approved"], false);
        assert_eq!(json["fields"][0], "");
        assert_eq!(json["fields"][1], txn_type.command());
    }
}

/// A §5.2 (SDK 3.5) purchase reply: [4] PAN … [35] ECR reference, [36] signature.
fn approved_purchase_reply() -> Vec<u8> {
    let signature = "ab".repeat(32);
    let mut fields = vec!["A1", "000", "APPROVED", "5588123412341234", "000000001000", "BC01", "000123"];
    fields.extend(["0321144000", "2712", "123456789012", "A1B2C3", "8184000200000077", "MID0001", "007"]);
    fields.extend(["A0000002281010", "AC", "80", "CVR", "TVR", "TSI", "KID", "PAR", "1234", "CONTACTLESS"]);
    fields.extend(["5411", "00", "mada", "PRODUCT", "1.0.0", "CARDHOLDER PIN VERIFIED", "Shop", "Riyadh"]);
    fields.extend(["e6c7e5ea", "", "12345678000001", &signature]);
    encode_fields(&fields, LrcMode::Skyband)
}

#[test]
fn a_simulated_approved_reply_decodes_as_approved_with_named_fields() {
    let hex = nami_hex(&approved_purchase_reply());
    let stdout = ok(&["frame", "decode", &hex]);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["command"], "A1");
    assert_eq!(json["txnType"], 0);
    assert_eq!(json["txnTypeName"], "PURCHASE");
    assert_eq!(json["responseCode"], "000");
    assert_eq!(json["responseMessage"], "APPROVED");
    assert_eq!(json["approved"], true);
    assert_eq!(json["lrcValid"], true);
    assert!(json.get("request").is_none(), "a reply is not a request");
    let parsed = &json["parsed"];
    assert_eq!(parsed["pan"], "558812******1234", "the card number is masked");
    assert_eq!(parsed["amount"], "000000001000");
    assert_eq!(parsed["rrn"], "123456789012");
    assert_eq!(parsed["approvalCode"], "A1B2C3");
    assert_eq!(parsed["schemeLabel"], "mada");
    assert_eq!(parsed["merchantNameAr"], "نامي", "Arabic hex is decoded");
    assert_eq!(parsed["ecrReferenceNo"], "12345678000001");
    // Named fields come in reply order, not sorted (`Value` sorts its keys, so look at the text).
    let at = |key: &str| stdout.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("{key} missing"));
    assert!(at("pan") < at("amount") && at("amount") < at("businessCode") && at("businessCode") < at("aid"));
    assert_eq!(json["fields"].as_array().unwrap().len(), 37);
    // The raw fields too: the whole card number is printed nowhere.
    assert!(!stdout.contains("5588123412341234"), "{stdout}");
    assert_eq!(json["fields"][4], "558812******1234");
}

#[test]
fn the_layout_option_selects_the_2020_field_names() {
    let hex = nami_hex(&approved_purchase_reply());
    let json = decode_json(&["frame", "decode", "--layout", "v2020", &hex]);
    // In the 2020 layout [6] is the STAN, not a business code.
    assert_eq!(json["parsed"]["stan"], "BC01");
    assert!(json["parsed"].get("businessCode").is_none());
}

#[test]
fn a_declined_reply_and_a_register_reply_are_judged_by_their_code() {
    let declined = nami_hex(&encode_fields(&["A1", "116", "DECLINED"], LrcMode::Skyband));
    let json = decode_json(&["frame", "decode", &declined]);
    assert_eq!((json["approved"].as_bool(), json["responseCode"].as_str()), (Some(false), Some("116")));
    let register = nami_hex(&encode_fields(&["A0", "800", "8184000200000077"], LrcMode::Skyband));
    let json = decode_json(&["frame", "decode", &register]);
    assert_eq!(json["approved"], true);
    assert_eq!(json["parsed"]["terminalId"], "8184000200000077");
}

#[test]
fn pasted_captures_with_spaces_and_colons_decode() {
    let bytes = encode_fields(&["A0", "800", "8184000200000077"], LrcMode::Skyband);
    let spaced = bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ");
    let coloned = bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    for hex in [spaced, coloned] {
        assert_eq!(decode_json(&["frame", "decode", &hex])["responseCode"], "800");
    }
}

#[test]
fn the_lrc_is_checked_against_the_chosen_mode_and_absent_lrc_is_null() {
    // The skyband register frame: XOR 0xB5 sent as 0x45.
    let frame = "02fc4130fc313330363233313934333030fc3030303030303030fc313230fc0345";
    assert_eq!(decode_json(&["frame", "decode", frame])["lrcValid"], true);
    let json = decode_json(&["frame", "decode", "--lrc", "xor", frame]);
    assert_eq!((json["lrc"].as_str(), json["lrcValid"].as_bool()), (Some("45"), Some(false)));
    let without = &frame[..frame.len() - 2];
    let json = decode_json(&["frame", "decode", without]);
    assert_eq!((json["lrc"].clone(), json["lrcValid"].clone()), (Value::Null, Value::Null));
}

#[test]
fn a_semicolon_reply_without_stx_decodes() {
    let hex = nami_hex(b"\n\t\t;A0;1004;8184000200000077;\n\t");
    let json = decode_json(&["frame", "decode", &hex]);
    assert_eq!(json["fields"], serde_json::json!(["", "A0", "1004", "8184000200000077"]));
    assert_eq!(json["approved"], true);
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_field_or_code() {
    let purchase = |data: &'static str| {
        vec!["frame", "encode", "--txn-type", "0", "--input-req-data", data, "--terminal-id", "8184000200000077"]
    };
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (purchase("210320144000;1x0;0;12345678000001!"), &["INVALID_AMOUNT", "`amount`", "\"1x0\""]),
        (purchase("210320144000;100;0;02345678000001!"), &["INVALID_ECR_REF", "`ecrReferenceNo`"]),
        (purchase("210320144000;100;0;1234567800000!"), &["INVALID_ECR_REF"]),
        (purchase("210320144000;100;0;12345678000001"), &["INVALID_INPUT_REQ_DATA", "'!'"]),
        (purchase("210320144000;100;12345678000001!"), &["INVALID_INPUT_REQ_DATA", "date;amount;print"]),
        (purchase("320320144000;100;0;12345678000001!"), &["INVALID_DATE"]),
        (
            vec!["frame", "encode", "--txn-type", "7", "--input-req-data", "210320144000;12345678000001!"],
            &["INVALID_TXN_TYPE", "7", "unsupported"],
        ),
        (
            vec!["frame", "encode", "--txn-type", "BOGUS", "--input-req-data", "210320144000;12345678000001!"],
            &["INVALID_TXN_TYPE", "BOGUS"],
        ),
        (
            vec!["frame", "encode", "--txn-type", "purchase", "--input-req-data", "210320144000;100;0;12345678000001!"],
            &["SIGNATURE_REQUIRED", "PURCHASE", "--terminal-id"],
        ),
        (
            vec!["frame", "encode", "--txn-type", "24", "--input-req-data", "210320144000;12345678000001!"],
            &["SIGNATURE_REQUIRED", "CHECK_STATUS"],
        ),
        (
            vec![
                "frame",
                "encode",
                "--txn-type",
                "24",
                "--input-req-data",
                "210320144000;12345678000001!",
                "--terminal-id",
                "123",
            ],
            &["INVALID_TERMINAL_ID", "16 digits"],
        ),
        (
            vec![
                "frame",
                "encode",
                "--txn-type",
                "24",
                "--input-req-data",
                "210320144000;12345678000001!",
                "--signature",
                "ABC",
            ],
            &["INVALID_SIGNATURE"],
        ),
        (
            vec!["frame", "encode", "--txn-type", "17", "--input-req-data", "130623194300;1234567!", "--lrc", "crc"],
            &["INVALID_LRC_MODE"],
        ),
        (vec!["frame", "decode", "02fc4"], &["INVALID_HEX", "odd number of digits (5)"]),
        (vec!["frame", "decode", "02zz"], &["INVALID_HEX", "'z'"]),
        (vec!["frame", "decode", ""], &["INVALID_HEX", "empty"]),
        (vec!["frame", "decode", "deadbeef"], &["INVALID_FRAME", "no frame"]),
        (vec!["frame", "decode", "0203"], &["INVALID_FRAME"]),
        (vec!["frame", "decode", "--layout", "v9", "0203"], &["INVALID_LAYOUT"]),
    ];
    for (args, needles) in cases {
        let line = bad_input(&args);
        for needle in needles {
            assert!(line.contains(needle), "nami {args:?}: {line:?} does not mention {needle:?}");
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frame", "encode", "--txn-type", "0"][..],
        &[
            "frame",
            "encode",
            "--txn-type",
            "24",
            "--input-req-data",
            "210320144000;12345678000001!",
            "--terminal-id",
            "8184000200000077",
            "--signature",
            "e9a28f2886cd0b9b5a8f0dd5772d7a703ac26a5a12802e9fe108241856f31778",
        ][..],
        &["frame", "decode"][..],
        &["frame"][..],
        &["bogus"][..],
    ] {
        assert_eq!(nami(args).status.code(), Some(2), "nami {args:?}");
    }
}

#[test]
fn odd_frames_never_crash_the_decoder() {
    // Truncated, unterminated, separator-only and binary inputs: each is a frame or bad input,
    // never a panic (exit 101).
    for hex in ["02", "02fc", "02fc03", "02fcfcfc03", "3b3b3b", "02fc4131fc", "fc0302fc4130fc03ff", "00ff02fcfc"] {
        let status = nami(&["frame", "decode", hex]).status.code();
        assert!(matches!(status, Some(0 | 2)), "nami frame decode {hex}: status {status:?}");
    }
}

fn nami_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
