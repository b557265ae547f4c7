//! Links to a terminal: TCP and serial behind one trait, so tests and future transports plug in.
//!
//! A [`Link`] knows how to (re)open a connection; an open connection is a [`Transport`]. Reads
//! take a short timeout so the session can check for cancellation and deadlines between them.
//! A TCP link also has an async form for the tokio driver ([`Link::open_async`],
//! [`Transport::into_tokio`]): the same socket, waited on by tokio's reactor instead of a thread.

use crate::status::StatusCode;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ValidationError;

/// An open connection to a terminal.
pub trait Transport: Send {
    /// Writes the whole frame.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Reads what is available, waiting at most `timeout`. `Ok(0)` means the peer closed the
    /// link; a timeout is an error of kind `TimedOut` or `WouldBlock`.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Whether the peer visibly closed the link while it sat idle (checked before a request is
    /// written, so a stale connection is re-opened instead of swallowing a payment).
    fn peer_closed(&mut self) -> bool;
    /// Discards bytes received but not read (a late reply to a cancelled request).
    fn discard_input(&mut self);
    /// For the tokio driver: this connection's socket, registered with the running tokio runtime
    /// (it is given back with [`tcp_transport_from_tokio`]). Only transports of links with an
    /// [`Link::open_async`] need it; the others are never asked.
    fn into_tokio(self: Box<Self>) -> io::Result<tokio::net::TcpStream> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this link has no async form"))
    }
}

/// A connection being opened without blocking a thread.
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = Result<Box<dyn Transport>, OpenError>> + Send + 'a>>;

/// What a link failure means for the caller.
#[derive(Debug)]
pub enum OpenError {
    /// The terminal could not be reached (refused, unreachable, no such port).
    Unreachable(String),
    /// A serial device that was there is gone (cable pulled).
    Vanished(String),
}

/// A way to reach one terminal.
pub trait Link: Send + Sync {
    /// Opens a new connection.
    fn open(&self) -> Result<Box<dyn Transport>, OpenError>;
    /// The key of the terminal: `ip:port` or the serial port path.
    fn key(&self) -> String;
    /// Whether this is a serial link (cable-pull detection and silent re-register apply).
    fn is_serial(&self) -> bool {
        false
    }
    /// For serial links: whether the device is present right now.
    fn device_present(&self) -> bool {
        true
    }
    /// Opens a connection on tokio without blocking the thread, if this link has an async form
    /// (TCP). `None`: the tokio driver runs this link's calls on tokio's blocking pool.
    fn open_async(&self) -> Option<OpenFuture<'_>> {
        None
    }
}

/// A terminal on the network. The POS is the TCP client; the terminal listens.
#[derive(Debug, Clone)]
pub struct TcpLink {
    pub host: String,
    pub port: u16,
    pub connect_timeout: Duration,
}

/// Splits `host:port` (`10.0.0.5:6000`, `[::1]:6000`, `localhost:6000`) into the host, without
/// IPv6 brackets, and the port (0 allowed: a listener may ask for any port). The one parser of
/// such addresses: terminal targets, the service's connection keys and the daemon's listen address.
pub fn split_host_port(address: &str) -> Result<(&str, u16), String> {
    let (host, port) = address.rsplit_once(':').ok_or_else(|| format!("must be host:port, got {address:?}"))?;
    let port: u16 = port.parse().map_err(|_| format!("port must be 0-65535, got {port:?}"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(format!("must be host:port, got {address:?}"));
    }
    Ok((host, port))
}

impl TcpLink {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        TcpLink { host: host.into(), port, connect_timeout: Duration::from_secs(5) }
    }

    /// Parses `host:port`.
    pub fn parse(address: &str) -> Result<Self, ValidationError> {
        let bad = |reason: String| ValidationError::other(StatusCode::InvalidAddress, "address", reason);
        let (host, port) = split_host_port(address).map_err(bad)?;
        if port == 0 {
            return Err(bad(format!("port must be 1-65535, got {address:?}")));
        }
        Ok(TcpLink::new(host, port))
    }

    fn addresses(&self) -> io::Result<Vec<SocketAddr>> {
        Ok((self.host.as_str(), self.port).to_socket_addrs()?.collect())
    }
}

