//! A link to a POS (a TCP connection, a pty or a serial device): reading frames off it, running
//! each exchange, and writing the reply the way the faults in force say.
//!
//! Each link has a reader thread. A request starts an exchange on a thread of its own, so that
//! the reader keeps reading and can refuse a second request at once with 923 while the first
//! waits for a card or a delay (D10). Frames that arrive in one read are handled in order, each
//! exchange finishing before the next starts.

#[cfg(unix)]
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

use nami_sdk::{Frame, FrameDecoder, LrcMode, encode_fields};

use crate::fault::Applied;
#[cfg(unix)]
use crate::shared::POLL_SLICE;
use crate::shared::{ExchangeGuard, Shared, Tap, lock};
use crate::terminal::{Prepared, busy, echo_command};

/// After an ETX, how long to wait for the LRC byte before taking the frame without one (D4).
const LRC_GRACE: Duration = Duration::from_millis(200);
/// How long a silence ends a frame that never sent its ETX (it will get a 904).
const SILENCE: Duration = Duration::from_secs(1);
/// The pause between the writes of a split reply, so that they arrive as separate reads.
const SPLIT_GAP: Duration = Duration::from_millis(20);
/// What the garbage faults send: no STX, ETX, 0xFC or `;`, so a tolerant reader can skip it.
pub(crate) const GARBAGE: &[u8] = b"\x00\x15\xffNOISE#\x06\x7f\x80\x10GARBAGE\x00";

enum Io {
    Tcp(TcpStream),
    /// A pty master or a serial device (Unix only: on Windows the simulator serves TCP).
    #[cfg(unix)]
    Fd(File),
}

/// The writing side of a link.
pub(crate) struct Link {
    pub name: String,
    io: Mutex<Option<Io>>,
    closed: AtomicBool,
}

impl Link {
    pub fn tcp(name: String, stream: TcpStream) -> Self {
        Link { name, io: Mutex::new(Some(Io::Tcp(stream))), closed: AtomicBool::new(false) }
    }

    #[cfg(unix)]
    pub fn fd(name: String, file: File) -> Self {
        Link { name, io: Mutex::new(Some(Io::Fd(file))), closed: AtomicBool::new(false) }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes the link as a fault does. A TCP connection is shut down (the POS reads EOF); a
    /// serial line cannot be closed from the terminal's side, so it just stays silent.
    pub fn close(&self) {
        if let Some(Io::Tcp(stream)) = lock(&self.io).as_ref() {
            self.closed.store(true, Ordering::SeqCst);
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Stops the link for good (unplug, shutdown): no more writes, the descriptor is closed.
    pub fn detach(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(Io::Tcp(stream)) = lock(&self.io).take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Writes `chunks` with `gap` between them, holding the link so no other reply interleaves.
    /// `before_last` runs just before the last chunk goes out: the exchange ends there, so a POS
    /// that answers the reply at once is not refused as busy.
    fn write_chunks(&self, chunks: &[&[u8]], gap: Duration, before_last: &mut dyn FnMut()) -> io::Result<()> {
        let mut io = lock(&self.io);
        for (i, chunk) in chunks.iter().enumerate() {
            if self.is_closed() {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "link closed"));
            }
            if i > 0 && !gap.is_zero() {
                std::thread::sleep(gap);
            }
            if i + 1 == chunks.len() {
                before_last();
            }
            match io.as_mut() {
                Some(Io::Tcp(stream)) => stream.write_all(chunk)?,
                #[cfg(unix)]
                Some(Io::Fd(file)) => write_fd(file, chunk)?,
                None => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "link closed")),
            }
        }
        if chunks.is_empty() {
            before_last();
        }
        Ok(())
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_chunks(&[bytes], Duration::ZERO, &mut || {})
    }
}

/// `write_all` for a descriptor that may be non-blocking or briefly full (a pty whose reader is
/// slow): retries until written or the descriptor fails.
#[cfg(unix)]
fn write_fd(file: &mut File, mut bytes: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "device accepted nothing")),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                if Instant::now() > deadline {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "device did not drain"));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What one read brought.
pub(crate) enum ReadOutcome {
    Data(usize),
    /// Nothing within the timeout (or a periodic wake-up when there was none).
    Timeout,
    /// The peer closed, the link failed or the simulator stops.
    Closed,
}

/// The reading side of a link.
pub(crate) trait LinkReader {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> ReadOutcome;
}

