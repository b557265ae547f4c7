//! The `nami-httpd` binary: reads the configuration (file, `NAMI_*` environment, flags), starts
//! the daemon, prints `listening on http://127.0.0.1:9099` once it serves, and stops gracefully
//! on SIGTERM or Ctrl-C (exit 0). On Windows, `nami-httpd service install|uninstall|run`.

use std::process::ExitCode;

use clap::Parser;
use nami_httpd::config::{Cli, Command, Config, RunArgs};

#[cfg(windows)]
mod windows_service_main;

fn main() -> ExitCode {
    without_malloc_thread_caches();
    one_malloc_arena();
    let cli = Cli::parse();
    match cli.command {
        None => run(&cli.run, shutdown_signal, LogTarget::Stderr),
        Some(Command::Service(command)) => service(command, cli.run),
    }
}

/// glibc keeps a cache of freed blocks in every thread (up to 7 of each of 64 sizes). A daemon
/// runs a thread per call in flight, and those caches are what kept its resident size creeping up
/// after warm-up in the soak (0.05 to 0.1 MB a minute for 30 minutes as the 37 threads met more
/// sizes) and about 25 MB of its 100 MB at 1,000 terminals (BENCHMARKS.md); without them the soak
/// is flat and 4 MB lower, at the same throughput. glibc reads that setting once, from
/// `GLIBC_TUNABLES`, when the process starts, so the daemon sets it and executes itself again
/// (same process, same arguments) before anything else. A `GLIBC_TUNABLES` that already names
/// `glibc.malloc.tcache_count` (the operator's, or this re-execution's) is left as it is.
fn without_malloc_thread_caches() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        const TUNABLE: &str = "glibc.malloc.tcache_count";
        // Set on the execution again, so that it happens once whatever a glibc does to the
        // variable as it reads it (2.36 cuts it in place).
        const DONE: &str = "NAMI_HTTPD_MALLOC_TUNED";
        let current = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
        let Some(current) = current.to_str() else { return };
        if current.contains(TUNABLE) || std::env::var_os(DONE).is_some() {
            return;
        }
        let tunables = if current.is_empty() { format!("{TUNABLE}=0") } else { format!("{current}:{TUNABLE}=0") };
        let mut args = std::env::args_os();
        // The path, not /proc/self/exe: under valgrind the latter is valgrind's own binary.
        let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
        let mut command = std::process::Command::new(exe);
        if let Some(name) = args.next() {
            command.arg0(name);
        }
        // Returns only if the execution failed: the daemon then runs with the caches.
        let error = command.args(args).env("GLIBC_TUNABLES", tunables).env(DONE, "1").exec();
        eprintln!("nami-httpd: could not restart without malloc's thread caches ({error}); running with them");
    }
}

/// glibc gives threads arenas of their own, up to eight per core. The daemon's requests run on
/// dozens of threads, each allocating short-lived buffers next to SQLite's long-lived pages, and
/// the soak measured the resident size growing 1.1 MB a minute that way while the live heap did
/// not: free memory kept in sixteen arenas. With one arena it is reused (RELIABILITY.md, the soak;
/// throughput unchanged, glibc's per-thread caches take most allocations without the lock).
/// Called first, before any thread starts; `MALLOC_ARENA_MAX` in the environment still wins.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

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
    // The service's calls run on the daemon's own call pool (`blocking.rs`); tokio's blocking
    // pool keeps its defaults for the rest (starting, stopping, the HTTPS switch).
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
