//! The guide's handover list: what the customer hands the vendor once the VPC and roles are
//! set up, assembled per data plane from the same snapshot the rules judged.
//!
//! A pack that has such a list says so under `handover:` (which items, in the guide's
//! order, and the guide's sentence). For Union.ai that is the role ARN ("Share the ARN with
//! the Union.ai team"), the VPC ID, and the public and private subnet IDs, one per
//! availability zone.
//!
//! Which VPCs get a sheet:
//! - each data plane the config declares (`data_planes:`) under a pack with a handover
//!   list: its declared subnets, placed in their zones from the snapshot;
//! - when the config declares no data plane for such a pack, every VPC the pack audited,
//!   with the subnets the topology classed public and private (Local and Wavelength Zones
//!   left out), and the sheet says that it was derived, not declared.
//!
//! A sheet never guesses: an item that cannot be filled exactly (no subnet of a class in a
//! zone, two candidates in one zone, a declared subnet that is gone, a role not found or
//! IAM not collected) is left out of the list to copy and named in `gaps`. The rules judge
//! the declaration itself (`data_plane.*`); a sheet only counts the open findings on its
//! VPC and roles, so the reader knows whether the vendor would receive a working network.
//!
//! Pure: built from the snapshot, the packs and the config's scope; no I/O.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity};
use crate::snapshot::IamSnapshot;
use crate::values::data_plane::DataPlane;

use super::iam::{resolve_expected, NameMatcher, RoleIndex};
use super::pack::{RulePack, SubnetRole};
use super::topology::VpcView;

/// A pack's handover list (`handover:` in a rule pack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Handover {
    /// Who receives the list, as the report names them: `Union.ai`.
    pub vendor: String,
    /// The guide's sentence that asks for the list, quoted in the report.
    pub guide: String,
    /// What the customer hands over, in the guide's order.
    pub items: Vec<HandoverItem>,
}

/// One thing the customer hands the vendor.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HandoverItem {
    /// The ARN of each role the pack's `roles:` expect, in the data plane's account.
    RoleArn,
    /// The data plane's VPC ID.
    VpcId,
    /// The public subnet IDs, one per availability zone.
    PublicSubnetIds,
    /// The private subnet IDs, one per availability zone.
    PrivateSubnetIds,
}

impl HandoverItem {
    /// The label the reports print.
    pub fn label(self) -> &'static str {
        match self {
            HandoverItem::RoleArn => "Role ARN",
            HandoverItem::VpcId => "VPC ID",
            HandoverItem::PublicSubnetIds => "Public subnet IDs (one per availability zone)",
            HandoverItem::PrivateSubnetIds => "Private subnet IDs (one per availability zone)",
        }
    }
}

impl Handover {
    /// The checks the types cannot make; the error names the field under `handover.`.
    pub fn check(&self, pack: &RulePack) -> Result<(), (String, String)> {
        if self.vendor.trim().is_empty() {
            return Err(("vendor".into(), "expected the vendor's name".into()));
        }
        if self.items.is_empty() {
            return Err((
                "items".into(),
                "expected at least one of role_arn, vpc_id, public_subnet_ids, private_subnet_ids"
                    .into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for (index, item) in self.items.iter().enumerate() {
            if !seen.insert(*item) {
                return Err((
                    format!("items[{index}]"),
                    format!("{item:?} is listed twice"),
                ));
            }
            if *item == HandoverItem::RoleArn && pack.roles.is_empty() {
                return Err((
                    format!("items[{index}]"),
                    "role_arn needs the pack's roles: to say which role to hand over".into(),
                ));
            }
        }
        Ok(())
    }

    fn wants(&self, item: HandoverItem) -> bool {
        self.items.contains(&item)
    }
}

/// One availability zone of a sheet: the subnets of each class found there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverZone {
    pub availability_zone: String,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
}

/// What one data plane's customer hands the vendor, as this run found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverSheet {
    pub pack: String,
    pub vendor: String,
    /// The guide's sentence that asks for the list.
    pub guide: String,
    /// The items the pack's list names, in the guide's order.
    pub items: Vec<HandoverItem>,
    /// The declared data plane's name; `None` for a sheet derived from the subnet classes.
    #[serde(default)]
    pub data_plane: Option<String>,
    pub account_id: String,
    pub region: String,
    pub vpc_id: String,
    /// With `role_arn`: the roles found, to copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arns: Option<Vec<String>>,
    /// With `public_subnet_ids`: one per zone, to copy; zones without exactly one are left
    /// out and named in `gaps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_subnet_ids: Option<Vec<String>>,
    /// With `private_subnet_ids`: as `public_subnet_ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_subnet_ids: Option<Vec<String>>,
    /// Every zone with a public or private subnet, sorted.
    pub zones: Vec<HandoverZone>,
    /// What could not be filled exactly, and what to do about it.
    #[serde(default)]
    pub gaps: Vec<String>,
    /// Open (not suppressed) findings of the pack on this VPC and these roles, by severity.
    #[serde(default)]
    pub open_findings: BTreeMap<Severity, usize>,
}

impl HandoverSheet {
    /// A short title: `data plane union-prod` or `vpc-0abc (derived, not declared)`.
    pub fn title(&self) -> String {
        match &self.data_plane {
            Some(name) => format!("data plane {name}"),
            None => format!(
                "{} (derived from the subnet classes, not declared)",
                self.vpc_id
            ),
        }
    }

