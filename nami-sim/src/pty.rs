//! The serial side: a pseudo-terminal pair whose slave a POS opens as if it were the terminal's
//! USB-serial port, and real serial devices for the binary's `--serial`.
//!
//! Clients open a stable symlink rather than `/dev/pts/N`, because every plug makes a new pair
//! with a new number; the symlink is what lets a test unplug and plug "the same port".

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;

use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg};

use crate::link::{FdReader, Link, serve};
use crate::shared::{Shared, Stoppable, lock};

/// One served descriptor: its link and its reader thread.
struct Served {
    link: Arc<Link>,
    thread: Option<JoinHandle<()>>,
    /// Our own descriptor of the pty slave. Holding it keeps the master from seeing a hang-up
    /// whenever no client has the port open.
    _slave: Option<OwnedFd>,
    slave_path: PathBuf,
}

impl Served {
    fn start(
        shared: &Arc<Shared>,
        name: String,
        device: File,
        slave: Option<OwnedFd>,
        slave_path: PathBuf,
    ) -> io::Result<Self> {
        let writer = device.try_clone()?;
        let link = Arc::new(Link::fd(name, writer));
        let mut reader = FdReader { file: device, link: Arc::clone(&link), shared: Arc::clone(shared) };
        let (thread_shared, thread_link) = (Arc::clone(shared), Arc::clone(&link));
        let thread = std::thread::Builder::new()
            .name("nami-sim-serial".into())
            .spawn(move || serve(&thread_shared, &thread_link, &mut reader))?;
        Ok(Served { link, thread: Some(thread), _slave: slave, slave_path })
    }

    /// Closes the link and waits for its reader, so that every descriptor of the device is closed
    /// when this returns.
    fn stop(mut self) {
        self.link.detach();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sets a tty to raw mode: no echo, no line editing, no signals (ETX is Ctrl-C), no CR/LF
/// translation, so that frames pass byte for byte. A baud rate is set on real devices.
fn make_raw(fd: BorrowedFd<'_>, baud: Option<u32>) -> io::Result<()> {
    let mut attrs = termios::tcgetattr(fd).map_err(io::Error::from)?;
    termios::cfmakeraw(&mut attrs);
    attrs.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
    attrs.control_flags &= !ControlFlags::CRTSCTS;
    if let Some(baud) = baud {
        termios::cfsetspeed(&mut attrs, baud_rate(baud)?).map_err(io::Error::from)?;
    }
    termios::tcsetattr(fd, SetArg::TCSANOW, &attrs).map_err(io::Error::from)
}

fn baud_rate(baud: u32) -> io::Result<BaudRate> {
    Ok(match baud {
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115200 => BaudRate::B115200,
        230400 => BaudRate::B230400,
        460800 => BaudRate::B460800,
        921600 => BaudRate::B921600,
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unsupported baud rate {baud}"))),
    })
}

struct PtyInner {
    shared: Arc<Shared>,
    /// The temporary directory holding the symlink; removed when the pty is dropped.
    _dir: tempfile::TempDir,
    path: PathBuf,
    served: Mutex<Option<Served>>,
}

impl PtyInner {
    fn plug(&self) -> io::Result<()> {
        let mut served = lock(&self.served);
        if served.is_some() {
            return Ok(());
        }
        if self.shared.is_shut_down() {
            return Err(io::Error::other("the simulator is shut down"));
        }
        let (master, slave, slave_path) = open_pty_pair()?;
        make_raw(slave.as_fd(), None)?;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::os::unix::fs::symlink(&slave_path, &self.path)?;
        let name = format!("pty {}", slave_path.display());
        *served = Some(Served::start(&self.shared, name, master, Some(slave), slave_path)?);
        tracing::info!(path = %self.path.display(), "pty plugged");
        Ok(())
    }

    fn unplug(&self) {
        let taken = lock(&self.served).take();
        if let Some(served) = taken {
            let _ = std::fs::remove_file(&self.path);
            served.stop();
            tracing::info!(path = %self.path.display(), "pty unplugged");
        }
    }
}

/// A new pseudo-terminal pair: the master, the slave and the slave's path. Both ends are opened
/// close-on-exec in the same call (`openpty` then `fcntl` would leave a window in which a process
/// started by another thread inherits them, and an unplug would go unnoticed by the client).
fn open_pty_pair() -> io::Result<(File, OwnedFd, PathBuf)> {
    use nix::fcntl::OFlag;
    use std::os::fd::{FromRawFd, IntoRawFd};
    use std::os::unix::fs::OpenOptionsExt;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    #[cfg(target_os = "linux")]
    let slave_path = PathBuf::from(nix::pty::ptsname_r(&master)?);
    // SAFETY: ptsname returns a static buffer, copied at once; other platforms lack ptsname_r
    // (a concurrent ptsname elsewhere in the process could still race it there).
    #[cfg(not(target_os = "linux"))]
    let slave_path = PathBuf::from(unsafe { nix::pty::ptsname(&master) }?);
    // std opens every file close-on-exec.
    let slave =
        std::fs::OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_NOCTTY).open(&slave_path)?;
    // SAFETY: the descriptor comes from the PtyMaster, which gives up its ownership.
    let master = unsafe { File::from_raw_fd(master.into_raw_fd()) };
    Ok((master, OwnedFd::from(slave), slave_path))
}

impl Stoppable for PtyInner {
    fn stop(&self) {
        self.unplug();
    }

