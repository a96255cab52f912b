//! STS: who the credentials belong to (`GetCallerIdentity`). The plan asks it for the own
//! account's id when sharding needs it; every region and IAM collection asks it first, so
//! a snapshot entry is filed under the account the credentials really reach.
//!
//! The client keeps the config's HTTP client: the scan's base config already carries the
//! STS rate limit (see [`super::plan`]), and every account's config derives from it.

use aws_config::SdkConfig;
use aws_sdk_sts::Client;

use super::client::{ApiCallCounter, WholeXmlResponse};
use super::CollectError;

/// An STS client for `config`, its calls counted by `counter`.
pub fn client(config: &SdkConfig, counter: &ApiCallCounter) -> Client {
    Client::from_conf(
        aws_sdk_sts::config::Builder::from(config)
            .interceptor(counter.clone())
            .interceptor(WholeXmlResponse)
            .build(),
    )
}

/// The account the credentials belong to.
pub async fn account_id(
    config: &SdkConfig,
    counter: &ApiCallCounter,
) -> Result<String, CollectError> {
    let identity = client(config, counter)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| CollectError::aws("sts:GetCallerIdentity", e))?;
    match identity.account() {
        Some(account) if !account.is_empty() => Ok(account.to_string()),
        _ => Err(CollectError::Malformed {
            operation: "sts:GetCallerIdentity",
            message: "no Account in the response".into(),
        }),
    }
}
