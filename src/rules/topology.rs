//! Network topology of one region, derived once from a snapshot: which route table each
//! subnet uses, where its default route goes, and whether it is public or private.
//!
//! Every lookup is indexed up front (by VPC, subnet, NAT and endpoint id), so evaluating a
//! region is linear in its resources. All network semantics that several rules share live
//! here, so that the rules cannot disagree about them:
//!
//! - **Route table resolution.** A subnet uses the route table explicitly associated with
//!   it; failing that, the main route table *of its own VPC* (never another VPC's).
//! - **Default route.** The route whose IPv4 destination is `0.0.0.0/0`.
//! - **Intended role.** How the auditor knows whether a subnet is meant to be public or
//!   private, in order: the EKS subnet tags (`kubernetes.io/role/elb` → public,
//!   `kubernetes.io/role/internal-elb` → private); then a `Name` tag containing the word
//!   `public` or `private`; then the route itself: a default route to an internet gateway
//!   makes it public, anything else (a NAT, nothing, a blackhole) private. Tags win over the
//!   route so that a subnet meant to be private that lost its NAT route is still held to the
//!   private rules, and one meant to be private but opened to an IGW is caught.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::snapshot::{
    InternetGateway, NatGateway, RegionSnapshot, Route, RouteTable, SecurityGroup, Subnet, Vpc,
    VpcEndpoint,
};

use super::pack::SubnetRole;

/// Where a subnet's role came from; shown in finding details so a person can see why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSource {
    KubernetesTag,
    NameTag,
    DefaultRoute,
}

impl RoleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleSource::KubernetesTag => "kubernetes.io/role tag",
            RoleSource::NameTag => "Name tag",
            RoleSource::DefaultRoute => "default route",
        }
    }
}

/// One subnet with everything the rules need to know about its routing.
#[derive(Debug, Clone)]
pub struct SubnetView<'a> {
    pub subnet: &'a Subnet,
    /// The route table in effect; `None` when the VPC has no main table in the snapshot.
    pub route_table: Option<&'a RouteTable>,
    /// Whether `route_table` is the VPC's main table, reached by fallback.
    pub uses_main_route_table: bool,
    pub default_route: Option<&'a Route>,
    pub role: SubnetRole,
    pub role_source: RoleSource,
}

impl SubnetView<'_> {
    /// The default route's target, if the route is active.
    pub fn default_target(&self) -> Option<&str> {
        self.default_route
            .filter(|r| r.state.as_deref() != Some("blackhole"))
            .and_then(|r| r.target.as_deref())
    }

    /// True when the default route actively targets an internet gateway.
    pub fn routes_to_igw(&self) -> bool {
        self.default_target().is_some_and(|t| t.starts_with("igw-"))
    }

    pub fn az(&self) -> &str {
        &self.subnet.availability_zone
    }
}

/// One VPC with its subnets, gateways and endpoints gathered together.
#[derive(Debug, Clone)]
pub struct VpcView<'a> {
    pub vpc: &'a Vpc,
    pub subnets: Vec<SubnetView<'a>>,
    pub internet_gateways: Vec<&'a InternetGateway>,
    pub nat_gateways: Vec<&'a NatGateway>,
    pub endpoints: Vec<&'a VpcEndpoint>,
}

impl<'a> VpcView<'a> {
    /// Every AZ the VPC's subnets are in, sorted.
    pub fn azs(&self) -> BTreeSet<&'a str> {
        self.subnets
            .iter()
            .map(|s| s.subnet.availability_zone.as_str())
            .collect()
    }

    pub fn subnets_with_role(&self, role: SubnetRole) -> impl Iterator<Item = &SubnetView<'a>> {
        self.subnets.iter().filter(move |s| s.role == role)
    }

    /// True when the IGW is attached to this VPC (state `available` or `attached`).
    pub fn has_attached_igw(&self, igw_id: &str) -> bool {
        self.internet_gateways.iter().any(|igw| {
            igw.id == igw_id
                && igw.attachments.iter().any(|a| {
                    a.vpc_id == self.vpc.id
                        && matches!(a.state.as_deref(), Some("available") | Some("attached"))
                })
        })
    }
}

/// The whole region, indexed.
pub struct RegionTopology<'a> {
    pub region: &'a RegionSnapshot,
    pub vpcs: Vec<VpcView<'a>>,
    subnets_by_id: HashMap<&'a str, (usize, usize)>,
    nat_by_id: HashMap<&'a str, &'a NatGateway>,
    security_groups_by_id: HashMap<&'a str, &'a SecurityGroup>,
}