/// Reads a TCP connection. Shutdown wakes a blocked read by shutting the socket down, which
/// Unix honours; Windows (and Wine) may leave a blocked `recv` waiting, so there the reader wakes
/// every [`POLL_SLICE`](crate::shared::POLL_SLICE) to look.
pub(crate) struct TcpReader {
    pub stream: TcpStream,
    #[cfg_attr(unix, allow(dead_code))]
    pub shared: Arc<Shared>,
}

#[cfg(unix)]
impl LinkReader for TcpReader {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> ReadOutcome {
        if self.stream.set_read_timeout(timeout.filter(|t| !t.is_zero())).is_err() {
            return ReadOutcome::Closed;
        }
        read_outcome(self.stream.read(buf))
    }
}

#[cfg(windows)]
impl LinkReader for TcpReader {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> ReadOutcome {
        let deadline = timeout.filter(|t| !t.is_zero()).map(|t| std::time::Instant::now() + t);
        loop {
            if self.shared.is_shut_down() {
                return ReadOutcome::Closed;
            }
            let slice = match deadline {
                Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                    Some(left) if !left.is_zero() => crate::shared::POLL_SLICE.min(left),
                    _ => return ReadOutcome::Timeout,
                },
                None => crate::shared::POLL_SLICE,
            };
            if self.stream.set_read_timeout(Some(slice)).is_err() {
                return ReadOutcome::Closed;
            }
            match self.stream.read(buf) {
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                other => return read_outcome(other),
            }
        }
    }
}

fn read_outcome(read: io::Result<usize>) -> ReadOutcome {
    match read {
        Ok(0) => ReadOutcome::Closed,
        Ok(n) => ReadOutcome::Data(n),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => ReadOutcome::Timeout,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Timeout,
        Err(_) => ReadOutcome::Closed,
    }
}

/// Reads a pty master or a serial device with poll(), waking every [`POLL_SLICE`] to notice
/// shutdown and unplugging.
#[cfg(unix)]
pub(crate) struct FdReader {
    pub file: File,
    pub link: Arc<Link>,
    pub shared: Arc<Shared>,
}

#[cfg(unix)]
impl LinkReader for FdReader {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> ReadOutcome {
        use nix::poll::{PollFd, PollFlags, poll};
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.link.is_closed() || self.shared.is_shut_down() {
                return ReadOutcome::Closed;
            }
            let slice = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return ReadOutcome::Timeout;
                    }
                    POLL_SLICE.min(d - now)
                }
                None => POLL_SLICE,
            };
            let millis = u16::try_from(slice.as_millis()).unwrap_or(u16::MAX).max(1);
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, millis) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return ReadOutcome::Closed,
            }
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if revents.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL)
                || (revents.contains(PollFlags::POLLHUP) && !revents.contains(PollFlags::POLLIN))
            {
                return ReadOutcome::Closed;
            }
            match self.file.read(buf) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => return ReadOutcome::Data(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => continue,
                Err(_) => return ReadOutcome::Closed,
            }
        }
    }
}

/// Reads frames off a link until it closes, handling each.
pub(crate) fn serve(shared: &Arc<Shared>, link: &Arc<Link>, reader: &mut dyn LinkReader) {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 4096];
    loop {
        if shared.is_shut_down() || link.is_closed() {
            break;
        }
        let timeout = if decoder.awaiting_lrc() {
            Some(LRC_GRACE)
        } else if decoder.has_complete_field() {
            Some(SILENCE)
        } else {
            None
        };
        match reader.read(&mut buf, timeout) {
            ReadOutcome::Data(n) => {
                decoder.push(&buf[..n]);
                let frames: Vec<Frame> = std::iter::from_fn(|| decoder.next_frame()).collect();
                handle_batch(shared, link, frames);
            }
            ReadOutcome::Timeout if timeout.is_some() => {
                // The POS went quiet: an LRC that never came, or a frame without ETX.
                if let Some(frame) = decoder.finish() {
                    handle_batch(shared, link, vec![frame]);
                }
            }
            ReadOutcome::Timeout => {}
            ReadOutcome::Closed => break,
        }
    }
    tracing::debug!(link = %link.name, "link closed");
}

/// Handles the frames of one read in order.
fn handle_batch(shared: &Arc<Shared>, link: &Arc<Link>, frames: Vec<Frame>) {
    let count = frames.len();
    for (i, frame) in frames.into_iter().enumerate() {
        let Some(handle) = on_frame(shared, link, frame) else { continue };
        if i + 1 < count {
            let _ = handle.join();
        } else {
            shared.track(handle);
        }
    }
}

