//! Retry policy after a failed reconcile: exponential backoff with a cap, chosen per kind of error.
//!
//! A flat 5 s retry hammers the API server with requests that cannot succeed (RBAC that nobody will fix
//! within seconds, an object the API server refuses) and is too slow for a dropped connection. So
//! each error is classified ([`ErrorClass`]), each class has a first delay and a cap, and the delay
//! doubles with every consecutive failure of the same object ([`delay`], pure). [`Failures`] counts
//! those consecutive failures per object and forgets an object once it reconciles successfully.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::Error;

/// How a reconcile failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network errors, timeouts, 5xx, 429: likely gone soon, retried fast (1 s doubling to 2 min).
    Transient,
    /// 409: an optimistic-concurrency or field-ownership conflict with another writer; retrying at
    /// once loses the same race again, so start at 10 s (up to 5 min).
    Conflict,
    /// 401/403: the operator's RBAC is missing a permission; only a human or a Helm upgrade fixes
    /// that, so 30 s doubling to 10 min keeps the error visible without flooding the audit log.
    Forbidden,
    /// Other 4xx (invalid, not found, gone) and our own bugs (rendering, serialisation): repeating
    /// the same request gives the same answer until something changes, and changes are watched;
    /// 60 s doubling to 15 min.
    Permanent,
}

impl ErrorClass {
    /// Classifies an error.
    pub fn of(error: &Error) -> Self {
        match error {
            Error::Kube(e) => Self::of_kube(e),
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => Self::of(inner),
                kube::runtime::finalizer::Error::AddFinalizer(e)
                | kube::runtime::finalizer::Error::RemoveFinalizer(e) => Self::of_kube(e),
                _ => Self::Permanent,
            },
            Error::Render(_) | Error::Json(_) | Error::MissingNamespace(_) => Self::Permanent,
            Error::LeaseLost(_) | Error::Http(_) => Self::Transient,
        }
    }

    fn of_kube(error: &kube::Error) -> Self {
        match error {
            kube::Error::Api(s) => match s.code {
                409 => Self::Conflict,
                401 | 403 => Self::Forbidden,
                429 => Self::Transient,
                c if c >= 500 => Self::Transient,
                _ => Self::Permanent,
            },
            // Connection refused, TLS, timeouts, a broken watch: the network or the API server.
            _ => Self::Transient,
        }
    }

    /// First delay and cap of the class.
    pub fn schedule(self) -> (Duration, Duration) {
        match self {
            Self::Transient => (Duration::from_secs(1), Duration::from_secs(120)),
            Self::Conflict => (Duration::from_secs(10), Duration::from_secs(300)),
            Self::Forbidden => (Duration::from_secs(30), Duration::from_secs(600)),
            Self::Permanent => (Duration::from_secs(60), Duration::from_secs(900)),
        }
    }
}

/// Delay before retrying after the `attempt`-th consecutive failure (1-based): the class's first
/// delay, doubled per further failure, never above the class's cap.
pub fn delay(class: ErrorClass, attempt: u32) -> Duration {
    let (first, cap) = class.schedule();
    // 2^20 times any first delay is far past every cap; bounding the shift avoids overflow.
    let factor = 1u32 << attempt.saturating_sub(1).min(20);
    first.saturating_mul(factor).min(cap)
}

/// Consecutive failures per object (keyed by `kind/namespace/name`).
#[derive(Debug, Default)]
pub struct Failures {
    counts: Mutex<HashMap<String, u32>>,
}

impl Failures {
    /// Records a failure of `key` and returns how many happened in a row, this one included.
    pub fn record(&self, key: &str) -> u32 {
        // A poisoned lock only means another reconcile panicked mid-update; the counts stay usable.
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = counts.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Forgets `key` after a successful reconcile, so the next failure starts from the first delay.
    pub fn reset(&self, key: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str) -> Error {
        Error::Kube(kube::Error::Api(kube::core::Status::failure("test", reason).with_code(code).boxed()))
    }

    #[test]
    fn classes() {
        assert_eq!(ErrorClass::of(&api(409, "Conflict")), ErrorClass::Conflict);
        assert_eq!(ErrorClass::of(&api(403, "Forbidden")), ErrorClass::Forbidden);
        assert_eq!(ErrorClass::of(&api(503, "ServiceUnavailable")), ErrorClass::Transient);
        assert_eq!(ErrorClass::of(&api(429, "TooManyRequests")), ErrorClass::Transient);
        assert_eq!(ErrorClass::of(&api(422, "Invalid")), ErrorClass::Permanent);
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(api(403, "Forbidden"))));
        assert_eq!(ErrorClass::of(&wrapped), ErrorClass::Forbidden);
        assert_eq!(ErrorClass::of(&Error::MissingNamespace("x".into())), ErrorClass::Permanent);
    }

    #[test]
    fn schedule_doubles_up_to_the_cap() {
        let secs = |class, n| delay(class, n).as_secs();
        assert_eq!(
            (1..=9).map(|n| secs(ErrorClass::Transient, n)).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 64, 120, 120]
        );
        assert_eq!((1..=7).map(|n| secs(ErrorClass::Conflict, n)).collect::<Vec<_>>(), [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!((1..=6).map(|n| secs(ErrorClass::Forbidden, n)).collect::<Vec<_>>(), [30, 60, 120, 240, 480, 600]);
        assert_eq!((1..=6).map(|n| secs(ErrorClass::Permanent, n)).collect::<Vec<_>>(), [60, 120, 240, 480, 900, 900]);
        // No overflow or wrap-around however long an error lasts.
        assert_eq!(secs(ErrorClass::Transient, u32::MAX), 120);
        assert_eq!(secs(ErrorClass::Transient, 0), 1);
    }

    #[test]
    fn conflicts_and_forbidden_are_never_retried_every_5s() {
        for class in [ErrorClass::Conflict, ErrorClass::Forbidden] {
            assert!((1..100).all(|n| delay(class, n) >= Duration::from_secs(10)), "{class:?}");
        }
    }

    #[test]
    fn failures_count_in_a_row_and_reset_on_success() {
        let f = Failures::default();
        assert_eq!(f.record("tp/a/x"), 1);
        assert_eq!(f.record("tp/a/x"), 2);
        assert_eq!(f.record("tp/a/y"), 1);
        f.reset("tp/a/x");
        assert_eq!(f.record("tp/a/x"), 1);
    }
}
