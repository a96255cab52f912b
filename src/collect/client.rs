//! The AWS client side of collection: how every SDK client a scan builds is configured.
//!
//! A scan loads one [`SdkConfig`] ([`sdk_config`]: the credential chain, `aws.endpoint_url`,
//! the retry and timeout settings of `aws:`); every account's config derives from it (see
//! [`super::plan`]), and [`in_region`] moves one to a region without losing its cached
//! credentials. Each service module (`ec2`, `iam`, `sts`, `organizations`) builds its own
//! client from such a config with what this module provides:
//! - [`limited_http_client`]: the HTTP client that waits for the service's rate limit in
//!   that account and region ([`super::ratelimit`]);
//! - [`ApiCallCounter`]: the interceptor that counts calls per `service:Operation` for
//!   the snapshot's `api_calls`;
//! - [`WholeXmlResponse`]: the interceptor that rejects a cut-short or garbled XML answer
//!   (for the XML protocols: EC2, IAM, STS; not Organizations, which answers in JSON);
//! - [`PageGuard`]: the check every hand-paged listing passes its tokens through, so a
//!   token that repeats or never ends fails the call instead of truncating the list.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::ratelimit::{self, RateLimitedHttpClient, RateLimiter};
use super::CollectError;
use crate::config::accounts::RateLimit;
use crate::config::{AwsSettings, RetryMode};

/// Loads the shared SDK config: the standard credential chain, the endpoint override, and
/// the retry and timeout settings of `aws:`. `region` overrides the SDK's own region.
pub async fn sdk_config(aws: &AwsSettings, region: Option<&str>) -> SdkConfig {
    let retry = match aws.retry_mode {
        RetryMode::Standard => RetryConfig::standard(),
        RetryMode::Adaptive => RetryConfig::adaptive(),
    }
    .with_max_attempts(aws.max_attempts)
    .with_initial_backoff(aws.retry_initial_backoff.0)
    .with_max_backoff(aws.retry_max_backoff.0);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(aws.connect_timeout.0)
                .operation_attempt_timeout(aws.attempt_timeout.0)
                .operation_timeout(aws.operation_timeout.0)
                .build(),
        );
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url.0.clone());
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    loader.load().await
}

/// `config` in another region, keeping its credentials and their cache.
pub fn in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .clone()
        .into_builder()
        .region(Region::new(region.to_string()))
        .build()
}

/// An HTTP client that keeps `service` in `account` and `region` under `rate`.
pub fn limited_http_client(
    service: &str,
    account: &str,
    region: &str,
    rate: RateLimit,
) -> RateLimitedHttpClient {
    let bucket = RateLimiter::global().bucket(service, account, region, rate);
    RateLimitedHttpClient::new(ratelimit::base_http_client(), bucket)
}

/// Counts API calls per `service:Operation`, one per operation invocation (a page is one
/// call; retries of it are not counted again). It hooks serialisation, which runs once per
/// operation, because client-level interceptors see `read_before_execution` before the
/// operation has stored its name.
#[derive(Debug, Clone, Default)]
pub struct ApiCallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl ApiCallCounter {
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Intercept for ApiCallCounter {
    fn name(&self) -> &'static str {
        "ApiCallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let service = meta.service().to_ascii_lowercase().replace(' ', "");
            let key = format!("{service}:{}", meta.name());
            if let Ok(mut counts) = self.counts.lock() {
                *counts.entry(key).or_default() += 1;
            }
        }
        Ok(())
    }
}

/// Rejects a successful answer whose body is not a whole, well-formed XML document, e.g.
/// one cut short or garbled on the way. The SDK's XML reader stops quietly at the end of
/// what it was given, so a body cut after the 3rd of 10 items would otherwise read as a
/// list of 3. The rejection is a response error, which the retry policy retries like any
/// transient failure; if every attempt fails, the call fails.
#[derive(Debug, Clone, Default)]
pub struct WholeXmlResponse;

impl Intercept for WholeXmlResponse {
    fn name(&self) -> &'static str {
        "WholeXmlResponse"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let problem = match (context.response(), context.output_or_error()) {
            (Some(response), Some(Ok(_))) => match response.body().bytes() {
                Some(body) => check_xml_document(body).err(),
                None => None,
            },
            _ => None,
        };
        if let Some(problem) = problem {
            if let Some(result) = context.output_or_error_mut() {
                let message =
                    format!("the response body is not a complete XML document: {problem}");
                *result = Err(OrchestratorError::response(message.into()));
            }
        }
        Ok(())
    }
}

