//! Collection: the only code that talks to AWS.
//!
//! A scan first decides which accounts and regions it covers ([`accounts`]: the own
//! account, listed roles, an Organization's accounts, this replica's shard), then collects
//! every (account, region), and each account's IAM roles, up to `scan.concurrency` at
//! once. For each region, one task builds its own clients from the account's `SdkConfig`,
//! makes one paginated call per resource type (see [`ec2`]), and returns a
//! [`RegionSnapshot`]. A failing region, or every region of an account whose role cannot
//! be assumed, is returned with its `error` set and nothing else in it, so it can never be
//! mistaken for an empty, compliant region; the other regions and accounts carry on.
//! Every API call is counted per operation by an interceptor, and the counts go into the
//! snapshot; every HTTP request waits for its service's rate limit ([`ratelimit`]).

pub mod accounts;
pub mod ec2;
pub mod iam;
pub mod ratelimit;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use futures::stream::{self, StreamExt};

use crate::config::accounts::{RateLimit, RegionSelection};
use crate::config::{AwsSettings, RetryMode, Settings};
use crate::snapshot::{
    CollectionError, IamSnapshot, RegionSnapshot, Snapshot, SNAPSHOT_SCHEMA_VERSION,
};
use accounts::{AccountPlan, Sessions};
use ratelimit::{RateLimitedHttpClient, RateLimiter};

/// Why collecting a region failed. Each variant knows the AWS operation it failed in.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{operation}: {message}")]
    Aws {
        operation: &'static str,
        /// The AWS error code, e.g. `UnauthorizedOperation` or `Throttling`, when there is one.
        code: Option<String>,
        message: String,
    },
    #[error("{operation}: unexpected response: {message}")]
    Malformed {
        operation: &'static str,
        message: String,
    },
    /// A paginated call that did not end properly: a token repeated, or more pages than
    /// `aws.max_pages`. Stopping there would report a partial list as the whole.
    #[error("{operation}: pagination did not end: {message}")]
    Pagination {
        operation: &'static str,
        message: String,
    },
    #[error("no AWS region configured: set AWS_REGION, a profile region, `regions:` in the config, or --region")]
    NoRegion,
}

impl CollectError {
    pub fn aws<E, R>(operation: &'static str, err: SdkError<E, R>) -> CollectError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().map(str::to_string);
        CollectError::Aws {
            operation,
            code,
            message: DisplayErrorContext(&err).to_string(),
        }
    }

    pub fn operation(&self) -> Option<&'static str> {
        match self {
            CollectError::Aws { operation, .. }
            | CollectError::Malformed { operation, .. }
            | CollectError::Pagination { operation, .. } => Some(operation),
            CollectError::NoRegion => None,
        }
    }
}

impl From<&CollectError> for CollectionError {
    fn from(err: &CollectError) -> Self {
        CollectionError {
            operation: err.operation().map(str::to_string),
            message: err.to_string(),
        }
    }
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
            let key = format!("{}:{}", meta.service().to_ascii_lowercase(), meta.name());
            if let Ok(mut counts) = self.counts.lock() {
                *counts.entry(key).or_default() += 1;
            }
        }
        Ok(())
    }
}

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

