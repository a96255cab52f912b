//! Organizations: the accounts of the auditor's Organization (`ListAccounts`, paged by hand
//! through a [`PageGuard`]), read with the auditor's own credentials when the config has
//! `organizations:`. The plan ([`super::plan`]) turns them into accounts to audit.
//!
//! Organizations answers in JSON, so its client has no [`super::client::WholeXmlResponse`]
//! check; its requests share one rate-limit bucket per region for the own account.

use aws_config::SdkConfig;
use aws_sdk_organizations::Client;

use super::client::{limited_http_client, ApiCallCounter, PageGuard};
use super::CollectError;
use crate::config::accounts::RateLimit;

/// One account of an Organization, as ListAccounts described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationAccount {
    pub id: String,
    /// The account's ARN (`arn:aws:organizations::…`), for the partition.
    pub arn: String,
    pub status: String,
}

/// An Organizations client for `config` (the own credentials), under `rate`, its calls
/// counted by `counter`.
pub fn client(config: &SdkConfig, rate: RateLimit, counter: &ApiCallCounter) -> Client {
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    Client::from_conf(
        aws_sdk_organizations::config::Builder::from(config)
            .http_client(limited_http_client("organizations", "self", &region, rate))
            .interceptor(counter.clone())
            .build(),
    )
}

/// Lists the Organization's accounts, every page of them.
pub async fn list_accounts(
    client: &Client,
    max_pages: u32,
) -> Result<Vec<OrganizationAccount>, CollectError> {
    const OP: &str = "organizations:ListAccounts";
    let mut guard = PageGuard::new(OP, max_pages);
    let mut token: Option<String> = None;
    let mut out = Vec::new();
    loop {
        let page = client
            .list_accounts()
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| CollectError::aws(OP, e))?;
        for account in page.accounts() {
            let (Some(id), Some(arn)) = (account.id(), account.arn()) else {
                return Err(CollectError::Malformed {
                    operation: OP,
                    message: "an account without Id or Arn".into(),
                });
            };
            out.push(OrganizationAccount {
                id: id.to_string(),
                arn: arn.to_string(),
                status: account
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            });
        }
        match guard.next(page.next_token().map(str::to_string))? {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok(out)
}