/// Checks that `body` is one complete, well-formed XML document: it tokenizes, every
/// element is closed by its own name, and there is exactly one root element.
pub fn check_xml_document(body: &[u8]) -> Result<(), String> {
    use xmlparser::{ElementEnd, Token, Tokenizer};
    let text =
        std::str::from_utf8(body).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    let mut open: Vec<&str> = Vec::new();
    let mut roots = 0;
    for token in Tokenizer::from(text) {
        match token.map_err(|e| e.to_string())? {
            Token::ElementStart { prefix, local, .. } => {
                if open.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err("more than one root element".into());
                    }
                }
                let end = local.range().end;
                let start = if prefix.is_empty() {
                    local.range().start
                } else {
                    prefix.range().start
                };
                open.push(&text[start..end]);
            }
            Token::ElementEnd { end, .. } => match end {
                ElementEnd::Open => {}
                ElementEnd::Empty => {
                    open.pop();
                }
                ElementEnd::Close(prefix, local) => {
                    let start = if prefix.is_empty() {
                        local.range().start
                    } else {
                        prefix.range().start
                    };
                    let name = &text[start..local.range().end];
                    match open.pop() {
                        Some(expected) if expected == name => {}
                        Some(expected) => {
                            return Err(format!("</{name}> closes <{expected}>"));
                        }
                        None => return Err(format!("</{name}> closes nothing")),
                    }
                }
            },
            _ => {}
        }
    }
    match (roots, open.last()) {
        (0, _) => Err("no root element".into()),
        (_, Some(unclosed)) => Err(format!("it ends inside <{unclosed}>")),
        _ => Ok(()),
    }
}

/// Guards one paginated call against a pagination token that never ends. AWS never hands
/// out the same token twice in one listing, and a listing of a region is far shorter than
/// `max_pages` pages; either means the list cannot be trusted to be whole. (The SDK's own
/// paginators stop silently at a repeated token, which would make a partial list look
/// complete; the collectors page by hand through this guard instead.)
#[derive(Debug)]
pub struct PageGuard {
    operation: &'static str,
    max_pages: u32,
    pages: u32,
    seen: BTreeSet<String>,
}

impl PageGuard {
    pub fn new(operation: &'static str, max_pages: u32) -> PageGuard {
        PageGuard {
            operation,
            max_pages: max_pages.max(1),
            pages: 0,
            seen: BTreeSet::new(),
        }
    }

    /// Takes the token a page ended with and returns the token to ask for the next page
    /// with, `None` when the listing is complete (no token, or an empty one).
    pub fn next(&mut self, token: Option<String>) -> Result<Option<String>, CollectError> {
        self.pages += 1;
        let token = match token {
            Some(token) if !token.is_empty() => token,
            _ => return Ok(None),
        };
        if self.pages >= self.max_pages {
            return Err(CollectError::Pagination {
                operation: self.operation,
                message: format!(
                    "still more after {} pages (aws.max_pages); the list may never end",
                    self.pages
                ),
            });
        }
        if !self.seen.insert(token.clone()) {
            return Err(CollectError::Pagination {
                operation: self.operation,
                message: format!(
                    "page {} repeats the token of an earlier page; the list would be incomplete",
                    self.pages
                ),
            });
        }
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_well_formed_xml_document_passes() {
        let whole = b"<?xml version=\"1.0\"?><R xmlns=\"x\"><vpcSet><item><vpcId>vpc-1</vpcId></item></vpcSet><a:b/></R>";
        assert_eq!(check_xml_document(whole), Ok(()));
        for cut in [10, 40, whole.len() - 1] {
            assert!(check_xml_document(&whole[..cut]).is_err(), "cut at {cut}");
        }
        assert!(check_xml_document(b"").is_err());
        assert!(check_xml_document(b"<R><a></b></R>")
            .unwrap_err()
            .contains("closes <a>"));
        assert!(check_xml_document(b"<R/><R/>").is_err());
        assert!(check_xml_document(b"<R>\x01<<#garbled&&></R>").is_err());
    }
}
