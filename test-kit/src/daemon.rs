//! The real `nami-httpd` binary, started on a free loopback port with a temporary state
//! directory.
//!
//! The binary is the one cargo built next to the running test (`target/debug/nami-httpd`: cargo
//! builds it for nami-httpd's own tests, and `cargo build --workspace` for the others). Set
//! `NAMI_HTTPD_BIN` to test another one. Every daemon logs at trace level (nami's crates) into a
//! file of its state directory, and that log is scanned for card numbers when the daemon is
//! dropped: a card number in any log line fails the test that ran the daemon (see [`crate::pan`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::http::Http;

/// The log filter of the daemons: everything nami does at trace level, the HTTP stack at debug.
pub const TRACE_LOG: &str = "trace,hyper=debug,hyper_util=debug,h2=info,rustls=debug,tokio_util=info,tower=debug";

/// Where the daemon binary is: `NAMI_HTTPD_BIN`, else `nami-httpd` next to this executable or
/// one folder up (a test runs from `target/debug/deps/`, a tool from `target/debug/`).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NAMI_HTTPD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let mut dir = exe.parent().map(Path::to_path_buf);
    while let Some(candidate) = dir {
        let path = candidate.join(format!("nami-httpd{}", std::env::consts::EXE_SUFFIX));
        if path.is_file() {
            return path;
        }
        dir = candidate.parent().map(Path::to_path_buf).filter(|d| d.ends_with("debug") || d.ends_with("release"));
    }
    panic!(
        "nami-httpd is not built next to {}: run `cargo build -p nami-httpd` (cargo test --workspace does), \
         or set NAMI_HTTPD_BIN",
        exe.display()
    )
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A command for the daemon: a clean environment (no `NAMI_*` of the caller's shell), an empty
/// config file (never the user's), this state directory, the trace log filter.
pub fn command(state_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NAMI_") {
            command.env_remove(name);
        }
    }
    std::fs::create_dir_all(state_dir).expect("state directory");
    let empty_config = state_dir.join("empty.toml");
    if !empty_config.exists() {
        std::fs::write(&empty_config, "").expect("empty config file");
    }
    command
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--config")
        .arg(&empty_config)
        .args(args)
        .env("RUST_LOG", TRACE_LOG)
        .stdin(Stdio::null());
    command
}

/// A running `nami-httpd`. Dropping it stops it (SIGTERM, then SIGKILL after 10 s) and scans its
/// log for card numbers.
pub struct Daemon {
    pub child: Child,
    /// What it printed after `listening on `: `http://127.0.0.1:PORT` (or https).
    pub url: String,
    pub port: u16,
    /// What it printed on stdout up to `listening on …`.
    pub banner: Vec<String>,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    /// Scan the log for card numbers on drop (default true).
    pub scan_log: bool,
}

impl Daemon {
    /// Starts the binary on 127.0.0.1 (a free port, unless `args` has `--listen`).
    pub fn start(state_dir: &Path, args: &[&str]) -> Daemon {
        let mut all: Vec<&str> = Vec::new();
        if !args.contains(&"--listen") {
            all.extend(["--listen", "127.0.0.1:0"]);
        }
        all.extend_from_slice(args);
        Daemon::spawn(state_dir, command(state_dir, &all))
    }

    /// Starts `command` (from [`command`], or any command of the binary) and waits for
    /// `listening on …` (20 s at most).
    pub fn spawn(state_dir: &Path, mut command: Command) -> Daemon {
        Daemon::try_spawn(state_dir, &mut command, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Daemon::spawn`], but says why instead of panicking.
    pub fn try_spawn(state_dir: &Path, command: &mut Command, within: Duration) -> Result<Daemon, String> {
        std::fs::create_dir_all(state_dir).map_err(|e| e.to_string())?;
        let log_path = state_dir.join(format!("daemon-{}-{}.log", std::process::id(), unique()));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary().display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let deadline = Instant::now() + within;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    let ready = line.strip_prefix("listening on ").map(|url| url.trim().to_owned());
                    banner.push(line);
                    if let Some(url) = ready {
                        let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).ok_or("no port")?;
                        return Ok(Daemon {
                            child,
                            url,
                            port,
                            banner,
                            state_dir: state_dir.to_owned(),
                            log_path,
                            scan_log: true,
                        });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "nami-httpd did not print `listening on` (printed {banner:?}); log:\n{}",
                        tail(&std::fs::read_to_string(&log_path).unwrap_or_default(), 4000)
                    ));
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn at(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `https://127.0.0.1:PORT/path`.
    pub fn https_at(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// An HTTP client for this daemon.
    pub fn http(&self) -> Http {
        Http::new(&format!("http://127.0.0.1:{}", self.port), Duration::from_secs(60))
    }

    /// The banner line that starts with `prefix`, without it.
    pub fn banner_value(&self, prefix: &str) -> Option<String> {
        self.banner.iter().find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_owned()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no flush, as a power cut or the OOM killer would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit status; panics (with the log) if it has not exited within `within`.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.stop(within).unwrap_or_else(|| {
            panic!("nami-httpd did not exit within {within:?} of SIGTERM; log:\n{}", tail(&self.log(), 8000))
        })
    }

    /// SIGTERM, and the exit status within `within` (SIGKILL and `None` after it).
    fn stop(&mut self, within: Duration) -> Option<ExitStatus> {
        #[cfg(unix)]
        {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        #[cfg(not(unix))]
        let _ = self.child.kill();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop(Duration::from_secs(10));
        }
        if self.scan_log && !std::thread::panicking() {
            let log = self.log();
            let found = crate::pan::card_numbers_in(&log);
            assert!(found.is_empty(), "card numbers in the daemon's log {}: {found:?}", self.log_path.display());
        }
    }
}

/// The last `max` bytes of `text` (on a character boundary).
pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A fresh temporary directory (removed on drop).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().expect("temporary directory")
}

/// A fresh temporary state directory for one daemon.
pub fn state_dir() -> tempfile::TempDir {
    temp_dir("nami-httpd-test-")
}

/// Polls `condition` every 20 ms until it holds; panics after `within`.
pub fn wait_for(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// ECR references `12345678` + a 6-digit counter, unique in this process, none of which
/// passes the Luhn check (so that the card-number scan of the logs never mistakes one for a
/// card number).
pub fn ecr() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst) % 1_000_000;
        let candidate = format!("{}{n:06}", crate::CASH_REGISTER);
        if !crate::pan::luhn(candidate.as_bytes()) {
            return candidate;
        }
    }
}
