//! The plan of a scan: which accounts and regions it collects, with which credentials.
//! It is decided here, before any region is read, and handed to the orchestrator
//! ([`super::collect`]) as a [`Plan`].
//!
//! [`plan`] goes through these steps, in order:
//! 1. The base config: the SDK's credentials and region ([`super::client::sdk_config`]);
//!    its region is the scan's home region, and its STS calls share one rate limit.
//! 2. The accounts ([`account_plans`]):
//!    - with no `accounts` and no `organizations` in the config, the one account is the
//!      auditor's own (its credentials, as before);
//!    - `accounts` lists roles to assume; `organizations` discovers ACTIVE accounts with
//!      ListAccounts ([`super::organizations`]) and assumes `role_name` in each. Both may be
//!      used together; an account listed twice is scanned once (the explicit entry wins);
//!    - this replica keeps the accounts its shard owns (see [`crate::shard`]); sharding the
//!      own account asks STS for its id ([`super::sts`]).
//! 3. Each account's credentials and regions (`resolve_account`), `scan.concurrency` at a
//!    time: its regions are a list, or `all`: DescribeRegions in that account
//!    ([`super::ec2::enabled_regions`]), so regions enabled or disabled there are followed
//!    at the next scan.
//!
//! What cannot be planned is not dropped: an Organization that cannot be listed, an own
//! account that cannot be identified for sharding, or an account whose regions cannot be
//! listed becomes a failed entry for the snapshot, so it can never pass for compliant.
//!
//! Assumed-role credentials come from the SDK's `AssumeRoleProvider` behind the SDK's
//! lazy identity cache, which refreshes them before they expire. The resulting config is
//! kept for the life of the process ([`Sessions`]), so a daemon does not call AssumeRole
//! at every scan, only when the credentials near expiry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_sdk_sts::config::SharedCredentialsProvider;
use futures::stream::{self, StreamExt};

use super::client::{limited_http_client, sdk_config, ApiCallCounter};
use super::organizations::{self, OrganizationAccount};
use super::{ec2, sts, CollectError};
use crate::config::accounts::{
    AccountTarget, ExternalId, OrganizationsDiscovery, RegionSelection, RoleArn, SessionName,
};
use crate::config::{AwsSettings, Settings};
use crate::shard::Shard;
use crate::snapshot::RegionSnapshot;

/// What a scan covers: every account to collect with its credentials and regions.
#[derive(Debug)]
pub struct Plan {
    /// The base config's region: where the own account's STS and Organizations calls go,
    /// and where IAM is read for an account whose regions could not be listed.
    pub home_region: String,
    /// The accounts, in the order their credentials and regions were resolved.
    pub accounts: Vec<PlannedAccount>,
    /// The failed entry when the accounts themselves could not be decided (the Organization
    /// could not be listed, or the own account identified for sharding); then `accounts`
    /// is empty.
    pub failed: Option<RegionSnapshot>,
}

/// One account of the plan, ready to collect.
#[derive(Debug)]
pub struct PlannedAccount {
    pub account: AccountPlan,
    /// Its credentials, in the home region; each job moves it to its own region
    /// ([`super::client::in_region`]).
    pub config: SdkConfig,
    /// Its regions, or the failed entry of listing them.
    pub regions: Result<Regions, RegionSnapshot>,
}

/// An account's regions, with the API calls that listed them (DescribeRegions for `all`;
/// none for a list), which the snapshot counts in the account's first region.
#[derive(Debug)]
pub struct Regions {
    pub names: Vec<String>,
    pub listing_calls: BTreeMap<String, u64>,
}

/// Plans the scan of `settings`. `Err` only when nothing can be collected at all (no region
/// anywhere); everything else that fails is a failed entry in the plan.
pub async fn plan(settings: &Settings) -> Result<Plan, CollectError> {
    let aws = &settings.aws;
    let base = sdk_config(aws, settings.regions.first().map(String::as_str)).await;
    let home_region = match base.region() {
        Some(region) => region.to_string(),
        None => return Err(CollectError::NoRegion),
    };
    let base = base
        .into_builder()
        .http_client(limited_http_client(
            "sts",
            "self",
            &home_region,
            settings.scan.rate_limits.sts,
        ))
        .build();
    let default_regions: Vec<String> = if settings.regions.is_empty() {
        vec![home_region.clone()]
    } else {
        settings.regions.clone()
    };

    let (plans, failed) = match account_plans(settings, &base).await {
        Ok(plans) => (plans, None),
        Err(failed) => (Vec::new(), Some(failed)),
    };

    // Each account's credentials and regions (DescribeRegions for `all`).
    let concurrency = settings.scan.concurrency.max(1);
    // (The futures are made before they go into the stream: a closure in the stream that
    // borrows would make the scan's future not `Send`.)
    let resolving: Vec<_> = plans
        .into_iter()
        .map(|plan| resolve_account(plan, &base, &default_regions, settings))
        .collect();
    let accounts: Vec<PlannedAccount> = stream::iter(resolving)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    Ok(Plan {
        home_region,
        accounts,
        failed,
    })
}

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

