//! The `nami-httpd` binary: reads the configuration (file, `NAMI_*` environment, flags), starts
//! the daemon, prints `listening on http://127.0.0.1:9099` once it serves, and stops gracefully
//! on SIGTERM or Ctrl-C (exit 0). On Windows, `nami-httpd service install|uninstall|run`.

use std::process::ExitCode;

use clap::Parser;
use nami_httpd::config::{Cli, Command, Config, RunArgs};

#[cfg(windows)]
mod windows_service_main;

/// The allocator: mimalloc. The daemon's calls wait for their terminals on a few tokio threads
/// (no thread per call in flight), and mimalloc gives each thread its own heap without a lock
/// while returning freed pages to the system: it scales with cores where glibc's single arena
/// (the previous setting, for the soak's RSS) put every allocation of every thread behind one
/// lock. Built without transparent huge pages (`no_thp`): with them its regions were backed by
/// 2 MiB pages, and 1,000 waiting purchases peaked at 99 MB instead of 57 MB (BENCHMARKS.md, "Card
/// wait"). mimalloc's `MIMALLOC_*` environment variables tune it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    return_freed_memory_at_once();
    one_arena_for_c_allocations();
    let cli = Cli::parse();
    match cli.command {
        None => run(&cli.run, shutdown_signal, LogTarget::Stderr),
        Some(Command::Service(command)) => service(command, cli.run),
    }
}

/// mimalloc keeps freed pages for `purge_delay` (10 ms by default) before it returns them to the
/// system, and under the soak's steady load that kept its resident size growing after warm-up
/// (+9.3 % in the last minute; 31.3 MB after warm-up): purged at once, it stays lower and level
/// (RELIABILITY.md, session 4). `MIMALLOC_PURGE_DELAY` set by the operator wins.
fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, which it reads when it next purges.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}

/// Rust's allocations go to mimalloc, but the bundled SQLite (the journal, the state file)
/// allocates with the C library's malloc, and glibc gives each thread that calls it an arena of
/// its own: the blocking pool's threads each kept one (12 arenas, 1.2 MB during the card wait,
/// 0.3 MB idle). SQLite's allocations are few, and at most three threads make them at once (the
/// journal's writer thread, its read connection's and the state file's, each behind its lock), so
/// one arena costs little contention. `MALLOC_ARENA_MAX` set by the operator wins.
fn one_arena_for_c_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt changes a malloc setting; called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// `mi_option_purge_delay`: its place in mimalloc's `mi_option_t` (`mimalloc.h`, the same in
/// versions 2 and 3); the Rust bindings name no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(windows)]
fn service(command: nami_httpd::config::ServiceCommand, args: RunArgs) -> ExitCode {
    match windows_service_main::main(command, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nami-httpd: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(windows))]
fn service(_: nami_httpd::config::ServiceCommand, _: RunArgs) -> ExitCode {
    eprintln!(
        "nami-httpd: `service` is for Windows; elsewhere run nami-httpd under your service manager \
         (systemd, launchd): it stops cleanly on SIGTERM"
    );
    ExitCode::from(2)
}

/// The blocking pool's threads, whatever the number of cores: it runs the COM link's exchanges
/// (one per COM port), the state file's writes (one at a time, under its lock), the journal's
/// reads for a DUPLICATE or REFUND and the short calls (health, cancel, `/transactions`). The
/// journal's writes no longer wait on it (its writer thread answers the tasks), so it need not
/// grow with the cores: it was cores + 8, 24 threads of the 42 a 16-core daemon ran while 1,000
/// cards were waited for.
const BLOCKING_THREADS: usize = 8;

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogTarget {
    Stderr,
    /// `nami-httpd.log` in the state directory (the Windows service has no console).
    #[cfg_attr(not(windows), allow(dead_code))]
    StateDirFile,
}

/// Resolves the configuration and serves until the future `signal()` makes (inside the runtime,
/// before anything is bound) completes.
pub(crate) fn run<F: std::future::Future<Output = ()>>(
    args: &RunArgs,
    signal: impl FnOnce() -> F,
    logs: LogTarget,
) -> ExitCode {
    let config = match Config::resolve(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("nami-httpd: {error}");
            return ExitCode::from(2);
        }
    };
    let log_file = match logs {
        LogTarget::Stderr => None,
        LogTarget::StateDirFile => {
            let _ = std::fs::create_dir_all(&config.state_dir);
            std::fs::OpenOptions::new().create(true).append(true).open(config.state_dir.join("nami-httpd.log")).ok()
        }
    };
    init_tracing(config.log.as_deref(), log_file);
    // A worker thread per core. Calls waiting for a terminal or for the journal's commit hold no
    // thread (the SDK's tokio driver, the journal's writer); the blocking pool runs the COM link
    // and the other short calls, and is capped so that the daemon's threads stay within
    // 2 x cores + 16 (cores workers, 8 blocking, the main, journal and recovery threads).
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(BLOCKING_THREADS).build() {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("nami-httpd: cannot start the async runtime: {error}");
                return ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(async {
        let signal = signal();
        nami_httpd::serve(config, signal).await
    });
    // Blocking threads still waiting on a terminal must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nami-httpd: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries the readiness lines). `--log` / `NAMI_LOG` / the file win;
/// else `RUST_LOG`; else `info`.
fn init_tracing(filter: Option<&str>, file: Option<std::fs::File>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(text) => EnvFilter::try_new(text).unwrap_or_else(|error| {
            eprintln!("nami-httpd: bad log filter {text:?} ({error}); using info");
            EnvFilter::new("info")
        }),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match file {
        Some(file) => builder.with_writer(std::sync::Mutex::new(file)).with_ansi(false).try_init(),
        None => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_writer(std::io::stderr).with_ansi(ansi).try_init()
        }
    };
}

/// SIGTERM or Ctrl-C (SIGINT; on Windows Ctrl-C, Ctrl-Break, closing the console). The handlers
/// are installed when this is called, before the daemon binds, so a signal that comes right after
/// the readiness line is never missed.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                _ => {
                    tracing::warn!("cannot install the signal handlers; stop with SIGKILL");
                    std::future::pending::<()>().await
                }
            }
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
        let handlers = (ctrl_c(), ctrl_break(), ctrl_close());
        async move {
            match handlers {
                (Ok(mut c), Ok(mut brk), Ok(mut close)) => {
                    tokio::select! {
                        _ = c.recv() => {}
                        _ = brk.recv() => {}
                        _ = close.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
}
