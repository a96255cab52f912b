//! The remediation plan: the fixes for one scan, computed per VPC and per IAM role from the
//! whole snapshot and every finding, not finding by finding.
//!
//! Pure: it reads a [`Snapshot`] and the findings, and returns [`Plan`] (steps holding AWS
//! CLI command lines), doing no I/O. `export::fix_script` renders it as a bash script
//! (`--format fix-script`) and the JSON report carries it as structured steps.
//!
//! What makes the fixes apply where per-finding advice did not:
//! - Route tables are planned as a whole: when subnets of several zones share one table and
//!   each zone needs its own NAT gateway, each zone gets its own table (the old table's
//!   other routes and gateway endpoints copied) and its subnets are re-associated. The main
//!   route table is never re-pointed (it also serves subnets nobody declared).
//! - `create-route` or `replace-route` by whether a 0.0.0.0/0 route exists.
//! - Resources are created in dependency order with their ids captured in shell variables
//!   (`NAT_3=$(aws ec2 create-nat-gateway ... --query NatGateway.NatGatewayId --output text)`),
//!   with `aws ec2 wait` where AWS needs it.
//! - Interface endpoints get one subnet per AZ (EC2 refuses two in one zone).
//! - Values the auditor knows are written out; address space is chosen from what is free
//!   inside the VPC's CIDRs (`rules::cidr`, which the rules' own advice uses too). Where no value can be worked out the
//!   step is [`StepKind::NeedsDecision`], with the reason; where no automatic fix is safe
//!   (a subnet cannot be resized) it is [`StepKind::Manual`], with the closest safe action.
//!
//! Regions whose scan failed get no steps: their findings are not the region's state.

use std::collections::{BTreeMap, BTreeSet};

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

use crate::finding::Finding;
use crate::rules::cidr;
use crate::rules::pack::SubnetRole;
use crate::rules::topology::{RegionTopology, SubnetView, VpcView};
use crate::snapshot::{RegionSnapshot, RouteTable, Snapshot};

/// Every fix of one scan, grouped by account, region and VPC or role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub groups: Vec<PlanGroup>,
}

impl Plan {
    /// How many steps the plan holds, of any kind.
    pub fn step_count(&self) -> usize {
        self.groups.iter().map(|g| g.steps.len()).sum()
    }

    /// The steps a script runs.
    pub fn automatic_steps(&self) -> impl Iterator<Item = &Step> {
        self.groups
            .iter()
            .flat_map(|g| g.steps.iter())
            .filter(|s| s.kind == StepKind::Automatic)
    }
}

/// The fixes for one VPC or one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanGroup {
    pub account_id: String,
    /// The region; `global` for an IAM role.
    pub region: String,
    pub target: Target,
    pub steps: Vec<Step>,
}

/// What a group of steps fixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Vpc { vpc_id: String },
    Role { role_arn: String },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Vpc { vpc_id } => format!("VPC {vpc_id}"),
            Target::Role { role_arn } => format!("role {role_arn}"),
        }
    }
}

/// Whether a step can run unattended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Its commands close the findings it names.
    Automatic,
    /// No safe automatic fix exists; `reason` says why, `commands` is the closest safe action.
    Manual,
    /// A value only a person can choose is missing; `reason` says which.
    NeedsDecision,
}

/// One step: commands (run in order, in one shell, so later ones may use the variables
/// earlier ones set) and the findings it fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    pub summary: String,
    pub fixes: Vec<FixedFinding>,
    pub commands: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The finding a step fixes, quoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedFinding {
    pub rule_id: String,
    pub resource_id: String,
    pub message: String,
}

impl FixedFinding {
    fn of(f: &Finding) -> Self {
        FixedFinding {
            rule_id: f.rule_id.clone(),
            resource_id: f.resource_id.clone(),
            message: f.message.clone(),
        }
    }
}

/// Rules whose steps this module computes itself; the others are handled generically
/// (their remediation, when it is nothing but complete commands, else a manual step).
const PLANNED_RULES: &[&str] = &[
    "vpc.dns_attributes",
    "vpc.igw_attached",
    "vpc.cidr_size",
    "vpc.public_subnet_per_az",
    "vpc.private_subnet_per_az",
    "vpc.az_count",
    "vpc.corporate_egress",
    "nat.in_public_subnet",
    "nat.same_az",
    "subnet.private_egress",
    "subnet.private_size",
    "subnet.public_size",
    "subnet.ip_capacity",
    "endpoint.s3_gateway",
    "endpoint.interface_required",
];

/// Interface endpoints answer on HTTPS.
const ENDPOINT_PORT: u16 = 443;

/// Computes the plan for `findings` (suppressed ones left out) against `snapshot`.
pub fn build(snapshot: &Snapshot, findings: &[Finding]) -> Plan {
    let live: Vec<&Finding> = findings.iter().filter(|f| f.suppressed.is_none()).collect();
    let mut vars = Vars::default();
    let mut groups = Vec::new();
    for region in &snapshot.regions {
        if region.error.is_some() {
            continue;
        }
        let topo = RegionTopology::build(region);
        let of_region: Vec<&Finding> = live
            .iter()
            .copied()
            .filter(|f| f.account_id == region.account_id && f.region == region.region)
            .collect();
        let vpc_ids: BTreeSet<&str> = of_region
            .iter()
            .filter_map(|f| f.vpc_id.as_deref())
            .collect();
        for vpc_id in vpc_ids {
            let Some(view) = topo.vpcs.iter().find(|v| v.vpc.id == vpc_id) else {
                continue;
            };
            let mine: Vec<&Finding> = of_region
                .iter()
                .copied()
                .filter(|f| f.vpc_id.as_deref() == Some(vpc_id))
                .collect();
            let steps = VpcPlanner::new(region, &topo, view, &mine, &mut vars).plan();
            if !steps.is_empty() {
                groups.push(PlanGroup {
                    account_id: region.account_id.clone(),
                    region: region.region.clone(),
                    target: Target::Vpc {
                        vpc_id: vpc_id.to_string(),
                    },
                    steps,
                });
            }
        }
    }
    groups.extend(iam_groups(snapshot, &live));
    Plan { groups }
}

