//! Interfaces the application implements: `EventListener` (state changes, for cashier screens)
//! and `LogSink` (the library's log lines), with the tracing layer that feeds the sink.
//!
//! Both are called on the library's threads (the thread of the call that caused the event, or the
//! middleware's recovery thread); keep them short. What they raise is ignored.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

use super::error::CallbackError;

/// Receives state changes of a terminal or of the middleware.
///
/// `terminal` is the terminal's key (`ip:port`, a serial port path, or `COM` in the middleware);
/// `event_json` the event as a JSON object with an `event` tag and the terminal, e.g.
/// `{"event":"waitingForCard","terminal":"127.0.0.1:2345"}`,
/// `{"event":"responseReceived","responseCode":"000","approved":true,"terminal":...}`, and from the
/// middleware also `{"event":"outcomeResolved","ecrReferenceNo":...,"state":"approved",...}`.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    fn on_event(&self, terminal: String, event_json: String) -> Result<(), CallbackError>;
}

/// Delivers one event, ignoring what the listener raises (a failing screen never breaks a payment).
pub(crate) fn deliver(listener: &dyn EventListener, terminal: &str, event_json: String) {
    let _ = listener.on_event(terminal.to_owned(), event_json);
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    /// Every frame sent and received, in hex (card numbers masked).
    Trace = 5,
}

impl LogLevel {
    fn of(level: &Level) -> Self {
        match *level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// Receives the library's log lines: the level, the target (the Rust module, e.g.
/// `nami_sdk::session::terminal`) and the message with its fields (`... terminal=127.0.0.1:2345`).
/// Card numbers are masked by the SDK before anything is logged.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    fn log(&self, level: LogLevel, target: String, message: String) -> Result<(), CallbackError>;
}

/// The installed sink, and the most verbose level it gets (0: none).
static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
/// Whether the process-wide subscriber carrying [`SinkLayer`] is installed.
static INSTALLED: OnceLock<bool> = OnceLock::new();

thread_local! {
    /// Set while a sink runs on this thread, so that what it logs itself is not fed back to it.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Sends the library's log lines at `level` and above to `sink` (`None` stops them). Returns
/// whether the sink is in place: false when something else in the process installed the global
/// `tracing` subscriber first (for example the C ABI's `logLevel` option), in which case the
/// lines go there instead. May be called again to change the sink or the level.
#[uniffi::export(default(level = None))]
pub fn set_log_sink(sink: Option<Arc<dyn LogSink>>, level: Option<LogLevel>) -> bool {
    let level = if sink.is_some() { level.unwrap_or(LogLevel::Info) as u8 } else { 0 };
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = sink;
    MAX_LEVEL.store(level, Ordering::SeqCst);
    *INSTALLED
        .get_or_init(|| tracing::subscriber::set_global_default(tracing_subscriber::registry().with(SinkLayer)).is_ok())
}

/// A `tracing` layer that hands each event to the installed [`LogSink`].
struct SinkLayer;

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level can change at any time: ask `enabled` at every event.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        (LogLevel::of(metadata.level()) as u8) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if IN_SINK.with(Cell::get) {
            return;
        }
        let Some(sink) = SINK.read().unwrap_or_else(|p| p.into_inner()).clone() else { return };
        let mut text = Text::default();
        event.record(&mut text);
        let metadata = event.metadata();
        IN_SINK.with(|flag| flag.set(true));
        let _ = sink.log(LogLevel::of(metadata.level()), metadata.target().to_owned(), text.finish());
        IN_SINK.with(|flag| flag.set(false));
    }
}

/// The message of an event followed by its other fields as ` name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(mut self) -> String {
        self.message.push_str(&self.fields);
        self.message
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Lines(Mutex<Vec<(LogLevel, String, String)>>);

    impl LogSink for Lines {
        fn log(&self, level: LogLevel, target: String, message: String) -> Result<(), CallbackError> {
            self.0.lock().unwrap().push((level, target, message));
            Ok(())
        }
    }

    #[test]
    fn the_sink_gets_lines_at_its_level_and_above_with_their_fields() {
        let lines = Arc::new(Lines::default());
        assert!(set_log_sink(Some(lines.clone()), Some(LogLevel::Info)));
        tracing::info!(terminal = "127.0.0.1:1", "hello");
        tracing::debug!("too verbose");
        set_log_sink(Some(lines.clone()), Some(LogLevel::Debug));
        tracing::debug!(count = 2, "now shown");
        set_log_sink(None, None);
        tracing::error!("nobody listens");
        let seen = lines.0.lock().unwrap().clone();
        let mine: Vec<_> = seen.iter().filter(|(_, target, _)| target.starts_with("nami::")).collect();
        assert_eq!(mine.len(), 2, "{seen:?}");
        assert_eq!(mine[0].0, LogLevel::Info);
        assert_eq!(mine[0].2, "hello terminal=127.0.0.1:1");
        assert_eq!(mine[1].2, "now shown count=2");
    }
}