impl Link for TcpLink {
    fn open(&self) -> Result<Box<dyn Transport>, OpenError> {
        let unreachable = |e: io::Error| OpenError::Unreachable(format!("{}:{}: {e}", self.host, self.port));
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for address in self.addresses().map_err(unreachable)? {
            match TcpStream::connect_timeout(&address, self.connect_timeout) {
                Ok(stream) => {
                    // Frames are small and latency matters more than packet count.
                    let _ = stream.set_nodelay(true);
                    return Ok(Box::new(TcpTransport::new(stream)));
                }
                Err(e) => last = e,
            }
        }
        Err(unreachable(last))
    }

    fn key(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn open_async(&self) -> Option<OpenFuture<'_>> {
        Some(Box::pin(async move {
            let unreachable = |e: io::Error| OpenError::Unreachable(format!("{}:{}: {e}", self.host, self.port));
            let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
            let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
                Ok(connected) => connected.map_err(unreachable)?,
                Err(_) => return Err(unreachable(io::Error::new(io::ErrorKind::TimedOut, "connection timed out"))),
            };
            let _ = stream.set_nodelay(true);
            tcp_transport_from_tokio(stream).map_err(unreachable)
        }))
    }
}

struct TcpTransport {
    stream: TcpStream,
    /// The read timeout last set on the socket. The session reads with the same short timeout
    /// again and again (it checks for a cancel between reads), and each setting is a system call.
    read_timeout: Option<Duration>,
}

impl TcpTransport {
    fn new(stream: TcpStream) -> Self {
        TcpTransport { stream, read_timeout: None }
    }

    /// Reads what has already arrived without waiting (`peek`: and leaves it there); `Ok(0)`: the
    /// peer closed. One system call: the socket stays blocking for [`Transport::read`].
    #[cfg(unix)]
    fn read_now(&self, buf: &mut [u8], peek: bool) -> io::Result<usize> {
        let flags = libc::MSG_DONTWAIT | if peek { libc::MSG_PEEK } else { 0 };
        // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and recv only writes
        // initialised bytes into the buffer.
        let buf = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
        socket2::SockRef::from(&self.stream).recv_with_flags(buf, flags)
    }

    /// The same on Windows, which has no per-call non-blocking flag: the socket is switched to
    /// non-blocking around the read (two more system calls).
    #[cfg(not(unix))]
    fn read_now(&self, buf: &mut [u8], peek: bool) -> io::Result<usize> {
        self.stream.set_nonblocking(true)?;
        let read = if peek { self.stream.peek(buf) } else { (&self.stream).read(buf) };
        self.stream.set_nonblocking(false)?;
        read
    }
}

/// A socket the tokio driver used, as a blocking [`Transport`] again (deregistered from tokio's
/// reactor), so that blocking calls can share the link.
pub fn tcp_transport_from_tokio(stream: tokio::net::TcpStream) -> io::Result<Box<dyn Transport>> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(Box::new(TcpTransport::new(stream)))
}

impl Transport for TcpTransport {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // Zero would mean "no timeout" to the socket.
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        if self.read_timeout != timeout {
            self.read_timeout = None;
            self.stream.set_read_timeout(timeout)?;
            self.read_timeout = timeout;
        }
        self.stream.read(buf)
    }

    fn peer_closed(&mut self) -> bool {
        match self.read_now(&mut [0u8; 1], true) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }

    fn discard_input(&mut self) {
        // Without waiting: what has arrived is dropped, nothing is waited for. (A read with a 1 ms
        // timeout here cost 4-10 ms per exchange: socket timeouts are rounded up to the kernel's
        // timer tick.)
        let mut sink = [0u8; 512];
        while let Ok(n) = self.read_now(&mut sink, false) {
            if n == 0 {
                break;
            }
        }
    }

    fn into_tokio(self: Box<Self>) -> io::Result<tokio::net::TcpStream> {
        self.stream.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(self.stream)
    }
}

/// Parity of a serial link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Parity {
    #[default]
    None,
    Odd,
    Even,
}

/// Serial line settings (D12: 115200 8-N-1, no flow control by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SerialSettings {
    pub baud_rate: u32,
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
}

impl Default for SerialSettings {
    fn default() -> Self {
        SerialSettings { baud_rate: 115_200, data_bits: 8, parity: Parity::None, stop_bits: 1 }
    }
}

/// Baud rates the terminals accept (the REST API's list).
pub const BAUD_RATES: &[u32] = &[9600, 19200, 38400, 57600, 115_200];

