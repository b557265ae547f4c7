//! `--idle-only`: the daemon's memory at rest, without the throughput phases. Each run drops the
//! daemon's binary from the page cache first (a file the linker or `cp` just wrote sits there in
//! large folios, and the kernel maps a whole folio around a fault: the same code would count up
//! to 1.2 MB more than when read back from disk, as a daemon started at boot reads it), starts it
//! fresh (empty config, fresh state directory), and reads its RSS three times: 2 s after its first
//! health answer (idle), after one more `GET /api/health-status` on a new connection, and after a
//! short load through one simulated terminal (CHECK STATUS, then PURCHASE), so that the idle figure
//! is not an artefact of start-up (code paged out at rest comes back with the first request).
//! The daemon and the baseline alternate, run by run, so that the machine's state falls on both.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::daemon::{Client, Daemon, Memory};
use crate::modes::{self, Mode};
use crate::workload::{self, Txn};

/// Transactions of each type in the short load.
const LOAD_TRANSACTIONS: usize = 200;

/// One start of one binary.
#[derive(Debug, Serialize)]
pub struct IdleRun {
    pub binary: String,
    pub run: usize,
    /// Spawn → `listening on` printed, and → first health answer.
    pub ready_line_ms: f64,
    pub ready_health_ms: f64,
    /// 2 s after the first health answer.
    pub idle: Memory,
    /// After one more health request.
    pub after_health: Memory,
    /// After `LOAD_TRANSACTIONS` CHECK STATUS and as many PURCHASE through one terminal.
    pub after_load: Memory,
}

/// `runs` starts of each binary (the first of `binaries` is the baseline when there are two),
/// alternating.
pub fn run(binaries: &[&Path], runs: usize, log: &str, wrapper: &[String]) -> Result<Vec<IdleRun>, String> {
    let sims = Arc::new(workload::start_terminals(1).map_err(|e| format!("starting a simulator: {e}"))?);
    let mut figures = Vec::new();
    for run in 1..=runs {
        for binary in binaries {
            drop_from_page_cache(binary)
                .map_err(|e| format!("{}: dropping it from the page cache: {e}", binary.display()))?;
            let daemon = Daemon::start(binary, log, wrapper).map_err(|e| format!("starting nami-httpd: {e}"))?;
            std::thread::sleep(Duration::from_secs(2));
            let idle = daemon.memory();
            let health = Client::connect(daemon.addr).and_then(|mut client| client.get("/api/health-status"));
            match health {
                Ok(reply) if reply.status == 200 => {}
                Ok(reply) => return Err(format!("health request: HTTP {}", reply.status)),
                Err(error) => return Err(format!("health request: {error}")),
            }
            std::thread::sleep(Duration::from_millis(200));
            let after_health = daemon.memory();
            for txn in [Txn::CheckStatus, Txn::Purchase] {
                let (samples, _) =
                    modes::run_phase(Mode::Daemon, &sims, txn, LOAD_TRANSACTIONS, Some(daemon.addr), &|| {})
                        .map_err(|e| format!("short load: {e}"))?;
                if samples.errors > 0 {
                    return Err(format!("short load: {} {} failed", samples.errors, txn.label()));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            let after_load = daemon.memory();
            let one = IdleRun {
                binary: binary.display().to_string(),
                run,
                ready_line_ms: daemon.ready_line.as_secs_f64() * 1000.0,
                ready_health_ms: daemon.ready_health.as_secs_f64() * 1000.0,
                idle,
                after_health,
                after_load,
            };
            daemon.stop();
            eprintln!("  {} run {run}: idle {:.1} MB", one.binary, mb(one.idle.rss_kib));
            figures.push(one);
        }
    }
    workload::stop_terminals(&sims);
    Ok(figures)
}

/// Writes back, then drops, the file's pages from the page cache (`posix_fadvise`
/// `POSIX_FADV_DONTNEED`: dirty pages would stay). Pages another running process maps stay too.
fn drop_from_page_cache(path: &Path) -> std::io::Result<()> {
    let file = File::open(path)?;
    file.sync_all()?;
    // SAFETY: advice on an open descriptor; it changes no memory of this process.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::from_raw_os_error(rc)) }
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The table of every run, then per binary the range of each figure.
pub fn print(figures: &[IdleRun]) {
    println!();
    println!("== idle memory: each run a fresh start, the binary dropped from the page cache first ==");
    println!(
        "{:<48} {:>3} {:>9} {:>9} {:>22} {:>13} {:>11}",
        "binary", "run", "ready ms", "health ms", "idle RSS MB (anon/file)", "after health", "after load"
    );
    for f in figures {
        let anon_file =
            format!("{:.1} ({:.1}/{:.1})", mb(f.idle.rss_kib), mb(f.idle.rss_anon_kib), mb(f.idle.rss_file_kib));
        println!(
            "{:<48} {:>3} {:>9.1} {:>9.1} {:>22} {:>13.1} {:>11.1}",
            f.binary,
            f.run,
            f.ready_line_ms,
            f.ready_health_ms,
            anon_file,
            mb(f.after_health.rss_kib),
            mb(f.after_load.rss_kib)
        );
    }
    // In the order run: the baseline first when there is one.
    let mut binaries: Vec<&str> = Vec::new();
    for f in figures {
        if !binaries.contains(&f.binary.as_str()) {
            binaries.push(&f.binary);
        }
    }
    let mean = |binary: &str, get: &dyn Fn(&IdleRun) -> u64| -> f64 {
        let runs: Vec<u64> = figures.iter().filter(|f| f.binary == binary).map(get).collect();
        runs.iter().sum::<u64>() as f64 / runs.len().max(1) as f64
    };
    for binary in &binaries {
        let range = |get: &dyn Fn(&IdleRun) -> u64| {
            let values: Vec<u64> = figures.iter().filter(|f| f.binary == *binary).map(get).collect();
            let (lo, hi) = (values.iter().min().copied().unwrap_or(0), values.iter().max().copied().unwrap_or(0));
            format!("{:.1}-{:.1}", mb(lo), mb(hi))
        };
        println!(
            "{binary}: idle {} MB, after health {} MB, after load {} MB",
            range(&|f| f.idle.rss_kib),
            range(&|f| f.after_health.rss_kib),
            range(&|f| f.after_load.rss_kib)
        );
    }
    if let [before, after] = binaries.as_slice() {
        let ratio = |get: &dyn Fn(&IdleRun) -> u64| mean(after, get) / mean(before, get).max(1.0);
        println!(
            "{after} / {before} (means): idle {:.2}x, after health {:.2}x, after load {:.2}x",
            ratio(&|f| f.idle.rss_kib),
            ratio(&|f| f.after_health.rss_kib),
            ratio(&|f| f.after_load.rss_kib)
        );
    }
}
