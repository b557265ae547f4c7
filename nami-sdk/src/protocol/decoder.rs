//! An incremental frame decoder (docs/protocol.md §3.4, D4). Bytes go in as they arrive, one at a
//! time or many frames at once; complete frames come out. It never blocks and never guesses: when
//! the end of a frame cannot be known from the bytes alone (no ETX, or an LRC byte still to come),
//! the reader decides after a silence and calls [`FrameDecoder::finish`].

use super::frame::{ETX, FS, LrcMode, STX};

/// How the fields of a frame were separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// The protocol's 0xFC byte.
    Fs,
    /// `;`, as some terminals and simulators send (§3.4).
    Semicolon,
}

/// One decoded frame: its fields, indexed as docs/protocol.md numbers them ([0] is the slot of the
/// STX and always empty, [1] the command, [2] the response code, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fields: Vec<String>,
    /// The byte after ETX, when one came.
    pub lrc: Option<u8>,
    /// The bytes of the frame as received, from STX (or the first text byte) to the LRC.
    pub raw: Vec<u8>,
    pub separator: Separator,
    /// Whether the frame ended with ETX. A frame cut short by a silence or a closed link has not,
    /// and its last field may be incomplete.
    pub terminated: bool,
}

impl Frame {
    /// Field [1], the echoed command.
    pub fn command(&self) -> &str {
        self.fields.get(1).map(String::as_str).unwrap_or("")
    }

    /// Whether the LRC byte matches `mode`; `None` when there is nothing to compare.
    pub fn lrc_matches(&self, mode: LrcMode) -> Option<bool> {
        let lrc = self.lrc?;
        // The first ETX ends the frame: fields never hold one, but the LRC byte itself may be
        // 0x03, so searching from the end would take the LRC for the ETX.
        let etx = self.raw.iter().position(|b| *b == ETX)?;
        Some(mode.compute(&self.raw[..=etx]) == Some(lrc))
    }
}

/// Accumulates bytes and yields frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

/// Bytes kept while waiting for a frame; beyond this the oldest are dropped, so a peer that
/// streams garbage cannot exhaust memory.
const MAX_BUFFERED: usize = 64 * 1024;

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > MAX_BUFFERED {
            let keep_from = self
                .buf
                .iter()
                .rposition(|b| *b == STX)
                .filter(|at| self.buf.len() - at <= MAX_BUFFERED)
                .unwrap_or(self.buf.len() - MAX_BUFFERED);
            self.buf.drain(..keep_from);
        }
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops everything buffered (e.g. after a cancelled exchange, so a late reply is not taken
    /// for the next one).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next complete frame, if the buffered bytes hold one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            self.skip_garbage();
            if self.buf.first() == Some(&STX) {
                let etx = self.buf.iter().position(|b| *b == ETX)?;
                let end = match self.buf.get(etx + 1) {
                    None => return None, // the LRC may still come
                    // ETX directly followed by the start of another frame: this one had no LRC.
                    Some(&STX) if self.buf.get(etx + 2) == Some(&FS) => etx + 1,
                    Some(&STX) if self.buf.len() == etx + 2 => return None, // LRC 0x02 or a new frame
                    Some(_) => etx + 2,
                };
                return Some(self.take_stx_frame(end, etx));
            }
            // A `;`-separated reply without STX ends at an ETX, if it sends one.
            let etx = self.buf.iter().position(|b| *b == ETX)?;
            let end = (etx + 2).min(self.buf.len());
            let raw: Vec<u8> = self.buf.drain(..end).collect();
            if let Some(frame) = text_frame(&raw[..etx], raw.get(etx + 1).copied(), raw.clone(), true) {
                return Some(frame);
            }
            // That was noise up to an ETX, now dropped; a frame may follow in the same bytes, and
            // a reader that stops at `None` would otherwise leave it unread.
        }
    }

    /// Whether an ETX arrived and only the LRC byte is outstanding.
    pub fn awaiting_lrc(&self) -> bool {
        let len = self.buf.len();
        self.buf.first() == Some(&STX)
            && self
                .buf
                .iter()
                .position(|b| *b == ETX)
                .is_some_and(|etx| etx + 1 == len || (etx + 2 == len && self.buf[etx + 1] == STX))
    }

    /// Whether at least one complete field is buffered, so that a silence may end the frame (D4).
    pub fn has_complete_field(&self) -> bool {
        let start = self.buf.iter().position(|b| *b == STX).map_or(0, |at| at + 1);
        let body = &self.buf[start..];
        body.iter().enumerate().any(|(i, b)| (*b == FS || *b == b';') && body[..i].iter().any(|c| !is_filler(*c)))
    }

    /// Ends the current frame because the peer fell silent or closed: returns what is buffered as
    /// a frame if it has at least one field, and empties the buffer.
    pub fn finish(&mut self) -> Option<Frame> {
        if let Some(frame) = self.next_frame() {
            return Some(frame);
        }
        self.skip_garbage();
        if self.buf.first() == Some(&STX) {
            let frame = match self.buf.iter().position(|b| *b == ETX) {
                Some(etx) => {
                    let end = (etx + 2).min(self.buf.len());
                    self.take_stx_frame(end, etx)
                }
                None => {
                    let len = self.buf.len();
                    self.take_stx_frame(len, len)
                }
            };
            return (frame.fields.len() > 1).then_some(frame);
        }
        let raw = std::mem::take(&mut self.buf);
        text_frame(&raw, None, raw.clone(), false)
    }

    /// Drops bytes before the first STX, unless there is no STX at all (a `;` reply may be
    /// arriving).
    fn skip_garbage(&mut self) {
        if let Some(at) = self.buf.iter().position(|b| *b == STX)
            && at > 0
        {
            tracing::debug!(skipped = at, "bytes before STX skipped");
            self.buf.drain(..at);
        }
    }

    /// Takes `buf[..end]` as a frame whose ETX is at `etx` (or `etx == end` if it has none).
    fn take_stx_frame(&mut self, end: usize, etx: usize) -> Frame {
        let raw: Vec<u8> = self.buf.drain(..end).collect();
        let lrc = if end > etx + 1 { Some(raw[etx + 1]) } else { None };
        let body = &raw[1..etx.min(raw.len())];
        let separator = if body.contains(&FS) || !body.contains(&b';') { Separator::Fs } else { Separator::Semicolon };
        let fields = split_fields(body, separator);
        Frame { fields, lrc, raw, separator, terminated: etx < end }
    }
}