impl SerialSettings {
    /// Builds settings from the REST `/com/connect` values, naming the bad field.
    pub fn new(baud_rate: u32, data_bits: u8, parity: Parity, stop_bits: u8) -> Result<Self, ValidationError> {
        let bad = |code, field: &str, reason: String| ValidationError::other(code, field, reason);
        if !BAUD_RATES.contains(&baud_rate) {
            return Err(bad(
                StatusCode::InvalidBaudRate,
                "baudRate",
                format!("must be one of {BAUD_RATES:?}, got {baud_rate}"),
            ));
        }
        if !matches!(data_bits, 7 | 8) {
            return Err(bad(StatusCode::InvalidDataBits, "dataBits", format!("must be 7 or 8, got {data_bits}")));
        }
        if !matches!(stop_bits, 1 | 2) {
            return Err(bad(StatusCode::InvalidStopBits, "stopBits", format!("must be 1 or 2, got {stop_bits}")));
        }
        Ok(SerialSettings { baud_rate, data_bits, parity, stop_bits })
    }
}

impl Parity {
    /// The REST code: 0 none, 1 odd, 2 even.
    pub fn from_code(code: i64) -> Result<Self, ValidationError> {
        match code {
            0 => Ok(Parity::None),
            1 => Ok(Parity::Odd),
            2 => Ok(Parity::Even),
            _ => Err(ValidationError::other(
                StatusCode::InvalidParity,
                "parity",
                format!("must be 0 (none), 1 (odd) or 2 (even), got {code}"),
            )),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Parity::None => 0,
            Parity::Odd => 1,
            Parity::Even => 2,
        }
    }
}

impl FromStr for Parity {
    type Err = ValidationError;
    fn from_str(text: &str) -> Result<Self, ValidationError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "n" | "0" => Ok(Parity::None),
            "odd" | "o" | "1" => Ok(Parity::Odd),
            "even" | "e" | "2" => Ok(Parity::Even),
            _ => Err(ValidationError::other(
                StatusCode::InvalidParity,
                "parity",
                format!("must be none, odd or even, got {text:?}"),
            )),
        }
    }
}

impl fmt::Display for Parity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Parity::None => "none",
            Parity::Odd => "odd",
            Parity::Even => "even",
        })
    }
}

/// A terminal on a serial (USB COM) port.
#[derive(Debug, Clone)]
pub struct SerialLink {
    /// A device path (`/dev/ttyACM0`) or a Windows port name (`COM3`).
    pub path: PathBuf,
    pub settings: SerialSettings,
}

impl SerialLink {
    pub fn new(path: impl Into<PathBuf>, settings: SerialSettings) -> Self {
        SerialLink { path: path.into(), settings }
    }

    /// The port for a REST port number: `COMn` on Windows. Elsewhere a number has no device path,
    /// so callers give a path.
    pub fn port_name_for_number(number: u32) -> String {
        format!("COM{number}")
    }
}

impl Link for SerialLink {
    #[cfg(not(feature = "serial"))]
    fn open(&self) -> Result<Box<dyn Transport>, OpenError> {
        let name = self.path.to_string_lossy();
        Err(OpenError::Unreachable(format!("{name}: nami-sdk was built without its `serial` feature")))
    }

    #[cfg(feature = "serial")]
    fn open(&self) -> Result<Box<dyn Transport>, OpenError> {
        let name = self.path.to_string_lossy().into_owned();
        let s = self.settings;
        let builder = serialport::new(&name, s.baud_rate)
            .data_bits(if s.data_bits == 7 { serialport::DataBits::Seven } else { serialport::DataBits::Eight })
            .parity(match s.parity {
                Parity::None => serialport::Parity::None,
                Parity::Odd => serialport::Parity::Odd,
                Parity::Even => serialport::Parity::Even,
            })
            .stop_bits(if s.stop_bits == 2 { serialport::StopBits::Two } else { serialport::StopBits::One })
            .flow_control(serialport::FlowControl::None)
            .timeout(SERIAL_FIRST_TIMEOUT);
        match builder.open() {
            Ok(port) => Ok(Box::new(SerialTransport { port, timeout: Some(SERIAL_FIRST_TIMEOUT) })),
            Err(e) if !self.device_present() => Err(OpenError::Vanished(format!("{name}: {e}"))),
            Err(e) => Err(OpenError::Unreachable(format!("{name}: {e}"))),
        }
    }