    /// The lines to copy to the vendor, one per item: (label, value).
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let join = |ids: &Option<Vec<String>>| match ids {
            Some(ids) if !ids.is_empty() => ids.join(", "),
            _ => "(none: see the gaps)".to_string(),
        };
        self.items
            .iter()
            .map(|item| {
                let value = match item {
                    HandoverItem::RoleArn => join(&self.role_arns),
                    HandoverItem::VpcId => self.vpc_id.clone(),
                    HandoverItem::PublicSubnetIds => join(&self.public_subnet_ids),
                    HandoverItem::PrivateSubnetIds => join(&self.private_subnet_ids),
                };
                (item.label(), value)
            })
            .collect()
    }

    /// `2 (1 high, 1 medium)`, or `none`.
    pub fn open_findings_text(&self) -> String {
        let total: usize = self.open_findings.values().sum();
        if total == 0 {
            return "none".into();
        }
        let parts: Vec<String> = self
            .open_findings
            .iter()
            .rev()
            .map(|(sev, n)| format!("{n} {sev}"))
            .collect();
        format!("{total} ({})", parts.join(", "))
    }
}

/// The role ARNs of a pack's expectations found in one account, and what was not found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleArns {
    pub arns: Vec<String>,
    /// Why some or all of the roles are not listed.
    pub problem: Option<String>,
}

/// Finds the roles `pack.roles` expect in the account's IAM snapshot. `iam` is `None` when
/// IAM was not collected for the account.
pub fn role_arns(pack: &RulePack, iam: Option<&IamSnapshot>, region: &str) -> RoleArns {
    let unknown = |problem: String| RoleArns {
        arns: Vec::new(),
        problem: Some(problem),
    };
    let Some(iam) = iam else {
        return unknown(
            "IAM was not collected for this account, so the role is not verified".into(),
        );
    };
    if let Some(error) = &iam.error {
        return unknown(format!(
            "IAM collection failed ({}), so the role is not verified",
            error.message
        ));
    }
    if pack.roles.is_empty() {
        return unknown(format!("the pack {} names no role", pack.name));
    }
    let index = RoleIndex::new(&iam.roles);
    let mut arns = Vec::new();
    let mut missing = Vec::new();
    for expectation in &pack.roles {
        let (name, generated) = match &expectation.role_name {
            Some(name) => (name.clone(), false),
            None => match resolve_expected(expectation, &iam.account_id, region) {
                Ok(expected) => match expected.template_role_name {
                    Some(name) => (name, expected.generated_name),
                    None => {
                        missing.push(format!("{} (no role name)", expectation.label()));
                        continue;
                    }
                },
                Err(err) => {
                    missing.push(format!("{} ({err})", expectation.label()));
                    continue;
                }
            },
        };
        let matcher = if generated {
            NameMatcher::generated(&name)
        } else {
            NameMatcher::new(&name)
        };
        let found = matcher.matching(&index);
        if found.is_empty() {
            missing.push(matcher.describe(&name));
        }
        arns.extend(found.into_iter().map(|r| r.arn.clone()));
    }
    arns.sort();
    arns.dedup();
    let problem = (!missing.is_empty()).then(|| {
        format!(
            "no role {} in account {}: create it as the guide says, then share its ARN",
            missing.join(", "),
            iam.account_id
        )
    });
    RoleArns { arns, problem }
}