fn is_filler(b: u8) -> bool {
    b.is_ascii_whitespace() || b == STX || b == ETX
}

/// A reply that came as text with `;` separators (no STX), e.g. `"\n\t\t;A0;1004;81840002…;\n\t"`.
fn text_frame(body: &[u8], lrc: Option<u8>, raw: Vec<u8>, terminated: bool) -> Option<Frame> {
    let start = body.iter().position(|b| !is_filler(*b))?;
    let end = body.iter().rposition(|b| !is_filler(*b))? + 1;
    let body = &body[start..end];
    let separator = if body.contains(&FS) { Separator::Fs } else { Separator::Semicolon };
    let sep = if separator == Separator::Fs { FS } else { b';' };
    if !body.contains(&sep) {
        tracing::debug!(len = body.len(), "bytes without a frame discarded");
        return None;
    }
    let fields = split_fields(body, separator);
    (fields.len() > 1).then_some(Frame { fields, lrc, raw, separator, terminated })
}

/// Splits a frame body into fields, numbered so that [1] is the command.
fn split_fields(body: &[u8], separator: Separator) -> Vec<String> {
    let sep = match separator {
        Separator::Fs => FS,
        Separator::Semicolon => b';',
    };
    let mut fields: Vec<String> = body.split(|b| *b == sep).map(field_text).collect();
    if separator == Separator::Semicolon {
        for field in &mut fields {
            *field = field.trim().to_owned();
        }
    }
    // A frame normally starts with a separator right after STX, giving the empty slot [0].
    if fields.first().is_some_and(|f| !f.is_empty()) {
        fields.insert(0, String::new());
    }
    // And ends with a separator before ETX.
    if fields.len() > 1 && fields.last().is_some_and(|f| f.is_empty()) {
        fields.pop();
    }
    fields
}

