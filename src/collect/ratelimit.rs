//! Client-side rate limits per AWS service, so a scan of many accounts and regions stays
//! inside AWS's API quotas instead of being throttled (and retried) into failure.
//!
//! AWS meters request rates per account, and for regional services per region (EC2's
//! "request rate" quotas are per account per region; IAM's and Organizations' per account).
//! So each (service, account, region) pair gets its own token bucket: `rate` requests per
//! second on average, bursts of up to `burst`. Buckets live in a [`RateLimiter`] that
//! outlives single scans, so back-to-back daemon scans share the budget.
//!
//! The limit is applied where requests leave: [`RateLimitedHttpClient`] wraps the SDK's
//! HTTP client and waits for a token before each HTTP attempt, retries included, since a
//! retry counts against the quota like any request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::time::Instant;

use crate::config::accounts::RateLimit;

/// A token bucket: `rate` tokens a second, holding at most `burst`. Uses tokio's clock, so
/// tests can pause time.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket. `rate` must be positive; `burst` is at least 1.
    pub fn new(rate: f64, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Whether the bucket was made with `rate`.
    fn has_rate(&self, rate: RateLimit) -> bool {
        let burst = f64::from(rate.burst.max(1));
        self.rate == rate.per_second.max(f64::MIN_POSITIVE) && self.burst == burst
    }

    /// Takes a token now, or says how long until one is there.
    fn try_take(&self) -> Result<(), Duration> {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            // A panic elsewhere while holding the lock cannot leave the numbers invalid.
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        let elapsed = now.duration_since(state.refilled_at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.rate).min(self.burst);
        state.refilled_at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - state.tokens) / self.rate))
        }
    }

    /// Waits until a token is free and takes it.
    pub async fn acquire(&self) {
        while let Err(wait) = self.try_take() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Every bucket of the process, by (service, account, region).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(String, String, String), Arc<TokenBucket>>>,
}

impl RateLimiter {
    /// The bucket for `service` in `account` and `region` (for a global service, pass the
    /// same region every time), made at `rate` on first use, and made anew when the rate
    /// changed since (a reloaded config).
    pub fn bucket(
        &self,
        service: &str,
        account: &str,
        region: &str,
        rate: RateLimit,
    ) -> Arc<TokenBucket> {
        let key = (service.to_string(), account.to_string(), region.to_string());
        let mut buckets = match self.buckets.lock() {
            Ok(buckets) => buckets,
            Err(poisoned) => poisoned.into_inner(),
        };
        let fresh = || Arc::new(TokenBucket::new(rate.per_second, rate.burst));
        let bucket = buckets.entry(key).or_insert_with(fresh);
        if !bucket.has_rate(rate) {
            *bucket = fresh();
        }
        bucket.clone()
    }

    /// The process's limiter, shared by every scan.
    pub fn global() -> &'static RateLimiter {
        static LIMITER: OnceLock<RateLimiter> = OnceLock::new();
        LIMITER.get_or_init(RateLimiter::default)
    }
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxies from the environment),
/// made once per process so every client shares its connection pool.
pub fn base_http_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            Builder::new().build_with_connector_fn(|settings, components| {
                let mut builder = ConnectorBuilder::default()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
                builder.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    builder.set_sleep_impl(components.sleep_impl());
                }
                builder.set_proxy_config(Some(ProxyConfig::from_env()));
                builder.build()
            })
        })
        .clone()
}

/// An HTTP client that takes a token from `bucket` before each request it sends.
#[derive(Debug, Clone)]
pub struct RateLimitedHttpClient {
    inner: SharedHttpClient,
    bucket: Arc<TokenBucket>,
}

impl RateLimitedHttpClient {
    pub fn new(inner: SharedHttpClient, bucket: Arc<TokenBucket>) -> RateLimitedHttpClient {
        RateLimitedHttpClient { inner, bucket }
    }
}

impl HttpClient for RateLimitedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            bucket: self.bucket.clone(),
        })
    }
}

#[derive(Debug)]
struct RateLimitedConnector {
    inner: SharedHttpConnector,
    bucket: Arc<TokenBucket>,
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let bucket = self.bucket.clone();
        HttpConnectorFuture::new(async move {
            bucket.acquire().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_its_rate() {
        let bucket = TokenBucket::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        for _ in 0..20 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!(
            (1.95..=2.05).contains(&elapsed),
            "20 more at 10/s: {elapsed}s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_budget() {
        let bucket = Arc::new(TokenBucket::new(4.0, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..9)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move { bucket.acquire().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!(
            (1.95..=2.1).contains(&elapsed),
            "8 after the first at 4/s: {elapsed}s"
        );
    }

    #[test]
    fn buckets_are_per_service_account_and_region() {
        let limiter = RateLimiter::default();
        let rate = RateLimit::new(1.0, 1);
        let a = limiter.bucket("ec2", "111111111111", "us-east-1", rate);
        assert!(Arc::ptr_eq(
            &a,
            &limiter.bucket("ec2", "111111111111", "us-east-1", rate)
        ));
        assert!(!Arc::ptr_eq(
            &a,
            &limiter.bucket("ec2", "111111111111", "eu-west-1", rate)
        ));
        assert!(!Arc::ptr_eq(
            &a,
            &limiter.bucket("ec2", "222222222222", "us-east-1", rate)
        ));
        assert!(!Arc::ptr_eq(
            &a,
            &limiter.bucket("iam", "111111111111", "us-east-1", rate)
        ));
        let faster = RateLimit::new(2.0, 1);
        let b = limiter.bucket("ec2", "111111111111", "us-east-1", faster);
        assert!(!Arc::ptr_eq(&a, &b), "a new rate makes a new bucket");
        assert!(Arc::ptr_eq(
            &b,
            &limiter.bucket("ec2", "111111111111", "us-east-1", faster)
        ));
    }
}
