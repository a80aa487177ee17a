//! What one server takes on at once. Over a limit a client gets `429 Too Many Requests` with
//! `Retry-After` (which UpChunk, tus clients and the SDKs back off on), never a 5xx or a dropped
//! connection; the limits come from `[limits]`.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::config::LimitsConfig;
use crate::error::ErrorKind;

pub struct Limits {
    /// Upload requests carrying bytes that may be in flight at once; `None`: no limit.
    upload_slots: Option<Arc<Semaphore>>,
    /// API requests per access token (or Tencent SecretId); `None`: no limit.
    per_token: Option<DefaultKeyedRateLimiter<String>>,
    /// How long a client over the upload limit is told to wait.
    upload_retry_after: i64,
    /// Largest JSON request body, in bytes.
    pub max_json_body: usize,
    /// Longest a Mux API call may take before it is answered 503.
    pub api_timeout: std::time::Duration,
}

impl Limits {
    /// Runs one API call within `api_timeout`. Past it the call is dropped (a transaction rolls
    /// back, nothing half-done is committed) and what to tell the caller comes back instead, so
    /// a database or bucket that stops answering mid-call leaves no caller hanging.
    pub async fn within_api_timeout<F: std::future::Future>(
        &self,
        call: F,
    ) -> Result<F::Output, String> {
        let limit = self.api_timeout;
        tokio::time::timeout(limit, call).await.map_err(|_| {
            tracing::warn!(limit_secs = limit.as_secs(), "API call timed out");
            format!(
                "the call took longer than {} s (the database or storage is slow to answer); try again",
                limit.as_secs()
            )
        })
    }

    pub fn new(config: &LimitsConfig) -> Limits {
        let per_token = NonZeroU32::new(config.requests_per_second_per_token).map(|rate| {
            let burst = NonZeroU32::new(config.request_burst_per_token).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst.max(rate)))
        });
        Limits {
            upload_slots: (config.concurrent_uploads > 0)
                .then(|| Arc::new(Semaphore::new(config.concurrent_uploads))),
            per_token,
            upload_retry_after: 1,
            max_json_body: config.max_json_body_bytes,
            api_timeout: std::time::Duration::from_secs(config.api_timeout_secs.max(1)),
        }
    }

    /// Counts one request against `token`'s rate: an error to answer with when it is over.
    pub fn check_rate(&self, token: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_token else {
            return Ok(());
        };
        match limiter.check_key(&token.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let mut error = ApiError::new(
                    ErrorKind::TooManyRequests,
                    format!(
                        "too many requests for access token {token}; retry in {} ms",
                        wait.as_millis().max(1)
                    ),
                );
                error.retry_after = Some(wait.as_secs_f64().ceil() as i64);
                Err(error)
            }
        }
    }

    /// Forgets tokens idle long enough that their buckets are full again (keeps the map small).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_token {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// One of the server's upload slots, for a request that carries upload bytes, held until it
    /// is dropped. Never waits: a full server answers 429 at once.
    pub fn take_upload_slot(&self) -> Result<UploadSlot, ApiError> {
        let Some(slots) = &self.upload_slots else {
            return Ok(UploadSlot(None));
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(UploadSlot(Some(permit))),
            Err(_) => {
                let mut error = ApiError::new(
                    ErrorKind::TooManyRequests,
                    "the server is receiving as many uploads as it is configured to; retry shortly",
                );
                error.retry_after = Some(self.upload_retry_after);
                Err(error)
            }
        }
    }
}

/// A taken upload slot (see `Limits::take_upload_slot`); given back when dropped.
pub struct UploadSlot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl UploadSlot {
    pub fn is_counted(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(concurrent_uploads: usize, rate: u32, burst: u32) -> LimitsConfig {
        LimitsConfig {
            concurrent_uploads,
            requests_per_second_per_token: rate,
            request_burst_per_token: burst,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn upload_slots_run_out_and_come_back() {
        let limits = Limits::new(&config(2, 0, 0));
        let a = limits.take_upload_slot().unwrap();
        let _b = limits.take_upload_slot().unwrap();
        let refused = limits.take_upload_slot().err().expect("a third is refused");
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(1));
        drop(a);
        assert!(limits.take_upload_slot().unwrap().is_counted());
    }

    #[test]
    fn zero_means_no_limit() {
        let limits = Limits::new(&config(0, 0, 0));
        let held: Vec<_> = (0..10_000)
            .map(|_| limits.take_upload_slot().unwrap())
            .collect();
        assert!(held.iter().all(|slot| !slot.is_counted()));
        for _ in 0..10_000 {
            limits.check_rate("t").unwrap();
        }
    }

    #[test]
    fn a_token_over_its_burst_is_told_when_to_come_back_and_others_are_not_affected() {
        let limits = Limits::new(&config(0, 1, 3));
        for _ in 0..3 {
            limits.check_rate("busy").unwrap();
        }
        let refused = limits.check_rate("busy").expect_err("the fourth is over");
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(1));
        assert!(refused.message.contains("busy"), "{}", refused.message);
        limits.check_rate("quiet").unwrap();
    }
}
