//! The long reliability runs (see `scripts/reliability.sh` and RELIABILITY.md):
//!
//! ```text
//! reliability soak [--terminals 200] [--secs 600] [--clients 32] [--warmup-secs 180] [--sample-secs 5]
//!                  [--fault-percent 10] [--seed 1] [--idle-secs 15]
//! reliability kill-loop [--points 200] [--terminals 3] [--seed 1]
//! ```
//!
//! `soak`: N simulated terminals in this process, the real `nami-httpd` in front of them, client
//! threads sending mixed transactions over HTTP with random faults injected into the terminals;
//! the daemon's RSS, open file descriptors and threads sampled from `/proc`. Fails (exit 1)
//! unless every request was answered, the samples after warm-up grew less than 5 %, every
//! purchase a terminal approved is approved in the journal and none was charged twice.
//!
//! `kill-loop`: `nami_e2e::kill_loop` with many kill points.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nami_e2e::Rng;
use nami_e2e::kill_loop::{self, KillLoopConfig};
use nami_e2e::proc_stats::{self, ProcStats, median};
use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use nami_test_kit::daemon::{Daemon, temp_dir};
use nami_test_kit::http::{Http, tcp_body};
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
            .unwrap_or(default)
    };
    let ok = match args.first().map(String::as_str) {
        Some("soak") => soak(&SoakConfig {
            terminals: flag("--terminals", 200) as usize,
            duration: Duration::from_secs(flag("--secs", 600)),
            clients: flag("--clients", 32) as usize,
            // The daemon's steady state under this load: an unknown outcome the terminal never saw
            // stays unknown for the service's recovery grace (150 s) and is asked about again every
            // 30 s, so until then their backlog, and what the daemon holds for it, only grows; and
            // SQLite's page cache reaches its limit in the third minute (RELIABILITY.md, the soak).
            warmup: Duration::from_secs(flag("--warmup-secs", 180)),
            sample_every: Duration::from_secs(flag("--sample-secs", 5)),
            fault_percent: flag("--fault-percent", 10),
            seed: flag("--seed", 1),
            idle: Duration::from_secs(flag("--idle-secs", 15)),
        }),
        Some("kill-loop") => {
            let dir = temp_dir("nami-kill-loop-");
            let config = KillLoopConfig {
                kill_points: flag("--points", 200) as usize,
                terminals: flag("--terminals", 3) as usize,
                seed: flag("--seed", 1),
                verbose: true,
                ..KillLoopConfig::default()
            };
            let report = kill_loop::run(dir.path(), &config);
            println!("RESULT kill-loop: {}", report.summary());
            for (what, list) in [
                ("missing", &report.missing),
                ("charged twice", &report.charged_twice),
                ("wrongly approved", &report.wrongly_approved),
            ] {
                if !list.is_empty() {
                    println!("  {what}: {list:?}");
                }
            }
            report.holds()
        }
        _ => {
            eprintln!("usage: reliability soak [--terminals N] [--secs S] [--clients N] ... | kill-loop [--points N]");
            std::process::exit(2);
        }
    };
    println!("{}", if ok { "PASS" } else { "FAIL" });
    std::process::exit(if ok { 0 } else { 1 });
}

struct SoakConfig {
    terminals: usize,
    duration: Duration,
    clients: usize,
    warmup: Duration,
    sample_every: Duration,
    fault_percent: u64,
    seed: u64,
    /// How long to wait after the load before the idle sample.
    idle: Duration,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    answered: u64,
    unanswered: Vec<String>,
    /// Answers by operation and `statusCode` (or HTTP status for non-transaction calls).
    by_kind: BTreeMap<String, u64>,
    /// ECR reference -> (terminal port, amount) of every purchase posted.
    purchases: BTreeMap<String, (u16, String)>,
    /// The faults set on a simulator for its next request, by name, and the simulated reboots:
    /// what the summary names before the `error` and `unknown` answers they cause.
    faults: BTreeMap<&'static str, u64>,
    reboots: u64,
}