/// Unique shell variable names across the whole script.
#[derive(Default)]
struct Vars {
    next: usize,
}

impl Vars {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_{}", self.next)
    }
}

/// A resource id as a command argument: a literal id, or a variable set earlier.
fn arg(id: &str) -> String {
    if id.starts_with('$') {
        format!("\"{id}\"")
    } else {
        id.to_string()
    }
}

/// The commands of `remediation` when it is complete AWS CLI commands, one per line, no
/// `<placeholder>`, after at most some lines of prose that lead into them (each ending in
/// `:`, as "Restore the trust policy of ...:" or "Otherwise:"); `None` otherwise.
fn complete_commands(remediation: &str) -> Option<Vec<String>> {
    let lines: Vec<String> = remediation
        .split(" && ")
        .flat_map(str::lines)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let first = lines.iter().position(|l| l.starts_with("aws "))?;
    let (prose, commands) = lines.split_at(first);
    let leading_ok = prose.last().is_none_or(|l| l.ends_with(':'));
    let complete = leading_ok
        && commands.iter().all(|c| {
            c.starts_with("aws ") && !c.contains(" <") && !c.contains("=<") && !c.contains("<the")
        });
    complete.then(|| commands.to_vec())
}

struct VpcPlanner<'a, 'v> {
    region: &'a RegionSnapshot,
    topo: &'a RegionTopology<'a>,
    view: &'a VpcView<'a>,
    findings: &'v [&'a Finding],
    vars: &'v mut Vars,
    steps: Vec<Step>,
    /// Address space taken: the VPC's subnets and what the plan creates.
    used: Vec<Ipv4Network>,
    /// The VPC's IPv4 CIDRs, with any the plan associates.
    cidrs: Vec<Ipv4Network>,
    /// The route table each private subnet will use once the plan has run.
    table_of: BTreeMap<String, String>,
    /// Route tables (ids or variables) the plan adds to a gateway endpoint, per endpoint.
    endpoint_tables: BTreeMap<String, Vec<String>>,
    /// The IGW the plan attaches, when the VPC has none.
    new_igw: Option<String>,
    /// Usable NAT gateways (ids or variables), per AZ.
    nat_in_az: BTreeMap<String, String>,
    /// Route tables whose 0.0.0.0/0 the plan points at the internet gateway.
    igw_routed_tables: BTreeSet<String>,
    /// The step that does so, to credit the findings it also fixes.
    igw_step: Option<usize>,
    /// Public subnets the plan creates (variables), per AZ.
    new_public: BTreeMap<String, String>,
    /// Route tables whose 0.0.0.0/0 the plan re-points.
    repointed_tables: BTreeSet<String>,
}

