//! `nami-sim`: run the simulated terminal from the command line. See README.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nami_sim::{Fault, FaultScope, LrcMode, SimConfig, Simulator, TerminalId};

#[derive(Debug, Parser)]
#[command(name = "nami-sim", version, about = "A simulated Nami payment terminal (TCP, pty, serial).")]
struct Args {
    /// TCP address to listen on.
    #[arg(long, default_value = "127.0.0.1:8888", env = "NAMI_SIM_LISTEN")]
    listen: SocketAddr,
    /// The 16-digit terminal ID that REGISTER returns and signatures are checked against.
    #[arg(long, default_value = nami_sim::DEFAULT_TERMINAL_ID, value_parser = parse_terminal_id)]
    terminal_id: TerminalId,
    /// Also serve this serial device (opened raw, 8-N-1). Unix only.
    #[arg(long)]
    serial: Option<PathBuf>,
    /// Baud rate of --serial.
    #[arg(long, default_value_t = 115200)]
    baud: u32,
    /// Also serve a new pseudo-terminal; prints `pty: <path>` for the client to open. Unix only.
    #[arg(long)]
    pty: bool,
    /// Address of the HTTP control API (e.g. 127.0.0.1:8889); off when absent.
    #[arg(long)]
    control: Option<SocketAddr>,
    /// LRC of replies: skyband, xor or none.
    #[arg(long, default_value = "skyband", value_parser = parse_lrc)]
    lrc: LrcMode,
    /// Card transactions wait for a tap (POST /tap on the control API).
    #[arg(long)]
    card_tap: bool,
    /// How long a card transaction waits for the tap, in seconds.
    #[arg(long, default_value_t = 120)]
    card_tap_timeout_secs: u64,
    /// Delay before every reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Start registered, as if REGISTER had succeeded.
    #[arg(long)]
    registered: bool,
    /// Card replies carry the whole (test) card number instead of the masked one.
    #[arg(long)]
    full_pan: bool,
    /// A fault applied to every request: never-answer, delay:MS, byte-by-byte:MS, split:N,
    /// two-replies, close-after-request, close-mid-reply, garbage, garbage-only, busy,
    /// decline:CODE. May be given several times.
    #[arg(long = "fault", value_parser = parse_fault)]
    faults: Vec<Fault>,
}

fn parse_terminal_id(text: &str) -> Result<TerminalId, String> {
    TerminalId::parse(text).map_err(|e| e.to_string())
}

fn parse_lrc(text: &str) -> Result<LrcMode, String> {
    text.parse::<LrcMode>().map_err(|e| e.to_string())
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    text.parse::<Fault>().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("nami-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let stop = StopSignals::install()?;
    let config = SimConfig {
        listen: args.listen,
        terminal_id: args.terminal_id,
        lrc: args.lrc,
        control_listen: args.control,
        card_tap: args.card_tap,
        card_tap_timeout: Duration::from_secs(args.card_tap_timeout_secs),
        response_delay: Duration::from_millis(args.delay_ms),
        registered: args.registered,
    };
    let sim = Simulator::start(config).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    sim.set_full_pan(args.full_pan);
    for fault in args.faults {
        sim.set_fault(fault, FaultScope::Always);
    }
    let _serial_side = match serve_serial_side(&sim, &args.serial, args.baud, args.pty) {
        Ok(handles) => handles,
        Err(message) => {
            sim.shutdown();
            return Err(message);
        }
    };
    if let Some(addr) = sim.control_addr() {
        println!("control on http://{addr}");
    }
    println!("listening on {}", sim.addr());
    // The simulator's threads do the work; wait for a stop signal.
    stop.wait()?;
    sim.shutdown();
    Ok(())
}

/// The serial device and the pty, kept open for the life of the process.
#[cfg(unix)]
fn serve_serial_side(
    sim: &Simulator,
    serial: &Option<PathBuf>,
    baud: u32,
    pty: bool,
) -> Result<(Option<nami_sim::SimSerial>, Option<nami_sim::SimPty>), String> {
    let serial = match serial {
        Some(path) => Some(sim.open_serial(path, baud).map_err(|e| format!("cannot open {}: {e}", path.display()))?),
        None => None,
    };
    let pty = if pty {
        let pty = sim.open_pty().map_err(|e| format!("cannot create a pty: {e}"))?;
        println!("pty: {}", pty.path().display());
        Some(pty)
    } else {
        None
    };
    Ok((serial, pty))
}

/// Windows has no pseudo-terminals and the simulator does not drive a COM port: `--pty` and
/// `--serial` are refused rather than ignored, so a test never waits for a port that is not there.
#[cfg(not(unix))]
fn serve_serial_side(_: &Simulator, serial: &Option<PathBuf>, _baud: u32, pty: bool) -> Result<(), String> {
    if pty || serial.is_some() {
        return Err("--pty and --serial are Unix only; on Windows the simulator serves TCP".into());
    }
    Ok(())
}

/// SIGINT and SIGTERM on Unix, Ctrl-C / Ctrl-Break / closing the console on Windows.
#[cfg(unix)]
struct StopSignals(nix::sys::signal::SigSet);

#[cfg(unix)]
impl StopSignals {
    /// SIGINT and SIGTERM are taken synchronously by the main thread in [`StopSignals::wait`], so
    /// that the simulator shuts down cleanly and the pty's temporary directory is removed. They
    /// are blocked before any thread starts: threads inherit the mask, so none of them receives
    /// the signal instead.
    fn install() -> Result<StopSignals, String> {
        use nix::sys::signal::{SigSet, Signal};
        let mut stop_signals = SigSet::empty();
        stop_signals.add(Signal::SIGINT);
        stop_signals.add(Signal::SIGTERM);
        stop_signals.thread_block().map_err(|e| format!("cannot block signals: {e}"))?;
        Ok(StopSignals(stop_signals))
    }

    fn wait(&self) -> Result<(), String> {
        let signal = self.0.wait().map_err(|e| format!("cannot wait for signals: {e}"))?;
        tracing::info!(?signal, "stopping");
        Ok(())
    }
}

#[cfg(windows)]
struct StopSignals(std::sync::mpsc::Receiver<()>);

#[cfg(windows)]
impl StopSignals {
    /// The console control handler (ctrlc) runs on a thread of its own and hands the event to
    /// [`StopSignals::wait`] on the main thread.
    fn install() -> Result<StopSignals, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = tx.send(());
        })
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
        Ok(StopSignals(rx))
    }

    fn wait(&self) -> Result<(), String> {
        self.0.recv().map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
        tracing::info!("stopping (Ctrl-C)");
        Ok(())
    }
}