/// Builds the sheet of one VPC. `plane` is its declaration, if any; `roles` the pack's role
/// ARNs in the VPC's account (only read when the list has `role_arn`).
pub fn sheet(
    pack: &RulePack,
    handover: &Handover,
    view: &VpcView,
    plane: Option<&DataPlane>,
    account_id: &str,
    region: &str,
    roles: &RoleArns,
) -> HandoverSheet {
    let mut gaps = Vec::new();
    let mut zones: BTreeMap<&str, HandoverZone> = BTreeMap::new();
    let mut other_zones: BTreeSet<String> = BTreeSet::new();
    for subnet in view.subnets.iter().filter(|s| s.judged) {
        let public = match subnet.role {
            SubnetRole::Public => true,
            SubnetRole::Private => false,
            SubnetRole::Isolated | SubnetRole::Infrastructure => continue,
        };
        if !subnet.in_availability_zone {
            other_zones.insert(format!("{} ({})", subnet.subnet.id, subnet.az()));
            continue;
        }
        let zone = zones.entry(subnet.az()).or_insert_with(|| HandoverZone {
            availability_zone: subnet.az().to_string(),
            ..Default::default()
        });
        let ids = if public {
            &mut zone.public_subnet_ids
        } else {
            &mut zone.private_subnet_ids
        };
        ids.push(subnet.subnet.id.clone());
    }
    if !other_zones.is_empty() {
        gaps.push(format!(
            "left out, not in an availability zone (a Local or Wavelength Zone): {}",
            other_zones.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(plane) = plane {
        let found: BTreeSet<&str> = view.subnets.iter().map(|s| s.subnet.id.as_str()).collect();
        for (role, ids) in [
            ("public", &plane.public_subnet_ids),
            ("private", &plane.private_subnet_ids),
        ] {
            for id in ids.iter().filter(|id| !found.contains(id.0.as_str())) {
                gaps.push(format!(
                    "declared {role} subnet {} is not in {}: left out (data_plane.subnet_missing)",
                    id.0, view.vpc.id
                ));
            }
        }
    }
    let how_to_choose = match plane {
        Some(plane) => format!(
            "declare one per zone in the data plane {:?} under data_planes:",
            plane.name
        ),
        None => "declare the data plane under data_planes: in the config, naming one per zone"
            .to_string(),
    };
    let mut one_per_zone = |role: SubnetRole| -> Vec<String> {
        let mut chosen = Vec::new();
        for zone in zones.values() {
            let ids = match role {
                SubnetRole::Public => &zone.public_subnet_ids,
                _ => &zone.private_subnet_ids,
            };
            match ids.as_slice() {
                [one] => chosen.push(one.clone()),
                [] => gaps.push(format!(
                    "{}: no {} subnet (the guide asks for one per availability zone)",
                    zone.availability_zone,
                    role.as_str()
                )),
                several => gaps.push(format!(
                    "{}: {} {} subnets ({}), the guide asks for one per availability zone: {how_to_choose}",
                    zone.availability_zone,
                    several.len(),
                    role.as_str(),
                    several.join(", ")
                )),
            }
        }
        if zones.is_empty() {
            gaps.push(format!(
                "no {} subnet in an availability zone",
                role.as_str()
            ));
        }
        chosen
    };
    let public_subnet_ids = handover
        .wants(HandoverItem::PublicSubnetIds)
        .then(|| one_per_zone(SubnetRole::Public));
    let private_subnet_ids = handover
        .wants(HandoverItem::PrivateSubnetIds)
        .then(|| one_per_zone(SubnetRole::Private));
    let role_arns = handover.wants(HandoverItem::RoleArn).then(|| {
        if let Some(why) = &roles.problem {
            gaps.push(format!("role ARN: {why}"));
        }
        roles.arns.clone()
    });
    if let Some(arns) = &role_arns {
        if arns.len() > pack.roles.len() {
            gaps.push(format!(
                "{} roles match the pack's {} role name(s) ({}): hand over the one the data plane uses",
                arns.len(),
                pack.roles.len(),
                arns.join(", ")
            ));
        }
    }
    HandoverSheet {
        pack: pack.name.clone(),
        vendor: handover.vendor.clone(),
        guide: handover.guide.clone(),
        items: handover.items.clone(),
        data_plane: plane.map(|p| p.name.clone()),
        account_id: account_id.to_string(),
        region: region.to_string(),
        vpc_id: view.vpc.id.clone(),
        role_arns,
        public_subnet_ids,
        private_subnet_ids,
        zones: zones.into_values().collect(),
        gaps,
        open_findings: BTreeMap::new(),
    }
}

/// The sheet of a declared data plane whose VPC was not audited: not in the completed scan
/// of its region (`data_plane.vpc_missing`), or its region failed or was not scanned.
pub fn unverified_sheet(
    pack: &RulePack,
    handover: &Handover,
    plane: &DataPlane,
    account_id: &str,
    why: String,
) -> HandoverSheet {
    let wants = |item| handover.wants(item).then(Vec::new);
    HandoverSheet {
        pack: pack.name.clone(),
        vendor: handover.vendor.clone(),
        guide: handover.guide.clone(),
        items: handover.items.clone(),
        data_plane: Some(plane.name.clone()),
        account_id: account_id.to_string(),
        region: plane.region.0.clone(),
        vpc_id: plane.vpc_id.0.clone(),
        role_arns: wants(HandoverItem::RoleArn),
        public_subnet_ids: wants(HandoverItem::PublicSubnetIds),
        private_subnet_ids: wants(HandoverItem::PrivateSubnetIds),
        zones: Vec::new(),
        gaps: vec![format!("nothing verified: {why}")],
        open_findings: BTreeMap::new(),
    }
}

/// Counts, on each sheet, the pack's open (not suppressed) findings on its VPC and on its
/// roles. Run after suppressions are applied.
pub fn count_open(sheets: &mut [HandoverSheet], findings: &[Finding]) {
    for sheet in sheets {
        sheet.open_findings.clear();
        let roles: BTreeSet<&str> = sheet
            .role_arns
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        for finding in findings.iter().filter(|f| f.suppressed.is_none()) {
            let on_vpc = finding.account_id == sheet.account_id
                && finding.region == sheet.region
                && finding.vpc_id.as_deref() == Some(sheet.vpc_id.as_str());
            let on_role = roles.contains(finding.resource_id.as_str());
            if finding.pack == sheet.pack && (on_vpc || on_role) {
                *sheet.open_findings.entry(finding.severity).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::evaluate;
    use crate::rules::pack::RulePack;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::{IamRole, Snapshot};
    use crate::values::data_plane::SubnetId;
    use crate::values::{RegionName, Scope, VpcId};

    use crate::snapshot::builder::ACCOUNT;
    const PUBLIC: [&str; 3] = ["subnet-pub-a", "subnet-pub-b", "subnet-pub-c"];
    const PRIVATE: [&str; 3] = ["subnet-priv-a", "subnet-priv-b", "subnet-priv-c"];

    fn union() -> RulePack {
        RulePack::embedded(&|_| None).expect("the embedded pack loads")
    }

    fn with_roles(mut snapshot: Snapshot, names: &[&str]) -> Snapshot {
        snapshot.iam = vec![IamSnapshot {
            account_id: ACCOUNT.into(),
            roles: names
                .iter()
                .map(|name| IamRole {
                    name: name.to_string(),
                    arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }];
        snapshot
    }

    fn plane(name: &str, vpc: &str, public: &[&str], private: &[&str]) -> DataPlane {
        DataPlane {
            name: name.into(),
            pack: "union-byoc".into(),
            region: RegionName("us-east-1".into()),
            account_id: None,
            vpc_id: VpcId(vpc.into()),
            public_subnet_ids: public.iter().map(|s| SubnetId(s.to_string())).collect(),
            private_subnet_ids: private.iter().map(|s| SubnetId(s.to_string())).collect(),
        }
    }

    fn declared(planes: Vec<DataPlane>) -> Scope {
        Scope {
            data_planes: planes,
            ..Default::default()
        }
    }

    #[test]
    fn the_union_pack_quotes_the_guide_and_lists_its_four_items() {
        let pack = union();
        let list = pack
            .handover
            .as_ref()
            .expect("union-byoc has a handover list");
        assert_eq!(list.vendor, "Union.ai");
        assert!(list
            .guide
            .contains("Public subnet IDs (one per availability zone)"));
        assert_eq!(
            list.items,
            [
                HandoverItem::RoleArn,
                HandoverItem::VpcId,
                HandoverItem::PublicSubnetIds,
                HandoverItem::PrivateSubnetIds
            ]
        );
    }

    #[test]
    fn a_declared_data_plane_hands_over_its_declaration_and_role() {
        let snapshot = with_roles(compliant_vpc().build(), &["union-ai-admin", "other"]);
        let scope = declared(vec![plane("union-prod", "vpc-good", &PUBLIC, &PRIVATE)]);
        let eval = evaluate(&snapshot, &[union()], &scope);
        assert_eq!(eval.handover.len(), 1, "{:?}", eval.handover);
        let sheet = &eval.handover[0];
        assert_eq!(sheet.data_plane.as_deref(), Some("union-prod"));
        assert_eq!(
            sheet.role_arns,
            Some(vec![format!("arn:aws:iam::{ACCOUNT}:role/union-ai-admin")])
        );
        assert_eq!(
            sheet.public_subnet_ids,
            Some(PUBLIC.map(String::from).to_vec())
        );
        assert_eq!(
            sheet.private_subnet_ids,
            Some(PRIVATE.map(String::from).to_vec())
        );
        assert_eq!(sheet.gaps, Vec::<String>::new());
        assert_eq!(sheet.zones.len(), 3);
        let lines = sheet.lines();
        assert_eq!(lines[1], ("VPC ID", "vpc-good".to_string()));
        assert_eq!(
            lines[2].1, "subnet-pub-a, subnet-pub-b, subnet-pub-c",
            "one line per item, ready to copy"
        );
    }

    #[test]
    fn without_a_declaration_each_audited_vpc_gets_a_derived_sheet() {
        // A second public subnet in us-east-1a, and an isolated database subnet.
        let snapshot = compliant_vpc()
            .subnet("subnet-pub-a2", "vpc-good", "us-east-1a", "10.0.200.0/28")
            .subnet("subnet-db-a", "vpc-good", "us-east-1a", "10.0.250.0/26")
            .with(|r| {
                for s in r.subnets.iter_mut().filter(|s| s.id == "subnet-pub-a2") {
                    s.tags.insert("Name".into(), "public-a2".into());
                }
                // Its own route table, with no default route: an isolated subnet.
                r.route_tables.push(crate::snapshot::RouteTable {
                    id: "rtb-db".into(),
                    vpc_id: "vpc-good".into(),
                    associations: vec![crate::snapshot::RouteTableAssociation {
                        main: false,
                        subnet_id: Some("subnet-db-a".into()),
                    }],
                    routes: Vec::new(),
                });
            })
            .build();
        let snapshot = with_roles(snapshot, &["union-ai-admin"]);
        let eval = evaluate(&snapshot, &[union()], &Scope::default());
        let sheet = eval
            .handover
            .iter()
            .find(|s| s.vpc_id == "vpc-good")
            .expect("a sheet for the audited VPC");
        assert_eq!(sheet.data_plane, None);
        assert!(sheet.title().contains("derived"));
        assert_eq!(
            sheet.public_subnet_ids,
            Some(vec!["subnet-pub-b".to_string(), "subnet-pub-c".to_string()]),
            "the ambiguous zone is left out of the list to copy"
        );
        assert_eq!(
            sheet.private_subnet_ids,
            Some(PRIVATE.map(String::from).to_vec())
        );
        assert_eq!(sheet.gaps.len(), 1, "{:?}", sheet.gaps);
        assert!(
            sheet.gaps[0].starts_with("us-east-1a: 2 public subnets (subnet-pub-a, subnet-pub-a2)")
        );
        assert!(sheet.gaps[0].contains("declare the data plane under data_planes:"));
        assert!(!format!("{sheet:?}").contains("subnet-db-a"));
    }

    #[test]
    fn a_declaration_for_the_pack_stops_the_derived_sheets() {
        let snapshot = with_roles(
            compliant_vpc()
                .vpc("vpc-other", "10.9.0.0/16")
                .subnet("subnet-other", "vpc-other", "us-east-1a", "10.9.0.0/24")
                .build(),
            &["union-ai-admin"],
        );
        let scope = declared(vec![plane("union-prod", "vpc-good", &PUBLIC, &PRIVATE)]);
        let eval = evaluate(&snapshot, &[union()], &scope);
        let vpcs: Vec<&str> = eval.handover.iter().map(|s| s.vpc_id.as_str()).collect();
        assert_eq!(vpcs, ["vpc-good"]);
        // Undeclared, both VPCs get one.
        let eval = evaluate(&snapshot, &[union()], &Scope::default());
        let vpcs: BTreeSet<&str> = eval.handover.iter().map(|s| s.vpc_id.as_str()).collect();
        assert_eq!(vpcs, BTreeSet::from(["vpc-good", "vpc-other"]));
    }

    #[test]
    fn what_cannot_be_filled_is_a_gap_never_a_guess() {
        // IAM not collected; a declared subnet deleted; a zone with a public subnet only.
        let snapshot = compliant_vpc()
            .with(|r| r.subnets.retain(|s| s.id != "subnet-priv-c"))
            .build();
        let scope = declared(vec![plane("union-prod", "vpc-good", &PUBLIC, &PRIVATE)]);
        let eval = evaluate(&snapshot, &[union()], &scope);
        let sheet = &eval.handover[0];
        assert_eq!(sheet.role_arns, Some(vec![]));
        assert_eq!(
            sheet.private_subnet_ids,
            Some(vec![
                "subnet-priv-a".to_string(),
                "subnet-priv-b".to_string()
            ])
        );
        assert_eq!(
            sheet.gaps,
            vec![
                "declared private subnet subnet-priv-c is not in vpc-good: left out (data_plane.subnet_missing)",
                "us-east-1c: no private subnet (the guide asks for one per availability zone)",
                "role ARN: IAM was not collected for this account, so the role is not verified",
            ]
        );
        // A role that does not exist: named, not invented.
        let eval = evaluate(&with_roles(snapshot, &["someone-else"]), &[union()], &scope);
        assert!(eval.handover[0]
            .gaps
            .iter()
            .any(|g| g == "role ARN: no role union-ai-admin in account 111122223333: create it as the guide says, then share its ARN"));
    }

    #[test]
    fn a_local_zone_subnet_is_left_out_and_said() {
        let snapshot = compliant_vpc()
            .subnet("subnet-lz", "vpc-good", "us-east-1-bos-1a", "10.0.240.0/24")
            .with(|r| {
                for s in r.subnets.iter_mut().filter(|s| s.id == "subnet-lz") {
                    s.tags.insert("Name".into(), "edge-private".into());
                }
                r.availability_zones
                    .push(crate::snapshot::AvailabilityZone {
                        name: "us-east-1-bos-1a".into(),
                        zone_type: Some("local-zone".into()),
                        ..Default::default()
                    });
            })
            .build();
        let eval = evaluate(
            &with_roles(snapshot, &["union-ai-admin"]),
            &[union()],
            &Scope::default(),
        );
        let sheet = &eval.handover[0];
        assert_eq!(
            sheet.private_subnet_ids,
            Some(PRIVATE.map(String::from).to_vec())
        );
        assert_eq!(
            sheet.gaps,
            vec!["left out, not in an availability zone (a Local or Wavelength Zone): subnet-lz (us-east-1-bos-1a)"]
        );
    }

    #[test]
    fn an_unaudited_declared_vpc_gets_a_sheet_saying_why() {
        let snapshot = with_roles(compliant_vpc().build(), &["union-ai-admin"]);
        let mut gone = plane("union-old", "vpc-gone", &["subnet-x"], &["subnet-y"]);
        let scope = declared(vec![gone.clone()]);
        let eval = evaluate(&snapshot, &[union()], &scope);
        assert_eq!(eval.handover.len(), 1);
        assert_eq!(
            eval.handover[0].gaps,
            vec!["nothing verified: VPC vpc-gone does not exist in us-east-1 (data_plane.vpc_missing)"]
        );
        gone.region = RegionName("eu-west-1".into());
        let eval = evaluate(&snapshot, &[union()], &declared(vec![gone]));
        assert_eq!(
            eval.handover[0].gaps,
            vec!["nothing verified: region eu-west-1 was not scanned"]
        );
    }

    #[test]
    fn a_pack_without_a_list_gets_no_sheet() {
        let pack = RulePack {
            handover: None,
            ..union()
        };
        let eval = evaluate(&compliant_vpc().build(), &[pack], &Scope::default());
        assert!(eval.handover.is_empty());
    }

    #[test]
    fn open_findings_count_the_packs_unsuppressed_findings_on_the_vpc_and_role() {
        let role = format!("arn:aws:iam::{ACCOUNT}:role/union-ai-admin");
        let mut sheet = HandoverSheet {
            pack: "union-byoc".into(),
            vendor: "Union.ai".into(),
            guide: String::new(),
            items: vec![HandoverItem::RoleArn, HandoverItem::VpcId],
            data_plane: None,
            account_id: ACCOUNT.into(),
            region: "us-east-1".into(),
            vpc_id: "vpc-good".into(),
            role_arns: Some(vec![role.clone()]),
            public_subnet_ids: None,
            private_subnet_ids: None,
            zones: Vec::new(),
            gaps: Vec::new(),
            open_findings: BTreeMap::new(),
        };
        let finding = |pack: &str, vpc: Option<&str>, resource: &str, severity| Finding {
            rule_id: "r".into(),
            severity,
            pack: pack.into(),
            account_id: ACCOUNT.into(),
            region: if vpc.is_some() { "us-east-1" } else { "global" }.into(),
            resource_type: crate::finding::ResourceType::Vpc,
            resource_id: resource.into(),
            vpc_id: vpc.map(String::from),
            message: String::new(),
            remediation: String::new(),
            details: serde_json::Value::Null,
            baseline: None,
            suppressed: None,
        };
        let mut suppressed = finding("union-byoc", Some("vpc-good"), "vpc-good", Severity::High);
        suppressed.suppressed = Some(crate::finding::SuppressedBy {
            reason: "accepted".into(),
            expires: chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
        });
        let findings = vec![
            finding("union-byoc", Some("vpc-good"), "subnet-1", Severity::Medium),
            finding("union-byoc", None, &role, Severity::Critical),
            finding("other-pack", Some("vpc-good"), "vpc-good", Severity::High),
            finding("union-byoc", Some("vpc-other"), "vpc-other", Severity::High),
            suppressed,
        ];
        count_open(std::slice::from_mut(&mut sheet), &findings);
        assert_eq!(
            sheet.open_findings,
            BTreeMap::from([(Severity::Medium, 1), (Severity::Critical, 1)])
        );
        assert_eq!(sheet.open_findings_text(), "2 (1 critical, 1 medium)");
    }

    #[test]
    fn a_bad_list_is_rejected_with_its_field() {
        let text = crate::rules::pack::EMBEDDED_UNION_BYOC;
        let reject = |from: &str, to: &str| {
            let edited = text.replace(from, to);
            assert_ne!(edited, text, "{from} not in the pack");
            RulePack::parse(std::path::Path::new("rules/union-byoc.yaml"), &edited)
                .expect_err("must be rejected")
        };
        let err = reject(
            "items: [role_arn, vpc_id, public_subnet_ids, private_subnet_ids]",
            "items: []",
        );
        assert_eq!(err.field, "handover.items");
        let err = reject(
            "items: [role_arn, vpc_id, public_subnet_ids, private_subnet_ids]",
            "items: [vpc_id, vpc_id]",
        );
        assert_eq!(err.field, "handover.items[1]");
        assert!(err.to_string().contains("listed twice"), "{err}");
        let err = reject(
            "items: [role_arn, vpc_id, public_subnet_ids, private_subnet_ids]",
            "items: [vpc_id, subnet_ids]",
        );
        assert!(err.to_string().contains("subnet_ids"), "{err}");
        assert!(err.line.is_some(), "{err}");
    }
}
