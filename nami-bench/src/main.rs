//! `nami-bench`: the load harness of issue 11. N simulated terminals (in-process `nami-sim`
//! instances, registered, zero think time) take M transactions each, through
//!
//! - (c) **raw**: a plain socket writing the pre-encoded frame — the baseline;
//! - (a) **sdk**: `nami_sdk::Terminal` in process;
//! - (b) **daemon**: the real `nami-httpd` binary over HTTP/1.1 keep-alive;
//!
//! all in the same run against the same simulators, and reports throughput, p50 / p99 / max
//! latency, errors, (a) and (b) as ratios to (c), and the daemon's readiness time and memory.
//! `--sweep 1,10,100,1000 --plot out.png` repeats the run for each number of terminals and
//! plots latency against it. Exits 1 if any transaction failed. See BENCHMARKS.md.

mod card_wait;
mod daemon;
mod idle;
mod modes;
mod plot;
mod stats;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;

use daemon::{Daemon, Memory};
use modes::Mode;
use stats::{Samples, Summary};
use workload::Txn;

#[derive(Debug, Parser)]
#[command(name = "nami-bench", about = "Load harness: simulated terminals through raw sockets, the SDK and nami-httpd")]
struct Args {
    /// Simulated terminals, each driven by its own worker.
    #[arg(long, default_value_t = 1)]
    terminals: usize,
    /// Measured transactions per terminal, per mode and transaction type (per round).
    #[arg(long, default_value_t = 1000)]
    transactions: usize,
    /// Instead of --transactions: this many per mode and type across all terminals, split evenly
    /// (at least 10 per terminal), so that every point of a sweep has enough samples.
    #[arg(long)]
    total: Option<usize>,
    /// raw, sdk, daemon or all (comma-separated for several).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    mode: Vec<Mode>,
    /// The transaction types to drive.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "purchase,check-status")]
    txn: Vec<Txn>,
    /// Repeat raw, sdk, daemon this many times, interleaved, so that background noise falls on
    /// every mode alike; the samples of all rounds are pooled.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The nami-httpd binary (default: beside this binary, else target/release, target/debug).
    #[arg(long)]
    daemon_bin: Option<PathBuf>,
    /// Another nami-httpd (e.g. a release build of the previous commit), driven like the daemon
    /// in the same run as mode `daemon-baseline`, for before/after figures beside each other.
    #[arg(long)]
    baseline_daemon_bin: Option<PathBuf>,
    /// Instead of the throughput phases: the card-wait scenario. Every terminal gets one purchase
    /// through the daemon at once, which its simulator answers after this many milliseconds (a
    /// card being presented); the daemon's threads and RSS are sampled during the wait.
    #[arg(long)]
    card_wait_ms: Option<u64>,
    /// Instead of the throughput phases: the daemon's idle memory. Each of N runs starts the
    /// daemon (and the baseline, alternating) fresh, its binary dropped from the page cache, and
    /// reads its RSS 2 s after it answered, after one more health request, and after a short load
    /// (200 CHECK STATUS and 200 PURCHASE through one terminal).
    #[arg(long, value_name = "RUNS", num_args = 0..=1, default_missing_value = "3")]
    idle_only: Option<usize>,
    /// The daemon's log filter; `info` is its default (a line per request, to a file).
    #[arg(long, default_value = "info")]
    daemon_log: String,
    /// Run the daemon under this command, e.g. "valgrind --tool=callgrind" (split on spaces).
    #[arg(long)]
    daemon_wrapper: Option<String>,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run once per number of terminals (e.g. 1,10,100,1000) instead of --terminals.
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// Plot latency against the number of terminals (PNG).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// A TrueType font for the plot's text (default: DejaVu Sans or similar from the system).
    #[arg(long)]
    font: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    rounds: usize,
    daemon_log: String,
    runs: Vec<Run>,
    /// The card-wait scenario, per number of terminals and daemon (baseline first).
    card_wait: Vec<card_wait::CardWait>,
    /// `--idle-only`: every start of every binary (baseline first in each run).
    idle: Vec<idle::IdleRun>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    kernel: String,
    load_average_at_start: String,
    load_average_at_end: String,
}

