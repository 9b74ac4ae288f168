//! What counts as a failure of the dependency: one classifier, shared by the circuit
//! breaker (what trips it) and the retry policy (what is retried).
//!
//! ```text
//!  Result<&Response, &BoxError> ─► Classify::is_failure ─► true: breaker counts a failure, retry may retry
//!                                                          false: success (e.g. a 404: the caller's fault)
//! ```

use super::BoxError;

/// Decides whether one call's outcome is a failure of the dependency.
///
/// Closures `Fn(Result<&Res, &BoxError>) -> bool` classify too.
pub trait Classify<Res>: Send + Sync + 'static {
    fn is_failure(&self, outcome: Result<&Res, &BoxError>) -> bool;
}

/// HTTP: errors (refused, reset, timed out, …) and 5xx responses are failures; 4xx
/// are not (the request was wrong, the dependency is fine), nor is anything else.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFailures;

impl<B> Classify<http::Response<B>> for HttpFailures {
    fn is_failure(&self, outcome: Result<&http::Response<B>, &BoxError>) -> bool {
        match outcome {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        }
    }
}

/// Any error is a failure; every response is a success.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorsOnly;

impl<Res> Classify<Res> for ErrorsOnly {
    fn is_failure(&self, outcome: Result<&Res, &BoxError>) -> bool {
        outcome.is_err()
    }
}

impl<Res, F> Classify<Res> for F
where
    F: Fn(Result<&Res, &BoxError>) -> bool + Send + Sync + 'static,
{
    fn is_failure(&self, outcome: Result<&Res, &BoxError>) -> bool {
        self(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::AttemptTimedOut;

    fn response(status: u16) -> http::Response<()> {
        let mut response = http::Response::new(());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        response
    }

    #[test]
    fn http_failures_are_errors_and_5xx_not_4xx() {
        let c = HttpFailures;
        for status in [200, 204, 301, 400, 404, 409, 429] {
            assert!(!c.is_failure(Ok(&response(status))), "{status}");
        }
        for status in [500, 502, 503, 504] {
            assert!(c.is_failure(Ok(&response(status))), "{status}");
        }
        let timeout: BoxError = Box::new(AttemptTimedOut {
            after: std::time::Duration::from_millis(5),
        });
        assert!(Classify::<http::Response<()>>::is_failure(
            &c,
            Err(&timeout)
        ));
    }

    #[test]
    fn errors_only_and_closures_classify() {
        let error: BoxError = "refused".into();
        assert!(Classify::<u16>::is_failure(&ErrorsOnly, Err(&error)));
        assert!(!ErrorsOnly.is_failure(Ok(&500u16)));
        let odd = |outcome: Result<&u16, &BoxError>| outcome.map_or(true, |n| n % 2 == 1);
        assert!(odd.is_failure(Ok(&3)));
        assert!(!odd.is_failure(Ok(&4)));
    }
}
