//! Network topology of one region, derived once from a snapshot: which route table each
//! subnet uses, where its default route goes, which class each subnet is in, and how a
//! private subnet leaves the VPC.
//!
//! Every lookup is indexed up front (by VPC, subnet, NAT and endpoint id), so evaluating a
//! region is linear in its resources. All network semantics that several rules share live
//! here, so that the rules cannot disagree about them:
//!
//! - **Route table resolution.** A subnet uses the route table explicitly associated with
//!   it; failing that, the main route table *of its own VPC* (never another VPC's).
//! - **Default route.** The route whose IPv4 destination is `0.0.0.0/0`; for an IPv6-only
//!   subnet, its NAT64 route (`64:ff9b::/96`).
//! - **Subnet class** ([`SubnetRole`]), in order:
//!   1. a declared data plane (`data_planes:` in the config) names the subnet public or
//!      private; its VPC's other subnets are not judged at all;
//!   2. the EKS subnet tags (`kubernetes.io/role/elb` → public,
//!      `kubernetes.io/role/internal-elb` → private);
//!   3. **infrastructure**: the subnet holds a transit gateway VPC attachment, or the network
//!      interface of a Network Firewall or Gateway Load Balancer endpoint;
//!   4. a `Name` tag containing the word `public` or `private`;
//!   5. the default route: to an internet gateway → public; to anything else (a NAT
//!      gateway, a transit gateway, a blackhole, ...) → private; no default route at all →
//!      **isolated**.
//!
//!   Tags win over the route, so a subnet tagged private that lost its route is still a
//!   broken private subnet, and one tagged private but opened to an IGW is caught.
//! - **Availability zones.** Only subnets in an availability zone (not a Local Zone or a
//!   Wavelength Zone, by the zone's `ZoneType`) count toward the AZ rules.
//! - **Egress kind** ([`Egress`]): what a private subnet's default route reaches.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::snapshot::{
    InternetGateway, NatGateway, RegionSnapshot, Route, RouteTable, SecurityGroup, Subnet,
    TransitGatewayAttachment, Vpc, VpcEndpoint,
};

use super::pack::{EgressKind, SubnetRole};

/// The well-known NAT64 prefix that IPv6-only subnets route to a NAT gateway.
pub const NAT64_PREFIX: &str = "64:ff9b::/96";

/// Where a subnet's class came from; shown in finding details so a person can see why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSource {
    DataPlane,
    KubernetesTag,
    Infrastructure,
    NameTag,
    DefaultRoute,
}

impl RoleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleSource::DataPlane => "declared data plane",
            RoleSource::KubernetesTag => "kubernetes.io/role tag",
            RoleSource::Infrastructure => "what the subnet holds",
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
    /// Why the class was chosen, in words: `default route to igw-1`, `holds transit
    /// gateway attachment tgw-attach-1`, ...
    pub role_reason: String,
    /// False for a subnet of a declared data plane's VPC that the declaration does not
    /// name: no rule judges it and it counts toward nothing.
    pub judged: bool,
    /// False for a subnet in a Local Zone or a Wavelength Zone.
    pub in_availability_zone: bool,
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

    /// Whether the data plane rules judge this subnet as a subnet of class `role`.
    pub fn is(&self, role: SubnetRole) -> bool {
        self.judged && self.role == role
    }

    /// The class and why, for finding details.
    pub fn class_details(&self) -> serde_json::Value {
        serde_json::json!({
            "role": self.role.as_str(),
            "role_source": self.role_source.as_str(),
            "role_reason": self.role_reason,
        })
    }
}

/// What a private subnet's default route reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Egress<'a> {
    /// A path to the internet through `kind`, via `target`.
    Reaches { kind: EgressKind, target: &'a str },
    /// No path to the internet; `problem` says why (`has no 0.0.0.0/0 route`, ...).
    Broken {
        problem: String,
        kind: Option<EgressKind>,
        target: Option<&'a str>,
    },
}

/// One VPC with its subnets, gateways and endpoints gathered together.
#[derive(Debug, Clone)]
pub struct VpcView<'a> {
    pub vpc: &'a Vpc,
    /// Every subnet of the VPC; see [`SubnetView::judged`].
    pub subnets: Vec<SubnetView<'a>>,
    pub internet_gateways: Vec<&'a InternetGateway>,
    pub nat_gateways: Vec<&'a NatGateway>,
    pub endpoints: Vec<&'a VpcEndpoint>,
    pub transit_gateway_attachments: Vec<&'a TransitGatewayAttachment>,
    /// Whether the VPC holds any Network Firewall or Gateway Load Balancer endpoint.
    pub has_gwlb_endpoint_interfaces: bool,
    /// The declared data plane's name, when the config declares this VPC.
    pub data_plane: Option<String>,
}