#[derive(Debug, Serialize)]
struct Run {
    terminals: usize,
    transactions_per_terminal: usize,
    results: Vec<ModeResult>,
    daemon: Option<DaemonFigures>,
    baseline_daemon: Option<DaemonFigures>,
}

#[derive(Debug, Serialize)]
struct ModeResult {
    mode: Mode,
    txn: Txn,
    #[serde(flatten)]
    summary: Summary,
    /// p50 / raw p50 and p99 / raw p99 of the same transaction type in the same run.
    p50_ratio_to_raw: Option<f64>,
    p99_ratio_to_raw: Option<f64>,
    /// Latency added on top of the raw exchange.
    p50_added_us: Option<f64>,
    p99_added_us: Option<f64>,
    /// For the daemon modes: the daemon's CPU time (user + system, from /proc) per 1,000
    /// measured transactions.
    daemon_cpu_ms_per_1000_tx: Option<f64>,
    /// For the daemon modes: its threads' voluntary context switches (a thread blocked on a lock,
    /// a condition variable or I/O) per 1,000 measured transactions, and the involuntary ones.
    daemon_voluntary_switches_per_1000_tx: Option<f64>,
    daemon_involuntary_switches_per_1000_tx: Option<f64>,
}

#[derive(Debug, Serialize)]
struct DaemonFigures {
    binary: String,
    /// Spawn → `listening on` printed.
    ready_line_ms: f64,
    /// Spawn → first `GET /api/health-status` answered.
    ready_health_ms: f64,
    /// Started, nothing sent yet.
    idle: Memory,
    /// The highest RSS sampled (every 10 ms) while the daemon was under load.
    peak_rss_under_load_kib: u64,
    peak_threads_under_load: u64,
    /// After the last phase, every terminal still connected, idle.
    after_load: Memory,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("nami-bench: some transactions failed (see above)");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("nami-bench: {error}");
            ExitCode::from(2)
        }
    }
}

/// The modes to run, baseline first.
fn expand(modes: &[Mode], baseline: bool) -> Vec<Mode> {
    let mut out: Vec<Mode> = modes
        .iter()
        .flat_map(|m| if *m == Mode::All { vec![Mode::Raw, Mode::Sdk, Mode::Daemon] } else { vec![*m] })
        .collect();
    if baseline && out.contains(&Mode::Daemon) {
        out.push(Mode::DaemonBaseline);
    }
    out.sort();
    out.dedup();
    out
}

