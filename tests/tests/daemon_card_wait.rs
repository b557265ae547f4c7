//! The daemon with many purchases waiting for their cards at once: the real `nami-httpd` binary
//! in front of many simulated terminals that each take a while to answer, driven over HTTP as
//! POS systems would. A waiting card must cost the daemon no thread, and neither must a purchase
//! waiting for the journal's commit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use nami_e2e::proc_stats::{self, ProcStats};
use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, ecr, temp_dir};
use serde_json::{Value, json};

fn cores() -> u64 {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as u64
}

/// What a burst of purchases, one per terminal, each answered after `card_wait`, came to.
struct Burst {
    daemon: Daemon,
    /// The daemon's state directory (its log is there); removed after the daemon is stopped.
    _dir: tempfile::TempDir,
    before: ProcStats,
    answers: Vec<(String, Value)>,
    took: Duration,
    peak_threads: u64,
}

/// Registers `terminals` simulated terminals with a fresh daemon, then sends one purchase to
/// each at once and samples the daemon's threads while they wait.
fn burst(terminals: usize, card_wait: Duration) -> Burst {
    let sims: Vec<Simulator> =
        (0..terminals).map(|_| Simulator::start(SimConfig::default()).expect("simulator starts")).collect();
    let dir = temp_dir("nami-card-wait-");
    let daemon = Daemon::start(dir.path(), &[]);
    let http = daemon.http();
    for sim in &sims {
        let registered = http.tcp(sim.addr().port(), json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}));
        assert_eq!(registered["statusCode"], "200", "REGISTER: {registered}");
        sim.set_fault(Fault::Delay(card_wait), FaultScope::Next(1));
    }
    let before = proc_stats::sample(daemon.pid()).expect("the daemon runs");

    let go = Arc::new(Barrier::new(terminals + 1));
    let clients: Vec<_> = sims
        .iter()
        .map(|sim| {
            let (http, go, port) = (http.clone(), go.clone(), sim.addr().port());
            std::thread::spawn(move || {
                go.wait();
                let reference = ecr();
                let answer =
                    http.tcp(port, json!({"txnType": "PURCHASE", "amount": "10.00", "ecrReferenceNo": reference}));
                (reference, answer)
            })
        })
        .collect();
    let (sampling, peak_threads) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (sampling, peak_threads, pid) = (sampling.clone(), peak_threads.clone(), daemon.pid());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Some(stats) = proc_stats::sample(pid) {
                    peak_threads.fetch_max(stats.threads, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    go.wait();
    let started = Instant::now();
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().expect("client thread")).collect();
    let took = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    for sim in sims {
        sim.shutdown();
    }
    Burst { daemon, _dir: dir, before, answers, took, peak_threads: peak_threads.load(Ordering::Relaxed) }
}

fn assert_all_approved(burst: &Burst) {
    for (reference, answer) in &burst.answers {
        assert_eq!(answer["statusCode"], "200", "{reference}: {answer}");
        assert_eq!(answer["approved"], true, "{reference}: {answer}");
    }
}

#[test]
fn sixty_purchases_waiting_for_their_cards_at_once_cost_the_daemon_no_thread_each_and_all_are_answered() {
    const TERMINALS: usize = 60;
    const CARD_WAIT: Duration = Duration::from_secs(2);
    let burst = burst(TERMINALS, CARD_WAIT);
    assert_all_approved(&burst);
    // Every terminal waited at the same time: the wait is paid once, not sixty times in a row.
    assert!(burst.took < CARD_WAIT * 4, "{TERMINALS} purchases of {CARD_WAIT:?} each took {:?}", burst.took);
    let peak = burst.peak_threads;
    assert!(
        peak <= 2 * cores() + 16 && peak < TERMINALS as u64,
        "{peak} daemon threads while {TERMINALS} purchases waited (before: {}; limit {})",
        burst.before.threads,
        2 * cores() + 16
    );
}

/// The sizes of the journal's commits, from the daemon's debug log (`journal commit writes=N`).
fn commit_sizes(log: &str) -> Vec<usize> {
    log.lines()
        .filter(|line| line.contains("journal commit"))
        .filter_map(|line| line.split("writes=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn a_burst_of_purchases_is_committed_in_groups_larger_than_the_daemons_blocking_pool() {
    // When each waiting write held a thread of the daemon's blocking pool (then cores + 8
    // threads), no commit could take more writes than that.
    let pool = (cores() + 8) as usize;
    let terminals = (6 * pool).max(120);
    let burst = burst(terminals, Duration::from_secs(1));
    assert_all_approved(&burst);
    let sizes = commit_sizes(&burst.daemon.log());
    let written: usize = sizes.iter().sum();
    // Each purchase's row and outcome, and each REGISTER's nothing: 2 writes per purchase (and
    // the start's one).
    assert!(written > 2 * terminals, "{written} writes committed for {terminals} purchases");
    let largest = sizes.iter().copied().max().unwrap_or(0);
    eprintln!("{terminals} purchases: {written} writes in {} commits, the largest {largest}", sizes.len());
    assert!(largest > pool, "the largest commit took {largest} writes (blocking pool: {pool}); {sizes:?}");
    assert!(
        burst.peak_threads <= 2 * cores() + 16,
        "{} daemon threads for {terminals} purchases (limit {})",
        burst.peak_threads,
        2 * cores() + 16
    );
}
