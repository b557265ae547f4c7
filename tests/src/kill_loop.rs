//! The kill loop: the daemon is killed with SIGKILL while purchases run, restarted on the same
//! state directory, again and again; then the journal is checked against what the simulated
//! terminals really charged (their journals are the ground truth).
//!
//! Each kill point: the terminals answer after a random delay; one purchase per terminal is
//! posted at once; after a random pause the daemon gets SIGKILL — before the request arrived,
//! while the frame is being journaled, while the terminal thinks, or after the answer. The
//! daemon is started again on the same state directory for the next kill point; its recovery
//! (DUPLICATE for every `unknown` row, docs/protocol.md D11) runs while later kill points go on, and
//! may itself be killed.
//!
//! At the end, one last start without faults, every unresolved reference posted again (the
//! idempotency check answers from the journal and wakes recovery; nothing is sent), and the
//! promises:
//! - every purchase a terminal approved is `approved` in the daemon's journal;
//! - no ECR reference is charged twice by a terminal;
//! - no purchase a terminal declined is `approved`, and no row is left `pending`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use nami_sim::{Fault, FaultScope, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::Rng;
use nami_test_kit::daemon::{Daemon, ecr};
use nami_test_kit::http::{Http, tcp_body};

#[derive(Debug, Clone)]
pub struct KillLoopConfig {
    pub kill_points: usize,
    /// Simulated terminals, one purchase each per kill point.
    pub terminals: usize,
    /// The terminals' reply delay is drawn from 0..=this.
    pub max_delay: Duration,
    pub seed: u64,
    /// How long the final recovery may take.
    pub settle_within: Duration,
    /// Print one line per kill point.
    pub verbose: bool,
}

impl Default for KillLoopConfig {
    fn default() -> Self {
        KillLoopConfig {
            kill_points: 20,
            terminals: 3,
            max_delay: Duration::from_millis(300),
            seed: 0x5eed,
            settle_within: Duration::from_secs(90),
            verbose: false,
        }
    }
}

/// What a kill loop saw.
#[derive(Debug, Default)]
pub struct KillLoopReport {
    pub kill_points: usize,
    pub purchases_posted: usize,
    /// Purchases whose HTTP answer came before the kill.
    pub answered_before_kill: usize,
    /// Purchases the terminals journaled (approved or declined).
    pub charged_by_terminals: usize,
    pub approved_by_terminals: usize,
    /// Rows the daemon's journal ended with, by state.
    pub daemon_states: BTreeMap<String, usize>,
    /// Terminal-approved purchases whose daemon row is not `approved` (must be empty).
    pub missing: Vec<String>,
    /// ECR references a terminal charged more than once (must be empty).
    pub charged_twice: Vec<String>,
    /// Terminal-declined purchases the daemon says are approved (must be empty).
    pub wrongly_approved: Vec<String>,
    pub elapsed: Duration,
}

impl KillLoopReport {
    pub fn holds(&self) -> bool {
        self.missing.is_empty()
            && self.charged_twice.is_empty()
            && self.wrongly_approved.is_empty()
            && !self.daemon_states.contains_key("pending")
    }

    pub fn summary(&self) -> String {
        format!(
            "kill points: {}, purchases posted: {}, answered before the kill: {}, charged by the terminals: {} \
             ({} approved), daemon journal: {:?}, approved but missing: {}, charged twice: {}, declined but \
             approved: {}, in {:.1} s",
            self.kill_points,
            self.purchases_posted,
            self.answered_before_kill,
            self.charged_by_terminals,
            self.approved_by_terminals,
            self.daemon_states,
            self.missing.len(),
            self.charged_twice.len(),
            self.wrongly_approved.len(),
            self.elapsed.as_secs_f64()
        )
    }
}

fn start(state_dir: &Path) -> Daemon {
    let mut daemon = Daemon::start(state_dir, &["--card-present-timeout-secs", "10", "--admin-timeout-secs", "10"]);
    // Killed daemons leave no clean log end; the scan still runs on the final one.
    daemon.scan_log = true;
    daemon
}