    fn key(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    fn is_serial(&self) -> bool {
        true
    }

    fn device_present(&self) -> bool {
        serial_device_present(&self.path)
    }
}

/// Whether the device behind a serial port name is there. On Windows, by opening the name, not by
/// the list of ports: SetupAPI's list leaves out virtual ports (com0com, Wine's) and lags behind a
/// plug, so a port that works would be called vanished right after connecting. A USB device
/// removed takes its `COMn` name with it (the open fails with "not found"); a port in use, ours
/// included, answers "access denied" and is there ([`windows_serial_port_gone`] decides).
/// Nothing is asked of the device (no access rights), and the handle is closed at once.
#[cfg(windows)]
fn serial_device_present(path: &std::path::Path) -> bool {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_SHARE_READ_WRITE_DELETE: u32 = 0x7;
    let name = path.to_string_lossy();
    let device = if name.starts_with(r"\\") { name.into_owned() } else { format!(r"\\.\{name}") };
    match std::fs::OpenOptions::new().access_mode(0).share_mode(FILE_SHARE_READ_WRITE_DELETE).open(&device) {
        Ok(_) => true,
        Err(error) => !error.raw_os_error().is_some_and(|code| windows_serial_port_gone(code, SerialAccess::Opening)),
    }
}

/// Whether the device node is there (a pulled USB adapter takes its `/dev` node with it).
#[cfg(not(windows))]
fn serial_device_present(path: &std::path::Path) -> bool {
    path.exists()
}

/// What a Windows error on a serial port was the answer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialAccess {
    /// A read, write or flush on a handle that was open (the port worked until then).
    OpenHandle,
    /// Opening the port by its name (`COM3`), or opening it again.
    Opening,
}

/// The Windows error codes (winerror.h) that a USB-serial adapter pulled out gives, by name.
const WINDOWS_PORT_GONE_ERRORS: &[(i32, &str, SerialAccess)] = &[
    // On a handle that was open: what the USB-serial drivers (usbser, FTDI, CP210x, Prolific)
    // fail the pending and later I/O with once their device is removed. Access denied there is
    // the driver refusing a handle whose device went, not a permission: the handle was open.
    (1617, "ERROR_DEVICE_REMOVED", SerialAccess::OpenHandle),
    (1167, "ERROR_DEVICE_NOT_CONNECTED", SerialAccess::OpenHandle),
    (22, "ERROR_BAD_COMMAND", SerialAccess::OpenHandle),
    (31, "ERROR_GEN_FAILURE", SerialAccess::OpenHandle),
    (995, "ERROR_OPERATION_ABORTED", SerialAccess::OpenHandle),
    (5, "ERROR_ACCESS_DENIED", SerialAccess::OpenHandle),
    // Opening: the device took its `COMn` name with it. (Access denied here is a port in use,
    // by another program or by us: it is there.)
    (2, "ERROR_FILE_NOT_FOUND", SerialAccess::Opening),
    (3, "ERROR_PATH_NOT_FOUND", SerialAccess::Opening),
];

/// Whether a Windows error code on a serial port means that its device is gone (the cable or the
/// USB adapter pulled), which the caller is told as CableDisconnected. On Windows a port's presence
/// is decided by its open handle and these errors, not by the list of ports. A pure function of
/// the code, so that it is tested on every platform.
pub fn windows_serial_port_gone(code: i32, access: SerialAccess) -> bool {
    WINDOWS_PORT_GONE_ERRORS.iter().any(|&(gone, _, during)| gone == code && during == access)
}

/// A serial device gone, as the serial transport reports it (an [`io::Error`] of kind
/// `NotConnected` carrying this): the Windows error named, and the error itself.
#[derive(Debug)]
pub struct SerialPortGone {
    pub code: i32,
    pub source: io::Error,
}

impl fmt::Display for SerialPortGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name =
            WINDOWS_PORT_GONE_ERRORS.iter().find(|(code, ..)| *code == self.code).map_or("", |(_, name, _)| name);
        write!(f, "the serial device is gone (Windows error {}, {name}): {}", self.code, self.source)
    }
}

