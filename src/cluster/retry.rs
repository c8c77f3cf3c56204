//! Retries of API calls that may succeed on another try: 429 (after the server's
//! `retryAfterSeconds`), 500, 502, 503, 504, timeouts and lost connections, with exponential
//! backoff. A wait the server asks for is honoured in full, never cut short by the backoff's
//! cap; when it would pass the caller's overall deadline, the call fails instead. Only idempotent calls go through here (get, list, server-side apply), so a retry after
//! a lost answer cannot apply anything twice. I/O: sleeps between tries.

use std::future::Future;
use std::time::Duration;

/// How to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubled before each one after it.
    pub initial: Duration,
    /// The longest backoff between two tries; a wait the server asks for is not capped.
    pub max: Duration,
    /// The time all tries may take, waits included: a wait that would pass it ends the call.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            deadline: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before try `attempt` (2 for the first retry): the server's own, in full, when
    /// it gave one, else the backoff.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(2)))
            .min(self.max);
        retry_after.unwrap_or(backoff)
    }

    /// The wait before try `attempt` of calls that started at `started`, or `None` when the
    /// tries are spent or the wait would pass the deadline.
    pub fn next_wait(
        &self,
        started: std::time::Instant,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let wait = self.delay(attempt, retry_after);
        (attempt <= self.attempts && started.elapsed() + wait <= self.deadline).then_some(wait)
    }
}

/// Whether another try may succeed, and the wait the server asked for.
pub fn retriable(error: &kube::Error) -> Option<Option<Duration>> {
    match error {
        kube::Error::Api(status) => match status.code {
            429 | 500 | 502 | 503 | 504 => Some(
                status
                    .details
                    .as_ref()
                    .map(|d| u64::from(d.retry_after_seconds))
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs),
            ),
            _ => None,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => Some(None),
        _ => None,
    }
}

/// Calls `call` until it succeeds, fails for good, or the policy's tries are spent.
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let (started, mut attempt) = (std::time::Instant::now(), 1);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let Some(retry_after) = retriable(&error) else {
                    return Err(error);
                };
                attempt += 1;
                let Some(wait) = policy.next_wait(started, attempt, retry_after) else {
                    return Err(error);
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use kube::core::response::StatusDetails;

    fn status(code: u16, retry_after: u32) -> kube::Error {
        let mut status = Status::failure("injected", "Injected").with_code(code);
        status.details = Some(StatusDetails {
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            uid: String::new(),
            causes: Vec::new(),
            retry_after_seconds: retry_after,
        });
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn server_errors_and_throttling_are_retried_and_client_errors_are_not() {
        assert_eq!(
            retriable(&status(429, 3)),
            Some(Some(Duration::from_secs(3)))
        );
        assert_eq!(retriable(&status(503, 0)), Some(None));
        assert_eq!(retriable(&status(500, 0)), Some(None));
        assert_eq!(retriable(&status(409, 0)), None);
        assert_eq!(retriable(&status(422, 0)), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after_in_full() {
        let policy = RetryPolicy {
            attempts: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            deadline: Duration::from_secs(30),
        };
        assert_eq!(policy.delay(2, None), Duration::from_millis(100));
        assert_eq!(policy.delay(3, None), Duration::from_millis(200));
        assert_eq!(policy.delay(9, None), Duration::from_secs(1));
        assert_eq!(
            policy.delay(2, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        // The server's wait is not cut short by the cap...
        assert_eq!(
            policy.delay(2, Some(Duration::from_secs(20))),
            Duration::from_secs(20)
        );
        // ...but a wait past the deadline ends the call instead.
        let started = std::time::Instant::now();
        assert_eq!(
            policy.next_wait(started, 2, Some(Duration::from_secs(20))),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            policy.next_wait(started, 2, Some(Duration::from_secs(60))),
            None
        );
        assert_eq!(policy.next_wait(started, 11, None), None);
    }

    #[tokio::test]
    async fn stops_after_the_last_attempt() {
        let policy = RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(1),
            deadline: Duration::from_secs(5),
        };
        let mut calls = 0;
        let result: Result<(), _> = with_retry(&policy, || {
            calls += 1;
            async { Err(status(503, 0)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 3);
        let mut calls = 0;
        let result: Result<(), _> = with_retry(&policy, || {
            calls += 1;
            async { Err(status(404, 0)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