impl<'a> VpcView<'a> {
    /// The availability zones of the VPC's data plane: where its judged public and private
    /// subnets are, Local and Wavelength Zones left out. Sorted.
    pub fn azs(&self) -> BTreeSet<&'a str> {
        self.subnets
            .iter()
            .filter(|s| s.judged && s.role.is_data_plane() && s.in_availability_zone)
            .map(|s| s.subnet.availability_zone.as_str())
            .collect()
    }

    /// The judged subnets of class `role`.
    pub fn subnets_with_role(&self, role: SubnetRole) -> impl Iterator<Item = &SubnetView<'a>> {
        self.subnets.iter().filter(move |s| s.is(role))
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

    /// Judges the VPC on exactly the declared subnets, in their declared roles: the others
    /// are not judged. Declared ids that are not subnets of this VPC are ignored here (the
    /// data plane rules report them).
    pub fn declare(&mut self, name: &str, public: &[String], private: &[String]) {
        self.data_plane = Some(name.to_string());
        for view in &mut self.subnets {
            let id = view.subnet.id.as_str();
            let role = if private.iter().any(|p| p == id) {
                Some(SubnetRole::Private)
            } else if public.iter().any(|p| p == id) {
                Some(SubnetRole::Public)
            } else {
                None
            };
            match role {
                Some(role) => {
                    view.role = role;
                    view.role_source = RoleSource::DataPlane;
                    view.role_reason = format!("declared {} in data plane {name}", role.as_str());
                    view.judged = true;
                }
                None => view.judged = false,
            }
        }
    }

    /// What `subnet`'s default route reaches (for a private subnet).
    pub fn egress(&self, topo: &RegionTopology<'a>, subnet: &SubnetView<'a>) -> Egress<'a> {
        let Some(route) = subnet.default_route else {
            return Egress::Broken {
                problem: "has no 0.0.0.0/0 route".to_string(),
                kind: None,
                target: None,
            };
        };
        let Some(target) = route.target.as_deref() else {
            return Egress::Broken {
                problem: "has a 0.0.0.0/0 route with no target".to_string(),
                kind: None,
                target: None,
            };
        };
        let kind = egress_kind(target);
        let broken = |problem: String| Egress::Broken {
            problem,
            kind,
            target: Some(target),
        };
        if route.state.as_deref() == Some("blackhole") {
            return broken(format!(
                "routes 0.0.0.0/0 to {target}, which is a blackhole"
            ));
        }
        match kind {
            Some(EgressKind::NatGateway) => match topo.nat_gateway(target) {
                None => broken(format!(
                    "routes 0.0.0.0/0 to NAT gateway {target}, which does not exist"
                )),
                Some(nat) if nat.state.as_deref() != Some("available") => broken(format!(
                    "routes 0.0.0.0/0 to NAT gateway {target}, which is {}",
                    nat.state.as_deref().unwrap_or("in an unknown state")
                )),
                // moto (and older snapshots) omit ConnectivityType for a public NAT.
                Some(nat) if nat.connectivity_type.as_deref() == Some("private") => {
                    Egress::Broken {
                        problem: format!(
                            "routes 0.0.0.0/0 to NAT gateway {target}, whose connectivity is private: it has no path to the internet"
                        ),
                        kind: Some(EgressKind::PrivateNatGateway),
                        target: Some(target),
                    }
                }
                Some(_) => Egress::Reaches {
                    kind: EgressKind::NatGateway,
                    target,
                },
            },
            Some(EgressKind::TransitGateway) => {
                let attached = self.transit_gateway_attachments.iter().any(|a| {
                    a.transit_gateway_id.as_deref() == Some(target)
                        && !matches!(
                            a.state.as_deref(),
                            Some("deleted" | "deleting" | "failed" | "rejected")
                        )
                });
                if attached {
                    Egress::Reaches {
                        kind: EgressKind::TransitGateway,
                        target,
                    }
                } else {
                    broken(format!(
                        "routes 0.0.0.0/0 to transit gateway {target}, which this VPC has no attachment to"
                    ))
                }
            }
            Some(EgressKind::FirewallEndpoint) => {
                // A Gateway Load Balancer endpoint is listed by DescribeVpcEndpoints; a
                // Network Firewall endpoint is not, but its network interface is.
                let gwlb = self.endpoints.iter().any(|e| {
                    e.id == target
                        && e.endpoint_type
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case("GatewayLoadBalancer"))
                });
                let known_endpoint = self.endpoints.iter().any(|e| e.id == target);
                if gwlb || (!known_endpoint && self.has_gwlb_endpoint_interfaces) {
                    Egress::Reaches {
                        kind: EgressKind::FirewallEndpoint,
                        target,
                    }
                } else if known_endpoint {
                    broken(format!(
                        "routes 0.0.0.0/0 to {target}, an endpoint that is not a firewall or Gateway Load Balancer endpoint"
                    ))
                } else {
                    broken(format!(
                        "routes 0.0.0.0/0 to endpoint {target}, which does not exist"
                    ))
                }
            }
            Some(kind) => Egress::Reaches { kind, target },
            None if target.starts_with("igw-") => {
                broken(format!("routes 0.0.0.0/0 to {target}, not to a NAT gateway"))
            }
            None => broken(format!(
                "routes 0.0.0.0/0 to {target}, which is not a path to the internet"
            )),
        }
    }
}

