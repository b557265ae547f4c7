//! The daemon killed with SIGKILL during purchases and restarted, over 20 kill points (the long
//! run, `scripts/reliability.sh kill-loop`, does 200 and more): nothing a terminal approved is
//! missing from the journal, nothing is charged twice. See `nami_e2e::kill_loop` for how the
//! kill points are placed and what is checked; `service_tcp.rs` has the one-kill version
//! through the library.

use nami_e2e::kill_loop::{KillLoopConfig, run};
use nami_test_kit::daemon::temp_dir;

#[test]
fn sigkill_during_purchases_loses_no_approved_transaction_and_charges_nothing_twice() {
    let dir = temp_dir("nami-kill-loop-");
    let config = KillLoopConfig { kill_points: 20, verbose: true, ..KillLoopConfig::default() };
    let report = run(dir.path(), &config);
    println!("{}", report.summary());
    assert!(report.approved_by_terminals > 0, "some purchases were charged: {}", report.summary());
    assert!(report.missing.is_empty(), "approved by a terminal, not approved in the journal: {:?}", report.missing);
    assert!(report.charged_twice.is_empty(), "charged twice: {:?}", report.charged_twice);
    assert!(report.wrongly_approved.is_empty(), "declined but approved: {:?}", report.wrongly_approved);
    assert!(report.holds(), "{}", report.summary());
}
