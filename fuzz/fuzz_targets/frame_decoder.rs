//! Fuzzes the frame decoder and the reply API with whatever a terminal link could deliver.
//!
//! The first input byte picks how the rest is cut into reads (so libFuzzer explores chunk
//! boundaries, e.g. an ETX and its LRC arriving apart) and when the reader gives up waiting;
//! every frame that comes out is read as a reply under both layouts. Any panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nami_sdk::{Frame, FrameDecoder, Layout, LrcMode, Response};

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else { return };
    // Low 6 bits: read size 1..=64. Bit 6: ask `has_complete_field`/`awaiting_lrc` and end the
    // frame on a "silence" after every read, as a reader with a short idle timeout would.
    let chunk = usize::from(control & 0x3f) + 1;
    let finish_each_read = control & 0x40 != 0;

    let mut decoder = FrameDecoder::new();
    for read in bytes.chunks(chunk) {
        decoder.push(read);
        while let Some(frame) = decoder.next_frame() {
            exercise_frame(frame);
        }
        if finish_each_read
            && decoder.has_complete_field()
            && !decoder.awaiting_lrc()
            && let Some(frame) = decoder.finish()
        {
            exercise_frame(frame);
        }
    }
    let _ = (decoder.has_complete_field(), decoder.awaiting_lrc(), decoder.is_empty());
    if let Some(frame) = decoder.finish() {
        exercise_frame(frame);
    }
    // After the closing silence nothing may be left half-read.
    assert!(decoder.is_empty());
});

fn exercise_frame(frame: Frame) {
    assert!(frame.fields.first().is_some_and(String::is_empty), "[0] is the empty STX slot");
    for mode in [LrcMode::Skyband, LrcMode::Xor, LrcMode::None] {
        let _ = frame.lrc_matches(mode);
    }
    exercise_response(&Response::from_frame(frame));
}

fn exercise_response(response: &Response) {
    for layout in [Layout::V35, Layout::V2020] {
        let _ = response.parsed(layout);
        let _ = response.view(layout);
    }
    let _ = (response.approved(), response.message(), response.code(), response.command());
    let _ = (response.requires_registration(), response.ecr_reference());
    if let Some(inner) = response.repeated() {
        exercise_response(&inner);
    }
}