impl<'a> RegionTopology<'a> {
    /// Indexes a region. Cost is linear in the number of resources.
    pub fn build(region: &'a RegionSnapshot) -> RegionTopology<'a> {
        let mut explicit_table: HashMap<&str, &RouteTable> = HashMap::new();
        let mut main_table: HashMap<&str, &RouteTable> = HashMap::new();
        for table in &region.route_tables {
            for assoc in &table.associations {
                if assoc.main {
                    main_table.insert(table.vpc_id.as_str(), table);
                }
                if let Some(subnet) = &assoc.subnet_id {
                    explicit_table.insert(subnet.as_str(), table);
                }
            }
        }

        let mut subnets_by_vpc: BTreeMap<&str, Vec<&Subnet>> = BTreeMap::new();
        for subnet in &region.subnets {
            subnets_by_vpc
                .entry(subnet.vpc_id.as_str())
                .or_default()
                .push(subnet);
        }
        let mut igws_by_vpc: HashMap<&str, Vec<&InternetGateway>> = HashMap::new();
        for igw in &region.internet_gateways {
            let vpcs: BTreeSet<&str> = igw.attachments.iter().map(|a| a.vpc_id.as_str()).collect();
            for vpc in vpcs {
                igws_by_vpc.entry(vpc).or_default().push(igw);
            }
        }
        let mut nats_by_vpc: HashMap<&str, Vec<&NatGateway>> = HashMap::new();
        for nat in &region.nat_gateways {
            if let Some(vpc) = &nat.vpc_id {
                nats_by_vpc.entry(vpc.as_str()).or_default().push(nat);
            }
        }
        let mut endpoints_by_vpc: HashMap<&str, Vec<&VpcEndpoint>> = HashMap::new();
        for endpoint in &region.vpc_endpoints {
            endpoints_by_vpc
                .entry(endpoint.vpc_id.as_str())
                .or_default()
                .push(endpoint);
        }

        let mut vpcs = Vec::with_capacity(region.vpcs.len());
        let mut subnets_by_id = HashMap::new();
        for (vpc_index, vpc) in region.vpcs.iter().enumerate() {
            let vpc_subnets = subnets_by_vpc
                .get(vpc.id.as_str())
                .cloned()
                .unwrap_or_default();
            let subnets: Vec<SubnetView> = vpc_subnets
                .into_iter()
                .map(|subnet| {
                    // An explicit association only counts if the table is in the same VPC.
                    let explicit = explicit_table
                        .get(subnet.id.as_str())
                        .copied()
                        .filter(|t| t.vpc_id == subnet.vpc_id);
                    let (route_table, uses_main) = match explicit {
                        Some(t) => (Some(t), false),
                        None => (main_table.get(subnet.vpc_id.as_str()).copied(), true),
                    };
                    let default_route = route_table.and_then(default_route);
                    let (role, role_source) = classify(subnet, default_route);
                    SubnetView {
                        subnet,
                        route_table,
                        uses_main_route_table: uses_main,
                        default_route,
                        role,
                        role_source,
                    }
                })
                .collect();
            for (subnet_index, view) in subnets.iter().enumerate() {
                subnets_by_id.insert(view.subnet.id.as_str(), (vpc_index, subnet_index));
            }
            let id = vpc.id.as_str();
            vpcs.push(VpcView {
                vpc,
                subnets,
                internet_gateways: igws_by_vpc.get(id).cloned().unwrap_or_default(),
                nat_gateways: nats_by_vpc.get(id).cloned().unwrap_or_default(),
                endpoints: endpoints_by_vpc.get(id).cloned().unwrap_or_default(),
            });
        }

        RegionTopology {
            region,
            vpcs,
            subnets_by_id,
            nat_by_id: region
                .nat_gateways
                .iter()
                .map(|n| (n.id.as_str(), n))
                .collect(),
            security_groups_by_id: region
                .security_groups
                .iter()
                .map(|g| (g.id.as_str(), g))
                .collect(),
        }
    }

    pub fn subnet(&self, id: &str) -> Option<&SubnetView<'a>> {
        let (v, s) = *self.subnets_by_id.get(id)?;
        self.vpcs.get(v)?.subnets.get(s)
    }

    pub fn nat_gateway(&self, id: &str) -> Option<&'a NatGateway> {
        self.nat_by_id.get(id).copied()
    }

    pub fn security_group(&self, id: &str) -> Option<&'a SecurityGroup> {
        self.security_groups_by_id.get(id).copied()
    }
}

/// The IPv4 default route of a table, if it has one.
fn default_route(table: &RouteTable) -> Option<&Route> {
    table
        .routes
        .iter()
        .find(|r| r.destination_cidr.as_deref() == Some("0.0.0.0/0"))
}