/// Records a frame and starts its exchange, or refuses it as busy.
fn on_frame(shared: &Arc<Shared>, link: &Arc<Link>, frame: Frame) -> Option<JoinHandle<()>> {
    shared.record_request(&frame.raw);
    let command = echo_command(&frame.fields);
    tracing::info!(link = %link.name, command, "request");
    tracing::debug!(link = %link.name, hex = %hex::encode(&frame.raw), "request bytes");
    if frame.lrc.is_some()
        && [LrcMode::Skyband, LrcMode::Xor].iter().all(|mode| frame.lrc_matches(*mode) == Some(false))
    {
        // D3: the LRC is not enforced, only noted.
        tracing::debug!(link = %link.name, "request LRC matches neither skyband nor xor");
    }
    if shared.is_shut_down() {
        return None;
    }
    let Some(guard) = shared.begin_exchange() else {
        tracing::info!(link = %link.name, command, "busy: refused with 923");
        let reply = encode_fields(&busy(&command)[1..], shared.config.lrc);
        let _ = link.write_all(&reply);
        return None;
    };
    let (shared2, link2) = (Arc::clone(shared), Arc::clone(link));
    let mut slot = Some((frame, guard));
    let spawned = std::thread::Builder::new().name("nami-sim-exchange".into()).spawn(move || {
        if let Some((frame, guard)) = slot.take() {
            run_exchange(&shared2, &link2, frame, guard);
        }
    });
    match spawned {
        Ok(handle) => Some(handle),
        Err(error) => {
            // Out of threads: the guard moved into the closure that never ran, and was dropped
            // with it, so the terminal is free again; say so rather than hang.
            tracing::warn!(%error, "cannot start an exchange thread");
            None
        }
    }
}

/// One exchange: faults, validation, the card tap, the terminal's answer, the delivery.
fn run_exchange(shared: &Arc<Shared>, link: &Arc<Link>, frame: Frame, mut guard: ExchangeGuard) {
    let applied = shared.take_faults();
    let command = echo_command(&frame.fields);
    let link_closed = || link.is_closed();
    if applied.busy {
        guard.release();
        let _ = link.write_all(&encode_fields(&busy(&command)[1..], shared.config.lrc));
        return;
    }
    let prepared = shared.terminal().prepare(&frame.fields);
    let reply = match prepared {
        Prepared::Reply(reply) => reply,
        Prepared::Valid(valid) => {
            let card_tap = shared.control().card_tap;
            let tap = if valid.needs_card() && card_tap { shared.wait_for_tap(&link_closed) } else { Tap::Tapped };
            match tap {
                Tap::Tapped => shared.terminal().complete(&valid, applied.decline.as_deref()),
                Tap::TimedOut => shared.terminal().no_card(&valid),
                Tap::Cancelled => return,
            }
        }
    };
    let code = reply.get(2).cloned().unwrap_or_default();
    tracing::info!(link = %link.name, command, code, "reply");
    if applied.never_answer {
        tracing::info!(link = %link.name, "fault never-answer: reply withheld");
        return;
    }
    if applied.close_after_request {
        tracing::info!(link = %link.name, "fault close-after-request");
        guard.release();
        link.close();
        return;
    }
    if !shared.sleep(shared.config.response_delay + applied.delay, &link_closed) {
        return;
    }
    let bytes = encode_fields(&reply[1..], shared.config.lrc);
    if let Err(error) = deliver(link, &bytes, &applied, &mut guard) {
        tracing::debug!(link = %link.name, %error, "reply not delivered");
    }
}

/// Writes a reply as the delivery faults say.
fn deliver(link: &Link, reply: &[u8], applied: &Applied, guard: &mut ExchangeGuard) -> io::Result<()> {
    let mut release = || guard.release();
    if applied.garbage_only {
        return link.write_chunks(&[GARBAGE], Duration::ZERO, &mut release);
    }
    let mut payload = Vec::with_capacity(GARBAGE.len() + 2 * reply.len());
    if applied.garbage {
        payload.extend_from_slice(GARBAGE);
    }
    let reply_start = payload.len();
    payload.extend_from_slice(reply);
    if applied.two_replies {
        payload.extend_from_slice(reply);
    }
    let end = if applied.close_mid_reply { reply_start + (reply.len() / 2).max(1) } else { payload.len() };
    let body = &payload[..end];
    let (chunks, gap): (Vec<&[u8]>, Duration) = match (applied.byte_gap, applied.split) {
        (Some(gap), _) => (body.chunks(1).collect(), gap),
        (None, Some(writes)) => (body.chunks(body.len().div_ceil(writes.max(1)).max(1)).collect(), SPLIT_GAP),
        (None, None) => (vec![body], Duration::ZERO),
    };
    let written = link.write_chunks(&chunks, gap, &mut release);
    if applied.close_mid_reply {
        link.close();
    }
    written
}
