//! Shutdown stops every thread the simulator started. Alone in its test binary, so that the
//! process's thread count is the simulator's doing.

mod common;

use std::time::{Duration, Instant};

use common::{Pos, REPLY_TIMEOUT, purchase, start, wait_until};
use nami_sim::{Fault, FaultScope, SimConfig};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn shutdown_stops_every_thread_even_mid_exchange() {
    let before = thread_count();
    let sim = start(SimConfig { card_tap: true, registered: true, ..SimConfig::default() });
    let pty = sim.open_pty().unwrap();
    let _serial = serialport::new(pty.path().to_string_lossy(), 115_200).open().unwrap();
    let mut waiting = Pos::connect(sim.addr());
    let _idle = Pos::connect(sim.addr());
    sim.set_fault(Fault::ByteByByte(Duration::from_millis(50)), FaultScope::Always);
    waiting.send(&purchase(1, 1_000));
    wait_until(REPLY_TIMEOUT, "the card wait", || sim.waiting_for_card());
    sim.set_card_tap(false); // the purchase now replies, slowly, byte by byte
    // Accept, pty, two connections, the exchange (the second connection may still be accepting).
    wait_until(REPLY_TIMEOUT, "the simulator's threads", || thread_count() >= before + 5);

    let started = Instant::now();
    sim.shutdown();
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
    assert_eq!(thread_count(), before, "every simulator thread ended");
}