impl std::error::Error for SerialPortGone {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The error of a Windows serial handle's read, write or flush, as the transport returns it: a
/// device gone becomes a [`SerialPortGone`]; any other error is returned as it is.
pub fn windows_serial_io_error(error: io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) if windows_serial_port_gone(code, SerialAccess::OpenHandle) => {
            io::Error::new(io::ErrorKind::NotConnected, SerialPortGone { code, source: error })
        }
        _ => error,
    }
}

/// Whether a transport's error says that its serial device is gone ([`SerialPortGone`]).
pub fn is_serial_port_gone(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<SerialPortGone>())
}

/// The read timeout a serial port is opened with (each read sets its own).
#[cfg(feature = "serial")]
const SERIAL_FIRST_TIMEOUT: Duration = Duration::from_millis(50);

#[cfg(feature = "serial")]
struct SerialTransport {
    port: Box<dyn serialport::SerialPort>,
    /// The read timeout set on the port, so that it is set again only when it changes.
    timeout: Option<Duration>,
}

/// An I/O error of the serial port, classified for the platform: on Windows by its code (a device
/// pulled out may leave its name behind while our handle is open); elsewhere the device node
/// goes, which [`serial_device_present`] sees.
#[cfg(feature = "serial")]
fn serial_io_error(error: io::Error) -> io::Error {
    if cfg!(windows) { windows_serial_io_error(error) } else { error }
}

