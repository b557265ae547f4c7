//! The `nami-httpd` binary: reads the configuration (file, `NAMI_*` environment, flags), starts
//! the daemon, prints `listening on http://127.0.0.1:9099` once it serves, and stops gracefully
//! on SIGTERM or Ctrl-C (exit 0). On Windows, `nami-httpd service install|uninstall|run`.

use std::process::ExitCode;

use clap::Parser;
use nami_httpd::config::{Cli, Command, Config, RunArgs};

#[cfg(windows)]
mod windows_service_main;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => run(&cli.run, shutdown_signal(), LogTarget::Stderr),
        Some(Command::Service(command)) => service(command, cli.run),
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

/// Resolves the configuration and serves until `signal`.
pub(crate) fn run(args: &RunArgs, signal: impl std::future::Future<Output = ()>, logs: LogTarget) -> ExitCode {
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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("nami-httpd: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(nami_httpd::serve(config, signal));
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

/// SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
