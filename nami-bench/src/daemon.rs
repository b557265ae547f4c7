//! The real `nami-httpd` binary as a child process: started on a free port with a fresh state
//! directory, timed until it serves, its memory read from `/proc`, and a small HTTP/1.1
//! keep-alive client to drive it.
//!
//! The client is hand-rolled on purpose: one `TcpStream` per worker, the request written in one
//! `write`, the reply read by `Content-Length`. Nothing in it costs more than a real POS's client
//! would, so the daemon's figure is the daemon's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A running daemon.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    /// Spawn → the `listening on` line on stdout.
    pub ready_line: Duration,
    /// Spawn → the first `GET /api/health-status` answered 200.
    pub ready_health: Duration,
    _state_dir: tempfile::TempDir,
}

/// The daemon's memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// VmRSS, in KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS since start), in KiB.
    pub hwm_kib: u64,
    /// RssAnon and RssFile, the parts of VmRSS (with RssShmem) that are the heap and stacks, and
    /// mapped files (the binary's code and its libraries).
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub threads: u64,
}

impl Daemon {
    /// Starts `binary` on 127.0.0.1 (a free port) with a new state directory and an empty
    /// config file (so a config in the user's data directory cannot change what is measured).
    /// `log` is the daemon's log filter (its default is `info`: one line per request); the log
    /// goes to a file in the state directory.
    /// `wrapper` runs the daemon under another program (e.g. `valgrind --tool=callgrind`).
    pub fn start(binary: &Path, log: &str, wrapper: &[String]) -> io::Result<Daemon> {
        let state_dir = tempfile::Builder::new().prefix("nami-bench-httpd").tempdir()?;
        let config = state_dir.path().join("empty.toml");
        std::fs::write(&config, "")?;
        let log_path = state_dir.path().join("stderr.log");
        let log_file = std::fs::File::create(&log_path)?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("NAMI_") {
                command.env_remove(&name);
            }
        }
        command
            .args(["--listen", "127.0.0.1:0", "--log", log])
            .arg("--state-dir")
            .arg(state_dir.path().join("state"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", binary.display())))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout);
        let mut addr = None;
        let mut line = String::new();
        while addr.is_none() {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(io::Error::other(format!("nami-httpd exited before listening; log:\n{log}")));
            }
            if let Some(url) = line.trim().strip_prefix("listening on http://") {
                addr = url.parse::<SocketAddr>().ok();
            }
        }
        let ready_line = started.elapsed();
        // Keep draining stdout so that the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        let addr = addr.expect("set above");
        let ready_health = loop {
            let healthy = Client::connect(addr).and_then(|mut c| c.get("/api/health-status")).map(|r| r.status == 200);
            if healthy.unwrap_or(false) {
                break started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                return Err(io::Error::other("nami-httpd did not answer /api/health-status within 60 s"));
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        Ok(Daemon { child, addr, ready_line, ready_health, _state_dir: state_dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn memory(&self) -> Memory {
        memory_of(self.pid())
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 30 s).
    pub fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Peaks of a daemon's RSS and thread count, sampled every 10 ms by a thread of their own until
/// [`Sampler::stop`].
#[derive(Default)]
pub struct Peaks {
    pub rss_kib: std::sync::atomic::AtomicU64,
    pub threads: std::sync::atomic::AtomicU64,
}

pub struct Sampler {
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling process `pid` into `peaks` (which keep the highest values seen).
    pub fn start(pid: u32, peaks: std::sync::Arc<Peaks>) -> Sampler {
        use std::sync::atomic::{AtomicBool, Ordering};
        let running = std::sync::Arc::new(AtomicBool::new(true));
        let still = running.clone();
        let thread = std::thread::spawn(move || {
            while still.load(Ordering::Relaxed) {
                let memory = memory_of(pid);
                peaks.rss_kib.fetch_max(memory.rss_kib, Ordering::Relaxed);
                peaks.threads.fetch_max(memory.threads, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler { running, thread }
    }

    pub fn stop(self) {
        self.running.store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// The CPU time a process has used so far, user and system together (`utime + stime` of
/// `/proc/<pid>/stat`; zero when unreadable).
pub fn cpu_time_of(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Duration::ZERO };
    // The command name (field 2) may hold spaces and parentheses: count fields after its `)`.
    let Some((_, rest)) = stat.rsplit_once(')') else { return Duration::ZERO };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file are the 12th and 13th after the name.
    let ticks: u64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<u64>().ok()).sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

/// The context switches of all of a process's threads so far, voluntary (a thread blocked: on a
/// lock, a condition variable, I/O) and not (preempted). Per transaction, the voluntary ones are
/// the lock-contention profile of the daemon's figures (zeros when unreadable).
pub fn context_switches_of(pid: u32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return (0, 0) };
    let mut total = (0, 0);
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        for line in status.lines() {
            let number = |rest: &str| rest.trim().parse::<u64>().unwrap_or(0);
            if let Some(rest) = line.strip_prefix("voluntary_ctxt_switches:") {
                total.0 += number(rest);
            } else if let Some(rest) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                total.1 += number(rest);
            }
        }
    }
    total
}

/// VmRSS, VmHWM and Threads of a process (zeros when unreadable).
pub fn memory_of(pid: u32) -> Memory {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return Memory::default() };
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        rss_anon_kib: field("RssAnon:"),
        rss_file_kib: field("RssFile:"),
        threads: field("Threads:"),
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct Client {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
    request: Vec<u8>,
}

/// A reply: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(200)))?;
        Ok(Client { stream, host: addr.to_string(), buf: Vec::with_capacity(8192), request: Vec::with_capacity(1024) })
    }

    pub fn get(&mut self, path: &str) -> io::Result<Reply> {
        self.send("GET", path, b"")
    }

    pub fn post_json(&mut self, path: &str, body: &[u8]) -> io::Result<Reply> {
        self.send("POST", path, body)
    }

    fn send(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Reply> {
        self.request.clear();
        write!(self.request, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host)?;
        if method == "POST" {
            write!(self.request, "Content-Type: application/json\r\nContent-Length: {}\r\n", body.len())?;
        }
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(body);
        self.stream.write_all(&self.request)?;
        self.read_reply()
    }

    /// Reads one reply: the head up to the blank line, then `Content-Length` bytes of body.
    fn read_reply(&mut self) -> io::Result<Reply> {
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the daemon closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| bad("reply head is not UTF-8"))?;
        let status: u16 =
            head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status in the reply"))?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
            })
            .ok_or_else(|| bad("the reply has no Content-Length"))?;
        while self.buf.len() < head_end + length {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the daemon closed mid-body"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(Reply { status, body: self.buf[head_end..head_end + length].to_vec() })
    }
}

fn bad(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `target/release/nami-httpd` beside this binary, else the workspace's release then debug build.
pub fn default_binary() -> PathBuf {
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let mut candidates: Vec<PathBuf> = exe_dir.into_iter().map(|d| d.join("nami-httpd")).collect();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    candidates.push(workspace.join("target/release/nami-httpd"));
    candidates.push(workspace.join("target/debug/nami-httpd"));
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| candidates[0].clone())
}
