//! The threads that run the service's calls. A call blocks its thread for as long as the terminal
//! takes (a purchase waits for the card, up to minutes), so every call in flight needs a thread of
//! its own, and a call must never queue behind others (a cancel would wait for the purchase it
//! cancels).
//!
//! Tokio's blocking pool starts a thread whenever no thread is idle at the very moment a call
//! arrives; a thread that has just finished a call but not yet gone back to waiting does not
//! count. Under CPU contention the soak measured that race adding threads beyond the calls in
//! flight (40 → 47 with 32 clients), each with its stack and allocator cache kept resident for as
//! long as the pool stays busy. Here a call that finds no idle thread gives the running ones
//! [`SPAWN_GRACE`] to come back before a thread is started for it: the thread count follows the
//! calls in flight, and a call still starts within milliseconds when every thread is busy.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a call waits for a thread that is finishing another call before a new thread is
/// started for it. Small against the cancel promise (300 ms) and a terminal's answer; large
/// against the microseconds a thread needs to pick up the next call when it is not descheduled.
pub const SPAWN_GRACE: Duration = Duration::from_millis(10);

/// Idle threads above the calls in flight end after this long.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// More threads than this and calls queue (a limit on runaway clients, far above any counter).
const MAX_THREADS: usize = 4096;

type Job = Box<dyn FnOnce() + Send>;

/// A call panicked (the pool and the other calls go on), or the daemon stopped before it ran.
#[derive(Debug, thiserror::Error)]
#[error("the call panicked or was dropped")]
pub struct CallFailed;

/// The pool. Dropping it lets its threads end once the calls they run return.
pub struct CallPool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Idle threads wait here for a call.
    work: Condvar,
    /// The thread that starts threads waits here for a call no idle thread took.
    unserved: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads waiting for a call.
    idle: usize,
    /// Idle threads woken for a call and not yet awake.
    woken: usize,
    /// Threads started and not yet running.
    starting: usize,
    threads: usize,
    /// The pool was dropped: threads end when idle, the starter at once.
    closed: bool,
    /// The starter thread could not be started: a call that finds no idle thread starts one.
    no_starter: bool,
}

impl State {
    /// Calls that no thread is on its way to take.
    fn unserved(&self) -> usize {
        self.queue.len().saturating_sub(self.woken + self.starting)
    }
}

impl CallPool {
    pub fn new() -> CallPool {
        let shared = Arc::new(Shared { state: Mutex::default(), work: Condvar::new(), unserved: Condvar::new() });
        let starter = shared.clone();
        if let Err(error) =
            std::thread::Builder::new().name("nami-call-starter".into()).spawn(move || starter.start_threads())
        {
            // Without it calls still run: each one that finds no idle thread starts one at once.
            tracing::error!(%error, "could not start the call pool's starter thread");
            lock(&shared.state).no_starter = true;
        }
        CallPool { shared }
    }

    /// Runs `call` on a pool thread and returns its result.
    pub async fn run<R: Send + 'static>(&self, call: impl FnOnce() -> R + Send + 'static) -> Result<R, CallFailed> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            let _ = reply.send(catch_unwind(AssertUnwindSafe(call)));
        }));
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            _ => Err(CallFailed),
        }
    }

    /// Threads now (idle or running a call).
    pub fn threads(&self) -> usize {
        lock(&self.shared.state).threads
    }

    fn submit(&self, job: Job) {
        let mut state = lock(&self.shared.state);
        state.queue.push_back(job);
        if state.idle > state.woken {
            state.woken += 1;
            self.shared.work.notify_one();
        } else if state.no_starter {
            drop(state);
            Shared::start_thread(&self.shared, 1);
        } else {
            self.shared.unserved.notify_one();
        }
    }
}

impl Default for CallPool {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CallPool {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.work.notify_all();
        self.shared.unserved.notify_all();
    }
}

