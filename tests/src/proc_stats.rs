//! What a process holds, from Linux `/proc`: resident memory, open file descriptors, threads.

/// One sample of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Entries of `/proc/<pid>/fd`.
    pub open_fds: u64,
    /// `Threads` of `/proc/<pid>/status`.
    pub threads: u64,
}

/// The sample of process `pid`, or `None` if it is gone (or this is not Linux).
pub fn sample(pid: u32) -> Option<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcStats { rss_kib: field("VmRSS:")?, open_fds, threads: field("Threads:")? })
}

/// The median of `values` (0 for none).
pub fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_sampled() {
        let stats = sample(std::process::id()).expect("/proc is readable");
        assert!(stats.rss_kib > 0 && stats.open_fds >= 3 && stats.threads >= 1, "{stats:?}");
        assert_eq!(median(&[5, 1, 3]), 3);
    }
}