    fn pty_path(&self) -> Option<PathBuf> {
        Some(self.path.clone())
    }
}

/// A pseudo-terminal serving the simulator's terminal (same state as its TCP side). Clients open
/// [`SimPty::path`]. Dropping it unplugs it and removes the path.
pub struct SimPty {
    inner: Arc<PtyInner>,
}

impl SimPty {
    pub(crate) fn open(shared: &Arc<Shared>) -> io::Result<SimPty> {
        let dir = tempfile::Builder::new().prefix("nami-sim-pty-").tempdir()?;
        let path = dir.path().join("tty");
        let inner = Arc::new(PtyInner { shared: Arc::clone(shared), _dir: dir, path, served: Mutex::new(None) });
        inner.plug()?;
        let weak: Weak<PtyInner> = Arc::downgrade(&inner);
        shared.register_stoppable(weak);
        Ok(SimPty { inner })
    }

    /// A stable path (a symlink in a temporary directory) to the current slave: open this.
    pub fn path(&self) -> PathBuf {
        self.inner.path.clone()
    }

    /// The `/dev/pts/N` the path points to now, if plugged.
    pub fn device_path(&self) -> Option<PathBuf> {
        lock(&self.inner.served).as_ref().map(|s| s.slave_path.clone())
    }

    pub fn is_plugged(&self) -> bool {
        lock(&self.inner.served).is_some()
    }

    /// The cable is pulled: the master is closed and the symlink removed, so a client's reads
    /// and writes fail and opening the path fails.
    pub fn unplug(&self) {
        self.inner.unplug();
    }

    /// The cable is back: a new pty pair, the symlink pointed at its slave, serving resumes.
    pub fn plug(&self) -> io::Result<()> {
        self.inner.plug()
    }
}

impl Drop for SimPty {
    fn drop(&mut self) {
        self.inner.unplug();
    }
}

impl std::fmt::Debug for SimPty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPty").field("path", &self.inner.path).field("plugged", &self.is_plugged()).finish()
    }
}

struct SerialInner {
    served: Mutex<Option<Served>>,
}

impl Stoppable for SerialInner {
    fn stop(&self) {
        if let Some(served) = lock(&self.served).take() {
            served.stop();
        }
    }
}

/// A real serial device (or any tty) served by the simulator. Dropping it stops serving.
pub struct SimSerial {
    inner: Arc<SerialInner>,
    path: PathBuf,
}

impl SimSerial {
    pub(crate) fn open(shared: &Arc<Shared>, path: &Path, baud: u32) -> io::Result<SimSerial> {
        use std::os::unix::fs::OpenOptionsExt;
        let device = std::fs::OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_NOCTTY).open(path)?;
        make_raw(device.as_fd(), Some(baud))?;
        let name = format!("serial {}", path.display());
        let served = Served::start(shared, name, device, None, path.to_owned())?;
        let inner = Arc::new(SerialInner { served: Mutex::new(Some(served)) });
        let weak: Weak<SerialInner> = Arc::downgrade(&inner);
        shared.register_stoppable(weak);
        Ok(SimSerial { inner, path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops serving and closes the device.
    pub fn close(&self) {
        self.inner.stop();
    }
}

impl Drop for SimSerial {
    fn drop(&mut self) {
        self.inner.stop();
    }
}

impl std::fmt::Debug for SimSerial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSerial").field("path", &self.path).finish()
    }
}
