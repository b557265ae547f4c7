//! The card-wait scenario (`--card-wait-ms`): every terminal gets one purchase through the
//! daemon at the same moment, and every simulator answers it only after the delay, as a terminal
//! waits for the cardholder. What it measures is what a central deployment pays for waiting
//! cards: the daemon's threads and resident memory while all the purchases wait, sampled every
//! 10 ms, and whether every purchase was answered.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use nami_sim::{Fault, FaultScope};
use serde::Serialize;

use crate::daemon::{self, Memory};
use crate::modes::{DaemonDriver, Driver, WORKER_STACK};
use crate::stats::Samples;
use crate::workload::{BenchTerminal, Txn};

/// The figures of one daemon in the scenario.
#[derive(Debug, Serialize)]
pub struct CardWait {
    pub binary: String,
    pub terminals: usize,
    pub delay_ms: u64,
    /// Purchases answered approved.
    pub answered: u64,
    pub errors: u64,
    pub error_examples: Vec<String>,
    /// From the moment every purchase was sent to the last answer.
    pub wall_secs: f64,
    /// Before the purchases, every terminal registered and connected.
    pub before: Memory,
    /// The highest thread count and RSS sampled while the purchases waited.
    pub peak_threads_during_wait: u64,
    pub peak_rss_during_wait_kib: u64,
    /// The promise: at most 2 x cores + 16 threads.
    pub thread_limit: u64,
}

/// Runs the scenario against the daemon at `addr` (process `pid`).
pub fn run(
    binary: &str,
    terminals: &Arc<Vec<BenchTerminal>>,
    delay: Duration,
    addr: SocketAddr,
    pid: u32,
) -> std::io::Result<CardWait> {
    // Every worker registers through the daemon (first barrier); the delay is then set for each
    // terminal's next request, and all send at once (second barrier).
    let registered = Arc::new(Barrier::new(terminals.len() + 1));
    let go = Arc::new(Barrier::new(terminals.len() + 1));
    let mut workers = Vec::with_capacity(terminals.len());
    for index in 0..terminals.len() {
        let (terminals, registered, go) = (Arc::clone(terminals), Arc::clone(&registered), Arc::clone(&go));
        workers.push(std::thread::Builder::new().name(format!("card-wait-{index}")).stack_size(WORKER_STACK).spawn(
            move || {
                let terminal = &terminals[index];
                let mut samples = Samples::default();
                let driver = DaemonDriver::open(terminal, addr);
                registered.wait();
                go.wait();
                let mut driver = match driver {
                    Ok(driver) => driver,
                    Err(error) => {
                        samples.error(format!("connect: {error}"));
                        return samples;
                    }
                };
                let body = driver.prepare(terminal, Txn::Purchase);
                let started = Instant::now();
                match driver.send(body).and_then(|reply| driver.check(reply, Txn::Purchase)) {
                    Ok(()) => samples.ok(started.elapsed()),
                    Err(error) => samples.error(error),
                }
                samples
            },
        )?);
    }
    registered.wait();
    for terminal in terminals.iter() {
        terminal.sim.set_fault(Fault::Delay(delay), FaultScope::Next(1));
    }
    let before = daemon::memory_of(pid);
    let peaks = Arc::new(daemon::Peaks::default());
    let sampler = daemon::Sampler::start(pid, peaks.clone());
    go.wait();
    let started = Instant::now();
    let mut samples = Samples::default();
    for worker in workers {
        match worker.join() {
            Ok(worker_samples) => samples.merge(worker_samples),
            Err(_) => samples.error("a worker panicked"),
        }
    }
    let wall = started.elapsed();
    sampler.stop();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as u64;
    Ok(CardWait {
        binary: binary.to_owned(),
        terminals: terminals.len(),
        delay_ms: delay.as_millis() as u64,
        answered: samples.latencies_ns.len() as u64,
        errors: samples.errors,
        error_examples: samples.error_examples,
        wall_secs: wall.as_secs_f64(),
        before,
        peak_threads_during_wait: peaks.threads.load(Ordering::Relaxed),
        peak_rss_during_wait_kib: peaks.rss_kib.load(Ordering::Relaxed),
        thread_limit: 2 * cores + 16,
    })
}
