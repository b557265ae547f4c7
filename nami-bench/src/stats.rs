//! Latency samples and their summary: throughput, p50, p99, max, errors.
//!
//! Every sample is kept (one `u64` of nanoseconds per transaction; a million transactions are
//! 8 MB), so percentiles are exact: sort, then index. No histogram buckets to get wrong.

use std::time::Duration;

use serde::Serialize;

/// What one worker (one terminal) measured.
#[derive(Debug, Default)]
pub struct Samples {
    pub latencies_ns: Vec<u64>,
    pub errors: u64,
    /// The first few error messages, for the report.
    pub error_examples: Vec<String>,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Samples { latencies_ns: Vec::with_capacity(n), ..Samples::default() }
    }

    pub fn ok(&mut self, latency: Duration) {
        self.latencies_ns.push(latency.as_nanos() as u64);
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.errors += 1;
        if self.error_examples.len() < 3 {
            self.error_examples.push(message.into());
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.latencies_ns.extend(other.latencies_ns);
        self.errors += other.errors;
        for example in other.error_examples {
            if self.error_examples.len() < 5 {
                self.error_examples.push(example);
            }
        }
    }
}

/// The summary of one mode at one number of terminals.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub transactions: u64,
    pub errors: u64,
    pub error_examples: Vec<String>,
    /// Wall time of the measured phase, all terminals together.
    pub wall_secs: f64,
    pub throughput_per_sec: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Summary {
    pub fn of(mut samples: Samples, wall: Duration) -> Summary {
        let lat = &mut samples.latencies_ns;
        lat.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest sample with at least p of them at or below it.
            let rank = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
            us(lat[rank - 1])
        };
        let done = lat.len() as u64;
        let wall_secs = wall.as_secs_f64();
        Summary {
            transactions: done,
            errors: samples.errors,
            error_examples: samples.error_examples.clone(),
            wall_secs,
            throughput_per_sec: if wall_secs > 0.0 { done as f64 / wall_secs } else { 0.0 },
            mean_us: if done > 0 { lat.iter().map(|n| *n as f64).sum::<f64>() / done as f64 / 1000.0 } else { 0.0 },
            p50_us: pct(0.50),
            p90_us: pct(0.90),
            p99_us: pct(0.99),
            max_us: lat.last().copied().map(us).unwrap_or(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_every_sample() {
        let mut samples = Samples::default();
        for ms in 1..=100u64 {
            samples.ok(Duration::from_micros(ms));
        }
        samples.error("boom");
        let summary = Summary::of(samples, Duration::from_secs(2));
        assert_eq!(summary.transactions, 100);
        assert_eq!(summary.errors, 1);
        assert_eq!((summary.p50_us, summary.p99_us, summary.max_us), (50.0, 99.0, 100.0));
        assert_eq!(summary.throughput_per_sec, 50.0);
    }

    #[test]
    fn an_empty_run_summarises_to_zeros() {
        let summary = Summary::of(Samples::default(), Duration::ZERO);
        assert_eq!((summary.transactions, summary.p50_us, summary.throughput_per_sec), (0, 0.0, 0.0));
    }
}