#[cfg(feature = "serial")]
impl Transport for SerialTransport {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.port.write_all(bytes).and_then(|()| self.port.flush()).map_err(serial_io_error)
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let timeout = timeout.max(Duration::from_millis(1));
        if self.timeout != Some(timeout) {
            // A failure is not returned from here: serialport keeps only the text of the OS error,
            // while the read below fails with its code (a device gone is told by it) or works with
            // the previous timeout, which is a poll slice too.
            match self.port.set_timeout(timeout) {
                Ok(()) => self.timeout = Some(timeout),
                Err(error) => tracing::debug!(%error, "cannot set the serial read timeout"),
            }
        }
        match self.port.read(buf) {
            // A tty does not signal end of file; a read that returns nothing after its wait is a
            // timeout, and a vanished device shows up as an error.
            Ok(0) => Err(io::Error::new(io::ErrorKind::TimedOut, "no data")),
            other => other.map_err(serial_io_error),
        }
    }

    fn peer_closed(&mut self) -> bool {
        false
    }

    fn discard_input(&mut self) {
        let _ = self.port.clear(serialport::ClearBuffer::Input);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_addresses_parse_as_host_and_port() {
        let link = TcpLink::parse("192.168.1.100:2345").unwrap();
        assert_eq!((link.host.as_str(), link.port), ("192.168.1.100", 2345));
        assert_eq!(link.key(), "192.168.1.100:2345");
        assert_eq!(TcpLink::parse("[::1]:8888").unwrap().host, "::1");
        assert_eq!(split_host_port("localhost:0"), Ok(("localhost", 0)), "a listener may ask for any port");
        assert!(TcpLink::parse("localhost:0").is_err(), "a terminal may not");
        assert!(split_host_port(":80").is_err() && split_host_port("host").is_err());
        for bad in ["192.168.1.100", "host:0", "host:99999", ":80"] {
            assert_eq!(TcpLink::parse(bad).unwrap_err().code, StatusCode::InvalidAddress, "{bad}");
        }
    }

    /// A TCP transport to a listener of this test, and the listener's side of the connection.
    fn tcp_pair() -> (TcpTransport, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (TcpTransport::new(stream), listener.accept().unwrap().0)
    }

    /// Waits until `transport` holds `at_least` bytes not yet read, or the peer closed.
    fn until_arrived(transport: &TcpTransport, at_least: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut probe = [0u8; 2048];
        while !matches!(transport.read_now(&mut probe, true), Ok(n) if n >= at_least || n == 0) {
            assert!(std::time::Instant::now() < deadline, "nothing arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_tcp_transport_checks_and_discards_without_taking_what_it_must_keep() {
        let (mut transport, mut terminal) = tcp_pair();
        assert!(!transport.peer_closed(), "open and idle");
        // The liveness check looks without taking: the bytes are still there to read.
        terminal.write_all(b"reply").unwrap();
        until_arrived(&transport, 5);
        assert!(!transport.peer_closed(), "bytes waiting are not a close");
        let mut buf = [0u8; 16];
        let n = transport.read(&mut buf, Duration::from_secs(5)).unwrap();
        assert_eq!(&buf[..n], b"reply");
        // A late reply is dropped before the next request; what comes after it is read.
        terminal.write_all(&[b'x'; 1500]).unwrap();
        until_arrived(&transport, 1500);
        transport.discard_input();
        terminal.write_all(b"next").unwrap();
        let n = transport.read(&mut buf, Duration::from_secs(5)).unwrap();
        assert_eq!(&buf[..n], b"next");
        // A discard with nothing waiting returns at once.
        let started = std::time::Instant::now();
        transport.discard_input();
        assert!(started.elapsed() < Duration::from_millis(500));
        drop(terminal);
        until_arrived(&transport, 0);
        assert!(transport.peer_closed(), "the terminal closed the connection");
    }

    #[test]
    fn each_tcp_read_waits_its_own_timeout() {
        let (mut transport, mut terminal) = tcp_pair();
        let mut buf = [0u8; 16];
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            terminal.write_all(b"late").unwrap();
            terminal
        });
        let n = transport.read(&mut buf, Duration::from_secs(30)).unwrap();
        assert_eq!(&buf[..n], b"late");
        let _terminal = writer.join().unwrap();
        // The socket's timeout is set only when it changes; a shorter one must still apply.
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let error = transport.read(&mut buf, Duration::from_millis(30)).unwrap_err();
            assert!(matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "{error}");
            assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
        }
        assert!(transport.read(&mut buf, Duration::ZERO).is_err(), "zero is the shortest wait, not none");
    }

    #[test]
    fn windows_errors_of_a_usb_serial_unplug_mean_the_port_is_gone() {
        use SerialAccess::{OpenHandle, Opening};
        // Read, write or flush on a handle that was open, once the adapter is pulled out:
        // ERROR_DEVICE_REMOVED, ERROR_DEVICE_NOT_CONNECTED, ERROR_BAD_COMMAND, ERROR_GEN_FAILURE,
        // ERROR_OPERATION_ABORTED, ERROR_ACCESS_DENIED.
        for code in [1617, 1167, 22, 31, 995, 5] {
            assert!(windows_serial_port_gone(code, OpenHandle), "error {code} on an open handle");
        }
        // Opening it again: ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND (the name went with it).
        for code in [2, 3] {
            assert!(windows_serial_port_gone(code, Opening), "error {code} on opening");
        }
        // A port in use (by another program, or by our own open handle) is there.
        assert!(!windows_serial_port_gone(5, Opening), "access denied on opening: in use, not gone");
        // Success, a bad handle or parameter, timeouts, a sharing violation: not a device gone.
        for code in [0, 6, 32, 87, 121, 1460] {
            assert!(!windows_serial_port_gone(code, OpenHandle), "error {code} on an open handle");
            assert!(!windows_serial_port_gone(code, Opening), "error {code} on opening");
        }
    }

    #[test]
    fn a_serial_transport_error_of_a_device_gone_names_the_windows_error() {
        let gone = windows_serial_io_error(io::Error::from_raw_os_error(1617));
        assert!(is_serial_port_gone(&gone));
        assert_eq!(gone.kind(), io::ErrorKind::NotConnected);
        assert!(gone.to_string().contains("Windows error 1617, ERROR_DEVICE_REMOVED"), "{gone}");
        let timeout = windows_serial_io_error(io::Error::from_raw_os_error(121));
        assert!(!is_serial_port_gone(&timeout), "ERROR_SEM_TIMEOUT is returned as it is");
        assert_eq!(timeout.raw_os_error(), Some(121));
        assert!(!is_serial_port_gone(&io::Error::new(io::ErrorKind::TimedOut, "no data")));
    }

    #[test]
    fn serial_settings_are_checked_field_by_field() {
        assert!(SerialSettings::new(115_200, 8, Parity::None, 1).is_ok());
        assert_eq!(SerialSettings::new(1200, 8, Parity::None, 1).unwrap_err().field, "baudRate");
        assert_eq!(SerialSettings::new(9600, 5, Parity::None, 1).unwrap_err().field, "dataBits");
        assert_eq!(SerialSettings::new(9600, 8, Parity::None, 3).unwrap_err().field, "stopBits");
        assert_eq!(Parity::from_code(3).unwrap_err().field, "parity");
        assert_eq!(Parity::from_code(2).unwrap(), Parity::Even);
    }
}
