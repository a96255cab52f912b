//! Which accounts and regions a scan collects, and the credentials for each.
//!
//! - With no `accounts` and no `organizations` in the config, the one account is the
//!   auditor's own (its credentials, as before).
//! - `accounts` lists roles to assume; `organizations` discovers ACTIVE accounts with
//!   ListAccounts and assumes `role_name` in each. Both may be used together; an account
//!   listed twice is scanned once (the explicit entry wins).
//! - This replica keeps the accounts its shard owns (see [`crate::shard`]).
//! - Each account's regions are a list, or `all`: DescribeRegions in that account, so
//!   regions enabled or disabled there are followed at the next scan.
//!
//! Assumed-role credentials come from the SDK's `AssumeRoleProvider` behind the SDK's
//! lazy identity cache, which refreshes them before they expire. The resulting config is
//! kept for the life of the process ([`Sessions`]), so a daemon does not call AssumeRole
//! at every scan, only when the credentials near expiry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_sdk_sts::config::SharedCredentialsProvider;

use super::{limited_http_client, ApiCallCounter, CollectError, PageGuard, WholeXmlResponse};
use crate::config::accounts::{
    AccountTarget, ExternalId, OrganizationsDiscovery, RegionSelection, RoleArn, SessionName,
};
use crate::config::{AwsSettings, Settings};
use crate::shard::Shard;

/// How the auditor reaches an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The auditor's own credentials.
    Own,
    /// A role assumed with the auditor's own credentials.
    AssumeRole {
        role_arn: RoleArn,
        external_id: Option<ExternalId>,
        session_name: SessionName,
    },
}

/// One account a scan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPlan {
    /// Known ahead for a role (from its ARN); `None` for the own account until STS says.
    pub account_id: Option<String>,
    pub access: Access,
    /// `None`: the config's `regions`, else the SDK's region.
    pub regions: Option<RegionSelection>,
}

impl AccountPlan {
    /// The account id, or `""` when not known yet.
    pub fn id(&self) -> &str {
        self.account_id.as_deref().unwrap_or_default()
    }
}

/// The accounts listed in the config, as plans.
pub fn listed_accounts(accounts: &[AccountTarget]) -> Vec<AccountPlan> {
    accounts
        .iter()
        .map(|a| AccountPlan {
            account_id: Some(a.role_arn.account_id().to_string()),
            access: Access::AssumeRole {
                role_arn: a.role_arn.clone(),
                external_id: a.external_id.clone(),
                session_name: a.session_name.clone(),
            },
            regions: a.regions.clone(),
        })
        .collect()
}

/// One account of an Organization, as ListAccounts described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationAccount {
    pub id: String,
    /// The account's ARN (`arn:aws:organizations::…`), for the partition.
    pub arn: String,
    pub status: String,
}

/// The plans for an Organization's accounts: the ACTIVE ones not excluded.
pub fn discovered_accounts(
    discovery: &OrganizationsDiscovery,
    accounts: &[OrganizationAccount],
) -> Vec<AccountPlan> {
    accounts
        .iter()
        .filter(|a| a.status == "ACTIVE")
        .filter(|a| !discovery.exclude_accounts.iter().any(|x| x.0 == a.id))
        .map(|a| {
            let partition = a.arn.split(':').nth(1).unwrap_or("aws");
            AccountPlan {
                account_id: Some(a.id.clone()),
                access: Access::AssumeRole {
                    role_arn: discovery.role_name.arn(partition, &a.id),
                    external_id: discovery.external_id.clone(),
                    session_name: discovery.session_name.clone(),
                },
                regions: discovery.regions.clone(),
            }
        })
        .collect()
}

/// Merges listed and discovered plans (a listed account wins over the same discovered
/// one), keeps those `shard` owns, and orders them by account id.
pub fn merge_and_shard(
    listed: Vec<AccountPlan>,
    discovered: Vec<AccountPlan>,
    shard: Shard,
) -> Vec<AccountPlan> {
    let mut by_id: BTreeMap<String, AccountPlan> = BTreeMap::new();
    for plan in discovered.into_iter().chain(listed) {
        by_id.insert(plan.id().to_string(), plan);
    }
    by_id
        .into_values()
        .filter(|plan| shard.owns(plan.id()))
        .collect()
}

/// Lists the Organization's accounts with the auditor's own credentials.
pub async fn list_organization_accounts(
    config: &SdkConfig,
    aws: &AwsSettings,
    settings: &Settings,
    counter: &ApiCallCounter,
) -> Result<Vec<OrganizationAccount>, CollectError> {
    const OP: &str = "organizations:ListAccounts";
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let client = aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::config::Builder::from(config)
            .http_client(limited_http_client(
                "organizations",
                "self",
                &region,
                settings.scan.rate_limits.organizations,
            ))
            .interceptor(counter.clone())
            .build(),
    );
    let mut guard = PageGuard::new(OP, aws.max_pages);
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