/// Decides a subnet's intended role; see the module documentation for the order.
fn classify(subnet: &Subnet, default_route: Option<&Route>) -> (SubnetRole, RoleSource) {
    if subnet.tags.contains_key("kubernetes.io/role/internal-elb") {
        return (SubnetRole::Private, RoleSource::KubernetesTag);
    }
    if subnet.tags.contains_key("kubernetes.io/role/elb") {
        return (SubnetRole::Public, RoleSource::KubernetesTag);
    }
    if let Some(name) = subnet.tags.get("Name") {
        let words: Vec<String> = name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::to_ascii_lowercase)
            .collect();
        let has = |w: &str| words.iter().any(|x| x == w);
        match (has("private"), has("public")) {
            (true, false) => return (SubnetRole::Private, RoleSource::NameTag),
            (false, true) => return (SubnetRole::Public, RoleSource::NameTag),
            _ => {}
        }
    }
    let to_igw = default_route
        .filter(|r| r.state.as_deref() != Some("blackhole"))
        .and_then(|r| r.target.as_deref())
        .is_some_and(|t| t.starts_with("igw-"));
    let role = if to_igw {
        SubnetRole::Public
    } else {
        SubnetRole::Private
    };
    (role, RoleSource::DefaultRoute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::builder::{compliant_vpc, SnapshotBuilder};

    #[test]
    fn private_subnet_without_explicit_association_uses_its_own_vpcs_main_route_table() {
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-a", "10.0.0.0/16")
            .vpc("vpc-b", "10.1.0.0/16")
            .subnet("subnet-a", "vpc-a", "us-east-1a", "10.0.0.0/18")
            // vpc-b's main table routes to an IGW; it must not be used for vpc-a's subnet.
            .route_table("rtb-b-main", "vpc-b", true, Some("igw-b"), &[])
            .route_table("rtb-a-main", "vpc-a", true, Some("nat-a"), &[])
            .build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let view = topo.subnet("subnet-a").unwrap();
        assert_eq!(view.route_table.unwrap().id, "rtb-a-main");
        assert!(view.uses_main_route_table);
        assert_eq!(view.default_target(), Some("nat-a"));
        assert_eq!(view.role, SubnetRole::Private);
    }

    #[test]
    fn explicit_association_wins_over_main_table() {
        let snapshot = compliant_vpc().build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let public = topo.subnet("subnet-pub-a").unwrap();
        assert_eq!(public.route_table.unwrap().id, "rtb-public");
        assert!(!public.uses_main_route_table);
        assert_eq!(public.role, SubnetRole::Public);
        assert_eq!(public.role_source, RoleSource::DefaultRoute);
    }

    #[test]
    fn internal_elb_tag_makes_a_subnet_private_even_when_routed_to_an_igw() {
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-a", "10.0.0.0/16")
            .subnet("subnet-a", "vpc-a", "us-east-1a", "10.0.0.0/18")
            .route_table("rtb", "vpc-a", true, Some("igw-1"), &[])
            .with(|r| {
                r.subnets[0]
                    .tags
                    .insert("kubernetes.io/role/internal-elb".into(), "1".into());
            })
            .build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let view = topo.subnet("subnet-a").unwrap();
        assert_eq!(view.role, SubnetRole::Private);
        assert_eq!(view.role_source, RoleSource::KubernetesTag);
        assert!(view.routes_to_igw());
    }

    #[test]
    fn name_tag_words_decide_the_role_but_substrings_do_not() {
        let mut subnet = Subnet {
            id: "s".into(),
            vpc_id: "v".into(),
            ..Default::default()
        };
        subnet.tags.insert("Name".into(), "prod-public-1a".into());
        assert_eq!(
            classify(&subnet, None),
            (SubnetRole::Public, RoleSource::NameTag)
        );
        subnet.tags.insert("Name".into(), "publicity".into());
        assert_eq!(
            classify(&subnet, None),
            (SubnetRole::Private, RoleSource::DefaultRoute)
        );
    }

    #[test]
    fn blackholed_default_route_is_not_a_route_to_the_internet() {
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-a", "10.0.0.0/16")
            .subnet("subnet-a", "vpc-a", "us-east-1a", "10.0.0.0/18")
            .route_table("rtb", "vpc-a", true, Some("igw-gone"), &[])
            .with(|r| r.route_tables[0].routes[1].state = Some("blackhole".into()))
            .build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let view = topo.subnet("subnet-a").unwrap();
        assert_eq!(view.default_target(), None);
        assert_eq!(view.role, SubnetRole::Private);
    }

    #[test]
    fn subnet_with_no_route_table_at_all_is_private_with_no_default_route() {
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-a", "10.0.0.0/16")
            .subnet("subnet-a", "vpc-a", "us-east-1a", "10.0.0.0/18")
            .build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let view = topo.subnet("subnet-a").unwrap();
        assert!(view.route_table.is_none());
        assert!(view.default_route.is_none());
        assert_eq!(view.role, SubnetRole::Private);
    }
}
