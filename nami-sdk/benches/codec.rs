//! Codec benchmarks: encode and decode of every transaction type's request frame (the vendor's
//! vectors), and parsing of the 37-field financial reply. `cargo bench -p nami-sdk`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nami_sdk::{
    FrameDecoder, Layout, LrcMode, Request, Response, Signing, TerminalId, TxnType, encode_fields, encode_request,
};
use serde_json::Value;

struct Vector {
    txn_type: TxnType,
    request: Request,
    frame: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/request-frames.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let terminal_id = TerminalId::parse("8184000200000077").unwrap();
    let mut seen = Vec::new();
    json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| {
            let txn_type = TxnType::from_code(v["txnType"].as_u64().unwrap() as u8).unwrap();
            // One vector per type.
            if seen.contains(&txn_type) {
                return None;
            }
            seen.push(txn_type);
            let request = Request::from_input_req_data(txn_type, v["inputReqData"].as_str().unwrap()).unwrap();
            let signing =
                if txn_type.spec().is_signed() { Signing::TerminalId(&terminal_id) } else { Signing::Unsigned };
            let frame = encode_request(&request, signing, LrcMode::Skyband).unwrap();
            Some(Vector { txn_type, request, frame })
        })
        .collect()
}

/// A purchase reply in the 3.5 layout: 37 fields.
fn financial_reply() -> Vec<u8> {
    let mut fields = vec![
        "A1",
        "000",
        "APPROVED",
        "588845******1234",
        "000000001000",
        "00",
        "000123",
        "1121143000",
        "2812",
        "123456789012",
        "654321",
        "8184000200000077",
        "800150400566",
        "000001",
        "A0000002281010",
        "0123456789ABCDEF",
        "80",
        "03A0A000",
        "0000008000",
        "E800",
        "2",
        "PAR0000000000000000000000000",
        "1234",
        "CONTACTLESS",
        "5411",
        "00",
        "mada",
        "mada Debit",
        "1.0.0",
        "CARDHOLDER PIN VERIFIED",
        "NAMI DEMO STORE",
        "RIYADH",
        "e6c7e5ea20c7e4e5cad1d3",
        "c7e4d1eac7d6",
        "12345678000001",
        "e9a28f2886cd0b9b5a8f0dd5772d7a703ac26a5a12802e9fe108241856f31778",
    ];
    fields.truncate(36);
    encode_fields(&fields, LrcMode::Skyband)
}

fn bench_encode(c: &mut Criterion) {
    let terminal_id = TerminalId::parse("8184000200000077").unwrap();
    let mut group = c.benchmark_group("encode");
    for vector in vectors() {
        let signing =
            if vector.txn_type.spec().is_signed() { Signing::TerminalId(&terminal_id) } else { Signing::Unsigned };
        group.bench_with_input(BenchmarkId::from_parameter(vector.txn_type.name()), &vector.request, |b, request| {
            b.iter(|| encode_request(black_box(request), signing, LrcMode::Skyband).unwrap())
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_request");
    for vector in vectors() {
        group.bench_with_input(BenchmarkId::from_parameter(vector.txn_type.name()), &vector.frame, |b, frame| {
            b.iter(|| {
                let mut decoder = FrameDecoder::new();
                decoder.push(black_box(frame));
                let frame = decoder.next_frame().unwrap();
                let txn_type = TxnType::from_command(frame.command()).unwrap();
                Request::from_wire_fields(txn_type, &frame.fields[2..frame.fields.len() - 1]).unwrap()
            })
        });
    }
    group.finish();
}

fn bench_reply(c: &mut Criterion) {
    let reply = financial_reply();
    let mut group = c.benchmark_group("reply_37_fields");
    group.bench_function("decode_frame", |b| {
        b.iter(|| {
            let mut decoder = FrameDecoder::new();
            decoder.push(black_box(&reply));
            decoder.next_frame().unwrap()
        })
    });
    let frame = {
        let mut decoder = FrameDecoder::new();
        decoder.push(&reply);
        decoder.next_frame().unwrap()
    };
    group.bench_function("parse_named_fields", |b| {
        b.iter(|| Response::from_fields(black_box(frame.fields.clone())).parsed(Layout::V35))
    });
    group.bench_function("typed_view", |b| {
        b.iter(|| Response::from_fields(black_box(frame.fields.clone())).view(Layout::V35))
    });
    group.finish();
}

criterion_group!(benches, bench_encode, bench_decode, bench_reply);
criterion_main!(benches);
