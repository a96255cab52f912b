//! Evaluation: the pure function from a snapshot and rule packs to findings.
//!
//! Nothing here does I/O or reads a clock. Each rule is a small function in the module of
//! its area (`vpc`, `subnet`, `nat`, `endpoint`) that looks at one VPC's indexed topology and
//! reports through a [`Sink`], which stamps every finding with its rule id, severity, pack,
//! account, region and VPC, and counts the resources each rule evaluated.
//!
//! Regions whose collection failed are not evaluated at all: the report shows them as
//! failed, so a failure can never read as "no findings".

pub mod catalogue;
pub mod cidr;
pub mod data_plane;
pub mod ecr;
pub mod endpoint;
pub mod handover;
pub mod iam;
pub mod nat;
pub mod pack;
pub mod role_checks;
pub mod secrets;
pub mod subnet;
pub mod topology;
pub mod vpc;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity};
use crate::snapshot::Snapshot;
use crate::values::{Scope, DEFAULT_VPC_SKIPPED};

use catalogue::{rule_info, RuleInfo};
use pack::RulePack;
use topology::{RegionTopology, VpcView};

/// What evaluation produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Sorted by account, region, VPC, rule and resource.
    pub findings: Vec<Finding>,
    /// How many resources each rule evaluated, across all packs and regions.
    pub evaluated: BTreeMap<String, u64>,
    /// The same per account: account id → rule id → resources evaluated.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evaluated_by_account: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every VPC that was audited, so a clean VPC is visible as clean.
    pub vpcs: Vec<AuditedVpc>,
    /// VPCs in the snapshot that were not audited, each with the reason: today each
    /// region's default VPC unless the config asks for it. Listed so that a VPC the audit
    /// left out never silently vanishes from the reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedVpc>,
    /// Things a person should know that are not findings, e.g. a value not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Parts of the account that rules needed but the snapshot lacks: the audit is
    /// incomplete, and the report shows each as a failed scan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<IncompleteScope>,
    /// Active suppressions that matched no finding.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stale_suppressions: usize,
    /// Every (rule, resource) evaluated, pass or fail, when asked for with
    /// [`evaluate_recording_checks`] (the JUnit report's test cases); `None` otherwise, so
    /// a large account does not pay for a list nobody reads.
    #[serde(skip)]
    pub checked: Option<Vec<CheckedResource>>,
    /// The guide's handover list per data plane (`rules::handover`), for packs that have
    /// one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handover: Vec<handover::HandoverSheet>,
    /// Pinned roles seen for the first time, pinned by this evaluation: the scan adds them
    /// to the pin state file.
    #[serde(skip)]
    pub new_pins: Vec<crate::values::pins::RolePin>,
}

/// One resource one rule evaluated, whether or not it passed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckedResource {
    pub rule_id: &'static str,
    pub pack: String,
    pub account_id: String,
    pub region: String,
    pub resource_id: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Something the rules needed that the snapshot does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteScope {
    pub account_id: String,
    pub region: String,
    pub message: String,
}

/// A VPC in scope of the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditedVpc {
    pub account_id: String,
    pub region: String,
    pub vpc_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub cidr_block: Option<String>,
    pub is_default: bool,
}

/// A VPC the audit did not evaluate, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedVpc {
    pub account_id: String,
    pub region: String,
    pub vpc_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub cidr_block: Option<String>,
    pub is_default: bool,
    pub reason: String,
}

/// Evaluates every enabled rule of every pack on every in-scope VPC of every region that
/// was collected completely.
pub fn evaluate(snapshot: &Snapshot, packs: &[RulePack], scope: &Scope) -> Evaluation {
    evaluate_into(Evaluation::default(), snapshot, packs, scope)
}

/// Like [`evaluate`], and also lists every (rule, resource) evaluated in
/// [`Evaluation::checked`], sorted.
pub fn evaluate_recording_checks(
    snapshot: &Snapshot,
    packs: &[RulePack],
    scope: &Scope,
) -> Evaluation {
    let start = Evaluation {
        checked: Some(Vec::new()),
        ..Default::default()
    };
    let mut eval = evaluate_into(start, snapshot, packs, scope);
    if let Some(checked) = eval.checked.as_mut() {
        checked.sort();
        checked.dedup();
    }
    eval
}

