//! The daemon with many purchases waiting for their cards at once: the real `nami-httpd` binary
//! in front of many simulated terminals that each take a while to answer, driven over HTTP as
//! POS systems would. A waiting card must cost the daemon no thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use nami_e2e::proc_stats;
use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, ecr, temp_dir};
use serde_json::json;

const TERMINALS: usize = 60;
const CARD_WAIT: Duration = Duration::from_secs(2);

#[test]
fn sixty_purchases_waiting_for_their_cards_at_once_cost_the_daemon_no_thread_each_and_all_are_answered() {
    let sims: Vec<Simulator> =
        (0..TERMINALS).map(|_| Simulator::start(SimConfig::default()).expect("simulator starts")).collect();
    let dir = temp_dir("nami-card-wait-");
    let daemon = Daemon::start(dir.path(), &[]);
    let http = daemon.http();
    for sim in &sims {
        let registered = http.tcp(sim.addr().port(), json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}));
        assert_eq!(registered["statusCode"], "200", "REGISTER: {registered}");
        sim.set_fault(Fault::Delay(CARD_WAIT), FaultScope::Next(1));
    }
    let before = proc_stats::sample(daemon.pid()).expect("the daemon runs");

    // Every purchase is sent at once; the daemon's threads are sampled while they wait.
    let go = Arc::new(Barrier::new(TERMINALS + 1));
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

    for (reference, answer) in &answers {
        assert_eq!(answer["statusCode"], "200", "{reference}: {answer}");
        assert_eq!(answer["approved"], true, "{reference}: {answer}");
    }
    // Every terminal waited at the same time: the wait is paid once, not sixty times in a row.
    assert!(took < CARD_WAIT * 4, "{TERMINALS} purchases of {CARD_WAIT:?} each took {took:?}");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as u64;
    let peak = peak_threads.load(Ordering::Relaxed);
    assert!(
        peak <= 2 * cores + 16 && peak < TERMINALS as u64,
        "{peak} daemon threads while {TERMINALS} purchases waited (before: {}; limit {})",
        before.threads,
        2 * cores + 16
    );
    for sim in sims {
        sim.shutdown();
    }
}
