//! `nami`: the command-line tool of the Nami SDK.
//!
//! Each subcommand lives in its own module and returns an [`Output`] (what goes to stdout and its
//! exit status) or a [`CliError`]; `main` alone writes to stdout/stderr and exits, so subcommands
//! stay testable and the exit-status rules live in one place.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod frame;
mod terminal;

/// Drive Nami (mada) payment terminals and inspect their wire frames.
#[derive(Debug, Parser)]
#[command(name = "nami", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    link: terminal::LinkArgs,
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand. Terminal subcommands take the global `--tcp`/`--serial` and
/// `--json` options.
#[derive(Debug, Subcommand)]
enum Command {
    /// Encode a request frame, or decode any frame, without talking to a terminal.
    Frame(frame::FrameArgs),
    /// List the serial ports that are really there (phantom ports left out).
    Ports,
    #[command(flatten)]
    Terminal(terminal::TerminalCommand),
}

/// What a subcommand prints on stdout and the exit status that goes with it: a terminal's answer
/// is printed the same way whether it approves (0) or not (3, see `terminal::DECLINED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub text: String,
    pub status: u8,
}

impl Output {
    pub fn success(text: String) -> Self {
        Self { text, status: 0 }
    }
}

/// Why a subcommand failed, and which exit status says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub status: u8,
    pub message: String,
}

impl CliError {
    /// Exit status for input the tool cannot use (the same status clap uses for usage errors).
    pub const BAD_INPUT: u8 = 2;

    /// The caller's input is wrong: a bad value, a bad frame, a missing option.
    pub fn bad_input(message: impl std::fmt::Display) -> Self {
        Self { status: Self::BAD_INPUT, message: message.to_string() }
    }
}

fn main() -> ExitCode {
    // Diagnostics (e.g. the decoder's "bytes before STX skipped") go to stderr and only when
    // RUST_LOG asks for them, so stdout stays pure output for scripts.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();

    let cli = Cli::parse();
    let result = match cli.command {
        Command::Frame(args) => frame::run(args).map(Output::success),
        Command::Ports => terminal::ports(cli.link.json).map(Output::success),
        Command::Terminal(command) => terminal::run(&cli.link, &command),
    };
    match result {
        Ok(output) => {
            // A closed stdout (e.g. `nami frame decode … | head -c1`) is not an error of the
            // input; ignore it rather than panic as `println!` would.
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", output.text).and_then(|()| stdout.flush());
            ExitCode::from(output.status)
        }
        Err(error) => {
            // One line, so scripts can show it as is and tests can match it.
            let message = error.message.replace(['\r', '\n'], " ");
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::from(error.status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