/// Field bytes as text: UTF-8 when valid, otherwise byte for byte (Latin-1), never lossy.
fn field_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::encode_fields;

    fn reply(fields: &[&str]) -> Vec<u8> {
        encode_fields(fields, LrcMode::Skyband)
    }

    #[test]
    fn a_frame_fed_one_byte_at_a_time_comes_out_once_complete() {
        let bytes = reply(&["A0", "800", "8184000200000077"]);
        let mut decoder = FrameDecoder::new();
        for (i, b) in bytes.iter().enumerate() {
            assert!(decoder.next_frame().is_none(), "early frame at byte {i}");
            decoder.push(&[*b]);
        }
        let frame = decoder.next_frame().unwrap();
        assert_eq!(frame.fields, ["", "A0", "800", "8184000200000077"]);
        assert_eq!(frame.lrc_matches(LrcMode::Skyband), Some(true));
        assert!(decoder.is_empty());
    }

    #[test]
    fn two_frames_in_one_read_come_out_in_order() {
        let mut bytes = reply(&["A1", "000", "APPROVED"]);
        bytes.extend(reply(&["C3", "000", "APPROVED"]));
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        assert_eq!(decoder.next_frame().unwrap().command(), "A1");
        assert_eq!(decoder.next_frame().unwrap().command(), "C3");
        assert!(decoder.next_frame().is_none());
    }

    #[test]
    fn frames_without_lrc_back_to_back_are_split_at_the_next_stx() {
        let mut bytes = encode_fields(&["A1", "000"], LrcMode::None);
        bytes.extend(encode_fields(&["A1", "116"], LrcMode::None));
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        let first = decoder.next_frame().unwrap();
        assert_eq!((first.fields[2].as_str(), first.lrc), ("000", None));
        assert!(decoder.next_frame().is_none(), "the last frame's LRC may still come");
        assert_eq!(decoder.finish().unwrap().fields[2], "116");
    }

    #[test]
    fn garbage_before_stx_is_skipped() {
        let mut bytes = b"\xff\x00junk;;".to_vec();
        bytes.extend(reply(&["A1", "000", "APPROVED"]));
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        assert_eq!(decoder.next_frame().unwrap().fields[3], "APPROVED");
    }

    #[test]
    fn semicolon_replies_are_accepted_after_a_silence() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"\n\t\t;A0;1004;8184000200000077;\n\t");
        assert!(decoder.next_frame().is_none());
        assert!(decoder.has_complete_field());
        let frame = decoder.finish().unwrap();
        assert_eq!(frame.fields, ["", "A0", "1004", "8184000200000077"]);
        assert_eq!(frame.separator, Separator::Semicolon);
    }

    #[test]
    fn a_frame_without_etx_ends_at_the_silence() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"\x02\xfcB6\xfc800\xfc");
        assert!(decoder.next_frame().is_none());
        assert!(decoder.has_complete_field());
        assert_eq!(decoder.finish().unwrap().fields, ["", "B6", "800"]);
    }

    #[test]
    fn a_missing_lrc_is_tolerated_at_the_silence() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&encode_fields(&["C3", "000"], LrcMode::None));
        assert!(decoder.awaiting_lrc());
        assert!(decoder.next_frame().is_none());
        let frame = decoder.finish().unwrap();
        assert_eq!((frame.command(), frame.lrc), ("C3", None));
    }

    #[test]
    fn an_lrc_of_0x02_is_not_taken_for_a_new_frame() {
        let mut frame = encode_fields(&["A1", "000"], LrcMode::None);
        frame.push(STX);
        let mut decoder = FrameDecoder::new();
        decoder.push(&frame);
        assert!(decoder.next_frame().is_none());
        assert_eq!(decoder.finish().unwrap().lrc, Some(STX));
    }

    #[test]
    fn an_lrc_of_0x03_still_verifies() {
        // XOR of this frame is 0x03, so its LRC byte looks like a second ETX.
        let bytes = encode_fields(&["A1", "000", "B"], LrcMode::Xor);
        assert_eq!(bytes.last(), Some(&ETX));
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        let frame = decoder.next_frame().unwrap();
        assert_eq!(frame.lrc, Some(ETX));
        assert_eq!(frame.lrc_matches(LrcMode::Xor), Some(true));
        assert_eq!(frame.lrc_matches(LrcMode::Skyband), Some(true), "0x03 has no hex letter to mangle");
    }

    #[test]
    fn noise_ending_in_etx_does_not_hide_the_reply_after_it() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"*\x03\x03;A0;800;\x03");
        assert_eq!(decoder.next_frame().unwrap().fields, ["", "A0", "800"]);
        assert!(decoder.next_frame().is_none());
        assert!(decoder.is_empty());
    }

    #[test]
    fn pure_noise_yields_nothing() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"\x00\x01hello");
        assert!(decoder.next_frame().is_none());
        assert!(!decoder.has_complete_field());
        assert!(decoder.finish().is_none());
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut decoder = FrameDecoder::new();
        for _ in 0..100 {
            decoder.push(&[b'x'; 4096]);
        }
        assert!(decoder.buf.len() <= MAX_BUFFERED);
    }
}