fn evaluate_into(
    mut eval: Evaluation,
    snapshot: &Snapshot,
    packs: &[RulePack],
    scope: &Scope,
) -> Evaluation {
    for region in snapshot.regions.iter().filter(|r| r.error.is_none()) {
        let mut topo = RegionTopology::build(region);
        for view in topo.vpcs.iter_mut() {
            if let Some(plane) =
                declared_plane(scope, &region.account_id, &region.region, &view.vpc.id)
            {
                view.declare(&plane.name, &plane.public_ids(), &plane.private_ids());
            }
        }
        let topo = topo;
        // Per pack, the role ARNs of the region's account, found once (`handover`).
        let mut role_arns: BTreeMap<usize, handover::RoleArns> = BTreeMap::new();
        // The default VPCs skipped at collection, and those the snapshot holds but the
        // scope skips (a snapshot replayed under another config).
        let mut skipped: Vec<SkippedVpc> = Vec::new();
        let collected = region.skipped_vpcs.iter().map(|v| (v, DEFAULT_VPC_SKIPPED));
        let by_scope = region
            .vpcs
            .iter()
            .filter_map(|v| scope.skips_default(v).map(|why| (v, why)));
        for (vpc, why) in collected.chain(by_scope) {
            if skipped.iter().all(|s| s.vpc_id != vpc.id) {
                skipped.push(SkippedVpc {
                    account_id: region.account_id.clone(),
                    region: region.region.clone(),
                    vpc_id: vpc.id.clone(),
                    name: vpc.tags.get("Name").cloned(),
                    cidr_block: vpc.cidr_block.clone(),
                    is_default: vpc.is_default,
                    reason: why.to_string(),
                });
            }
        }
        eval.skipped.extend(skipped);
        for view in topo.vpcs.iter().filter(|v| scope.includes(v.vpc)) {
            eval.vpcs.push(AuditedVpc {
                account_id: region.account_id.clone(),
                region: region.region.clone(),
                vpc_id: view.vpc.id.clone(),
                name: view.vpc.tags.get("Name").cloned(),
                cidr_block: view.vpc.cidr_block.clone(),
                is_default: view.vpc.is_default,
            });
            let plane = declared_plane(scope, &region.account_id, &region.region, &view.vpc.id);
            let at = (region.account_id.as_str(), region.region.as_str());
            handover_sheets(
                &mut eval,
                snapshot,
                packs,
                scope,
                &mut role_arns,
                at,
                view,
                plane,
            );
            for pack in packs {
                match plane {
                    // A declared VPC is judged by the pack its declaration names.
                    Some(plane) if plane.pack != pack.name => {}
                    Some(plane) => {
                        evaluate_vpc(&mut eval, &topo, view, pack);
                        data_plane::evaluate_declared(&mut eval, &topo, view, plane, pack);
                    }
                    None => evaluate_vpc(&mut eval, &topo, view, pack),
                }
            }
        }
    }
    missing_data_plane_vpcs(&mut eval, snapshot, packs, scope);
    unverified_handovers(&mut eval, snapshot, packs, scope);
    // The secrets checks read the roles' policies too.
    if packs
        .iter()
        .any(|p| !p.roles.is_empty() || p.secrets_manager.is_some())
    {
        let accounts: std::collections::BTreeSet<&str> = snapshot
            .regions
            .iter()
            .map(|r| r.account_id.as_str())
            .filter(|a| !a.is_empty())
            .collect();
        for account in accounts {
            if !snapshot.iam.iter().any(|i| i.account_id == account) {
                eval.incomplete.push(IncompleteScope {
                    account_id: account.to_string(),
                    region: iam::GLOBAL_REGION.to_string(),
                    message:
                        "a rule pack needs IAM roles, but IAM was not collected for this account"
                            .to_string(),
                });
            }
        }
        for pack in packs {
            iam::evaluate_pack(&mut eval, snapshot, pack);
        }
    }
    for pack in packs {
        ecr::evaluate_pack(&mut eval, snapshot, pack);
        secrets::evaluate_pack(&mut eval, snapshot, pack);
        role_checks::evaluate(&mut eval, snapshot, pack, scope);
    }
    eval.findings
        .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    eval.notes.sort();
    eval.notes.dedup();
    eval
}

