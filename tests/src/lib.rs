//! Helpers of the end-to-end and reliability tests (the tests themselves live in `tests/`); the
//! daemon harness (the real `nami-httpd` binary, its HTTP client, card-number scans of logs) is
//! the test kit's (`nami-test-kit`, `test-kit/`), shared with nami-httpd's own tests:
//!
//! - [`kill_loop`]: SIGKILL of the daemon during purchases, restart, and the journal checked
//!   against what the simulated terminals charged;
//! - [`proc_stats`]: RSS, open file descriptors and threads of a process (Linux `/proc`);
//! - [`Rng`]: a small seeded random generator, so that every run can be repeated.
//!
//! The long runs (`scripts/reliability.sh`) use the same helpers through the `reliability`
//! binary (`src/bin/reliability.rs`).

pub mod kill_loop;
pub mod proc_stats;

/// SplitMix64: seeded, reproducible, good enough to pick faults and delays.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
