//! Collection: the only code that talks to AWS. This file is the orchestrator; read it
//! top-down to follow one scan:
//!
//! 1. **Plan** ([`plan`]): which accounts and regions the scan covers (the own account,
//!    listed roles, an Organization's accounts, this replica's shard; `regions: all` via
//!    DescribeRegions), and each account's credentials.
//! 2. **Collect** every (account, region), and each account's IAM roles when some rule pack
//!    expects roles, up to `scan.concurrency` at once. Each job builds its own clients
//!    from the account's config in its region ([`client`]), asks STS whose credentials
//!    they are ([`sts`]), then reads each service: [`collect_region`] reads [`ec2`],
//!    [`collect_iam`] reads [`iam`].
//! 3. **Assemble** the [`Snapshot`]: the failed entries of the plan, every region and IAM
//!    entry, the plan's DescribeRegions calls counted in the account's first region,
//!    sorted by account and region.
//!
//! A failing region, or every region of an account whose role cannot be assumed, is
//! returned with its `error` set and nothing else in it, so it can never be mistaken for
//! an empty, compliant region; the other regions and accounts carry on. Every API call is
//! counted per operation ([`client::ApiCallCounter`]) and the counts go into the snapshot;
//! every HTTP request waits for its service's rate limit ([`ratelimit`]).
//!
//! **Adding a service** (say `sqs`): a module `sqs.rs` beside [`ec2`] with a
//! `client(config, account, rate, counter)` built like [`ec2::client`] (the
//! [`client::limited_http_client`], the [`client::ApiCallCounter`], and
//! [`client::WholeXmlResponse`] for an XML protocol), one function per resource type
//! that pages through a [`client::PageGuard`] and names its `service:Operation` in its
//! errors (`tests/deploy.rs` derives the deployed IAM policy from those names), and a
//! `read_region` that fills its fields of the [`RegionSnapshot`]; then, in this file's
//! `read_region` (under [`collect_region`]), build its client and call its `read_region`.

// The plan of a scan, and what every AWS client is built with.
pub mod client;
pub mod error;
pub mod plan;
pub mod ratelimit;

// One module per AWS service read, each with its `client()`.
pub mod ec2;
pub mod ecr;
pub mod iam;
pub mod organizations;
pub mod secretsmanager;
pub mod sts;

use std::collections::BTreeSet;

use aws_config::SdkConfig;
use futures::stream::{self, StreamExt};

use crate::config::Settings;
use crate::snapshot::{
    EcrSnapshot, IamSnapshot, RegionSnapshot, SecretsSnapshot, Snapshot, SNAPSHOT_SCHEMA_VERSION,
};
use client::{in_region, ApiCallCounter};
pub use error::CollectError;
use plan::{check_account, AccountPlan, Plan, PlannedAccount};

/// The scope [`collect_matching`] asks about for an account's IAM: the region the reports
/// file IAM under (`rules::iam::GLOBAL_REGION`).
pub const IAM_SCOPE: &str = "global";

/// Collects every account and region the settings cover, this replica's shard of them,
/// into one snapshot, plus each account's IAM roles when some rule pack expects roles.
/// `Err` only when nothing can be collected at all (no region anywhere); a failing
/// account, region or Organization listing is a failed entry in the snapshot.
pub async fn collect(settings: &Settings) -> Result<Snapshot, CollectError> {
    collect_matching(settings, &|_, _| true).await
}

