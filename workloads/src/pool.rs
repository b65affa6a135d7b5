//! A bounded pool of worker threads that run inferences.
//!
//! `/predict` requests wait in a bounded queue when every worker is busy and are refused when
//! the queue is full. Batch jobs (`/enqueue`) are a counter the workers drain when no request
//! waits: interactive requests go first, as in a real serving stack.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::cpu::Burner;
use crate::metrics::Metrics;

/// Upper bound on pending batch jobs, so a runaway `/enqueue` loop cannot grow without limit.
pub const MAX_PENDING_BATCH_JOBS: u64 = 10_000_000;

/// Why the pool did not take work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the request queue is full")]
    QueueFull,
    #[error("the server is shutting down")]
    ShuttingDown,
}

#[derive(Debug, Default)]
struct State {
    requests: VecDeque<oneshot::Sender<()>>,
    pending_batch_jobs: u64,
    /// Workers running an inference right now.
    busy_workers: usize,
    stopping: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    work_available: Condvar,
    metrics: Arc<Metrics>,
    burner: Burner,
    cost: Duration,
    workers: usize,
    queue_capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock; recover the data if one somehow did.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish_queue_length(&self, state: &State) {
        let length = state.requests.len() as u64 + state.pending_batch_jobs;
        self.metrics
            .queue_length
            .set(i64::try_from(length).unwrap_or(i64::MAX));
    }
}

/// Handle to the worker threads.
#[derive(Debug, Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

enum Work {
    Request(oneshot::Sender<()>),
    BatchJob,
}

impl Pool {
    /// Starts `workers` threads that each spend `cost` of CPU per inference.
    pub fn start(
        workers: usize,
        queue_capacity: usize,
        cost: Duration,
        burner: Burner,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work_available: Condvar::new(),
            metrics,
            burner,
            cost,
            workers: workers.max(1),
            queue_capacity,
        });
        for index in 0..shared.workers {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("inference-worker-{index}"))
                .spawn(move || worker_loop(&shared))?;
        }
        Ok(Self { shared })
    }

    /// Queues one `/predict` inference; the receiver fires when it is done.
    pub fn submit(&self) -> Result<oneshot::Receiver<()>, Rejected> {
        let mut state = self.shared.lock();
        if state.stopping {
            return Err(Rejected::ShuttingDown);
        }
        // A request just queued for an idle worker is not waiting: count idle workers in.
        let idle_workers = self.shared.workers.saturating_sub(state.busy_workers);
        if state.requests.len() >= self.shared.queue_capacity + idle_workers {
            return Err(Rejected::QueueFull);
        }
        let (done, receiver) = oneshot::channel();
        state.requests.push_back(done);
        self.shared.publish_queue_length(&state);
        drop(state);
        self.shared.work_available.notify_one();
        Ok(receiver)
    }

    /// Adds `jobs` batch jobs; returns how many are pending now.
    pub fn enqueue(&self, jobs: u64) -> Result<u64, Rejected> {
        let mut state = self.shared.lock();
        if state.stopping {
            return Err(Rejected::ShuttingDown);
        }
        let pending = state.pending_batch_jobs.saturating_add(jobs);
        if pending > MAX_PENDING_BATCH_JOBS {
            return Err(Rejected::QueueFull);
        }
        state.pending_batch_jobs = pending;
        self.shared.publish_queue_length(&state);
        drop(state);
        self.shared.work_available.notify_all();
        Ok(pending)
    }

    /// Stops taking work: requests already queued still run, pending batch jobs are dropped
    /// (a batch queue scaled to zero is the scaler's business, not the process's), and the
    /// workers exit once the request queue is empty.
    pub fn stop(&self) {
        let mut state = self.shared.lock();
        state.stopping = true;
        state.pending_batch_jobs = 0;
        self.shared.publish_queue_length(&state);
        drop(state);
        self.shared.work_available.notify_all();
    }
}

fn worker_loop(shared: &Shared) {
    loop {
        let work = {
            let mut state = shared.lock();
            let work = loop {
                if let Some(done) = state.requests.pop_front() {
                    break Work::Request(done);
                }
                if state.stopping {
                    return;
                }
                if state.pending_batch_jobs > 0 {
                    state.pending_batch_jobs -= 1;
                    break Work::BatchJob;
                }
                state = shared
                    .work_available
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            };
            // Move the job from the queue gauge to the in-flight gauge in one step.
            state.busy_workers += 1;
            shared.publish_queue_length(&state);
            shared.metrics.in_flight.inc();
            work
        };
        shared.burner.burn(shared.cost);
        {
            let mut state = shared.lock();
            state.busy_workers -= 1;
            shared.metrics.in_flight.dec();
        }
        if let Work::Request(done) = work {
            // The client may have gone away; the work is done either way.
            let _ = done.send(());
        }
    }
}