/// Adds the handover sheets of one audited VPC: its declared data plane's, when the pack
/// the declaration names has a handover list; otherwise one per pack with a list that no
/// declared data plane names (a sheet derived from the subnet classes).
#[allow(clippy::too_many_arguments)]
fn handover_sheets(
    eval: &mut Evaluation,
    snapshot: &Snapshot,
    packs: &[RulePack],
    scope: &Scope,
    role_arns: &mut BTreeMap<usize, handover::RoleArns>,
    (account, region): (&str, &str),
    view: &VpcView,
    plane: Option<&crate::values::data_plane::DataPlane>,
) {
    for (index, pack) in packs.iter().enumerate() {
        let Some(list) = &pack.handover else {
            continue;
        };
        let applies = match plane {
            Some(plane) => plane.pack == pack.name,
            None => !scope.data_planes.iter().any(|p| p.pack == pack.name),
        };
        if !applies {
            continue;
        }
        let roles = role_arns.entry(index).or_insert_with(|| {
            let iam = snapshot.iam.iter().find(|i| i.account_id == account);
            handover::role_arns(pack, iam, region)
        });
        eval.handover.push(handover::sheet(
            pack, list, view, plane, account, region, roles,
        ));
    }
}

/// Adds a sheet, saying why nothing was verified, for each declared data plane under a
/// pack with a handover list whose VPC was not audited.
fn unverified_handovers(
    eval: &mut Evaluation,
    snapshot: &Snapshot,
    packs: &[RulePack],
    scope: &Scope,
) {
    for plane in &scope.data_planes {
        let Some(pack) = packs.iter().find(|p| p.name == plane.pack) else {
            continue;
        };
        let Some(list) = &pack.handover else {
            continue;
        };
        if eval
            .handover
            .iter()
            .any(|s| s.data_plane.as_deref() == Some(plane.name.as_str()))
        {
            continue;
        }
        let scans = plane_scans(snapshot, plane);
        let account = plane
            .account_id
            .as_ref()
            .map(|a| a.0.clone())
            .or_else(|| scans.first().map(|r| r.account_id.clone()))
            .unwrap_or_default();
        let why = if scans.is_empty() {
            format!("region {} was not scanned", plane.region.0)
        } else if scans.iter().any(|r| r.error.is_some()) {
            format!("the scan of {} failed (see the scans)", plane.region.0)
        } else if scans
            .iter()
            .any(|r| r.vpcs.iter().any(|v| v.id == plane.vpc_id.0))
        {
            format!("VPC {} is outside the audit's scope", plane.vpc_id.0)
        } else {
            format!(
                "VPC {} does not exist in {} (data_plane.vpc_missing)",
                plane.vpc_id.0, plane.region.0
            )
        };
        eval.handover
            .push(handover::unverified_sheet(pack, list, plane, &account, why));
    }
}

/// The region scans a declared data plane's VPC could be in: its region, in its account
/// (any account when the declaration names none).
fn plane_scans<'s>(
    snapshot: &'s Snapshot,
    plane: &crate::values::data_plane::DataPlane,
) -> Vec<&'s crate::snapshot::RegionSnapshot> {
    snapshot
        .regions
        .iter()
        .filter(|r| r.region == plane.region.0)
        .filter(|r| {
            plane
                .account_id
                .as_ref()
                .is_none_or(|a| a.0 == r.account_id)
        })
        .collect()
}