/// The accounts this scan covers. `Err` is the failed entry to report when the
/// Organization cannot be listed, or the own account cannot be identified for sharding.
pub async fn account_plans(
    settings: &Settings,
    base: &SdkConfig,
) -> Result<Vec<AccountPlan>, RegionSnapshot> {
    let listed = listed_accounts(&settings.accounts);
    let discovered = match &settings.organizations {
        None => Vec::new(),
        Some(discovery) => {
            let counter = ApiCallCounter::default();
            let client =
                organizations::client(base, settings.scan.rate_limits.organizations, &counter);
            let found = organizations::list_accounts(&client, settings.aws.max_pages)
                .await
                .map_err(|err| {
                    tracing::error!(error = %err, "cannot list the Organization's accounts");
                    failed_region("", "organizations", &err, &counter)
                })?;
            discovered_accounts(discovery, &found)
        }
    };
    if settings.accounts.is_empty() && settings.organizations.is_none() {
        let mut own = AccountPlan {
            account_id: None,
            access: Access::Own,
            regions: None,
        };
        if !settings.shard.is_whole() {
            // Sharding the own account needs its id.
            let counter = ApiCallCounter::default();
            let id = sts::account_id(base, &counter).await.map_err(|err| {
                failed_region(
                    "",
                    base.region().map(|r| r.as_ref()).unwrap_or(""),
                    &err,
                    &counter,
                )
            })?;
            if !settings.shard.owns(&id) {
                return Ok(Vec::new());
            }
            own.account_id = Some(id);
        }
        return Ok(vec![own]);
    }
    let plans = merge_and_shard(listed, discovered, settings.shard);
    tracing::info!(shard = %settings.shard, accounts = plans.len(), "accounts to audit");
    Ok(plans)
}

/// The account's credentials and regions.
async fn resolve_account(
    account: AccountPlan,
    base: &SdkConfig,
    default_regions: &[String],
    settings: &Settings,
) -> PlannedAccount {
    let config = Sessions::global()
        .config_for(&account.access, base, &settings.aws)
        .await;
    let listed = |names: Vec<String>| Regions {
        names,
        listing_calls: BTreeMap::new(),
    };
    let regions = match &account.regions {
        None => Ok(listed(default_regions.to_vec())),
        Some(RegionSelection::Named(names)) => {
            Ok(listed(names.iter().map(|r| r.0.clone()).collect()))
        }
        Some(RegionSelection::All(_)) => {
            let counter = ApiCallCounter::default();
            let client = ec2::client(
                &config,
                account.id(),
                settings.scan.rate_limits.ec2,
                &counter,
            );
            ec2::enabled_regions(&client)
                .await
                .map(|names| Regions {
                    names,
                    listing_calls: counter.counts(),
                })
                .map_err(|err| {
                    tracing::error!(account = account.id(), error = %err, "cannot list the account's regions");
                    failed_region(account.id(), "all", &err, &counter)
                })
        }
    };
    PlannedAccount {
        account,
        config,
        regions,
    }
}

/// Checks that the credentials are for the account the plan expects: a role ARN that
/// names one account but yields credentials for another is misconfigured, and auditing
/// the wrong account under the expected one's name would be worse than failing.
pub fn check_account(plan: &AccountPlan, actual: String) -> Result<String, CollectError> {
    match &plan.account_id {
        Some(expected) if *expected != actual => Err(CollectError::Malformed {
            operation: "sts:GetCallerIdentity",
            message: format!(
                "the credentials are for account {actual}, not {expected} as the role ARN says"
            ),
        }),
        _ => Ok(actual),
    }
}

/// A region entry that records a failure and nothing else.
fn failed_region(
    account_id: &str,
    region: &str,
    err: &CollectError,
    counter: &ApiCallCounter,
) -> RegionSnapshot {
    RegionSnapshot {
        account_id: account_id.to_string(),
        region: region.to_string(),
        error: Some(err.into()),
        api_calls: counter.counts(),
        ..Default::default()
    }
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
