//! Test doubles shared by the resilience tests: a resendable job and a dependency whose
//! behaviour the test switches while it runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower::Service;

use super::{BoxError, Resendable};

/// A request: a job id and the resend count the retry policy gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) id: u32,
    resends: u32,
}

impl Job {
    pub(crate) fn new(id: u32) -> Job {
        Job { id, resends: 0 }
    }
}

impl Resendable for Job {
    fn resend_count(&self) -> u32 {
        self.resends
    }

    fn set_resend_count(&mut self, count: u32) {
        self.resends = count;
    }

    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

/// What the dependency does with an attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Behaviour {
    Succeed,
    Fail,
    /// Fails the attempts whose resend count is below n.
    FailUntilResend(u32),
    /// Answers after this long.
    Slow(Duration),
}

/// A dependency answering with the job id; it records `(id, resend count)` of every
/// attempt that reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Dependency {
    seen: Arc<Mutex<Vec<(u32, u32)>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Dependency {
    pub(crate) fn new(behaviour: Behaviour) -> Dependency {
        Dependency {
            seen: Arc::default(),
            behaviour: Arc::new(Mutex::new(behaviour)),
        }
    }

    pub(crate) fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub(crate) fn seen(&self) -> Vec<(u32, u32)> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub(crate) fn service(
        &self,
    ) -> impl Service<Job, Response = u32, Error = BoxError, Future: Send + 'static>
    + Clone
    + Send
    + 'static {
        let dependency = self.clone();
        tower::service_fn(move |job: Job| {
            dependency
                .seen
                .lock()
                .unwrap()
                .push((job.id, job.resend_count()));
            let behaviour = *dependency.behaviour.lock().unwrap();
            async move {
                let result: Result<u32, BoxError> = match behaviour {
                    Behaviour::Succeed => Ok(job.id),
                    Behaviour::Fail => Err(format!("job {} failed", job.id).into()),
                    Behaviour::FailUntilResend(n) if job.resend_count() < n => {
                        Err(format!("job {} failed", job.id).into())
                    }
                    Behaviour::FailUntilResend(_) => Ok(job.id),
                    Behaviour::Slow(delay) => {
                        tokio::time::sleep(delay).await;
                        Ok(job.id)
                    }
                };
                result
            }
        })
    }
}