/// The data plane the config declares for this VPC, if any.
fn declared_plane<'s>(
    scope: &'s Scope,
    account_id: &str,
    region: &str,
    vpc_id: &str,
) -> Option<&'s crate::values::data_plane::DataPlane> {
    scope.data_planes.iter().find(|p| {
        p.vpc_id.0 == vpc_id
            && p.region.0 == region
            && p.account_id.as_ref().is_none_or(|a| a.0 == account_id)
    })
}

/// Reports each declared data plane whose VPC is in none of the region's completed
/// scans. A region that failed, or was not scanned, says nothing about the VPC (the report
/// shows the failure), so nothing is reported for it.
fn missing_data_plane_vpcs(
    eval: &mut Evaluation,
    snapshot: &Snapshot,
    packs: &[RulePack],
    scope: &Scope,
) {
    for plane in &scope.data_planes {
        let scans = plane_scans(snapshot, plane);
        if scans.is_empty() {
            eval.notes.push(format!(
                "data plane {}: region {} was not scanned, so VPC {} was not audited",
                plane.name, plane.region.0, plane.vpc_id.0
            ));
            continue;
        }
        if scans.iter().any(|r| r.error.is_some())
            || scans
                .iter()
                .any(|r| r.vpcs.iter().any(|v| v.id == plane.vpc_id.0))
        {
            continue;
        }
        let Some(pack) = packs.iter().find(|p| p.name == plane.pack) else {
            continue;
        };
        let finding_scope = FindingScope {
            account_id: plane
                .account_id
                .as_ref()
                .map(|a| a.0.clone())
                .unwrap_or_else(|| scans[0].account_id.clone()),
            region: plane.region.0.clone(),
            vpc_id: Some(plane.vpc_id.0.clone()),
        };
        if let Some(mut sink) =
            Sink::new(eval, pack, catalogue::DATA_PLANE_VPC_MISSING, finding_scope)
        {
            data_plane::vpc_missing(plane, &mut sink);
        }
    }
}

fn evaluate_vpc(eval: &mut Evaluation, topo: &RegionTopology, view: &VpcView, pack: &RulePack) {
    let rules = &pack.vpc_rules;
    macro_rules! run {
        ($field:ident, $check:expr) => {
            if let Some(settings) = &rules.$field {
                let scope = FindingScope {
                    account_id: topo.region.account_id.clone(),
                    region: topo.region.region.clone(),
                    vpc_id: Some(view.vpc.id.clone()),
                };
                let mut sink = Sink::new(eval, pack, $check.0, scope);
                if let Some(sink) = sink.as_mut() {
                    ($check.1)(view, topo, settings, sink);
                }
            }
        };
    }
    run!(az_count, vpc::AZ_COUNT);
    run!(cidr_size, vpc::CIDR_SIZE);
    run!(igw_attached, vpc::IGW_ATTACHED);
    run!(dns_attributes, vpc::DNS_ATTRIBUTES);
    run!(public_subnet_per_az, vpc::PUBLIC_SUBNET_PER_AZ);
    run!(private_subnet_per_az, vpc::PRIVATE_SUBNET_PER_AZ);
    run!(private_size, subnet::PRIVATE_SIZE);
    run!(public_size, subnet::PUBLIC_SIZE);
    run!(private_egress, subnet::PRIVATE_EGRESS);
    run!(corporate_egress, vpc::CORPORATE_EGRESS);
    run!(ip_capacity, subnet::IP_CAPACITY);
    run!(nat_in_public_subnet, nat::IN_PUBLIC_SUBNET);
    run!(nat_same_az, nat::SAME_AZ);
    run!(s3_gateway, endpoint::S3_GATEWAY);
    run!(interface_required, endpoint::INTERFACE_REQUIRED);
    run!(interface_az_coverage, endpoint::INTERFACE_AZ_COVERAGE);
    run!(private_dns, endpoint::PRIVATE_DNS);
    run!(endpoint_security_group, endpoint::SECURITY_GROUP);
}

