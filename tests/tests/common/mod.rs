//! Shared helpers of the end-to-end tests: a simulator, a terminal with short deadlines, unique
//! ECR references.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nami_sdk::{CashRegisterNo, EcrReference, Terminal, TerminalConfig};
use nami_sim::{SimConfig, Simulator};

pub use nami_test_kit::CASH_REGISTER;

pub fn cash_register() -> CashRegisterNo {
    CashRegisterNo::parse(CASH_REGISTER).unwrap()
}

/// A fresh ECR reference for every call in the test binary.
pub fn ecr() -> EcrReference {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    EcrReference::from_parts(&cash_register(), NEXT.fetch_add(1, Ordering::SeqCst)).unwrap()
}

pub fn sim() -> Simulator {
    Simulator::start(SimConfig::default()).expect("simulator starts")
}

/// Deadlines short enough for tests, long enough for a loaded 2-core machine.
pub fn fast_config() -> TerminalConfig {
    TerminalConfig {
        card_present_timeout: Duration::from_secs(10),
        settlement_timeout: Duration::from_secs(10),
        admin_timeout: Duration::from_secs(10),
        serial_poll: Duration::from_millis(50),
        ..TerminalConfig::default()
    }
}

pub fn tcp_terminal(sim: &Simulator, config: TerminalConfig) -> Terminal {
    Terminal::tcp("127.0.0.1", sim.addr().port(), config)
}

/// Waits until `condition` holds, up to `limit`.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}