/// Collects every account and region the settings cover, this replica's shard of them,
/// into one snapshot, plus each account's IAM roles when some rule pack expects roles.
/// `Err` only when nothing can be collected at all (no region anywhere); a failing
/// account, region or Organization listing is a failed entry in the snapshot.
pub async fn collect(settings: &Settings) -> Result<Snapshot, CollectError> {
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

    let mut regions_out: Vec<RegionSnapshot> = Vec::new();
    let plans = match account_plans(settings, &base).await {
        Ok(plans) => plans,
        Err(failed) => {
            regions_out.push(failed);
            Vec::new()
        }
    };

    // Each account's credentials and regions (DescribeRegions for `all`).
    let concurrency = settings.scan.concurrency.max(1);
    // (The futures are made before they go into the stream: a closure in the stream that
    // borrows would make the scan's future not `Send`.)
    let resolving: Vec<_> = plans
        .into_iter()
        .map(|plan| resolve_account(plan, &base, &default_regions, settings))
        .collect();
    let resolved: Vec<ResolvedAccount> = stream::iter(resolving)
        .buffer_unordered(concurrency)
        .collect()
        .await;

    // Every (account, region), and each account's IAM, `concurrency` at a time.
    let mut jobs: Vec<Job> = Vec::new();
    // DescribeRegions calls, counted in the account's first region.
    let mut listing_calls: Vec<(&str, &str, &BTreeMap<String, u64>)> = Vec::new();
    for (plan, config, regions) in &resolved {
        match regions {
            Ok((regions, calls)) => {
                if let Some(first) = regions.first().filter(|_| !calls.is_empty()) {
                    listing_calls.push((plan.id(), first, calls));
                }
                for region in regions {
                    jobs.push(Job::Region(plan, config, region.clone()));
                }
                if settings.needs_iam() {
                    // IAM is global: any region's endpoint serves it; use the first.
                    let region = regions
                        .first()
                        .cloned()
                        .unwrap_or_else(|| home_region.clone());
                    jobs.push(Job::Iam(plan, config, region));
                }
            }
            Err(failed) => {
                regions_out.push(failed.clone());
                if settings.needs_iam() {
                    // IAM needs no region list: audit the roles even so.
                    jobs.push(Job::Iam(plan, config, home_region.clone()));
                }
            }
        }
    }
    let running: Vec<_> = jobs.into_iter().map(|job| run_job(job, settings)).collect();
    let collected: Vec<Collected> = stream::iter(running)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut iam_out = Vec::new();
    for item in collected {
        match item {
            Collected::Region(region) => regions_out.push(*region),
            Collected::Iam(iam) => iam_out.push(iam),
        }
    }
    for (account, region, calls) in listing_calls {
        if let Some(snapshot) = regions_out
            .iter_mut()
            .find(|r| r.account_id == account && r.region == region)
        {
            for (operation, n) in calls {
                *snapshot.api_calls.entry(operation.clone()).or_default() += n;
            }
        }
    }
    regions_out.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    iam_out.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    Ok(Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        collected_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        regions: regions_out,
        iam: iam_out,
    })
}

/// An account with its credentials and its regions (with the API calls that listed them),
/// or the failed entry of its region listing.
type ResolvedAccount = (
    AccountPlan,
    SdkConfig,
    Result<(Vec<String>, BTreeMap<String, u64>), RegionSnapshot>,
);

async fn resolve_account(
    plan: AccountPlan,
    base: &SdkConfig,
    default_regions: &[String],
    settings: &Settings,
) -> ResolvedAccount {
    let config = Sessions::global()
        .config_for(&plan.access, base, &settings.aws)
        .await;
    let regions = match &plan.regions {
        None => Ok((default_regions.to_vec(), BTreeMap::new())),
        Some(RegionSelection::Named(names)) => {
            Ok((names.iter().map(|r| r.0.clone()).collect(), BTreeMap::new()))
        }
        Some(RegionSelection::All(_)) => {
            let counter = ApiCallCounter::default();
            accounts::enabled_regions(&config, plan.id(), settings, &counter)
                .await
                .map(|regions| (regions, counter.counts()))
                .map_err(|err| {
                    tracing::error!(account = plan.id(), error = %err, "cannot list the account's regions");
                    failed_region(plan.id(), "all", &err, &counter)
                })
        }
    };
    (plan, config, regions)
}

/// One unit of collection work.
enum Job<'a> {
    Region(&'a AccountPlan, &'a SdkConfig, String),
    Iam(&'a AccountPlan, &'a SdkConfig, String),
}

enum Collected {
    // Boxed: a region's snapshot is several times the size of an account's IAM.
    Region(Box<RegionSnapshot>),
    Iam(IamSnapshot),
}

async fn run_job(job: Job<'_>, settings: &Settings) -> Collected {
    match job {
        Job::Region(plan, config, region) => Collected::Region(Box::new(
            collect_region(plan, &accounts::in_region(config, &region), settings).await,
        )),
        Job::Iam(plan, config, region) => {
            Collected::Iam(collect_iam(plan, &accounts::in_region(config, &region), settings).await)
        }
    }
}