/// Runs the loop with a fresh state directory under `work_dir`.
pub fn run(work_dir: &Path, config: &KillLoopConfig) -> KillLoopReport {
    let started = Instant::now();
    let mut rng = Rng::new(config.seed);
    let sims: Vec<Simulator> =
        (0..config.terminals).map(|_| Simulator::start(SimConfig::default()).expect("simulator starts")).collect();
    let state_dir = work_dir.join("state");
    let mut report = KillLoopReport { kill_points: config.kill_points, ..KillLoopReport::default() };
    // ECR reference -> amount, for every purchase posted.
    let mut posted: BTreeMap<String, (u16, String)> = BTreeMap::new();

    let mut daemon = start(&state_dir);
    {
        let http = daemon.http();
        for sim in &sims {
            let reply = http.tcp(sim.addr().port(), json!({"txnType": "REGISTER", "ecrReferenceNo": ecr()}));
            assert_eq!(reply["statusCode"], "200", "REGISTER: {reply}");
        }
    }

    for point in 0..config.kill_points {
        let max_ms = config.max_delay.as_millis() as u64;
        for sim in &sims {
            sim.set_fault(Fault::Delay(Duration::from_millis(rng.below(max_ms + 1))), FaultScope::Always);
        }
        let http = daemon.http();
        let jobs: Vec<(u16, String, String)> = sims
            .iter()
            .map(|sim| {
                // Mostly approved; some declined (.51) so that both outcomes are recovered.
                let cents = if rng.below(5) == 0 { 51 } else { 0 };
                (sim.addr().port(), ecr(), format!("{}.{cents:02}", 10 + rng.below(90)))
            })
            .collect();
        for (port, reference, amount) in &jobs {
            posted.insert(reference.clone(), (*port, amount.clone()));
        }
        let kill_after = Duration::from_millis(rng.below(max_ms + 200));
        let answered = std::thread::scope(|scope| {
            let handles: Vec<_> = jobs
                .iter()
                .map(|(port, reference, amount)| {
                    let http = http.clone();
                    scope.spawn(move || {
                        let body = json!({"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": reference});
                        http.try_post("/performTransactionTCPIP", &tcp_body(*port, body)).is_ok()
                    })
                })
                .collect();
            std::thread::sleep(kill_after);
            daemon.kill();
            handles.into_iter().map(|h| h.join()).filter(|r| matches!(r, Ok(true))).count()
        });
        report.purchases_posted += jobs.len();
        report.answered_before_kill += answered;
        if config.verbose {
            println!("kill point {}: killed after {kill_after:?}, {answered}/{} answered", point + 1, jobs.len());
        }
        daemon = start(&state_dir);
    }

    // The end: no faults, the terminals idle, one clean start, and recovery.
    for sim in &sims {
        sim.clear_faults();
    }
    std::thread::sleep(config.max_delay + Duration::from_millis(100));
    daemon.kill();
    let daemon = start(&state_dir);
    let http = daemon.http();
    let charged = charged_references(&sims);
    let deadline = Instant::now() + config.settle_within;
    loop {
        let unresolved = unresolved(&http, &charged);
        if unresolved.is_empty() || Instant::now() > deadline {
            break;
        }
        // Asking again answers from the journal (OUTCOME_UNKNOWN, nothing sent) and wakes
        // recovery.
        for reference in unresolved.iter().take(20) {
            if let Some((port, amount)) = posted.get(reference) {
                let body = json!({"txnType": "PURCHASE", "amount": amount, "ecrReferenceNo": reference});
                let _ = http.try_post("/performTransactionTCPIP", &tcp_body(*port, body));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    let charged = charged_references(&sims);
    report.charged_by_terminals = charged.values().map(|list| list.len()).sum();
    report.approved_by_terminals = charged.values().filter(|list| list.iter().any(|approved| *approved)).count();
    report.charged_twice = charged.iter().filter(|(_, list)| list.len() > 1).map(|(r, _)| r.clone()).collect();
    let journal = http.journal(100_000);
    let mut states: BTreeMap<String, String> = BTreeMap::new();
    for row in &journal {
        let state = row["state"].as_str().unwrap_or("?").to_owned();
        *report.daemon_states.entry(state.clone()).or_default() += 1;
        if state == "error" {
            // Why it surely was not processed.
            let code = row["statusCode"].as_str().unwrap_or("?");
            *report.daemon_states.entry(format!("error:{code}")).or_default() += 1;
        }
        if let Some(reference) = row["ecrReferenceNo"].as_str() {
            // Newest first: the first row seen for a reference is its latest.
            states.entry(reference.to_owned()).or_insert(state);
        }
    }
    for (reference, list) in &charged {
        let state = states.get(reference).map(String::as_str);
        if list.iter().any(|approved| *approved) && state != Some("approved") {
            report.missing.push(format!("{reference} ({state:?})"));
        }
        if list.iter().all(|approved| !approved) && state == Some("approved") {
            report.wrongly_approved.push(reference.clone());
        }
    }
    drop(daemon);
    for sim in &sims {
        sim.shutdown();
    }
    report.elapsed = started.elapsed();
    report
}

/// ECR reference -> whether each purchase the terminals journaled under it was approved.
fn charged_references(sims: &[Simulator]) -> BTreeMap<String, Vec<bool>> {
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

/// Charged references whose daemon row is not yet final (`approved` or `declined`).
fn unresolved(http: &Http, charged: &BTreeMap<String, Vec<bool>>) -> BTreeSet<String> {
    let Ok(answer) = http.try_get("/transactions?limit=100000") else {
        return charged.keys().cloned().collect();
    };
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for row in answer.body["transactions"].as_array().into_iter().flatten() {
        if let (Some(reference), Some(state)) = (row["ecrReferenceNo"].as_str(), row["state"].as_str()) {
            latest.entry(reference.to_owned()).or_insert_with(|| state.to_owned());
        }
    }
    charged
        .keys()
        .filter(|r| !matches!(latest.get(*r).map(String::as_str), Some("approved") | Some("declined")))
        .cloned()
        .collect()
}

/// Whether `value` is a transaction answer (has a `statusCode`).
pub fn is_transaction_answer(value: &Value) -> bool {
    value.get("statusCode").and_then(Value::as_str).is_some()
}