/// Lifts the open-file limit to its hard limit: 1,000 terminals take several descriptors each
/// (and the daemon, a child, inherits the limit).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn run(args: &Args) -> Result<bool, String> {
    raise_fd_limit();
    let modes = expand(&args.mode, args.baseline_daemon_bin.is_some());
    let daemon_bin = args.daemon_bin.clone().unwrap_or_else(daemon::default_binary);
    if (modes.contains(&Mode::Daemon) || args.card_wait_ms.is_some() || args.idle_only.is_some())
        && !daemon_bin.is_file()
    {
        return Err(format!(
            "{} not found: build it (`cargo build --release -p nami-httpd`) or give --daemon-bin",
            daemon_bin.display()
        ));
    }
    if let Some(baseline) = args.baseline_daemon_bin.as_ref().filter(|b| !b.is_file()) {
        return Err(format!("--baseline-daemon-bin {} not found", baseline.display()));
    }
    let sizes = if args.sweep.is_empty() { vec![args.terminals] } else { args.sweep.clone() };
    let mut txns = args.txn.clone();
    txns.dedup();
    let load_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut runs = Vec::new();
    let mut card_waits = Vec::new();
    let mut idle_runs = Vec::new();
    let mut all_ok = true;
    if let Some(runs) = args.idle_only {
        let wrapper: Vec<String> =
            args.daemon_wrapper.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
        let binaries: Vec<&std::path::Path> =
            args.baseline_daemon_bin.iter().map(PathBuf::as_path).chain([daemon_bin.as_path()]).collect();
        idle_runs = idle::run(&binaries, runs.max(1), &args.daemon_log, &wrapper)?;
        idle::print(&idle_runs);
    }
    for &terminals in sizes.iter().filter(|_| args.idle_only.is_none()) {
        if let Some(delay_ms) = args.card_wait_ms {
            for figures in run_card_wait(args, terminals, Duration::from_millis(delay_ms), &daemon_bin)? {
                print_card_wait(&figures);
                all_ok &= figures.errors == 0 && figures.answered == terminals as u64;
                card_waits.push(figures);
            }
            continue;
        }
        let run = run_size(args, terminals, &modes, &txns, &daemon_bin)?;
        print_run(&run);
        all_ok &= run.results.iter().all(|r| r.summary.errors == 0);
        runs.push(run);
    }
    let report = Report {
        machine: Machine {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            cpu_model: cpu_model(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            load_average_at_start: load_start.trim().to_owned(),
            load_average_at_end: std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned(),
        },
        rounds: args.rounds,
        daemon_log: args.daemon_log.clone(),
        runs,
        card_wait: card_waits,
        idle: idle_runs,
    };
    println!(
        "machine: {} CPUs, {}; load average at start {} / at end {}",
        report.machine.cpus,
        report.machine.cpu_model,
        report.machine.load_average_at_start,
        report.machine.load_average_at_end
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    if let Some(path) = &args.plot {
        let points: Vec<plot::Point> = report
            .runs
            .iter()
            .flat_map(|run| {
                run.results.iter().map(|r| plot::Point {
                    terminals: run.terminals,
                    mode: r.mode.label(),
                    txn: r.txn.label(),
                    p50_us: r.summary.p50_us,
                    p99_us: r.summary.p99_us,
                })
            })
            .collect();
        plot::draw(&points, path, args.font.as_deref()).map_err(|e| format!("plot {}: {e}", path.display()))?;
        println!("plot written to {}", path.display());
    }
    Ok(all_ok)
}

/// The card-wait scenario at one number of terminals, for the baseline daemon (if any), then
/// the daemon, each started fresh against the same simulators.
fn run_card_wait(
    args: &Args,
    terminals: usize,
    delay: Duration,
    daemon_bin: &std::path::Path,
) -> Result<Vec<card_wait::CardWait>, String> {
    eprintln!("nami-bench: card wait, {terminals} terminal(s), each purchase answered after {delay:?}");
    let sims = Arc::new(workload::start_terminals(terminals).map_err(|e| format!("starting simulators: {e}"))?);
    let wrapper: Vec<String> =
        args.daemon_wrapper.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let mut figures = Vec::new();
    for binary in args.baseline_daemon_bin.iter().map(PathBuf::as_path).chain([daemon_bin]) {
        let daemon =
            Daemon::start(binary, &args.daemon_log, &wrapper).map_err(|e| format!("starting nami-httpd: {e}"))?;
        let result = card_wait::run(&binary.display().to_string(), &sims, delay, daemon.addr, daemon.pid())
            .map_err(|e| format!("card wait: {e}"));
        daemon.stop();
        figures.push(result?);
    }
    workload::stop_terminals(&sims);
    Ok(figures)
}

fn print_card_wait(figures: &card_wait::CardWait) {
    println!();
    println!("== card wait: {} terminal(s), each answered after {} ms ==", figures.terminals, figures.delay_ms);
    println!(
        "{}: {} answered, {} errors in {:.2} s; before: RSS {:.1} MB, {} threads; during the wait: peak RSS {:.1} MB, peak {} threads (limit {})",
        figures.binary,
        figures.answered,
        figures.errors,
        figures.wall_secs,
        figures.before.rss_kib as f64 / 1024.0,
        figures.before.threads,
        figures.peak_rss_during_wait_kib as f64 / 1024.0,
        figures.peak_threads_during_wait,
        figures.thread_limit,
    );
    for example in &figures.error_examples {
        println!("    error: {example}");
    }
}

/// One mode and transaction type, all rounds together: the samples, the wall time, and the
/// daemon's CPU time and (voluntary, involuntary) context switches.
#[derive(Default)]
struct Pooled {
    samples: Samples,
    wall: Duration,
    daemon_cpu: Duration,
    daemon_switches: (u64, u64),
}

/// A daemon under test and what was sampled while it worked.
struct Measured {
    daemon: Daemon,
    binary: PathBuf,
    idle: Memory,
    peaks: Arc<daemon::Peaks>,
}

impl Measured {
    fn figures(self) -> DaemonFigures {
        std::thread::sleep(Duration::from_millis(200));
        let d = self.daemon;
        let figures = DaemonFigures {
            binary: self.binary.display().to_string(),
            ready_line_ms: d.ready_line.as_secs_f64() * 1000.0,
            ready_health_ms: d.ready_health.as_secs_f64() * 1000.0,
            idle: self.idle,
            peak_rss_under_load_kib: self.peaks.rss_kib.load(Ordering::Relaxed),
            peak_threads_under_load: self.peaks.threads.load(Ordering::Relaxed),
            after_load: d.memory(),
        };
        d.stop();
        figures
    }
}

fn run_size(
    args: &Args,
    terminals: usize,
    modes: &[Mode],
    txns: &[Txn],
    daemon_bin: &std::path::Path,
) -> Result<Run, String> {
    let transactions = match args.total {
        Some(total) => total.div_ceil(terminals.max(1)).max(10),
        None => args.transactions,
    };
    eprintln!("nami-bench: {terminals} terminal(s), {transactions} transaction(s) each per mode and type");
    let sims = Arc::new(workload::start_terminals(terminals).map_err(|e| format!("starting simulators: {e}"))?);
    let wrapper: Vec<String> =
        args.daemon_wrapper.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let mut daemons: BTreeMap<Mode, Measured> = BTreeMap::new();
    for (mode, binary) in
        [(Mode::Daemon, Some(daemon_bin)), (Mode::DaemonBaseline, args.baseline_daemon_bin.as_deref())]
    {
        let Some(binary) = binary.filter(|_| modes.contains(&mode)) else { continue };
        let daemon =
            Daemon::start(binary, &args.daemon_log, &wrapper).map_err(|e| format!("starting nami-httpd: {e}"))?;
        std::thread::sleep(Duration::from_millis(300));
        let idle = daemon.memory();
        daemons.insert(mode, Measured { daemon, binary: binary.to_owned(), idle, peaks: Arc::default() });
    }
    let mut pooled: BTreeMap<(Txn, Mode), Pooled> = BTreeMap::new();
    for _round in 0..args.rounds.max(1) {
        for &mode in modes {
            for &txn in txns {
                let measured = daemons.get(&mode);
                // Memory is sampled while the daemon works.
                let sampler = measured.map(|m| daemon::Sampler::start(m.daemon.pid(), m.peaks.clone()));
                let pid = measured.map(|m| m.daemon.pid());
                let at_start = std::sync::Mutex::new((Duration::ZERO, (0, 0)));
                let on_start = || {
                    if let Some(pid) = pid {
                        *at_start.lock().unwrap() = (daemon::cpu_time_of(pid), daemon::context_switches_of(pid));
                    }
                };
                let started = Instant::now();
                let (samples, wall) =
                    modes::run_phase(mode, &sims, txn, transactions, measured.map(|m| m.daemon.addr), &on_start)
                        .map_err(|e| format!("{} phase: {e}", mode.label()))?;
                let (cpu_start, switches_start) = *at_start.lock().unwrap();
                let cpu = pid.map(|pid| daemon::cpu_time_of(pid).saturating_sub(cpu_start));
                let switches = pid.map(|pid| {
                    let now = daemon::context_switches_of(pid);
                    (now.0.saturating_sub(switches_start.0), now.1.saturating_sub(switches_start.1))
                });
                if let Some(sampler) = sampler {
                    sampler.stop();
                }
                eprintln!(
                    "  {:<6} {:<12} {:>8} ok {:>4} errors in {:.2} s",
                    mode.label(),
                    txn.label(),
                    samples.latencies_ns.len(),
                    samples.errors,
                    started.elapsed().as_secs_f64()
                );
                let entry = pooled.entry((txn, mode)).or_default();
                entry.samples.merge(samples);
                entry.wall += wall;
                entry.daemon_cpu += cpu.unwrap_or_default();
                let switches = switches.unwrap_or_default();
                entry.daemon_switches = (entry.daemon_switches.0 + switches.0, entry.daemon_switches.1 + switches.1);
            }
        }
    }
    let daemon_figures = daemons.remove(&Mode::Daemon).map(Measured::figures);
    let baseline_figures = daemons.remove(&Mode::DaemonBaseline).map(Measured::figures);
    workload::stop_terminals(&sims);
    // Per 1,000 measured transactions: CPU ms, voluntary and involuntary context switches.
    let per_1000: BTreeMap<(Txn, Mode), (f64, f64, f64)> = pooled
        .iter()
        .filter(|((_, mode), _)| matches!(mode, Mode::Daemon | Mode::DaemonBaseline))
        .map(|(key, p)| {
            let thousands = (p.samples.latencies_ns.len() as f64).max(1.0) / 1000.0;
            let cpu_ms = p.daemon_cpu.as_secs_f64() * 1000.0;
            let (voluntary, involuntary) = p.daemon_switches;
            (*key, (cpu_ms / thousands, voluntary as f64 / thousands, involuntary as f64 / thousands))
        })
        .collect();
    let summaries: BTreeMap<(Txn, Mode), Summary> =
        pooled.into_iter().map(|(key, p)| (key, Summary::of(p.samples, p.wall))).collect();
    let results = summaries
        .iter()
        .map(|(&(txn, mode), summary)| {
            let raw = summaries.get(&(txn, Mode::Raw)).filter(|_| mode != Mode::Raw);
            ModeResult {
                mode,
                txn,
                summary: summary.clone(),
                p50_ratio_to_raw: raw.map(|r| summary.p50_us / r.p50_us),
                p99_ratio_to_raw: raw.map(|r| summary.p99_us / r.p99_us),
                p50_added_us: raw.map(|r| summary.p50_us - r.p50_us),
                p99_added_us: raw.map(|r| summary.p99_us - r.p99_us),
                daemon_cpu_ms_per_1000_tx: per_1000.get(&(txn, mode)).map(|p| p.0),
                daemon_voluntary_switches_per_1000_tx: per_1000.get(&(txn, mode)).map(|p| p.1),
                daemon_involuntary_switches_per_1000_tx: per_1000.get(&(txn, mode)).map(|p| p.2),
            }
        })
        .collect();
    Ok(Run {
        terminals,
        transactions_per_terminal: transactions,
        results,
        daemon: daemon_figures,
        baseline_daemon: baseline_figures,
    })
}

fn print_run(run: &Run) {
    println!();
    println!("== {} terminal(s) x {} transactions ==", run.terminals, run.transactions_per_terminal);
    println!(
        "{:<12} {:<15} {:>9} {:>10} {:>9} {:>9} {:>9} {:>6} {:>8} {:>8} {:>10} {:>10} {:>10}",
        "txn",
        "mode",
        "done",
        "tx/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "p50/raw",
        "p99/raw",
        "+p99 ms",
        "cpu ms/1k",
        "vcsw/1k"
    );
    let ratio = |r: Option<f64>| r.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into());
    for r in &run.results {
        let s = &r.summary;
        println!(
            "{:<12} {:<15} {:>9} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>6} {:>8} {:>8} {:>10} {:>10} {:>10}",
            r.txn.label(),
            r.mode.label(),
            s.transactions,
            s.throughput_per_sec,
            s.p50_us / 1000.0,
            s.p99_us / 1000.0,
            s.max_us / 1000.0,
            s.errors,
            ratio(r.p50_ratio_to_raw),
            ratio(r.p99_ratio_to_raw),
            r.p99_added_us.map(|a| format!("{:.3}", a / 1000.0)).unwrap_or_else(|| "-".into()),
            r.daemon_cpu_ms_per_1000_tx.map(|c| format!("{c:.0}")).unwrap_or_else(|| "-".into()),
            r.daemon_voluntary_switches_per_1000_tx.map(|c| format!("{c:.0}")).unwrap_or_else(|| "-".into()),
        );
        for example in &s.error_examples {
            println!("    error: {example}");
        }
    }
    for (label, d) in [("daemon", &run.daemon), ("daemon-baseline", &run.baseline_daemon)] {
        let Some(d) = d else { continue };
        println!(
            "{label} ({}): ready in {:.1} ms (listening line) / {:.1} ms (health answered); RSS idle {:.1} MB, peak under load {:.1} MB ({} threads), after load {:.1} MB (VmHWM {:.1} MB)",
            d.binary,
            d.ready_line_ms,
            d.ready_health_ms,
            d.idle.rss_kib as f64 / 1024.0,
            d.peak_rss_under_load_kib as f64 / 1024.0,
            d.peak_threads_under_load,
            d.after_load.rss_kib as f64 / 1024.0,
            d.after_load.hwm_kib as f64 / 1024.0,
        );
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".into())
}