/// The egress kind a route target names, by its id's form.
pub fn egress_kind(target: &str) -> Option<EgressKind> {
    if target.starts_with("nat-") {
        Some(EgressKind::NatGateway)
    } else if target.starts_with("tgw-") {
        Some(EgressKind::TransitGateway)
    } else if target.starts_with("vgw-") {
        Some(EgressKind::VirtualPrivateGateway)
    } else if target.starts_with("arn:") && target.contains(":core-network/") {
        Some(EgressKind::CloudWan)
    } else if target.starts_with("eni-") || target.starts_with("i-") {
        Some(EgressKind::NatInstance)
    } else if target.starts_with("vpce-") {
        Some(EgressKind::FirewallEndpoint)
    } else {
        None
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

/// Whether a zone is an availability zone: by its `ZoneType` when the snapshot lists it,
/// else by its name (an AZ is the region's name and one letter; Local and Wavelength Zones
/// carry more, as in `us-west-2-lax-1a`).
fn is_availability_zone(region: &RegionSnapshot, zone: &str) -> bool {
    match region.availability_zones.iter().find(|z| z.name == zone) {
        Some(z) => z
            .zone_type
            .as_deref()
            .is_none_or(|t| t == "availability-zone"),
        // A zone of another region's name is not ours to judge: count it.
        None => zone
            .strip_prefix(region.region.as_str())
            .is_none_or(|rest| rest.len() == 1 && rest.chars().all(|c| c.is_ascii_lowercase())),
    }
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
        // What makes a subnet infrastructure: the reason, by subnet id.
        let mut infrastructure: HashMap<&str, String> = HashMap::new();
        let mut endpoints_by_vpc: HashMap<&str, Vec<&VpcEndpoint>> = HashMap::new();
        for endpoint in &region.vpc_endpoints {
            endpoints_by_vpc
                .entry(endpoint.vpc_id.as_str())
                .or_default()
                .push(endpoint);
            let gwlb = endpoint
                .endpoint_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("GatewayLoadBalancer"));
            if gwlb && endpoint.state.as_deref() != Some("deleted") {
                for subnet in &endpoint.subnet_ids {
                    infrastructure.entry(subnet.as_str()).or_insert_with(|| {
                        format!("holds Gateway Load Balancer endpoint {}", endpoint.id)
                    });
                }
            }
        }
        let mut attachments_by_vpc: HashMap<&str, Vec<&TransitGatewayAttachment>> = HashMap::new();
        for attachment in &region.transit_gateway_attachments {
            attachments_by_vpc
                .entry(attachment.vpc_id.as_str())
                .or_default()
                .push(attachment);
            if !matches!(attachment.state.as_deref(), Some("deleted" | "deleting")) {
                for subnet in &attachment.subnet_ids {
                    infrastructure.entry(subnet.as_str()).or_insert_with(|| {
                        format!(
                            "holds transit gateway attachment {}{}",
                            attachment.id,
                            attachment
                                .transit_gateway_id
                                .as_deref()
                                .map(|t| format!(" ({t})"))
                                .unwrap_or_default()
                        )
                    });
                }
            }
        }
        let mut gwlb_interface_vpcs: HashSet<&str> = HashSet::new();
        for eni in &region.gwlb_endpoint_interfaces {
            if let Some(vpc) = eni.vpc_id.as_deref() {
                gwlb_interface_vpcs.insert(vpc);
            }
            if let Some(subnet) = eni.subnet_id.as_deref() {
                infrastructure.entry(subnet).or_insert_with(|| {
                    format!(
                        "holds firewall or Gateway Load Balancer endpoint interface {}",
                        eni.id
                    )
                });
            }
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
                    let default_route =
                        route_table.and_then(|t| default_route(t, subnet.cidr_block.is_none()));
                    let (role, role_source, role_reason) = classify(
                        subnet,
                        default_route,
                        infrastructure.get(subnet.id.as_str()).map(String::as_str),
                    );
                    SubnetView {
                        subnet,
                        route_table,
                        uses_main_route_table: uses_main,
                        default_route,
                        role,
                        role_source,
                        role_reason,
                        judged: true,
                        in_availability_zone: is_availability_zone(
                            region,
                            &subnet.availability_zone,
                        ),
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
                transit_gateway_attachments: attachments_by_vpc
                    .get(id)
                    .cloned()
                    .unwrap_or_default(),
                has_gwlb_endpoint_interfaces: gwlb_interface_vpcs.contains(id),
                data_plane: None,
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

/// The default route of a table: `0.0.0.0/0`; for an IPv6-only subnet, which has no IPv4
/// default route, the NAT64 route through which it reaches IPv4 services.
fn default_route(table: &RouteTable, ipv6_only: bool) -> Option<&Route> {
    table
        .routes
        .iter()
        .find(|r| r.destination_cidr.as_deref() == Some("0.0.0.0/0"))
        .or_else(|| {
            table
                .routes
                .iter()
                .filter(|_| ipv6_only)
                .find(|r| r.destination_ipv6_cidr.as_deref() == Some(NAT64_PREFIX))
        })
}

/// Decides a subnet's class and says why; see the module documentation for the order.
fn classify(
    subnet: &Subnet,
    default_route: Option<&Route>,
    infrastructure: Option<&str>,
) -> (SubnetRole, RoleSource, String) {
    if subnet.tags.contains_key("kubernetes.io/role/internal-elb") {
        return (
            SubnetRole::Private,
            RoleSource::KubernetesTag,
            "tagged kubernetes.io/role/internal-elb".into(),
        );
    }
    if subnet.tags.contains_key("kubernetes.io/role/elb") {
        return (
            SubnetRole::Public,
            RoleSource::KubernetesTag,
            "tagged kubernetes.io/role/elb".into(),
        );
    }
    if let Some(reason) = infrastructure {
        return (
            SubnetRole::Infrastructure,
            RoleSource::Infrastructure,
            reason.to_string(),
        );
    }
    if let Some(name) = subnet.tags.get("Name") {
        let words: Vec<String> = name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::to_ascii_lowercase)
            .collect();
        let has = |w: &str| words.iter().any(|x| x == w);
        match (has("private"), has("public")) {
            (true, false) => {
                return (
                    SubnetRole::Private,
                    RoleSource::NameTag,
                    format!("Name tag {name:?} says private"),
                )
            }
            (false, true) => {
                return (
                    SubnetRole::Public,
                    RoleSource::NameTag,
                    format!("Name tag {name:?} says public"),
                )
            }
            _ => {}
        }
    }
    let Some(route) = default_route else {
        return (
            SubnetRole::Isolated,
            RoleSource::DefaultRoute,
            "no default route and no tag saying private".into(),
        );
    };
    let target = route.target.as_deref().unwrap_or("no target");
    let blackhole = route.state.as_deref() == Some("blackhole");
    if !blackhole && target.starts_with("igw-") {
        return (
            SubnetRole::Public,
            RoleSource::DefaultRoute,
            format!("default route to {target}"),
        );
    }
    let reason = if blackhole {
        format!("default route to {target} (blackhole)")
    } else {
        format!("default route to {target}")
    };
    (SubnetRole::Private, RoleSource::DefaultRoute, reason)
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
        let (role, source, _) = classify(&subnet, None, None);
        assert_eq!((role, source), (SubnetRole::Public, RoleSource::NameTag));
        subnet.tags.insert("Name".into(), "publicity".into());
        let (role, source, reason) = classify(&subnet, None, None);
        assert_eq!(
            (role, source),
            (SubnetRole::Isolated, RoleSource::DefaultRoute)
        );
        assert_eq!(reason, "no default route and no tag saying private");
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

    /// Deliberate change (issue 15): a subnet with no default route and no tag saying
    /// private is isolated, not a broken private subnet.
    #[test]
    fn subnet_with_no_route_table_at_all_is_isolated() {
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-a", "10.0.0.0/16")
            .subnet("subnet-a", "vpc-a", "us-east-1a", "10.0.0.0/18")
            .build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let view = topo.subnet("subnet-a").unwrap();
        assert!(view.route_table.is_none());
        assert!(view.default_route.is_none());
        assert_eq!(view.role, SubnetRole::Isolated);
    }

    #[test]
    fn subnet_tagged_private_without_a_default_route_stays_private() {
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-a", "10.0.0.0/16")
            .subnet("subnet-a", "vpc-a", "us-east-1a", "10.0.0.0/18")
            .with(|r| {
                r.subnets[0]
                    .tags
                    .insert("Name".into(), "prod-private-a".into());
            })
            .build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let view = topo.subnet("subnet-a").unwrap();
        assert_eq!(view.role, SubnetRole::Private);
        assert_eq!(view.role_source, RoleSource::NameTag);
    }

    #[test]
    fn transit_gateway_attachment_and_firewall_interfaces_make_infrastructure_subnets() {
        use crate::snapshot::{EndpointInterface, TransitGatewayAttachment};
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-a", "10.0.0.0/16")
            .subnet("subnet-tgw", "vpc-a", "us-east-1a", "10.0.0.0/28")
            .subnet("subnet-fw", "vpc-a", "us-east-1a", "10.0.0.16/28")
            .route_table("rtb", "vpc-a", true, Some("tgw-1"), &[])
            .with(|r| {
                r.subnets[0]
                    .tags
                    .insert("Name".into(), "prod-private-tgw-a".into());
                r.transit_gateway_attachments
                    .push(TransitGatewayAttachment {
                        id: "tgw-attach-1".into(),
                        transit_gateway_id: Some("tgw-1".into()),
                        vpc_id: "vpc-a".into(),
                        state: Some("available".into()),
                        subnet_ids: vec!["subnet-tgw".into()],
                    });
                r.gwlb_endpoint_interfaces.push(EndpointInterface {
                    id: "eni-fw".into(),
                    vpc_id: Some("vpc-a".into()),
                    subnet_id: Some("subnet-fw".into()),
                    interface_type: Some("gateway_load_balancer_endpoint".into()),
                    description: None,
                });
            })
            .build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let tgw = topo.subnet("subnet-tgw").unwrap();
        assert_eq!(tgw.role, SubnetRole::Infrastructure);
        assert!(
            tgw.role_reason.contains("tgw-attach-1"),
            "{}",
            tgw.role_reason
        );
        let fw = topo.subnet("subnet-fw").unwrap();
        assert_eq!(fw.role, SubnetRole::Infrastructure);
        assert!(topo.vpcs[0].azs().is_empty());
    }

    #[test]
    fn local_zone_subnets_are_not_in_an_availability_zone() {
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-a", "10.0.0.0/16")
            .subnet("subnet-a", "vpc-a", "us-east-1a", "10.0.0.0/18")
            .subnet("subnet-lz", "vpc-a", "us-east-1-bos-1a", "10.0.64.0/18")
            .subnet(
                "subnet-wl",
                "vpc-a",
                "us-east-1-wl1-bos-wlz-1",
                "10.0.128.0/18",
            )
            .route_table("rtb", "vpc-a", true, Some("nat-1"), &[])
            .with(|r| {
                r.availability_zones
                    .push(crate::snapshot::AvailabilityZone {
                        name: "us-east-1-wl1-bos-wlz-1".into(),
                        zone_type: Some("wavelength-zone".into()),
                        ..Default::default()
                    })
            })
            .build();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        assert_eq!(
            topo.vpcs[0].azs().into_iter().collect::<Vec<_>>(),
            ["us-east-1a"]
        );
    }
}
