//! Runs engine calls so that no engine bug can stop the conformance run: a
//! panic becomes a failed case with the panic's message, and a call that does
//! not return within the timeout is abandoned on its thread (the process
//! exits at the end regardless) and counted as failed.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

use tocsin_engine::promql::QueryResult;

use crate::compare::Outcome;

type Job = Box<dyn FnOnce() -> Result<QueryResult, String> + Send>;

thread_local! {
    /// Whether panics on this thread are expected and reported by us.
    static CAPTURING: RefCell<bool> = const { RefCell::new(false) };
    /// The last captured panic's message with its location.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs a panic hook that records panics on capturing threads instead of
/// printing them; panics anywhere else still print as usual.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(|c| *c.borrow()) {
                let msg = payload_message(info.payload());
                let msg = match info.location() {
                    Some(l) => format!("{msg} (at {}:{})", l.file(), l.line()),
                    None => msg,
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
            } else {
                default(info);
            }
        }));
    });
}

fn payload_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Runs `f` on the current thread, turning a panic into `Err(message)`.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    CAPTURING.with(|c| *c.borrow_mut() = true);
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| *c.borrow_mut() = false);
    r.map_err(|payload| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| payload_message(payload.as_ref()))
    })
}

struct Worker {
    jobs: Sender<Job>,
    results: Receiver<Result<Result<QueryResult, String>, String>>,
}

impl Worker {
    fn spawn() -> Option<Worker> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (result_tx, results) = mpsc::channel();
        thread::Builder::new()
            .name("promqltest-engine".into())
            .spawn(move || {
                for job in job_rx {
                    if result_tx.send(catch(job)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Worker { jobs, results })
    }
}

/// One engine thread, replaced when a call times out.
pub struct Sandbox {
    worker: Option<Worker>,
    timeout: Duration,
}

impl Sandbox {
    pub fn new(timeout: Duration) -> Self {
        Sandbox { worker: None, timeout }
    }

    pub fn run(&mut self, job: Job) -> Outcome {
        if self.worker.is_none() {
            self.worker = Worker::spawn();
        }
        let Some(w) = &self.worker else {
            return Outcome::Panicked("could not start an engine thread".into());
        };
        if w.jobs.send(job).is_err() {
            self.worker = None;
            return Outcome::Panicked("the engine thread died".into());
        }
        match w.results.recv_timeout(self.timeout) {
            Ok(Ok(Ok(res))) => Outcome::Ok(res),
            Ok(Ok(Err(e))) => Outcome::Err(e),
            Ok(Err(panic)) => Outcome::Panicked(panic),
            Err(RecvTimeoutError::Timeout) => {
                // Leave the stuck thread behind; a fresh one takes the next job.
                self.worker = None;
                Outcome::TimedOut(self.timeout)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.worker = None;
                Outcome::Panicked("the engine thread died".into())
            }
        }
    }
}