/// The accounts this scan covers. `Err` is the failed entry to report when the
/// Organization cannot be listed, or the own account cannot be identified for sharding.
async fn account_plans(
    settings: &Settings,
    base: &SdkConfig,
) -> Result<Vec<AccountPlan>, RegionSnapshot> {
    let listed = accounts::listed_accounts(&settings.accounts);
    let discovered = match &settings.organizations {
        None => Vec::new(),
        Some(discovery) => {
            let counter = ApiCallCounter::default();
            let found =
                accounts::list_organization_accounts(base, &settings.aws, settings, &counter)
                    .await
                    .map_err(|err| {
                        tracing::error!(error = %err, "cannot list the Organization's accounts");
                        failed_region("", "organizations", &err, &counter)
                    })?;
            accounts::discovered_accounts(discovery, &found)
        }
    };
    if settings.accounts.is_empty() && settings.organizations.is_none() {
        let mut own = AccountPlan {
            account_id: None,
            access: accounts::Access::Own,
            regions: None,
        };
        if !settings.shard.is_whole() {
            // Sharding the own account needs its id.
            let counter = ApiCallCounter::default();
            let id = account_id(base, &counter).await.map_err(|err| {
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
    let plans = accounts::merge_and_shard(listed, discovered, settings.shard);
    tracing::info!(shard = %settings.shard, accounts = plans.len(), "accounts to audit");
    Ok(plans)
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

/// Checks that the credentials are for the account the plan expects: a role ARN that
/// names one account but yields credentials for another is misconfigured, and auditing
/// the wrong account under the expected one's name would be worse than failing.
fn check_account(plan: &AccountPlan, actual: String) -> Result<String, CollectError> {
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

/// Collects the account's IAM roles. Never fails: a failure is recorded in `error`.
pub async fn collect_iam(
    plan: &AccountPlan,
    config: &SdkConfig,
    settings: &Settings,
) -> IamSnapshot {
    let aws = &settings.aws;
    let counter = ApiCallCounter::default();
    let mut snapshot = IamSnapshot {
        account_id: plan.id().to_string(),
        ..Default::default()
    };
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let result = async {
        snapshot.account_id = check_account(plan, account_id(config, &counter).await?)?;
        let client = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(config)
                .http_client(limited_http_client(
                    "iam",
                    &snapshot.account_id,
                    "global",
                    settings.scan.rate_limits.iam,
                ))
                .interceptor(counter.clone())
                .interceptor(WholeXmlResponse)
                .build(),
        );
        iam::roles(&client, aws.max_pages).await
    }
    .await;
    match result {
        Ok(roles) => {
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

/// The account the credentials belong to.
async fn account_id(config: &SdkConfig, counter: &ApiCallCounter) -> Result<String, CollectError> {
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(config)
            .interceptor(counter.clone())
            .interceptor(WholeXmlResponse)
            .build(),
    );
    let identity = sts
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
    match collect_region_inner(plan, config, &counter, settings, &mut snapshot).await {
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

async fn collect_region_inner(
    plan: &AccountPlan,
    config: &SdkConfig,
    counter: &ApiCallCounter,
    settings: &Settings,
    out: &mut RegionSnapshot,
) -> Result<(), CollectError> {
    let (aws, scope) = (&settings.aws, &settings.scope);
    out.account_id = check_account(plan, account_id(config, counter).await?)?;
    let client = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(config)
            .http_client(limited_http_client(
                "ec2",
                &out.account_id,
                &out.region,
                settings.scan.rate_limits.ec2,
            ))
            .interceptor(counter.clone())
            .interceptor(WholeXmlResponse)
            .build(),
    );
    let pages = aws.max_pages;
    let (
        azs,
        vpcs,
        subnets,
        route_tables,
        igws,
        nats,
        endpoints,
        groups,
        tgw_attachments,
        gwlb_enis,
    ) = tokio::try_join!(
        ec2::availability_zones(&client),
        ec2::vpcs(&client, pages),
        ec2::subnets(&client, pages),
        ec2::route_tables(&client, pages),
        ec2::internet_gateways(&client, pages),
        ec2::nat_gateways(&client, pages),
        ec2::vpc_endpoints(&client, pages),
        ec2::security_groups(&client, pages),
        ec2::transit_gateway_attachments(&client, pages),
        ec2::gwlb_endpoint_interfaces(&client, pages),
    )?;
    let mut vpcs: Vec<_> = vpcs.into_iter().filter(|v| scope.includes(v)).collect();
    ec2::vpc_dns_attributes(&client, &mut vpcs, aws.vpc_attribute_concurrency).await?;

    out.availability_zones = azs;
    out.vpcs = vpcs;
    out.subnets = subnets;
    out.route_tables = route_tables;
    out.internet_gateways = igws;
    out.nat_gateways = nats;
    out.vpc_endpoints = endpoints;
    out.security_groups = groups;
    out.transit_gateway_attachments = tgw_attachments;
    out.gwlb_endpoint_interfaces = gwlb_enis;
    retain_in_scope(out);
    Ok(())
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