/// Like [`collect`], but only the (account, region) jobs `wanted` accepts; IAM is asked
/// for with the region `global`, and an account not yet identified (the own account
/// before STS answers) with an empty id. For event-driven re-scans of a few targets.
pub async fn collect_matching(
    settings: &Settings,
    wanted: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Result<Snapshot, CollectError> {
    // 1. Plan.
    let Plan {
        home_region,
        accounts,
        failed,
    } = plan::plan(settings).await?;

    // 2. Every (account, region), and each account's IAM, `concurrency` at a time.
    let mut regions_out: Vec<RegionSnapshot> = failed.into_iter().collect();
    let mut jobs: Vec<Job> = Vec::new();
    for account in &accounts {
        let id = account.account.id();
        match &account.regions {
            Ok(regions) => {
                for region in regions.names.iter().filter(|r| wanted(id, r)) {
                    jobs.push(Job::Region(account, region.clone()));
                }
                if settings.needs_iam() && wanted(id, IAM_SCOPE) {
                    // IAM is global: any region's endpoint serves it; use the first.
                    let region = regions
                        .names
                        .first()
                        .cloned()
                        .unwrap_or_else(|| home_region.clone());
                    jobs.push(Job::Iam(account, region));
                }
            }
            Err(failed) => {
                regions_out.push(failed.clone());
                if settings.needs_iam() && wanted(id, IAM_SCOPE) {
                    // IAM needs no region list: audit the roles even so.
                    jobs.push(Job::Iam(account, home_region.clone()));
                }
            }
        }
        // Only where a pack asks: a declared cross-account registry's account and region
        // (the own account's id is known only after STS), and each data plane region of a
        // pack that checks secrets.
        let mut registry_regions: Vec<String> = settings
            .packs
            .iter()
            .flat_map(|p| p.cross_account_ecr.iter())
            .filter(|r| {
                account.account.account_id.is_none() || r.registry_account.0 == account.account.id()
            })
            .map(|r| r.region.0.clone())
            .collect();
        registry_regions.sort();
        registry_regions.dedup();
        for region in registry_regions {
            jobs.push(Job::Ecr(account, region));
        }
        for region in crate::rules::secrets::regions_to_list(&settings.packs) {
            jobs.push(Job::Secrets(account, region));
        }
    }
    let concurrency = settings.scan.concurrency.max(1);
    // (The futures are made before they go into the stream: a closure in the stream that
    // borrows would make the scan's future not `Send`.)
    let running: Vec<_> = jobs.into_iter().map(|job| run_job(job, settings)).collect();
    let collected: Vec<Collected> = stream::iter(running)
        .buffer_unordered(concurrency)
        .collect()
        .await;

    // 3. Assemble.
    Ok(assemble(&accounts, regions_out, collected))
}

/// One unit of collection work: an account in a region, or an account's IAM (read through
/// the endpoint of the given region).
enum Job<'a> {
    Region(&'a PlannedAccount, String),
    Iam(&'a PlannedAccount, String),
    /// A declared cross-account registry's repositories in the account and region.
    Ecr(&'a PlannedAccount, String),
    /// The account's secrets in a data plane region.
    Secrets(&'a PlannedAccount, String),
}

enum Collected {
    // Boxed: a region's snapshot is several times the size of an account's IAM.
    Region(Box<RegionSnapshot>),
    Iam(IamSnapshot),
    /// `None`: the own account turned out not to hold a declared registry.
    Ecr(Option<EcrSnapshot>),
    Secrets(SecretsSnapshot),
}

async fn run_job(job: Job<'_>, settings: &Settings) -> Collected {
    match job {
        Job::Region(account, region) => Collected::Region(Box::new(
            collect_region(
                &account.account,
                &in_region(&account.config, &region),
                settings,
            )
            .await,
        )),
        Job::Iam(account, region) => Collected::Iam(
            collect_iam(
                &account.account,
                &in_region(&account.config, &region),
                settings,
            )
            .await,
        ),
        Job::Ecr(account, region) => Collected::Ecr(
            collect_ecr(
                &account.account,
                &in_region(&account.config, &region),
                settings,
            )
            .await,
        ),
        Job::Secrets(account, region) => Collected::Secrets(
            collect_secrets(
                &account.account,
                &in_region(&account.config, &region),
                settings,
            )
            .await,
        ),
    }
}

/// The snapshot of a scan: `regions` (the plan's failed entries, then what the jobs
/// returned) with each account's region-listing calls counted in its first region, and
/// the IAM entries, both sorted by account (and region).
fn assemble(
    accounts: &[PlannedAccount],
    mut regions: Vec<RegionSnapshot>,
    collected: Vec<Collected>,
) -> Snapshot {
    let (mut iam, mut ecr, mut secrets) = (Vec::new(), Vec::new(), Vec::new());
    for item in collected {
        match item {
            Collected::Region(region) => regions.push(*region),
            Collected::Iam(entry) => iam.push(entry),
            Collected::Ecr(entry) => ecr.extend(entry),
            Collected::Secrets(entry) => secrets.push(entry),
        }
    }
    for account in accounts {
        let Ok(listed) = &account.regions else {
            continue;
        };
        let Some(first) = listed.names.first() else {
            continue;
        };
        if listed.listing_calls.is_empty() {
            continue;
        }
        if let Some(snapshot) = regions
            .iter_mut()
            .find(|r| r.account_id == account.account.id() && r.region == *first)
        {
            for (operation, n) in &listed.listing_calls {
                *snapshot.api_calls.entry(operation.clone()).or_default() += n;
            }
        }
    }
    regions.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    iam.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    ecr.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    secrets.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        collected_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        regions,
        iam,
        ecr,
        secrets,
    }
}

/// Collects one region of one account. Never fails: a failure is recorded in the
/// result's `error`, under the plan's account id when STS could not say it.
pub async fn collect_region(
    plan: &AccountPlan,
    config: &SdkConfig,
    settings: &Settings,
) -> RegionSnapshot {
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let counter = ApiCallCounter::default();
    let mut snapshot = RegionSnapshot {
        account_id: plan.id().to_string(),
        region: region.clone(),
        ..Default::default()
    };
    match read_region(plan, config, &counter, settings, &mut snapshot).await {
        Ok(()) => {
            tracing::info!(account = %snapshot.account_id, region, resources = ?ec2::summary(&snapshot), "collected region");
        }
        Err(err) => {
            tracing::error!(account = plan.id(), region, error = %err, "collection failed");
            let account_id = match std::mem::take(&mut snapshot.account_id) {
                id if id.is_empty() => plan.id().to_string(),
                id => id,
            };
            snapshot = RegionSnapshot {
                account_id,
                region: region.clone(),
                error: Some((&err).into()),
                ..Default::default()
            };
        }
    }
    snapshot.api_calls = counter.counts();
    snapshot
}

/// Whose credentials, then each service's part of the region.
async fn read_region(
    plan: &AccountPlan,
    config: &SdkConfig,
    counter: &ApiCallCounter,
    settings: &Settings,
    out: &mut RegionSnapshot,
) -> Result<(), CollectError> {
    let (aws, scope) = (&settings.aws, &settings.scope);
    out.account_id = check_account(plan, sts::account_id(config, counter).await?)?;
    let rates = &settings.scan.rate_limits;

    let client = ec2::client(config, &out.account_id, rates.ec2, counter);
    ec2::read_region(
        &client,
        aws.max_pages,
        aws.vpc_attribute_concurrency,
        |vpc| scope.includes(vpc),
        |vpc| scope.skips_default(vpc).is_some(),
        out,
    )
    .await?;

    retain_in_scope(out);
    let lists = referenced_prefix_lists(out);
    if !lists.is_empty() {
        out.prefix_lists =
            ec2::prefix_list_entries(&client, lists, aws.max_pages, aws.vpc_attribute_concurrency)
                .await;
    }
    Ok(())
}

/// The managed prefix lists that the security groups of the (in-scope) interface endpoints
/// reference, each once: what `endpoint.security_group` needs resolved, and no more.
pub fn referenced_prefix_lists(region: &RegionSnapshot) -> Vec<String> {
    let endpoint_groups: BTreeSet<&str> = region
        .vpc_endpoints
        .iter()
        .flat_map(|e| e.security_group_ids.iter().map(String::as_str))
        .collect();
    let lists: BTreeSet<&str> = region
        .security_groups
        .iter()
        .filter(|g| endpoint_groups.contains(g.id.as_str()))
        .flat_map(|g| g.ingress.iter())
        .flat_map(|r| r.prefix_list_ids.iter().map(String::as_str))
        .collect();
    lists.into_iter().map(str::to_string).collect()
}

/// Collects the account's IAM roles. Never fails: a failure is recorded in `error`.
pub async fn collect_iam(
    plan: &AccountPlan,
    config: &SdkConfig,
    settings: &Settings,
) -> IamSnapshot {
    let counter = ApiCallCounter::default();
    let mut snapshot = IamSnapshot {
        account_id: plan.id().to_string(),
        ..Default::default()
    };
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let result = async {
        snapshot.account_id = check_account(plan, sts::account_id(config, &counter).await?)?;
        let client = iam::client(
            config,
            &snapshot.account_id,
            settings.scan.rate_limits.iam,
            &counter,
        );
        let roles = iam::roles(&client, settings.aws.max_pages).await?;
        let oidc = match settings.packs.iter().any(|p| p.custom_roles.is_some()) {
            true => Some(iam::oidc_providers(&client).await?),
            false => None,
        };
        Ok::<_, CollectError>((roles, oidc))
    }
    .await;
    match result {
        Ok((roles, oidc)) => {
            snapshot.oidc_providers = oidc;
            tracing::info!(account = %snapshot.account_id, roles = roles.len(), "collected IAM");
            snapshot.roles = roles;
        }
        Err(err) => {
            tracing::error!(account = plan.id(), region, error = %err, "IAM collection failed");
            snapshot.error = Some((&err).into());
        }
    }
    snapshot.api_calls = counter.counts();
    snapshot
}

/// Collects the repositories of the registries declared in this account and region, with
/// their policies. `None` when the account (the own one, whose id STS tells) holds no
/// declared registry here. Never fails: a failure is recorded in `error`.
pub async fn collect_ecr(
    plan: &AccountPlan,
    config: &SdkConfig,
    settings: &Settings,
) -> Option<EcrSnapshot> {
    let counter = ApiCallCounter::default();
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let mut snapshot = EcrSnapshot {
        account_id: plan.id().to_string(),
        region: region.clone(),
        ..Default::default()
    };
    let result = async {
        snapshot.account_id = check_account(plan, sts::account_id(config, &counter).await?)?;
        let registries =
            crate::rules::ecr::registries_in(&settings.packs, &snapshot.account_id, &region);
        if registries.is_empty() {
            return Ok(None);
        }
        let client = ecr::client(
            config,
            &snapshot.account_id,
            settings.scan.rate_limits.ec2,
            &counter,
        );
        ecr::repositories(&client, &registries, settings.aws.max_pages)
            .await
            .map(Some)
    }
    .await;
    match result {
        Ok(None) => return None,
        Ok(Some(repositories)) => {
            tracing::info!(account = %snapshot.account_id, region, repositories = repositories.len(), "collected ECR");
            snapshot.repositories = repositories;
        }
        Err(err) => {
            tracing::error!(account = plan.id(), region, error = %err, "ECR collection failed");
            snapshot.error = Some((&err).into());
        }
    }
    snapshot.api_calls = counter.counts();
    Some(snapshot)
}

/// Collects the names and ARNs of the account's secrets in the config's region. Never
/// fails: a failure is recorded in `error`.
pub async fn collect_secrets(
    plan: &AccountPlan,
    config: &SdkConfig,
    settings: &Settings,
) -> SecretsSnapshot {
    let counter = ApiCallCounter::default();
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let mut snapshot = SecretsSnapshot {
        account_id: plan.id().to_string(),
        region: region.clone(),
        ..Default::default()
    };
    let result = async {
        snapshot.account_id = check_account(plan, sts::account_id(config, &counter).await?)?;
        let client = secretsmanager::client(
            config,
            &snapshot.account_id,
            settings.scan.rate_limits.ec2,
            &counter,
        );
        secretsmanager::secrets(&client, settings.aws.max_pages).await
    }
    .await;
    match result {
        Ok(secrets) => {
            tracing::info!(account = %snapshot.account_id, region, secrets = secrets.len(), "collected secret names");
            snapshot.secrets = secrets;
        }
        Err(err) => {
            tracing::error!(account = plan.id(), region, error = %err, "Secrets Manager collection failed");
            snapshot.error = Some((&err).into());
        }
    }
    snapshot.api_calls = counter.counts();
    snapshot
}

/// Drops every resource that belongs to a VPC not in the snapshot (out of scope), so that
/// a snapshot holds only what is audited.
pub fn retain_in_scope(region: &mut RegionSnapshot) {
    let vpcs: BTreeSet<String> = region.vpcs.iter().map(|v| v.id.clone()).collect();
    let kept = |vpc: &str| vpcs.contains(vpc);
    region.subnets.retain(|s| kept(&s.vpc_id));
    region.route_tables.retain(|t| kept(&t.vpc_id));
    region
        .internet_gateways
        .retain(|g| g.attachments.iter().any(|a| kept(&a.vpc_id)));
    region
        .nat_gateways
        .retain(|n| n.vpc_id.as_deref().is_some_and(kept));
    region.vpc_endpoints.retain(|e| kept(&e.vpc_id));
    region
        .security_groups
        .retain(|g| g.vpc_id.as_deref().is_some_and(kept));
    region
        .transit_gateway_attachments
        .retain(|a| kept(&a.vpc_id));
    region
        .gwlb_endpoint_interfaces
        .retain(|n| n.vpc_id.as_deref().is_some_and(kept));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::builder::compliant_vpc;

    #[test]
    fn only_prefix_lists_of_endpoint_security_groups_are_read_each_once() {
        let mut region = compliant_vpc().build().regions.remove(0);
        assert!(referenced_prefix_lists(&region).is_empty());
        let endpoint_group = region
            .vpc_endpoints
            .iter()
            .find_map(|e| e.security_group_ids.first())
            .cloned()
            .unwrap();
        for group in region.security_groups.iter_mut() {
            group.ingress[0].prefix_list_ids = vec!["pl-b".into(), "pl-a".into()];
        }
        region.security_groups.push(crate::snapshot::SecurityGroup {
            id: "sg-unrelated".into(),
            vpc_id: Some("vpc-good".into()),
            ingress: vec![crate::snapshot::IngressRule {
                protocol: "-1".into(),
                prefix_list_ids: vec!["pl-unrelated".into()],
                ..Default::default()
            }],
        });
        assert!(region
            .security_groups
            .iter()
            .any(|g| g.id == endpoint_group));
        assert_eq!(
            referenced_prefix_lists(&region),
            vec!["pl-a".to_string(), "pl-b".to_string()]
        );
    }

    #[test]
    fn retain_in_scope_drops_resources_of_vpcs_not_in_the_snapshot() {
        let mut region = compliant_vpc()
            .subnet("subnet-other", "vpc-other", "us-east-1a", "172.31.0.0/20")
            .route_table("rtb-other", "vpc-other", true, Some("igw-other"), &[])
            .igw("igw-other", "vpc-other")
            .build()
            .regions
            .remove(0);
        let before = region.subnets.len();
        retain_in_scope(&mut region);
        assert_eq!(region.subnets.len(), before - 1);
        assert!(region.route_tables.iter().all(|t| t.vpc_id == "vpc-good"));
        assert_eq!(region.internet_gateways.len(), 1);
    }
}