/// A rule: its id, and the function that checks one VPC with the rule's settings.
pub type Rule<S> = (&'static str, fn(&VpcView, &RegionTopology, &S, &mut Sink));

/// Where a finding belongs: account, region and VPC (if any).
#[derive(Debug, Clone)]
pub struct FindingScope {
    pub account_id: String,
    pub region: String,
    pub vpc_id: Option<String>,
}

/// Where a rule reports: stamps findings with everything but the rule's own evidence.
pub struct Sink<'e> {
    eval: &'e mut Evaluation,
    info: &'static RuleInfo,
    severity: Severity,
    pack: String,
    scope: FindingScope,
}

impl<'e> Sink<'e> {
    /// `None` when the pack switched the rule off.
    pub fn new(
        eval: &'e mut Evaluation,
        pack: &RulePack,
        rule_id: &'static str,
        scope: FindingScope,
    ) -> Option<Sink<'e>> {
        if !pack.is_enabled(rule_id) {
            return None;
        }
        let info = rule_info(rule_id)?;
        Some(Sink {
            eval,
            info,
            severity: pack.severity(rule_id),
            pack: pack.name.clone(),
            scope,
        })
    }

    /// Records something a person should know that is not a finding.
    pub fn note(&mut self, text: String) {
        self.eval.notes.push(text);
    }

    /// Counts one resource the rule looked at, whether or not it passed (and lists it, when
    /// the evaluation records checks).
    pub fn evaluated(&mut self, resource_id: &str) {
        *self
            .eval
            .evaluated
            .entry(self.info.id.to_string())
            .or_default() += 1;
        *self
            .eval
            .evaluated_by_account
            .entry(self.scope.account_id.clone())
            .or_default()
            .entry(self.info.id.to_string())
            .or_default() += 1;
        if let Some(checked) = self.eval.checked.as_mut() {
            checked.push(CheckedResource {
                rule_id: self.info.id,
                pack: self.pack.clone(),
                account_id: self.scope.account_id.clone(),
                region: self.scope.region.clone(),
                resource_id: resource_id.to_string(),
            });
        }
    }

    pub fn region(&self) -> &str {
        &self.scope.region
    }

    /// Records a finding at `severity` instead of the rule's: for evidence that is weaker
    /// than the rule's failure, such as a check the snapshot cannot verify.
    pub fn report_at(
        &mut self,
        severity: Severity,
        resource_id: &str,
        message: String,
        remediation: String,
        details: serde_json::Value,
    ) {
        let lowered = severity.min(self.severity);
        let rule_severity = std::mem::replace(&mut self.severity, lowered);
        self.report(resource_id, message, remediation, details);
        self.severity = rule_severity;
    }

    /// Records a finding on `resource_id` (of the rule's resource type).
    pub fn report(
        &mut self,
        resource_id: &str,
        message: String,
        remediation: String,
        details: serde_json::Value,
    ) {
        let severity = self.severity;
        self.report_with_severity(severity, resource_id, message, remediation, details);
    }

    /// Records a finding whose severity depends on what is at stake (a trust policy opened
    /// to another account, or only narrowed), instead of the rule's.
    pub fn report_with_severity(
        &mut self,
        severity: Severity,
        resource_id: &str,
        message: String,
        remediation: String,
        details: serde_json::Value,
    ) {
        self.eval.findings.push(Finding {
            rule_id: self.info.id.to_string(),
            severity,
            pack: self.pack.clone(),
            account_id: self.scope.account_id.clone(),
            region: self.scope.region.clone(),
            resource_type: self.info.resource_type,
            resource_id: resource_id.to_string(),
            vpc_id: self.scope.vpc_id.clone(),
            message,
            remediation,
            details,
            baseline: None,
            suppressed: None,
        });
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Runs the embedded pack on a hand-built snapshot and picks out findings.

    use super::*;
    use crate::snapshot::Snapshot;

    /// The shipped union-byoc pack without its role expectations: the VPC rules alone,
    /// for snapshots that hold no IAM.
    pub fn vpc_pack() -> RulePack {
        RulePack {
            roles: Vec::new(),
            ..RulePack::embedded(&|_| None).expect("the embedded pack loads")
        }
    }

    pub fn run(snapshot: &Snapshot) -> Evaluation {
        evaluate(snapshot, &[vpc_pack()], &Scope::default())
    }

    /// The findings of one rule.
    pub fn findings_of(snapshot: &Snapshot, rule_id: &str) -> Vec<Finding> {
        run(snapshot)
            .findings
            .into_iter()
            .filter(|f| f.rule_id == rule_id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::CollectionError;

    #[test]
    fn compliant_vpc_has_no_findings_and_every_rule_evaluated_something() {
        let snapshot = compliant_vpc().build();
        let eval = run(&snapshot);
        assert_eq!(eval.findings, vec![], "compliant VPC must be clean");
        // The data plane rules only run on a declared data plane.
        for id in pack::VpcRules::IDS
            .iter()
            .filter(|id| !id.starts_with("data_plane."))
        {
            assert!(
                eval.evaluated.get(*id).copied().unwrap_or(0) > 0,
                "{id} evaluated nothing"
            );
        }
        assert_eq!(eval.vpcs.len(), 1);
    }

    #[test]
    fn failed_region_is_not_evaluated_so_it_cannot_read_as_clean() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.error = Some(CollectionError {
                    operation: Some("ec2:DescribeSubnets".into()),
                    message: "throttled".into(),
                })
            })
            .build();
        let eval = run(&snapshot);
        assert!(eval.findings.is_empty());
        assert!(eval.vpcs.is_empty());
        assert!(eval.evaluated.is_empty());
    }

    #[test]
    fn scope_excludes_default_vpc_when_asked() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpcs[0].is_default = true)
            .build();
        let scope = Scope {
            exclude_default_vpc: true,
            ..Default::default()
        };
        let eval = evaluate(&snapshot, &[vpc_pack()], &scope);
        assert!(eval.vpcs.is_empty());
        assert_eq!(eval.skipped.len(), 1);
        assert_eq!(eval.skipped[0].vpc_id, snapshot.regions[0].vpcs[0].id);
        assert!(eval.skipped[0].reason.contains("exclude_default_vpc"));
    }

    #[test]
    fn default_vpc_is_skipped_by_default_and_listed_audited_when_asked() {
        // Deliberate: the default VPC is skipped unless the config asks for it.
        let broken_default = compliant_vpc()
            .with(|r| {
                r.vpcs[0].is_default = true;
                r.vpcs[0].enable_dns_support = Some(false);
            })
            .build();
        let eval = evaluate(&broken_default, &[vpc_pack()], &Scope::default());
        assert!(eval.findings.is_empty(), "{:?}", eval.findings);
        assert!(eval.vpcs.is_empty());
        assert_eq!(eval.skipped.len(), 1);
        let asked = Scope {
            exclude_default_vpc: false,
            ..Default::default()
        };
        let eval = evaluate(&broken_default, &[vpc_pack()], &asked);
        assert!(!eval.findings.is_empty());
        assert!(eval.skipped.is_empty());
        assert!(eval.vpcs[0].is_default);
        // A default VPC the collector already skipped is listed from the snapshot.
        let mut collected = broken_default.clone();
        let region = &mut collected.regions[0];
        region.skipped_vpcs = std::mem::take(&mut region.vpcs);
        let eval = evaluate(&collected, &[vpc_pack()], &Scope::default());
        assert!(eval.findings.is_empty() && eval.vpcs.is_empty());
        assert_eq!(eval.skipped.len(), 1);
    }

    #[test]
    fn disabled_rule_and_severity_override_are_honoured() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpcs[0].enable_dns_support = Some(false))
            .build();
        let mut pack = vpc_pack();
        pack.vpc_rules.dns_attributes.as_mut().unwrap().severity = Some(Severity::Low);
        let eval = evaluate(&snapshot, std::slice::from_ref(&pack), &Scope::default());
        assert_eq!(eval.findings.len(), 1);
        assert_eq!(eval.findings[0].severity, Severity::Low);
        pack.vpc_rules.dns_attributes.as_mut().unwrap().enabled = Some(false);
        let eval = evaluate(&snapshot, &[pack], &Scope::default());
        assert!(eval.findings.is_empty());
    }
}