/// The regions enabled in the account of `config` (DescribeRegions).
pub async fn enabled_regions(
    config: &SdkConfig,
    account: &str,
    settings: &Settings,
    counter: &ApiCallCounter,
) -> Result<Vec<String>, CollectError> {
    const OP: &str = "ec2:DescribeRegions";
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let client = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(config)
            .http_client(limited_http_client(
                "ec2",
                account,
                &region,
                settings.scan.rate_limits.ec2,
            ))
            .interceptor(counter.clone())
            .interceptor(WholeXmlResponse)
            .build(),
    );
    let answer = client
        .describe_regions()
        .send()
        .await
        .map_err(|e| CollectError::aws(OP, e))?;
    let mut regions: Vec<String> = answer
        .regions()
        .iter()
        .filter(|r| {
            // Without AllRegions, AWS lists enabled regions only; opt-in status guards
            // against an answer that includes disabled ones anyway.
            r.opt_in_status().is_none_or(|s| s != "not-opted-in")
        })
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    if regions.is_empty() {
        return Err(CollectError::Malformed {
            operation: OP,
            message: "no region is enabled in the account".into(),
        });
    }
    regions.sort();
    Ok(regions)
}

/// The SDK configs of assumed roles, kept for the life of the process so their cached
/// credentials are reused across scans and refreshed only near expiry.
#[derive(Debug, Default)]
pub struct Sessions {
    configs: Mutex<HashMap<String, SdkConfig>>,
}

impl Sessions {
    pub fn global() -> &'static Sessions {
        static SESSIONS: OnceLock<Sessions> = OnceLock::new();
        SESSIONS.get_or_init(Sessions::default)
    }

    /// The config for `access` (any region; callers set theirs): the own credentials from
    /// `base`, or the role's cached session built on them.
    pub async fn config_for(
        &self,
        access: &Access,
        base: &SdkConfig,
        aws: &AwsSettings,
    ) -> SdkConfig {
        let Access::AssumeRole {
            role_arn,
            external_id,
            session_name,
        } = access
        else {
            return base.clone();
        };
        // The session depends on everything that shapes its calls, the endpoint included.
        let key = format!(
            "{}|{}|{}|{:?}|{:?}",
            role_arn.0,
            external_id
                .as_ref()
                .map(|e| e.0.as_str())
                .unwrap_or_default(),
            session_name.0,
            base.region(),
            aws,
        );
        if let Some(config) = self.lock().get(&key) {
            return config.clone();
        }
        let mut builder = AssumeRoleProvider::builder(role_arn.0.clone())
            .session_name(session_name.0.clone())
            .configure(base);
        if let Some(id) = external_id {
            builder = builder.external_id(id.0.clone());
        }
        let provider = builder.build().await;
        let config = base
            .clone()
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        self.lock().entry(key).or_insert(config).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SdkConfig>> {
        match self.configs.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// `config` in another region, keeping its credentials and their cache.
pub fn in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .clone()
        .into_builder()
        .region(Region::new(region.to_string()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::accounts::{AccountId, RoleNamePattern};

    fn org_account(id: &str, status: &str) -> OrganizationAccount {
        OrganizationAccount {
            id: id.into(),
            arn: format!("arn:aws-us-gov:organizations::999999999999:account/o-x/{id}"),
            status: status.into(),
        }
    }

    fn discovery() -> OrganizationsDiscovery {
        OrganizationsDiscovery {
            role_name: RoleNamePattern("audit-{account_id}".into()),
            external_id: None,
            session_name: SessionName::default(),
            regions: None,
            exclude_accounts: vec![AccountId("333333333333".into())],
        }
    }

    #[test]
    fn discovery_keeps_active_accounts_not_excluded_and_fills_in_the_role() {
        let plans = discovered_accounts(
            &discovery(),
            &[
                org_account("111111111111", "ACTIVE"),
                org_account("222222222222", "SUSPENDED"),
                org_account("333333333333", "ACTIVE"),
            ],
        );
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].id(), "111111111111");
        match &plans[0].access {
            Access::AssumeRole { role_arn, .. } => assert_eq!(
                role_arn.0,
                "arn:aws-us-gov:iam::111111111111:role/audit-111111111111"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_listed_account_wins_over_the_discovered_one_and_shards_split_the_rest() {
        let listed = listed_accounts(&[AccountTarget {
            role_arn: RoleArn("arn:aws:iam::111111111111:role/special".into()),
            external_id: None,
            session_name: SessionName::default(),
            regions: None,
        }]);
        let ids: Vec<String> = (1..=9).map(|d| d.to_string().repeat(12)).collect();
        let found: Vec<OrganizationAccount> =
            ids.iter().map(|id| org_account(id, "ACTIVE")).collect();
        let discovered = discovered_accounts(
            &OrganizationsDiscovery {
                exclude_accounts: vec![],
                ..discovery()
            },
            &found,
        );
        let whole = merge_and_shard(listed.clone(), discovered.clone(), Shard::WHOLE);
        assert_eq!(whole.len(), 9);
        assert!(
            matches!(&whole[0].access, Access::AssumeRole { role_arn, .. } if role_arn.0.ends_with("/special"))
        );
        let mut seen: Vec<String> = Vec::new();
        for index in 0..3 {
            let shard = Shard::new(index, 3).unwrap();
            seen.extend(
                merge_and_shard(listed.clone(), discovered.clone(), shard)
                    .iter()
                    .map(|p| p.id().to_string()),
            );
        }
        seen.sort();
        assert_eq!(seen, ids, "every account in exactly one shard");
    }
}