impl<'a, 'v> VpcPlanner<'a, 'v> {
    fn new(
        region: &'a RegionSnapshot,
        topo: &'a RegionTopology<'a>,
        view: &'a VpcView<'a>,
        findings: &'v [&'a Finding],
        vars: &'v mut Vars,
    ) -> Self {
        let used = view
            .subnets
            .iter()
            .filter_map(|s| s.subnet.cidr_block.as_deref()?.parse().ok())
            .collect();
        let cidrs = cidr::vpc_cidrs(view.vpc);
        let table_of = view
            .subnets
            .iter()
            .filter_map(|s| Some((s.subnet.id.clone(), s.route_table?.id.clone())))
            .collect();
        VpcPlanner {
            region,
            topo,
            view,
            findings,
            vars,
            steps: Vec::new(),
            used,
            cidrs,
            table_of,
            endpoint_tables: BTreeMap::new(),
            new_igw: None,
            nat_in_az: BTreeMap::new(),
            igw_routed_tables: BTreeSet::new(),
            igw_step: None,
            new_public: BTreeMap::new(),
            repointed_tables: BTreeSet::new(),
        }
    }

    fn of_rule(&self, rule: &str) -> Vec<&'a Finding> {
        self.findings
            .iter()
            .copied()
            .filter(|f| f.rule_id == rule)
            .collect()
    }

    fn vpc(&self) -> &'a str {
        &self.view.vpc.id
    }

    /// An `aws ec2` command line with the region.
    fn ec2(&self, rest: &str) -> String {
        format!("aws ec2 {rest} --region {}", self.region.region)
    }

    fn capture(&mut self, prefix: &str, rest: &str, query: &str) -> (String, String) {
        let var = self.vars.fresh(prefix);
        let line = format!("{var}=$({} --query {query} --output text)", self.ec2(rest));
        (format!("${var}"), line)
    }

    fn push(
        &mut self,
        kind: StepKind,
        summary: String,
        fixes: &[&Finding],
        commands: Vec<String>,
        reason: Option<String>,
    ) {
        self.steps.push(Step {
            kind,
            summary,
            fixes: fixes.iter().map(|f| FixedFinding::of(f)).collect(),
            commands,
            reason,
        });
    }

    /// Credits `finding` to the internet gateway step, which fixes it too.
    fn credit_igw_step(&mut self, finding: &Finding) -> bool {
        match self.igw_step.and_then(|i| self.steps.get_mut(i)) {
            Some(step) if step.kind == StepKind::Automatic => {
                step.fixes.push(FixedFinding::of(finding));
                true
            }
            _ => false,
        }
    }

    fn plan(mut self) -> Vec<Step> {
        self.dns();
        self.cidr_size();
        self.internet_gateway();
        self.public_subnets();
        self.egress();
        self.s3_gateway();
        self.interface_endpoints();
        self.manual_rules();
        self.generic();
        self.steps
    }

    fn dns(&mut self) {
        let found = self.of_rule("vpc.dns_attributes");
        if found.is_empty() {
            return;
        }
        let vpc = self.vpc();
        let mut commands = Vec::new();
        // modify-vpc-attribute takes one attribute per call; support must be on before
        // hostnames can be.
        if self.view.vpc.enable_dns_support != Some(true) {
            commands.push(self.ec2(&format!(
                "modify-vpc-attribute --vpc-id {vpc} --enable-dns-support '{{\"Value\":true}}'"
            )));
        }
        if self.view.vpc.enable_dns_hostnames != Some(true) {
            commands.push(self.ec2(&format!(
                "modify-vpc-attribute --vpc-id {vpc} --enable-dns-hostnames '{{\"Value\":true}}'"
            )));
        }
        self.push(
            StepKind::Automatic,
            format!("Turn on DNS support and DNS hostnames in {vpc}"),
            &found,
            commands,
            None,
        );
    }

    /// The rule counts every IPv4 CIDR of the VPC, so a secondary CIDR of the recommended
    /// size closes it: one is chosen from the primary's private range, clear of every VPC
    /// CIDR in the region.
    fn cidr_size(&mut self) {
        let found = self.of_rule("vpc.cidr_size");
        let Some(finding) = found.first() else {
            return;
        };
        let vpc = self.vpc();
        let max = finding.details["max_prefix_length"].as_u64().unwrap_or(16) as u8;
        let block = cidr::secondary_cidr(self.region, self.view.vpc, max);
        let range = self
            .view
            .vpc
            .cidr_block
            .as_deref()
            .and_then(|c| c.parse().ok())
            .as_ref()
            .and_then(cidr::rfc1918_range);
        match block {
            Some(block) => {
                let cmd = self.ec2(&format!("associate-vpc-cidr-block --vpc-id {vpc} --cidr-block {block}"));
                let mut commands = vec![cmd];
                // The interface endpoints' security groups must admit the new block too.
                let groups: BTreeSet<&str> = self
                    .view
                    .endpoints
                    .iter()
                    .filter(|e| e.endpoint_type.as_deref() == Some("Interface"))
                    .flat_map(|e| e.security_group_ids.iter().map(String::as_str))
                    .collect();
                for group in groups {
                    commands.push(self.ec2(&format!(
                        "authorize-security-group-ingress --group-id {group} --protocol tcp --port {ENDPOINT_PORT} --cidr {block}"
                    )));
                }
                self.cidrs.push(block);
                self.push(
                    StepKind::Automatic,
                    format!("Add the secondary CIDR {block} (/{max}) to {vpc} for the private subnets"),
                    &found,
                    commands,
                    Some(format!(
                        "{block} is the first /{max} in {} that no VPC of this region uses; \
                         check it against peered and on-premises networks before running",
                        range.map(|r| r.to_string()).unwrap_or_default()
                    )),
                );
            }
            None => self.push(
                StepKind::NeedsDecision,
                format!("Give {vpc} a /{max} of address space"),
                &found,
                vec![],
                Some(format!(
                    "no free /{max} could be chosen next to the VPC's primary CIDR {}: \
                     pick a block AWS accepts (aws ec2 associate-vpc-cidr-block --vpc-id {vpc} --cidr-block BLOCK), \
                     or create a new /{max} VPC",
                    self.view.vpc.cidr_block.as_deref().unwrap_or("(none)")
                )),
            ),
        }
    }

    fn attached_igw(&self) -> Option<String> {
        self.view
            .internet_gateways
            .iter()
            .find(|i| self.view.has_attached_igw(&i.id))
            .map(|i| i.id.clone())
            .or_else(|| self.new_igw.clone())
    }

    fn internet_gateway(&mut self) {
        let found = self.of_rule("vpc.igw_attached");
        if found.is_empty() {
            return;
        }
        let vpc = self.vpc();
        let mut commands = Vec::new();
        let igw = match self.attached_igw() {
            Some(igw) => igw,
            None => {
                let (var, line) = self.capture(
                    "IGW",
                    "create-internet-gateway",
                    "InternetGateway.InternetGatewayId",
                );
                commands.push(line);
                commands.push(self.ec2(&format!(
                    "attach-internet-gateway --vpc-id {vpc} --internet-gateway-id {}",
                    arg(&var)
                )));
                self.new_igw = Some(var.clone());
                var
            }
        };
        // The public subnets' tables (not the main table, which other subnets share).
        let tables: Vec<&RouteTable> = self
            .view
            .subnets_with_role(SubnetRole::Public)
            .filter(|s| !s.uses_main_route_table)
            .filter_map(|s| s.route_table)
            .map(|t| (t.id.as_str(), t))
            .collect::<BTreeMap<_, _>>()
            .into_values()
            .collect();
        if tables.is_empty() {
            self.push(
                StepKind::NeedsDecision,
                format!("Attach an internet gateway to {vpc} and route a public subnet to it"),
                &found,
                commands,
                Some("no subnet is marked public (tag or own route table), so which subnets should reach the internet directly is a decision".into()),
            );
            return;
        }
        for table in tables {
            let routed = table.routes.iter().any(|r| {
                r.destination_cidr.as_deref() == Some("0.0.0.0/0")
                    && r.state.as_deref() != Some("blackhole")
                    && r.target.as_deref() == Some(igw.as_str())
            });
            if !routed {
                commands.push(self.default_route(table, "--gateway-id", &igw));
            }
            self.igw_routed_tables.insert(table.id.clone());
        }
        self.igw_step = Some(self.steps.len());
        self.push(
            StepKind::Automatic,
            format!("Attach an internet gateway to {vpc} and route the public subnets to it"),
            &found,
            commands,
            None,
        );
    }

    /// `create-route` or `replace-route` for 0.0.0.0/0 on `table`.
    fn default_route(&self, table: &RouteTable, flag: &str, target: &str) -> String {
        let exists = table
            .routes
            .iter()
            .any(|r| r.destination_cidr.as_deref() == Some("0.0.0.0/0"));
        let verb = if exists {
            "replace-route"
        } else {
            "create-route"
        };
        self.ec2(&format!(
            "{verb} --route-table-id {} --destination-cidr-block 0.0.0.0/0 {flag} {}",
            table.id,
            arg(target)
        ))
    }

    /// Public subnets that route to an attached IGW, per AZ.
    fn public_subnets_by_az(&self) -> BTreeMap<String, Vec<&'a SubnetView<'a>>> {
        let mut out: BTreeMap<String, Vec<&SubnetView>> = BTreeMap::new();
        for s in self
            .view
            .subnets
            .iter()
            .filter(|s| s.role == SubnetRole::Public)
        {
            let routed = s
                .default_target()
                .is_some_and(|t| self.view.has_attached_igw(t))
                || s.route_table
                    .is_some_and(|t| self.igw_routed_tables.contains(&t.id));
            if routed {
                out.entry(s.az().to_string()).or_default().push(s);
            }
        }
        out
    }

    fn public_subnets(&mut self) {
        let found = self.of_rule("vpc.public_subnet_per_az");
        let Some(finding) = found.first() else {
            return;
        };
        let vpc = self.vpc();
        let lacking: Vec<String> = finding.details["availability_zones_lacking"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|z| z.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let public = self.public_subnets_by_az();
        let lacking: Vec<String> = lacking
            .into_iter()
            .filter(|az| !public.contains_key(az))
            .collect();
        if lacking.is_empty() {
            let finding = *finding;
            if self.credit_igw_step(finding) {
                return;
            }
        }
        let Some(table) = public
            .values()
            .flatten()
            .find_map(|s| s.route_table.filter(|_| !s.uses_main_route_table))
        else {
            self.push(
                StepKind::NeedsDecision,
                format!("Add public subnets to {vpc}"),
                &found,
                vec![],
                Some("the VPC has no public route table (0.0.0.0/0 to an attached internet gateway) to associate new public subnets with".into()),
            );
            return;
        };
        // The size of the VPC's public subnets, so capacity thresholds hold as they do there.
        let prefix = public
            .values()
            .flatten()
            .filter_map(|s| s.subnet.cidr_block.as_deref()?.parse::<Ipv4Network>().ok())
            .map(|n| n.prefix())
            .max()
            .unwrap_or(24);
        let mut commands = Vec::new();
        for az in if lacking.is_empty() { vec![] } else { lacking } {
            let Some(block) = cidr::free_block(&self.cidrs, &self.used, prefix) else {
                self.push(
                    StepKind::NeedsDecision,
                    format!("Add a public subnet in {az} to {vpc}"),
                    &found,
                    vec![],
                    Some(format!("no free /{prefix} is left inside the VPC's CIDRs ({}); add a secondary CIDR first", self.cidr_list())),
                );
                continue;
            };
            self.used.push(block);
            let (var, line) = self.capture(
                "SUBNET",
                &format!("create-subnet --vpc-id {vpc} --availability-zone {az} --cidr-block {block} --tag-specifications 'ResourceType=subnet,Tags=[{{Key=vpc-auditor,Value=public}}]'"),
                "Subnet.SubnetId",
            );
            commands.push(line);
            commands.push(self.ec2(&format!(
                "associate-route-table --route-table-id {} --subnet-id {}",
                table.id,
                arg(&var)
            )));
            self.new_public.insert(az.clone(), var);
        }
        if !commands.is_empty() {
            self.push(
                StepKind::Automatic,
                format!(
                    "Add public subnets to {vpc}, on public route table {}",
                    table.id
                ),
                &found,
                commands,
                None,
            );
        }
    }

    fn cidr_list(&self) -> String {
        self.cidrs
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A NAT gateway that serves `az`: an existing public one in a public subnet of `az`,
    /// else one the plan creates there. `None` (with a needs-decision step) when `az` has
    /// no public subnet to hold one.
    fn nat_for(
        &mut self,
        az: &str,
        misplaced: &BTreeSet<&str>,
        fixes: &[&Finding],
    ) -> Option<String> {
        if let Some(nat) = self.nat_in_az.get(az) {
            return Some(nat.clone());
        }
        let public = self.public_subnets_by_az();
        let in_az: Vec<&SubnetView> = public.get(az).cloned().unwrap_or_default();
        let existing = self
            .view
            .nat_gateways
            .iter()
            .filter(|n| n.state.as_deref() == Some("available"))
            .filter(|n| n.connectivity_type.as_deref().unwrap_or("public") == "public")
            .filter(|n| !misplaced.contains(n.id.as_str()))
            .filter(|n| {
                n.subnet_id
                    .as_deref()
                    .is_some_and(|s| in_az.iter().any(|p| p.subnet.id == s))
            })
            .map(|n| n.id.clone())
            .min();
        let nat = match existing {
            Some(nat) => nat,
            None => {
                let vpc = self.vpc();
                let planned = self.new_public.get(az).map(|v| arg(v));
                let Some(subnet) = in_az.iter().map(|s| s.subnet.id.clone()).min().or(planned)
                else {
                    self.push(
                        StepKind::NeedsDecision,
                        format!("Give {az} of {vpc} a NAT gateway"),
                        fixes,
                        vec![],
                        Some(format!("{az} has no public subnet to hold a NAT gateway: add one first (vpc.public_subnet_per_az)")),
                    );
                    return None;
                };
                let (eip, eip_line) =
                    self.capture("EIP", "allocate-address --domain vpc", "AllocationId");
                let (nat, nat_line) = self.capture(
                    "NAT",
                    &format!(
                        "create-nat-gateway --subnet-id {subnet} --allocation-id {}",
                        arg(&eip)
                    ),
                    "NatGateway.NatGatewayId",
                );
                let wait = self.ec2(&format!(
                    "wait nat-gateway-available --nat-gateway-ids {}",
                    arg(&nat)
                ));
                self.push(
                    StepKind::Automatic,
                    format!("Create a NAT gateway in public subnet {subnet} ({az})"),
                    fixes,
                    vec![eip_line, nat_line, wait],
                    None,
                );
                nat
            }
        };
        self.nat_in_az.insert(az.to_string(), nat.clone());
        Some(nat)
    }

    /// `nat.in_public_subnet`, `nat.same_az` and `subnet.private_egress`, together: every
    /// private subnet on a route table that one of them names gets its own zone's NAT.
    fn egress(&mut self) {
        // A NAT gateway whose subnet the internet gateway step routes is placed well then.
        let public_after = self.public_subnets_by_az();
        let mut misplaced_findings = Vec::new();
        for f in self.of_rule("nat.in_public_subnet") {
            let now_public = self
                .topo
                .nat_gateway(&f.resource_id)
                .and_then(|n| n.subnet_id.as_deref())
                .is_some_and(|s| public_after.values().flatten().any(|p| p.subnet.id == s));
            if !(now_public && self.credit_igw_step(f)) {
                misplaced_findings.push(f);
            }
        }
        let subnet_findings: Vec<&Finding> = self
            .findings
            .iter()
            .copied()
            .filter(|f| f.rule_id == "nat.same_az" || f.rule_id == "subnet.private_egress")
            .collect();
        if misplaced_findings.is_empty() && subnet_findings.is_empty() {
            return;
        }
        let misplaced: BTreeSet<&str> = misplaced_findings
            .iter()
            .map(|f| f.resource_id.as_str())
            .collect();
        let flagged: BTreeSet<&str> = subnet_findings
            .iter()
            .map(|f| f.resource_id.as_str())
            .collect();
        let view = self.view;
        let private: Vec<&SubnetView> = view.subnets_with_role(SubnetRole::Private).collect();
        // Tables to plan: those holding a flagged subnet or routing to a misplaced NAT.
        let mut tables: BTreeMap<&str, (&RouteTable, Vec<&SubnetView>)> = BTreeMap::new();
        for s in &private {
            let Some(t) = s.route_table else { continue };
            let touches = flagged.contains(s.subnet.id.as_str())
                || s.default_target().is_some_and(|x| misplaced.contains(x));
            if touches {
                tables.entry(t.id.as_str()).or_insert((t, Vec::new()));
            }
        }
        for s in &private {
            if let Some(entry) = s.route_table.and_then(|t| tables.get_mut(t.id.as_str())) {
                entry.1.push(s);
            }
        }
        let fixes_for = |subnets: &[&SubnetView]| -> Vec<&Finding> {
            subnet_findings
                .iter()
                .copied()
                .filter(|f| subnets.iter().any(|s| s.subnet.id == f.resource_id))
                .collect()
        };
        for (_, (table, subnets)) in tables {
            let mut by_az: BTreeMap<&str, Vec<&SubnetView>> = BTreeMap::new();
            for s in &subnets {
                by_az.entry(s.az()).or_default().push(s);
            }
            // The table may keep its subnets when it is no main table and serves nothing but
            // these private subnets; else every zone moves to a table of its own.
            let shared_beyond = view.subnets.iter().any(|s| {
                s.route_table.is_some_and(|t| t.id == table.id)
                    && !subnets.iter().any(|p| p.subnet.id == s.subnet.id)
            });
            let is_main = table.associations.iter().any(|a| a.main);
            let mut nats: BTreeMap<&str, String> = BTreeMap::new();
            for (az, in_az) in &by_az {
                let fixes = fixes_for(in_az);
                if let Some(nat) = self.nat_for(az, &misplaced, &fixes) {
                    nats.insert(az, nat);
                }
            }
            let current = table
                .routes
                .iter()
                .find(|r| r.destination_cidr.as_deref() == Some("0.0.0.0/0"))
                .filter(|r| r.state.as_deref() != Some("blackhole"))
                .and_then(|r| r.target.clone());
            let keep_az: Option<&str> = if is_main || shared_beyond {
                None
            } else {
                nats.iter()
                    .find(|(_, n)| current.as_deref() == Some(n.as_str()))
                    .map(|(az, _)| *az)
                    .or_else(|| nats.keys().next().copied())
            };
            for (az, in_az) in &by_az {
                let Some(nat) = nats.get(az).cloned() else {
                    continue;
                };
                let fixes = fixes_for(in_az);
                let ids: Vec<&str> = in_az.iter().map(|s| s.subnet.id.as_str()).collect();
                if Some(*az) == keep_az {
                    if current.as_deref() == Some(nat.as_str()) {
                        continue;
                    }
                    let cmd = self.default_route(table, "--nat-gateway-id", &nat);
                    self.repointed_tables.insert(table.id.clone());
                    self.push(
                        StepKind::Automatic,
                        format!(
                            "Route {} ({az}) through NAT gateway {nat} on route table {}",
                            ids.join(", "),
                            table.id
                        ),
                        &fixes,
                        vec![cmd],
                        None,
                    );
                } else {
                    let commands = self.split_table(table, in_az, &nat);
                    self.push(
                        StepKind::Automatic,
                        format!(
                            "Give {} ({az}) a route table of its own, routed through NAT gateway {nat} \
                             (route table {} is shared {})",
                            ids.join(", "),
                            table.id,
                            if is_main { "as the VPC's main table" } else { "with other zones or subnets" }
                        ),
                        &fixes,
                        commands,
                        None,
                    );
                }
            }
        }
        // A misplaced NAT gateway goes once nothing routes to it.
        for f in misplaced_findings {
            let nat = f.resource_id.as_str();
            let still_used = view.subnets.iter().any(|s| {
                let moved = s.route_table.is_some_and(|t| {
                    self.table_of
                        .get(&s.subnet.id)
                        .is_some_and(|now| *now != t.id)
                });
                let repointed = s
                    .route_table
                    .is_some_and(|t| self.repointed_tables.contains(&t.id));
                s.default_target() == Some(nat) && !moved && !repointed
            });
            if still_used {
                self.push(
                    StepKind::Manual,
                    format!("Delete NAT gateway {nat} once nothing routes to it"),
                    &[f],
                    vec![self.ec2(&format!("delete-nat-gateway --nat-gateway-id {nat}"))],
                    Some(
                        "subnets that are not private still route to it; re-point them first"
                            .into(),
                    ),
                );
            } else {
                let commands = vec![
                    self.ec2(&format!("delete-nat-gateway --nat-gateway-id {nat}")),
                    self.ec2(&format!("wait nat-gateway-deleted --nat-gateway-ids {nat}")),
                ];
                self.push(
                    StepKind::Automatic,
                    format!("Delete NAT gateway {nat}, which has no path to the internet and no routes left"),
                    &[f],
                    commands,
                    None,
                );
            }
        }
    }

    /// A new route table for `subnets` (one zone): the old table's other routes copied, the
    /// default route through `nat`, the old table's gateway endpoints, then the subnets
    /// re-associated.
    fn split_table(&mut self, old: &RouteTable, subnets: &[&SubnetView], nat: &str) -> Vec<String> {
        let vpc = self.vpc();
        let (rtb, line) = self.capture(
            "RTB",
            &format!("create-route-table --vpc-id {vpc}"),
            "RouteTable.RouteTableId",
        );
        let mut commands = vec![line];
        for route in &old.routes {
            let (Some(dest), Some(target)) =
                (route.destination_cidr.as_deref(), route.target.as_deref())
            else {
                continue;
            };
            if dest == "0.0.0.0/0"
                || target == "local"
                || route.state.as_deref() == Some("blackhole")
            {
                continue;
            }
            let flag = match target.split('-').next().unwrap_or("") {
                "igw" | "vgw" => "--gateway-id",
                "nat" => "--nat-gateway-id",
                "tgw" => "--transit-gateway-id",
                "pcx" => "--vpc-peering-connection-id",
                "eni" => "--network-interface-id",
                "vpce" => "--vpc-endpoint-id",
                _ => continue,
            };
            commands.push(self.ec2(&format!(
                "create-route --route-table-id {} --destination-cidr-block {dest} {flag} {target}",
                arg(&rtb)
            )));
        }
        commands.push(self.ec2(&format!(
            "create-route --route-table-id {} --destination-cidr-block 0.0.0.0/0 --nat-gateway-id {}",
            arg(&rtb),
            arg(nat)
        )));
        let gateways: Vec<String> = self
            .view
            .endpoints
            .iter()
            .filter(|e| e.endpoint_type.as_deref() == Some("Gateway"))
            .filter(|e| e.route_table_ids.contains(&old.id))
            .map(|e| e.id.clone())
            .collect();
        for endpoint in gateways {
            commands.push(self.ec2(&format!(
                "modify-vpc-endpoint --vpc-endpoint-id {endpoint} --add-route-table-ids {}",
                arg(&rtb)
            )));
            self.endpoint_tables
                .entry(endpoint)
                .or_default()
                .push(rtb.clone());
        }
        for s in subnets {
            let id = &s.subnet.id;
            if s.uses_main_route_table {
                commands.push(self.ec2(&format!(
                    "associate-route-table --route-table-id {} --subnet-id {id}",
                    arg(&rtb)
                )));
            } else {
                // The association id is not in the snapshot: look it up.
                let lookup = format!(
                    "$({} --query 'RouteTables[].Associations[?SubnetId==`{id}`].RouteTableAssociationId' --output text)",
                    self.ec2(&format!("describe-route-tables --route-table-ids {}", old.id))
                );
                commands.push(self.ec2(&format!(
                    "replace-route-table-association --association-id {lookup} --route-table-id {}",
                    arg(&rtb)
                )));
            }
            self.table_of.insert(id.clone(), rtb.clone());
        }
        commands
    }

    fn s3_gateway(&mut self) {
        let found = self.of_rule("endpoint.s3_gateway");
        let Some(finding) = found.first() else {
            return;
        };
        let vpc = self.vpc();
        let Some(service) = finding.details["service_name"].as_str() else {
            return;
        };
        let tables: BTreeSet<String> = self
            .view
            .subnets_with_role(SubnetRole::Private)
            .filter_map(|s| self.table_of.get(&s.subnet.id).cloned())
            .collect();
        let endpoint = finding.details["vpc_endpoint_id"].as_str();
        let commands = match endpoint {
            None => {
                if tables.is_empty() {
                    return;
                }
                let list: Vec<String> = tables.iter().map(|t| arg(t)).collect();
                vec![self.ec2(&format!(
                    "create-vpc-endpoint --vpc-id {vpc} --vpc-endpoint-type Gateway --service-name {service} --route-table-ids {}",
                    list.join(" ")
                ))]
            }
            Some(endpoint) => {
                let on: BTreeSet<String> = self
                    .view
                    .endpoints
                    .iter()
                    .filter(|e| e.id == endpoint)
                    .flat_map(|e| e.route_table_ids.iter().cloned())
                    .chain(
                        self.endpoint_tables
                            .get(endpoint)
                            .cloned()
                            .unwrap_or_default(),
                    )
                    .collect();
                let missing: Vec<String> = tables.difference(&on).map(|t| arg(t)).collect();
                if missing.is_empty() {
                    return;
                }
                vec![self.ec2(&format!(
                    "modify-vpc-endpoint --vpc-endpoint-id {endpoint} --add-route-table-ids {}",
                    missing.join(" ")
                ))]
            }
        };
        self.push(
            StepKind::Automatic,
            format!("Put the S3 gateway endpoint on every private route table of {vpc}"),
            &found,
            commands,
            None,
        );
    }

    /// One private subnet per AZ: the one with the most free addresses.
    fn one_private_subnet_per_az(&self) -> BTreeMap<&'a str, &'a str> {
        let mut best: BTreeMap<&str, &SubnetView> = BTreeMap::new();
        for s in self.view.subnets_with_role(SubnetRole::Private) {
            let better = best.get(s.az()).is_none_or(|b| {
                let free = |v: &SubnetView| v.subnet.available_ip_address_count.unwrap_or(0);
                (free(s), std::cmp::Reverse(&s.subnet.id))
                    > (free(b), std::cmp::Reverse(&b.subnet.id))
            });
            if better {
                best.insert(s.az(), s);
            }
        }
        best.into_iter()
            .map(|(az, s)| (az, s.subnet.id.as_str()))
            .collect()
    }

    fn interface_endpoints(&mut self) {
        let found = self.of_rule("endpoint.interface_required");
        let Some(finding) = found.first() else {
            return;
        };
        let vpc = self.vpc();
        let services: Vec<String> = finding.details["missing_services"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let subnets: Vec<&str> = self.one_private_subnet_per_az().into_values().collect();
        if subnets.is_empty() || services.is_empty() {
            self.push(
                StepKind::NeedsDecision,
                format!("Create the interface endpoints of {vpc}"),
                &found,
                vec![],
                Some("the VPC has no private subnet to put them in".into()),
            );
            return;
        }
        let (sg, sg_line) = self.capture(
            "SG",
            &format!(
                "create-security-group --vpc-id {vpc} --group-name vpc-auditor-endpoints-{vpc} \
                 --description 'Interface endpoints: HTTPS from the VPC'"
            ),
            "GroupId",
        );
        let ranges: Vec<String> = self
            .cidrs
            .iter()
            .map(|c| format!("{{CidrIp={c}}}"))
            .collect();
        let mut commands = vec![
            sg_line,
            self.ec2(&format!(
                "authorize-security-group-ingress --group-id {} --ip-permissions 'IpProtocol=tcp,FromPort={ENDPOINT_PORT},ToPort={ENDPOINT_PORT},IpRanges=[{}]'",
                arg(&sg),
                ranges.join(",")
            )),
        ];
        for service in &services {
            commands.push(self.ec2(&format!(
                "create-vpc-endpoint --vpc-id {vpc} --vpc-endpoint-type Interface --service-name {service} \
                 --subnet-ids {} --security-group-ids {} --private-dns-enabled",
                subnets.join(" "),
                arg(&sg)
            )));
        }
        self.push(
            StepKind::Automatic,
            format!(
                "Create the interface endpoints {} in {vpc}, one subnet per AZ ({})",
                services.join(", "),
                subnets.join(", ")
            ),
            &found,
            commands,
            None,
        );
    }

    /// Rules no command closes safely: a manual step each, with the closest safe action.
    fn manual_rules(&mut self) {
        let vpc = self.vpc();
        for f in self.of_rule("subnet.private_size") {
            let max = f.details["max_prefix_length"].as_u64().unwrap_or(18) as u8;
            let az = self
                .topo
                .subnet(&f.resource_id)
                .map(|s| s.az().to_string())
                .unwrap_or_default();
            let (commands, closest) = match cidr::free_block(&self.cidrs, &self.used, max) {
                Some(block) => {
                    self.used.push(block);
                    (
                        vec![self.ec2(&format!(
                            "create-subnet --vpc-id {vpc} --availability-zone {az} --cidr-block {block}"
                        ))],
                        format!("create a /{max} private subnet ({block}, free inside the VPC) in {az}, give it this subnet's route table, and move workloads to it"),
                    )
                }
                None => (
                    vec![],
                    format!(
                        "the VPC's CIDRs ({}) have no free /{max}: add a secondary CIDR (vpc.cidr_size), then create a /{max} private subnet in {az}",
                        self.cidr_list()
                    ),
                ),
            };
            self.push(
                StepKind::Manual,
                format!("Make room for pods beside subnet {}", f.resource_id),
                &[f],
                commands,
                Some(format!(
                    "a subnet's CIDR cannot be changed in place; closest safe action: {closest}"
                )),
            );
        }
        for f in self.of_rule("subnet.ip_capacity") {
            let free = f.details["free_ips"].as_u64();
            let usable = f.details["usable_ips"].as_u64();
            let reason = if free.is_some() && free == usable {
                "the subnet is entirely free but smaller than the threshold asks; a larger subnet is the fix, which cannot be made in place".to_string()
            } else {
                "freeing addresses means deleting network interfaces in use, or moving workloads: a person decides which".to_string()
            };
            self.push(
                StepKind::Manual,
                format!("Add capacity beside subnet {}", f.resource_id),
                &[f],
                vec![],
                Some(reason),
            );
        }
        for rule in [
            "subnet.public_size",
            "vpc.az_count",
            "vpc.private_subnet_per_az",
            "vpc.corporate_egress",
        ] {
            for f in self.of_rule(rule) {
                let reason = match rule {
                    "subnet.public_size" => "a subnet cannot be resized in place; new public subnets can be smaller".to_string(),
                    "vpc.corporate_egress" => "egress through a corporate path is a design decision: accept it in the config, or add NAT gateways".to_string(),
                    _ => format!(
                        "a new zone of private subnets needs a NAT gateway, a route table, the S3 gateway endpoint and the interface endpoints there too; the free space inside the VPC is {}: {}",
                        self.cidr_list(),
                        f.remediation
                    ),
                };
                self.push(
                    StepKind::Manual,
                    format!("{}: {}", f.rule_id, f.message),
                    &[f],
                    vec![],
                    Some(reason),
                );
            }
        }
    }

    /// Rules this module does not plan itself: their own commands when complete, else a
    /// manual step carrying their remediation.
    fn generic(&mut self) {
        let rest: Vec<&Finding> = self
            .findings
            .iter()
            .copied()
            .filter(|f| !PLANNED_RULES.contains(&f.rule_id.as_str()))
            .collect();
        for f in rest {
            match complete_commands(&f.remediation) {
                Some(commands) => {
                    let commands: Vec<String> = commands
                        .into_iter()
                        .map(|c| format!("{c} --region {}", self.region.region))
                        .collect();
                    // Findings fixed by the same commands (endpoints sharing one security
                    // group) share one step: AWS refuses the same rule twice.
                    let same = self.steps.iter_mut().find(|s| {
                        s.kind == StepKind::Automatic
                            && commands.iter().all(|c| s.commands.contains(c))
                    });
                    match same {
                        Some(step) => step.fixes.push(FixedFinding::of(f)),
                        None => {
                            self.push(StepKind::Automatic, f.message.clone(), &[f], commands, None)
                        }
                    }
                }
                None => self.push(
                    StepKind::Manual,
                    f.message.clone(),
                    &[f],
                    vec![],
                    Some(f.remediation.clone()),
                ),
            }
        }
    }
}

/// IAM findings, one group per role: the rule's own commands when they are complete (the
/// policy fixes of `iam::remediation`, the trust document with the external ID read from
/// the environment), else a manual step.
fn iam_groups(snapshot: &Snapshot, findings: &[&Finding]) -> Vec<PlanGroup> {
    let failed: BTreeSet<&str> = snapshot
        .iam
        .iter()
        .filter(|i| i.error.is_some())
        .map(|i| i.account_id.as_str())
        .collect();
    let mut by_role: BTreeMap<(&str, &str), Vec<&Finding>> = BTreeMap::new();
    for f in findings.iter().copied() {
        if f.resource_type == crate::finding::ResourceType::IamRole
            && !failed.contains(f.account_id.as_str())
        {
            by_role
                .entry((f.account_id.as_str(), f.resource_id.as_str()))
                .or_default()
                .push(f);
        }
    }
    by_role
        .into_iter()
        .map(|((account, role), fs)| PlanGroup {
            account_id: account.to_string(),
            region: "global".to_string(),
            target: Target::Role {
                role_arn: role.to_string(),
            },
            steps: fs
                .into_iter()
                .map(|f| {
                    let commands = (f.rule_id != "iam.role_missing")
                        .then(|| complete_commands(&f.remediation))
                        .flatten();
                    match commands {
                        Some(commands) => Step {
                            kind: StepKind::Automatic,
                            summary: f.message.clone(),
                            fixes: vec![FixedFinding::of(f)],
                            commands,
                            reason: None,
                        },
                        None => Step {
                            kind: StepKind::Manual,
                            summary: f.message.clone(),
                            fixes: vec![FixedFinding::of(f)],
                            commands: vec![],
                            reason: Some(f.remediation.clone()),
                        },
                    }
                })
                .collect(),
        })
        .collect()
}

/// The environment variables a command reads (`"$NAME"`), other than the plan's own.
pub fn environment_variables(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = command;
    while let Some(at) = rest.find("\"$") {
        let name: String = rest[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + 2..];
        let ours = ["IGW_", "NAT_", "EIP_", "RTB_", "SG_", "SUBNET_"]
            .iter()
            .any(|p| name.starts_with(p) && name[p.len()..].chars().all(|c| c.is_ascii_digit()));
        if !name.is_empty() && !ours && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests;
