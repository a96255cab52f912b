//! Secrets Manager: the names and ARNs of an account's secrets in one region
//! (`ListSecrets`, paginated), read only in the data plane regions of packs that declare
//! `secrets_manager:`. No secret value is ever read: the auditor's policy does not even
//! allow it. Secrets Manager answers in JSON, so the client has no
//! [`super::client::WholeXmlResponse`] check.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;

use crate::config::accounts::RateLimit;
use crate::snapshot::SecretEntry;

use super::client::{limited_http_client, ApiCallCounter, PageGuard};
use super::CollectError;

const OP: &str = "secretsmanager:ListSecrets";

/// A Secrets Manager client for `account` in `config`'s region, under `rate`, its calls
/// counted by `counter`.
pub fn client(
    config: &SdkConfig,
    account: &str,
    rate: RateLimit,
    counter: &ApiCallCounter,
) -> Client {
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(config)
            .http_client(limited_http_client(
                "secretsmanager",
                account,
                &region,
                rate,
            ))
            .interceptor(counter.clone())
            .build(),
    )
}

/// Every secret of the region: name and ARN.
pub async fn secrets(client: &Client, max_pages: u32) -> Result<Vec<SecretEntry>, CollectError> {
    let mut guard = PageGuard::new(OP, max_pages);
    let mut token: Option<String> = None;
    let mut out = Vec::new();
    loop {
        let page = client
            .list_secrets()
            .max_results(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| CollectError::aws(OP, e))?;
        for secret in page.secret_list() {
            let (Some(name), Some(arn)) = (secret.name(), secret.arn()) else {
                return Err(CollectError::Malformed {
                    operation: OP,
                    message: "a secret without Name or ARN".into(),
                });
            };
            out.push(SecretEntry {
                name: name.to_string(),
                arn: arn.to_string(),
            });
        }
        match guard.next(page.next_token().map(str::to_string))? {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    out.sort_by(|a, b| a.arn.cmp(&b.arn));
    Ok(out)
}