fn random_fault(rng: &mut Rng) -> Fault {
    match rng.below(11) {
        0 => Fault::Delay(Duration::from_millis(rng.below(2000))),
        1 => Fault::ByteByByte(Duration::from_millis(1)),
        2 => Fault::Split(2 + rng.below(5) as usize),
        3 => Fault::TwoReplies,
        4 => Fault::Garbage,
        5 => Fault::GarbageOnly,
        6 => Fault::CloseAfterRequest,
        7 => Fault::CloseMidReply,
        8 => Fault::NeverAnswer,
        9 => Fault::Busy,
        _ => Fault::Decline("116".into()),
    }
}

fn soak(config: &SoakConfig) -> bool {
    let started = Instant::now();
    println!(
        "soak: {} terminals, {} s, {} clients, {} % of requests with a fault, warm-up {} s, seed {}",
        config.terminals,
        config.duration.as_secs(),
        config.clients,
        config.fault_percent,
        config.warmup.as_secs(),
        config.seed
    );
    let sims: Vec<Simulator> =
        (0..config.terminals).map(|_| Simulator::start(SimConfig::default()).expect("simulator starts")).collect();
    let dir = temp_dir("nami-soak-");
    let mut command = nami_test_kit::daemon::command(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--card-present-timeout-secs",
            "3",
            "--admin-timeout-secs",
            "3",
            "--settlement-timeout-secs",
            "3",
        ],
    );
    command.env("RUST_LOG", "info");
    let daemon = Daemon::spawn(dir.path(), command);
    let pid = daemon.pid();
    let http = Http::new(&format!("http://127.0.0.1:{}", daemon.port), Duration::from_secs(60));
    for (i, sim) in sims.iter().enumerate() {
        let reply =
            http.tcp(sim.addr().port(), json!({"txnType": "REGISTER", "ecrReferenceNo": format!("23456789{i:06}")}));
        assert_eq!(reply["statusCode"], "200", "REGISTER {i}: {reply}");
    }
    let idle_before = proc_stats::sample(pid).expect("the daemon runs");
    println!("registered {} terminals in {:.1} s; idle: {idle_before:?}", sims.len(), started.elapsed().as_secs_f64());

    let stop = AtomicBool::new(false);
    let samples: Mutex<Vec<(Duration, ProcStats)>> = Mutex::new(Vec::new());
    let tally = Mutex::new(Tally::default());
    let next_ecr = AtomicU64::new(1);
    let load_start = Instant::now();
    std::thread::scope(|scope| {
        // The sampler.
        scope.spawn(|| {
            let mut last_print = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                if let Some(stats) = proc_stats::sample(pid) {
                    samples.lock().unwrap().push((load_start.elapsed(), stats));
                    if last_print.elapsed() >= Duration::from_secs(30) {
                        last_print = Instant::now();
                        let t = tally.lock().unwrap();
                        println!(
                            "[{:>4} s] rss {} KiB, fds {}, threads {}; requests {} answered {} unanswered {}",
                            load_start.elapsed().as_secs(),
                            stats.rss_kib,
                            stats.open_fds,
                            stats.threads,
                            t.sent,
                            t.answered,
                            t.unanswered.len()
                        );
                    }
                }
                std::thread::sleep(config.sample_every);
            }
        });
        for client in 0..config.clients {
            let (sims, http, tally, next_ecr) = (&sims, http.clone(), &tally, &next_ecr);
            let mut rng = Rng::new(config.seed.wrapping_mul(1000).wrapping_add(client as u64));
            scope.spawn(move || {
                let mut mine: Vec<(u16, String, String)> = Vec::new();
                while load_start.elapsed() < config.duration {
                    let index = rng.below(sims.len() as u64) as usize;
                    let sim = &sims[index];
                    let port = sim.addr().port();
                    if rng.chance(config.fault_percent) {
                        let fault = random_fault(&mut rng);
                        *tally.lock().unwrap().faults.entry(fault.name()).or_default() += 1;
                        sim.set_fault(fault, FaultScope::Next(1));
                    }
                    if rng.chance(1) && rng.chance(20) {
                        tally.lock().unwrap().reboots += 1;
                        sim.reboot();
                    }
                    let fresh = || soak_reference(next_ecr.fetch_add(1, Ordering::SeqCst));
                    let roll = rng.below(100);
                    let (kind, path, body): (&str, String, Option<Value>) = match roll {
                        0..=54 => {
                            let reference = fresh();
                            let cents = if rng.chance(10) { 51 } else { rng.below(50) * 2 };
                            let amount = format!("{}.{cents:02}", 1 + rng.below(200));
                            tally.lock().unwrap().purchases.insert(reference.clone(), (port, amount.clone()));
                            mine.push((port, reference.clone(), amount.clone()));
                            let payment = json!({"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": reference,
                                "jsonResponse": rng.chance(50)});
                            ("purchase", "/performTransactionTCPIP".into(), Some(tcp_body(port, payment)))
                        }
                        55..=62 if !mine.is_empty() => {
                            let (port, reference, amount) = mine[rng.below(mine.len() as u64) as usize].clone();
                            let payment = json!({"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": reference});
                            ("retry", "/performTransactionTCPIP".into(), Some(tcp_body(port, payment)))
                        }
                        63..=67 if !mine.is_empty() => {
                            let (port, reference, _) = mine[rng.below(mine.len() as u64) as usize].clone();
                            let payment =
                                json!({"txnType": "DUPLICATE", "prevEcrNo": reference, "ecrReferenceNo": fresh()});
                            ("duplicate", "/performTransactionTCPIP".into(), Some(tcp_body(port, payment)))
                        }
                        68..=72 => {
                            let payment = json!({"txnType": "CHECK_STATUS", "ecrReferenceNo": fresh()});
                            ("check-status", "/performTransactionTCPIP".into(), Some(tcp_body(port, payment)))
                        }
                        73..=76 => {
                            let payment = json!({"txnType": "REVERSAL", "ecrReferenceNo": fresh()});
                            ("reversal", "/performTransactionTCPIP".into(), Some(tcp_body(port, payment)))
                        }
                        77..=78 => {
                            let payment = json!({"txnType": "RECONCILIATION", "ecrReferenceNo": fresh()});
                            ("reconciliation", "/performTransactionTCPIP".into(), Some(tcp_body(port, payment)))
                        }
                        79..=80 => {
                            let payment = json!({"txnType": "REGISTER", "ecrReferenceNo": fresh()});
                            ("register", "/performTransactionTCPIP".into(), Some(tcp_body(port, payment)))
                        }
                        81..=82 => {
                            ("cancel", "/cancelTransaction".into(), Some(json!({"ip": "127.0.0.1", "port": port})))
                        }
                        83..=86 => ("health", "/api/health-status".into(), None),
                        87..=90 => ("journal", "/transactions?limit=20".into(), None),
                        91..=94 => ("registration", format!("/registrationStatus?ip=127.0.0.1&port={port}"), None),
                        _ => ("connections", "/getExistingConnections".into(), None),
                    };
                    tally.lock().unwrap().sent += 1;
                    let result = match &body {
                        Some(body) => http.try_post(&path, body),
                        None => http.try_get(&path),
                    };
                    let mut t = tally.lock().unwrap();
                    match result {
                        Ok(answer) => {
                            t.answered += 1;
                            let code = answer.body["statusCode"]
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| answer.status.to_string());
                            *t.by_kind.entry(format!("{kind} {code}")).or_default() += 1;
                            if code == "REGISTER_REQUIRED" {
                                drop(t);
                                let payment = json!({"txnType": "REGISTER", "ecrReferenceNo": fresh()});
                                let _ = http.try_post("/performTransactionTCPIP", &tcp_body(port, payment));
                            }
                        }
                        Err(error) => t.unanswered.push(format!("{kind} {path}: {error}")),
                    }
                }
            });
        }
        std::thread::sleep(config.duration);
        // The clients stop by themselves at the deadline; the sampler when told.
        while load_start.elapsed() < config.duration + Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(100));
        }
        // The scope waits for the clients' last requests; the sampler stops now.
        stop.store(true, Ordering::SeqCst);
    });
    let load_secs = load_start.elapsed().as_secs_f64();
    for sim in &sims {
        sim.clear_faults();
    }
    // Idle: blocking threads of the runtime retire after 10 s of idleness.
    std::thread::sleep(config.idle);
    let idle_after = proc_stats::sample(pid).expect("the daemon still runs");

    // Stability after warm-up: the median of the first minute after warm-up against the median
    // of the last minute.
    let samples = samples.into_inner().unwrap();
    let window = Duration::from_secs(60);
    let pick = |from: Duration, to: Duration, f: fn(&ProcStats) -> u64| -> Vec<u64> {
        samples.iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, s)| f(s)).collect()
    };
    let end = config.duration;
    let early_end = (config.warmup + window).min(end);
    let late_start = end.saturating_sub(window).max(config.warmup);
    let mut stable = true;
    let mut growth_lines = Vec::new();
    type Metric = (&'static str, fn(&ProcStats) -> u64, u64);
    let metrics: [Metric; 3] =
        [("rss_kib", |s| s.rss_kib, 0), ("open_fds", |s| s.open_fds, 2), ("threads", |s| s.threads, 2)];
    for (name, f, slack) in metrics {
        let early = median(&pick(config.warmup, early_end, f));
        let late = median(&pick(late_start, end + Duration::from_secs(5), f));
        let max = samples.iter().map(|(_, s)| f(s)).max().unwrap_or(0);
        let growth = if early == 0 { 0.0 } else { (late as f64 - early as f64) * 100.0 / early as f64 };
        let ok = (late as f64) < early as f64 * 1.05 + slack as f64;
        stable &= ok;
        growth_lines.push(format!(
            "{name}: after warm-up {early}, last minute {late}, growth {growth:+.2} % (max {max}){}",
            if ok { "" } else { "  <-- over 5 %" }
        ));
    }

    // Nothing lost: resolve what is still unknown, then compare with the terminals' journals.
    let tally = tally.into_inner().unwrap();
    let charged = charged(&sims);
    // A terminal rebooted near the end may still be unregistered (its REGISTER_REQUIRED came and
    // the client's REGISTER met a busy terminal): register every one again, as a POS would, so
    // that recovery can ask them.
    for (i, sim) in sims.iter().enumerate() {
        let payment = json!({"txnType": "REGISTER", "ecrReferenceNo": format!("34567890{i:06}")});
        let _ = http.try_post("/performTransactionTCPIP", &tcp_body(sim.addr().port(), payment));
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut unresolved;
    loop {
        unresolved = unresolved_purchases(&http, &charged);
        if unresolved.is_empty() || Instant::now() > deadline {
            break;
        }
        // Asking again answers from the journal (nothing is sent) and wakes recovery.
        for reference in unresolved.iter().take(50) {
            if let Some((port, amount)) = tally.purchases.get(reference) {
                let payment = json!({"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": reference});
                let _ = http.try_post("/performTransactionTCPIP", &tcp_body(*port, payment));
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let charged = self::charged(&sims);
    let twice: Vec<&String> = charged.iter().filter(|(_, v)| v.len() > 1).map(|(k, _)| k).collect();
    let approved_by_terminals = charged.values().filter(|v| v.iter().any(|a| *a)).count();
    // The journal as the daemon wrote it (newest row of each reference wins).
    let (states, state_counts) = journal_states(&dir.path().join("journal.sqlite"));
    let missing: Vec<&String> = charged
        .iter()
        .filter(|(r, v)| v.iter().any(|a| *a) && states.get(*r).map(String::as_str) != Some("approved"))
        .map(|(r, _)| r)
        .collect();
    drop(daemon); // stops it and scans its log for card numbers
    for sim in &sims {
        sim.shutdown();
    }

    println!("--- soak results ---");
    println!(
        "load: {load_secs:.0} s, {} terminals, {} clients; requests {} answered {} unanswered {} ({:.1} req/s)",
        config.terminals,
        config.clients,
        tally.sent,
        tally.answered,
        tally.unanswered.len(),
        tally.answered as f64 / load_secs
    );
    // Said before the counts: a newcomer reading `error` and `unknown` answers and journal rows
    // should know they were caused on purpose.
    println!(
        "faults injected on purpose ({} % of requests; each hits the next request to one terminal, so \
         the error, unknown and declined answers below are expected): {}; simulated terminal reboots: {}; \
         and 1 purchase in 10 is of an amount ending in .51, which the simulator declines",
        config.fault_percent,
        tally.faults.iter().map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", "),
        tally.reboots
    );
    for line in &growth_lines {
        println!("{line}");
    }
    println!("idle before load: {idle_before:?}; idle {} s after load: {idle_after:?}", config.idle.as_secs());
    println!(
        "purchases posted {}, charged by the terminals {} ({} approved), charged twice {}, approved but not in \
         the journal as approved {}, still unresolved {}; journal: {state_counts:?}",
        tally.purchases.len(),
        charged.len(),
        approved_by_terminals,
        twice.len(),
        missing.len(),
        unresolved.len()
    );
    println!("answers: {:?}", tally.by_kind);
    for line in tally.unanswered.iter().take(20) {
        println!("  unanswered: {line}");
    }
    if !missing.is_empty() {
        println!("  missing: {:?}", missing.iter().take(20).collect::<Vec<_>>());
        for reference in missing.iter().take(5) {
            println!("  {reference}: {:?}", journal_rows(&dir.path().join("journal.sqlite"), reference));
        }
    }
    let ok = tally.unanswered.is_empty() && stable && twice.is_empty() && missing.is_empty();
    println!("RESULT soak: {}", if ok { "every request answered, stable, nothing lost" } else { "FAILED" });
    ok
}

fn charged(sims: &[Simulator]) -> BTreeMap<String, Vec<bool>> {
    let mut charged: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for sim in sims {
        for txn in sim.journal() {
            if txn.txn_type == nami_sdk::TxnType::Purchase {
                charged.entry(txn.ecr_reference.clone()).or_default().push(txn.approved);
            }
        }
    }
    charged
}

/// Terminal-approved purchases whose journal row is still `unknown` or `pending`.
fn unresolved_purchases(http: &Http, charged: &BTreeMap<String, Vec<bool>>) -> Vec<String> {
    let mut open = std::collections::BTreeSet::new();
    for state in ["unknown", "pending"] {
        let Ok(answer) = http.try_get(&format!("/transactions?state={state}&limit=10000")) else {
            return charged.keys().cloned().collect();
        };
        for row in answer.body["transactions"].as_array().into_iter().flatten() {
            if let Some(r) = row["ecrReferenceNo"].as_str() {
                open.insert(r.to_owned());
            }
        }
    }
    charged.iter().filter(|(r, v)| v.iter().any(|a| *a) && open.contains(*r)).map(|(r, _)| r.clone()).collect()
}

/// Every journal row of `reference`: state, status code, message, requested at.
fn journal_rows(path: &std::path::Path, reference: &str) -> Vec<(String, Option<String>, Option<String>, String)> {
    let Ok(db) = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let mut statement = db
        .prepare("SELECT state, status_code, message, requested_at FROM journal WHERE ecr_reference = ?1 ORDER BY id")
        .unwrap();
    statement
        .query_map([reference], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .filter_map(Result::ok)
        .collect()
}

/// ECR reference -> state of its newest row, and the number of rows per state, read from the
/// journal file itself.
fn journal_states(path: &std::path::Path) -> (BTreeMap<String, String>, BTreeMap<String, u64>) {
    let db = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut statement = db.prepare("SELECT ecr_reference, state FROM journal ORDER BY id").unwrap();
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))).unwrap();
    let (mut latest, mut counts) = (BTreeMap::new(), BTreeMap::new());
    for row in rows {
        let (reference, state) = row.unwrap();
        *counts.entry(state.clone()).or_default() += 1;
        latest.insert(reference, state);
    }
    (latest, counts)
}

/// The `n`th fresh ECR reference of a soak: never one used before in the run. The upper half of
/// each cash register's sequence (500000–999999) is the driver's; the lower half is left to the
/// daemon, whose recovery draws its DUPLICATE references there. Every 500,000 references the
/// cash register number moves on: a 30-minute run needs about 650,000, and a reference used again
/// would be a new purchase under an old reference (counted as charged twice by the check).
fn soak_reference(n: u64) -> String {
    format!("{:08}{:06}", 23_456_789 + n / 500_000, 500_000 + n % 500_000)
}

#[cfg(test)]
mod tests {
    use super::soak_reference;

    #[test]
    fn soak_references_never_repeat_and_keep_fourteen_digits() {
        let mut seen = std::collections::HashSet::new();
        for n in (0..2_000).chain(499_000..501_000).chain(999_000..1_001_000) {
            let reference = soak_reference(n);
            assert_eq!(reference.len(), 14, "{reference}");
            assert!(seen.insert(reference.clone()), "{reference} twice");
        }
        assert_eq!(soak_reference(0), "23456789500000");
        assert_eq!(soak_reference(500_000), "23456790500000");
    }
}