impl Shared {
    /// The starter: for calls no thread took within the grace, starts one thread each.
    fn start_threads(self: Arc<Self>) {
        let mut state = lock(&self.state);
        loop {
            while !state.closed && state.unserved() == 0 {
                state = self.unserved.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.closed {
                return;
            }
            drop(state);
            std::thread::sleep(SPAWN_GRACE);
            state = lock(&self.state);
            let wanted = state.unserved().min(MAX_THREADS.saturating_sub(state.threads + state.starting));
            if wanted > 0 {
                drop(state);
                Self::start_thread(&self, wanted);
                state = lock(&self.state);
            }
        }
    }

    fn start_thread(shared: &Arc<Self>, count: usize) {
        for _ in 0..count {
            lock(&shared.state).starting += 1;
            let worker = shared.clone();
            if let Err(error) = std::thread::Builder::new().name("nami-call".into()).spawn(move || worker.run_calls()) {
                tracing::error!(%error, "could not start a thread for a call; it waits for a running one");
                lock(&shared.state).starting -= 1;
                return;
            }
        }
    }

    /// A pool thread: runs calls until none came for [`KEEP_ALIVE`] or the pool is gone.
    fn run_calls(self: Arc<Self>) {
        let mut state = lock(&self.state);
        state.starting -= 1;
        state.threads += 1;
        loop {
            while let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = lock(&self.state);
            }
            if state.closed {
                break;
            }
            state.idle += 1;
            let mut timed_out = false;
            while state.woken == 0 && !state.closed && !timed_out {
                let (guard, wait) = self.work.wait_timeout(state, KEEP_ALIVE).unwrap_or_else(|p| p.into_inner());
                state = guard;
                timed_out = wait.timed_out();
            }
            state.idle -= 1;
            if state.woken > 0 {
                state.woken -= 1;
            } else if state.queue.is_empty() {
                break; // idle for KEEP_ALIVE, or the pool is gone
            }
        }
        state.threads -= 1;
    }
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_that_block_each_get_a_thread_and_none_waits_for_another() {
        let pool = Arc::new(CallPool::new());
        let calls = 16;
        // Every call blocks until all of them run at once: only possible with a thread each.
        let all_running = Arc::new(Barrier::new(calls));
        let started = Instant::now();
        let mut handles = Vec::new();
        for n in 0..calls {
            let (pool, all_running) = (pool.clone(), all_running.clone());
            handles.push(tokio::spawn(async move {
                pool.run(move || {
                    all_running.wait();
                    n * 2
                })
                .await
            }));
        }
        for (n, handle) in handles.into_iter().enumerate() {
            // Were a call queued behind the others, none would ever return: fail instead of hanging.
            let result = tokio::time::timeout(Duration::from_secs(10), handle).await.expect("a call never ran");
            assert_eq!(result.unwrap().unwrap(), n * 2);
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(pool.threads(), calls);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancel_arriving_while_every_thread_waits_for_a_card_runs_at_once() {
        let pool = Arc::new(CallPool::new());
        let (card, tapped) = std::sync::mpsc::channel::<()>();
        let tapped = Arc::new(Mutex::new(tapped));
        let purchases: Vec<_> = (0..4)
            .map(|_| {
                let (pool, tapped) = (pool.clone(), tapped.clone());
                tokio::spawn(async move { pool.run(move || tapped.lock().unwrap().recv().is_ok()).await })
            })
            .collect();
        while pool.threads() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let asked = Instant::now();
        let ran = tokio::time::timeout(Duration::from_secs(5), pool.run(|| ())).await;
        let waited = asked.elapsed();
        drop(card);
        assert!(matches!(ran, Ok(Ok(()))), "the cancel did not run: queued behind the purchases");
        for purchase in purchases {
            purchase.await.unwrap().unwrap();
        }
        // The grace and a thread start; the SDK's cancel promise is 300 ms in all.
        assert!(waited < Duration::from_millis(150), "the cancel waited {waited:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_one_after_another_reuse_one_thread() {
        let pool = CallPool::new();
        for n in 0..200 {
            assert_eq!(pool.run(move || n + 1).await.unwrap(), n + 1);
        }
        assert!(pool.threads() <= 2, "{} threads for one call at a time", pool.threads());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_clients_than_threads_needed_do_not_add_threads_beyond_the_calls_in_flight() {
        // 8 clients each sending short calls back to back: at most 8 in flight.
        let pool = Arc::new(CallPool::new());
        let done = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..8 {
            let (pool, done) = (pool.clone(), done.clone());
            clients.push(tokio::spawn(async move {
                for _ in 0..300 {
                    pool.run(|| std::thread::sleep(Duration::from_micros(200))).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for client in clients {
            client.await.unwrap();
        }
        assert_eq!(done.load(Ordering::Relaxed), 2400);
        // A thread descheduled past the grace on a loaded machine may still add one.
        assert!(pool.threads() <= 9, "{} threads for 8 calls in flight", pool.threads());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_call_is_an_error_and_the_pool_goes_on() {
        let pool = CallPool::new();
        assert!(pool.run(|| -> u8 { panic!("boom") }).await.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
