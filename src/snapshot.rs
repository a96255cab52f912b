//! The snapshot: everything the collector learned about an account, as plain data.
//!
//! A snapshot is the only thing evaluation sees. It holds no AWS SDK types, so it can be
//! written to a file (`--snapshot-out`), audited later (`--from-snapshot`), attached to a bug
//! report or used as a golden test fixture. Every field that AWS may leave out is an
//! `Option` here: the rules decide what an absent value means, and they fail closed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the snapshot file format; bumped on any incompatible change.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// Everything collected in one scan, one entry per (account, region).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub schema_version: u32,
    /// RFC 3339 time at which collection finished; informational only.
    #[serde(default)]
    pub collected_at: Option<String>,
    pub regions: Vec<RegionSnapshot>,
    /// IAM, per account: collected only when a rule pack expects roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iam: Vec<IamSnapshot>,
    /// ECR repositories with their policies, per (registry account, region): collected only
    /// when a rule pack declares a cross-account registry (`cross_account_ecr:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecr: Vec<EcrSnapshot>,
    /// Secrets Manager secrets (names and ARNs, never values), per (account, region):
    /// collected only when a rule pack asks for the secrets checks (`secrets_manager:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretsSnapshot>,
}

/// What ECR collection produced for one registry account in one region.
///
/// When `error` is set, `repositories` must not be read as the registry's repositories.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcrSnapshot {
    pub account_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CollectionError>,
    #[serde(default)]
    pub api_calls: BTreeMap<String, u64>,
    /// The repositories a pack declared (by name or prefix) that exist, each with its policy.
    #[serde(default)]
    pub repositories: Vec<EcrRepository>,
}

/// One ECR repository and its repository policy, as JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcrRepository {
    pub name: String,
    pub arn: String,
    /// `None`: the repository has no policy (RepositoryPolicyNotFoundException).
    #[serde(default)]
    pub policy: Option<String>,
}

/// What Secrets Manager collection produced for one account in one region: the secrets'
/// names and ARNs (ListSecrets). No secret value is ever read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSnapshot {
    pub account_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CollectionError>,
    #[serde(default)]
    pub api_calls: BTreeMap<String, u64>,
    #[serde(default)]
    pub secrets: Vec<SecretEntry>,
}

/// One secret: its name and ARN, nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    pub name: String,
    pub arn: String,
}

/// What IAM collection produced for one account. IAM is global, not regional.
///
/// When `error` is set the roles must not be read as the account's roles: evaluation
/// reports the account's IAM scan as failed instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamSnapshot {
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CollectionError>,
    #[serde(default)]
    pub api_calls: BTreeMap<String, u64>,
    #[serde(default)]
    pub roles: Vec<IamRole>,
    /// The account's IAM OIDC identity providers (ListOpenIDConnectProviders), as ARNs;
    /// `None` when not collected (no pack checks custom roles, or an older snapshot), and
    /// then a trust on an OIDC provider cannot be verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_providers: Option<Vec<String>>,
}

/// A role with every policy document that applies to it, decoded to JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamRole {
    pub name: String,
    pub arn: String,
    /// The trust policy (`AssumeRolePolicyDocument`) as JSON text.
    #[serde(default)]
    pub trust_policy: Option<String>,
    /// Inline policies, by policy name.
    #[serde(default)]
    pub inline_policies: Vec<IamPolicy>,
    /// Attached managed policies (their default version), by policy ARN.
    #[serde(default)]
    pub attached_policies: Vec<IamPolicy>,
    /// Attached managed policies whose document AWS did not return: the role's grants are
    /// then unknown, and the IAM rules fail closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved_policies: Vec<String>,
    /// The role's permissions boundary, when it has one. Absent in snapshots written before
    /// boundaries were collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<IamBoundary>,
    /// The role's tags (GetAccountAuthorizationDetails returns them with the role).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A role's permissions boundary: a managed policy that caps what the role's own policies
/// can grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamBoundary {
    /// The boundary policy's ARN.
    pub arn: String,
    /// The document of its default version as JSON text; `None` when AWS did not return it,
    /// and then the role's grants are unknown and the IAM rules fail closed.
    #[serde(default)]
    pub document: Option<String>,
}

impl IamBoundary {
    /// The policy's name, taken from its ARN (`arn:aws:iam::1:policy/path/Name` → `Name`).
    pub fn name(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }
}

/// One policy document of a role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamPolicy {
    /// The inline policy's name, or the managed policy's ARN.
    pub name: String,
    /// The document as JSON text (already URL-decoded).
    pub document: String,
}

/// What one (account, region) collection produced.
///
/// When `error` is set the collection did not complete, and the resource lists must not be
/// read as the state of the region: evaluation reports the region as failed instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSnapshot {
    pub account_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CollectionError>,
    /// API calls made per operation, e.g. `ec2:DescribeSubnets` → 1.
    #[serde(default)]
    pub api_calls: BTreeMap<String, u64>,
    #[serde(default)]
    pub availability_zones: Vec<AvailabilityZone>,
    #[serde(default)]
    pub vpcs: Vec<Vpc>,
    /// The region's default VPC when the scope skipped it (`scope.exclude_default_vpc`):
    /// nothing else of it is collected, but the reports list it as skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_vpcs: Vec<Vpc>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    pub route_tables: Vec<RouteTable>,
    #[serde(default)]
    pub internet_gateways: Vec<InternetGateway>,
    #[serde(default)]
    pub nat_gateways: Vec<NatGateway>,
    #[serde(default)]
    pub vpc_endpoints: Vec<VpcEndpoint>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    /// The managed prefix lists that the security groups of the audited interface
    /// endpoints reference, with their entries (GetManagedPrefixListEntries, one per list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_lists: Vec<PrefixList>,
    /// Transit gateway VPC attachments (DescribeTransitGatewayVpcAttachments): the subnets
    /// that hold one are infrastructure, and a default route to a transit gateway is only a
    /// path out when the VPC is attached to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transit_gateway_attachments: Vec<TransitGatewayAttachment>,
    /// The network interfaces of Gateway Load Balancer endpoints, which is what Network
    /// Firewall endpoints are too (DescribeNetworkInterfaces, `interface-type` filter): the
    /// subnets that hold one are infrastructure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gwlb_endpoint_interfaces: Vec<EndpointInterface>,
}

/// One transit gateway VPC attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitGatewayAttachment {
    pub id: String,
    #[serde(default)]
    pub transit_gateway_id: Option<String>,
    pub vpc_id: String,
    /// `available`, `pending`, `deleting`, `deleted`, `failed`, …
    #[serde(default)]
    pub state: Option<String>,
    /// The subnets the attachment's network interfaces sit in, one per AZ.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
}

/// The network interface of a Gateway Load Balancer endpoint or a Network Firewall
/// endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInterface {
    pub id: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub subnet_id: Option<String>,
    /// `gateway_load_balancer_endpoint`.
    #[serde(default)]
    pub interface_type: Option<String>,
    /// AWS's description, e.g. `VPC Endpoint Interface vpce-…`.
    #[serde(default)]
    pub description: Option<String>,
}

/// Why a region's collection failed: the stage and AWS operation it failed in, and the cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionError {
    /// The AWS operation that failed, e.g. `ec2:DescribeSubnets`, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    pub message: String,
}

/// Tags as AWS reports them; a map because keys are unique per resource.
pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityZone {
    pub name: String,
    #[serde(default)]
    pub zone_id: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// `availability-zone`, `local-zone` or `wavelength-zone`; `None` when not collected
    /// (read as an availability zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub id: String,
    /// The primary IPv4 CIDR block.
    #[serde(default)]
    pub cidr_block: Option<String>,
    /// Every associated IPv4 CIDR block, the primary included.
    #[serde(default)]
    pub cidr_blocks: Vec<String>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub tags: Tags,
    /// `enableDnsSupport`; `None` when it was not collected.
    #[serde(default)]
    pub enable_dns_support: Option<bool>,
    /// `enableDnsHostnames`; `None` when it was not collected.
    #[serde(default)]
    pub enable_dns_hostnames: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    /// `None` for an IPv6-only subnet.
    #[serde(default)]
    pub cidr_block: Option<String>,
    #[serde(default)]
    pub ipv6_cidr_blocks: Vec<String>,
    #[serde(default)]
    pub available_ip_address_count: Option<u64>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    #[serde(default)]
    pub associations: Vec<RouteTableAssociation>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableAssociation {
    /// True for the association that makes this the VPC's main route table.
    #[serde(default)]
    pub main: bool,
    #[serde(default)]
    pub subnet_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// IPv4 destination CIDR, when the route has one.
    #[serde(default)]
    pub destination_cidr: Option<String>,
    #[serde(default)]
    pub destination_ipv6_cidr: Option<String>,
    #[serde(default)]
    pub destination_prefix_list_id: Option<String>,
    /// The route's target id: `local`, `igw-…`, `nat-…`, `vpce-…`, `tgw-…`, `eni-…` and so on.
    #[serde(default)]
    pub target: Option<String>,
    /// `active` or `blackhole`.
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetGateway {
    pub id: String,
    #[serde(default)]
    pub attachments: Vec<GatewayAttachment>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayAttachment {
    pub vpc_id: String,
    /// `available` (IGWs report this when attached), `attached`, `detaching`, …
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatGateway {
    pub id: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// `None` for a regional NAT gateway, which has no subnet of its own.
    #[serde(default)]
    pub subnet_id: Option<String>,
    /// `pending`, `available`, `deleting`, `deleted` or `failed`.
    #[serde(default)]
    pub state: Option<String>,
    /// `public` or `private`.
    #[serde(default)]
    pub connectivity_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcEndpoint {
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    /// `Gateway`, `Interface`, `GatewayLoadBalancer`, …
    #[serde(default)]
    pub endpoint_type: Option<String>,
    /// `available`, `pendingAcceptance`, `pending`, `deleting`, `rejected`, `failed`, …
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub route_table_ids: Vec<String>,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub private_dns_enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    pub id: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub ingress: Vec<IngressRule>,
}

/// A managed prefix list (customer- or AWS-managed) and the CIDRs it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixList {
    /// `pl-…`.
    pub id: String,
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// Why its entries could not be read: the rules then cannot count its CIDRs, and say
    /// so instead of passing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One ingress permission of a security group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, `-1` (all) or a protocol number.
    pub protocol: String,
    #[serde(default)]
    pub from_port: Option<i32>,
    #[serde(default)]
    pub to_port: Option<i32>,
    #[serde(default)]
    pub ipv4_ranges: Vec<String>,
    #[serde(default)]
    pub ipv6_ranges: Vec<String>,
    #[serde(default)]
    pub source_security_group_ids: Vec<String>,
    #[serde(default)]
    pub prefix_list_ids: Vec<String>,
}

impl Snapshot {
    /// Parses a snapshot file, naming the line, column and field of any error.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let snapshot: Snapshot = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let field = err.path().to_string();
            let inner = err.into_inner();
            // serde_json ends its message with the position, which is already in front.
            let mut message = inner.to_string();
            if let Some(cut) = message.rfind(" at line ") {
                message.truncate(cut);
            }
            SnapshotError::Parse {
                line: inner.line(),
                column: inner.column(),
                field: if field == "." { String::new() } else { field },
                message,
            }
        })?;
        if snapshot.schema_version != SNAPSHOT_SCHEMA_VERSION {
            let (line, column) =
                crate::input::locate_json(text, "schema_version").unwrap_or((1, 1));
            return Err(SnapshotError::Parse {
                line,
                column,
                field: "schema_version".to_string(),
                message: format!(
                    "this build reads snapshot version {SNAPSHOT_SCHEMA_VERSION}, found {}",
                    snapshot.schema_version
                ),
            });
        }
        Ok(snapshot)
    }

    pub fn to_json_pretty(&self) -> String {
        // Serialising plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{line}:{column}: {}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Parse {
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

#[cfg(test)]
pub mod builder {
    //! A terse builder for hand-made snapshots in unit tests.

    use super::*;

    pub const ACCOUNT: &str = "111122223333";
    pub const REGION: &str = "us-east-1";

    /// Builds one region's snapshot a resource at a time.
    #[derive(Default)]
    pub struct SnapshotBuilder {
        region: RegionSnapshot,
    }

    impl SnapshotBuilder {
        pub fn new() -> Self {
            SnapshotBuilder {
                region: RegionSnapshot {
                    account_id: ACCOUNT.into(),
                    region: REGION.into(),
                    ..Default::default()
                },
            }
        }

        pub fn vpc(mut self, id: &str, cidr: &str) -> Self {
            self.region.vpcs.push(Vpc {
                id: id.into(),
                cidr_block: Some(cidr.into()),
                cidr_blocks: vec![cidr.into()],
                enable_dns_support: Some(true),
                enable_dns_hostnames: Some(true),
                ..Default::default()
            });
            self
        }

        pub fn subnet(mut self, id: &str, vpc: &str, az: &str, cidr: &str) -> Self {
            let usable = cidr
                .parse::<ipnetwork::Ipv4Network>()
                .map(|n| n.size() as u64 - 5)
                .unwrap_or(0);
            self.region.subnets.push(Subnet {
                id: id.into(),
                vpc_id: vpc.into(),
                availability_zone: az.into(),
                cidr_block: Some(cidr.into()),
                available_ip_address_count: Some(usable),
                ..Default::default()
            });
            self
        }

        /// A route table with a default route to `target` (or none), associated with `subnets`.
        pub fn route_table(
            mut self,
            id: &str,
            vpc: &str,
            main: bool,
            default_target: Option<&str>,
            subnets: &[&str],
        ) -> Self {
            let mut associations: Vec<RouteTableAssociation> = subnets
                .iter()
                .map(|s| RouteTableAssociation {
                    main: false,
                    subnet_id: Some((*s).into()),
                })
                .collect();
            if main {
                associations.push(RouteTableAssociation {
                    main: true,
                    subnet_id: None,
                });
            }
            let mut routes = vec![Route {
                destination_cidr: Some("10.0.0.0/16".into()),
                target: Some("local".into()),
                state: Some("active".into()),
                ..Default::default()
            }];
            if let Some(target) = default_target {
                routes.push(Route {
                    destination_cidr: Some("0.0.0.0/0".into()),
                    target: Some(target.into()),
                    state: Some("active".into()),
                    ..Default::default()
                });
            }
            self.region.route_tables.push(RouteTable {
                id: id.into(),
                vpc_id: vpc.into(),
                associations,
                routes,
            });
            self
        }

        pub fn igw(mut self, id: &str, vpc: &str) -> Self {
            self.region.internet_gateways.push(InternetGateway {
                id: id.into(),
                attachments: vec![GatewayAttachment {
                    vpc_id: vpc.into(),
                    state: Some("available".into()),
                }],
            });
            self
        }

        pub fn nat(mut self, id: &str, vpc: &str, subnet: &str) -> Self {
            self.region.nat_gateways.push(NatGateway {
                id: id.into(),
                vpc_id: Some(vpc.into()),
                subnet_id: Some(subnet.into()),
                state: Some("available".into()),
                connectivity_type: Some("public".into()),
            });
            self
        }

        pub fn gateway_endpoint(
            mut self,
            id: &str,
            vpc: &str,
            service: &str,
            rts: &[&str],
        ) -> Self {
            self.region.vpc_endpoints.push(VpcEndpoint {
                id: id.into(),
                vpc_id: vpc.into(),
                service_name: service.into(),
                endpoint_type: Some("Gateway".into()),
                state: Some("available".into()),
                route_table_ids: rts.iter().map(|s| (*s).into()).collect(),
                ..Default::default()
            });
            self
        }

        pub fn interface_endpoint(
            mut self,
            id: &str,
            vpc: &str,
            service: &str,
            subnets: &[&str],
            security_group: &str,
        ) -> Self {
            self.region.vpc_endpoints.push(VpcEndpoint {
                id: id.into(),
                vpc_id: vpc.into(),
                service_name: service.into(),
                endpoint_type: Some("Interface".into()),
                state: Some("available".into()),
                subnet_ids: subnets.iter().map(|s| (*s).into()).collect(),
                security_group_ids: vec![security_group.into()],
                private_dns_enabled: Some(true),
                ..Default::default()
            });
            self
        }

        /// A security group admitting TCP `port` from `cidr`.
        pub fn security_group(mut self, id: &str, vpc: &str, port: i32, cidr: &str) -> Self {
            self.region.security_groups.push(SecurityGroup {
                id: id.into(),
                vpc_id: Some(vpc.into()),
                ingress: vec![IngressRule {
                    protocol: "tcp".into(),
                    from_port: Some(port),
                    to_port: Some(port),
                    ipv4_ranges: vec![cidr.into()],
                    ..Default::default()
                }],
            });
            self
        }

        /// Lets a test reach in and change anything the builder does not cover.
        pub fn with(mut self, edit: impl FnOnce(&mut RegionSnapshot)) -> Self {
            edit(&mut self.region);
            self
        }

        pub fn build(self) -> Snapshot {
            Snapshot {
                schema_version: SNAPSHOT_SCHEMA_VERSION,
                collected_at: None,
                regions: vec![self.region],
                ..Default::default()
            }
        }
    }

    /// A VPC that meets every VPC rule of the union-byoc pack: 3 AZs, /16, /28 public and
    /// /18 private subnets, an IGW, one NAT per AZ, S3 gateway and interface endpoints.
    pub fn compliant_vpc() -> SnapshotBuilder {
        let azs = ["us-east-1a", "us-east-1b", "us-east-1c"];
        let mut b = SnapshotBuilder::new()
            .vpc("vpc-good", "10.0.0.0/16")
            .igw("igw-good", "vpc-good")
            .route_table(
                "rtb-public",
                "vpc-good",
                false,
                Some("igw-good"),
                &["subnet-pub-a", "subnet-pub-b", "subnet-pub-c"],
            )
            .route_table("rtb-main", "vpc-good", true, None, &[])
            .security_group("sg-endpoints", "vpc-good", 443, "10.0.0.0/16");
        let mut private_rts = Vec::new();
        for (i, az) in azs.iter().enumerate() {
            let letter = &az[az.len() - 1..];
            let public = format!("subnet-pub-{letter}");
            let private = format!("subnet-priv-{letter}");
            let nat = format!("nat-{letter}");
            let rt = format!("rtb-private-{letter}");
            b = b
                .subnet(&public, "vpc-good", az, &format!("10.0.{}.0/28", 200 + i))
                .subnet(&private, "vpc-good", az, &format!("10.0.{}.0/18", i * 64))
                .nat(&nat, "vpc-good", &public)
                .route_table(&rt, "vpc-good", false, Some(&nat), &[&private]);
            private_rts.push(rt);
        }
        let rts: Vec<&str> = private_rts.iter().map(String::as_str).collect();
        let privates = ["subnet-priv-a", "subnet-priv-b", "subnet-priv-c"];
        b.gateway_endpoint("vpce-s3", "vpc-good", "com.amazonaws.us-east-1.s3", &rts)
            .interface_endpoint(
                "vpce-logs",
                "vpc-good",
                "com.amazonaws.us-east-1.logs",
                &privates,
                "sg-endpoints",
            )
            .interface_endpoint(
                "vpce-ecr",
                "vpc-good",
                "com.amazonaws.us-east-1.ecr.dkr",
                &privates,
                "sg-endpoints",
            )
            .interface_endpoint(
                "vpce-ec2",
                "vpc-good",
                "com.amazonaws.us-east-1.ec2",
                &privates,
                "sg-endpoints",
            )
    }
}

#[cfg(test)]
mod demo {
    //! The demo snapshot in `examples/demo-snapshot.json` is generated from the builder, so
    //! it stays valid as the format evolves: `UPDATE_DEMO=1 cargo test demo` rewrites it.

    use super::builder::*;
    use super::*;

    fn demo_snapshot() -> Snapshot {
        let rename = |text: String| {
            text.replace("111122223333", "123456789012")
                .replace("vpc-good", "vpc-0a11c0ffee0000001")
                .replace("igw-good", "igw-0a11c0ffee0000001")
        };
        // A compliant data-plane VPC, with two isolated database subnets (no default route,
        // no tag saying private): not judged by the data plane rules.
        let good = compliant_vpc()
            .subnet("subnet-db-a", "vpc-good", "us-east-1a", "10.0.210.0/26")
            .subnet("subnet-db-b", "vpc-good", "us-east-1b", "10.0.210.64/26")
            .route_table(
                "rtb-db",
                "vpc-good",
                false,
                None,
                &["subnet-db-a", "subnet-db-b"],
            )
            .with(|r| {
                r.vpcs[0]
                    .tags
                    .insert("Name".into(), "union-data-plane-prod".into());
                for s in r.subnets.iter_mut().filter(|s| s.id.contains("-db-")) {
                    s.tags.insert("Name".into(), "prod-database".into());
                    s.available_ip_address_count = Some(52);
                }
            })
            .build();
        let good: Snapshot = serde_json::from_str(&rename(good.to_json_pretty())).unwrap();
        let mut region = good.regions.into_iter().next().unwrap();

        // A staging VPC that drifted: two AZs, small private subnets, a NAT in the wrong AZ,
        // no ecr.dkr endpoint, Private DNS off on logs, DNS hostnames off.
        let broken = compliant_vpc()
            .with(|r| {
                r.vpcs[0]
                    .tags
                    .insert("Name".into(), "union-data-plane-staging".into());
                r.vpcs[0].cidr_block = Some("10.1.0.0/16".into());
                r.vpcs[0].cidr_blocks = vec!["10.1.0.0/16".into()];
                r.vpcs[0].enable_dns_hostnames = Some(false);
                r.subnets.retain(|s| !s.availability_zone.ends_with('c'));
                for s in &mut r.subnets {
                    let cidr = s.cidr_block.take().unwrap().replacen("10.0.", "10.1.", 1);
                    let cidr = if s.id.contains("priv") {
                        cidr.replace("/18", "/24")
                    } else {
                        cidr
                    };
                    if s.id.contains("priv") {
                        s.available_ip_address_count = Some(37);
                    }
                    s.cidr_block = Some(cidr);
                }
                r.nat_gateways.retain(|n| n.id != "nat-c");
                r.route_tables.retain(|t| t.id != "rtb-private-c");
                let b = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-b")
                    .unwrap();
                b.routes[1].target = Some("nat-a".into());
                r.nat_gateways.retain(|n| n.id != "nat-b");
                r.vpc_endpoints.retain(|e| e.id != "vpce-ecr");
                for e in &mut r.vpc_endpoints {
                    e.subnet_ids.retain(|s| !s.ends_with('c'));
                    e.route_table_ids.retain(|t| !t.ends_with('c'));
                    if e.id == "vpce-logs" {
                        e.private_dns_enabled = Some(false);
                    }
                }
                r.security_groups[0].ingress[0].ipv4_ranges = vec!["10.1.0.0/20".into()];
            })
            .build();
        let broken_text = broken
            .to_json_pretty()
            .replace("111122223333", "123456789012")
            .replace("vpc-good", "vpc-0b22deadbeef00002")
            .replace("igw-good", "igw-0b22deadbeef00002")
            .replace("\"subnet-", "\"subnet-stg-")
            .replace("\"rtb-", "\"rtb-stg-")
            .replace("\"nat-", "\"nat-stg-")
            .replace("\"vpce-", "\"vpce-stg-")
            .replace("\"sg-", "\"sg-stg-")
            .replace("10.0.0.0/16", "10.1.0.0/16");
        let broken: Snapshot = serde_json::from_str(&broken_text).unwrap();
        let b = broken.regions.into_iter().next().unwrap();

        // The region's default VPC, as every account has: public /20 subnets only.
        let default = SnapshotBuilder::new()
            .vpc("vpc-0c33defa0170000003", "172.31.0.0/16")
            .igw("igw-0c33defa0170000003", "vpc-0c33defa0170000003")
            .subnet(
                "subnet-0c33d0000000000a",
                "vpc-0c33defa0170000003",
                "us-east-1a",
                "172.31.0.0/20",
            )
            .subnet(
                "subnet-0c33d0000000000b",
                "vpc-0c33defa0170000003",
                "us-east-1b",
                "172.31.16.0/20",
            )
            .route_table(
                "rtb-0c33d00000000000",
                "vpc-0c33defa0170000003",
                true,
                Some("igw-0c33defa0170000003"),
                &[],
            )
            .with(|r| {
                r.vpcs[0].is_default = true;
                r.route_tables[0].routes[0].destination_cidr = Some("172.31.0.0/16".into());
            })
            .build();
        let d = default.regions.into_iter().next().unwrap();

        // A spoke VPC whose private subnets leave through the corporate transit gateway to
        // a central inspection VPC: no IGW and no NAT, /28 attachment subnets.
        let spoke = compliant_vpc()
            .with(|r| {
                r.vpcs[0]
                    .tags
                    .insert("Name".into(), "union-data-plane-spoke".into());
                r.vpcs[0].cidr_block = Some("10.2.0.0/16".into());
                r.vpcs[0].cidr_blocks = vec!["10.2.0.0/16".into()];
                r.internet_gateways.clear();
                r.nat_gateways.clear();
                r.route_tables.retain(|t| t.id != "rtb-public");
                let mut attachment_subnets = Vec::new();
                for s in &mut r.subnets {
                    let cidr = s.cidr_block.take().unwrap().replacen("10.0.", "10.2.", 1);
                    s.cidr_block = Some(cidr);
                    if s.id.starts_with("subnet-pub-") {
                        s.id = s.id.replace("subnet-pub-", "subnet-tgw-");
                        s.available_ip_address_count = Some(8);
                        attachment_subnets.push(s.id.clone());
                    }
                }
                for t in &mut r.route_tables {
                    for route in &mut t.routes {
                        if route.destination_cidr.as_deref() == Some("0.0.0.0/0") {
                            route.target = Some("tgw-0e55c0ffee0000005".into());
                        }
                    }
                }
                r.transit_gateway_attachments
                    .push(TransitGatewayAttachment {
                        id: "tgw-attach-0e55c0ffee0000005".into(),
                        transit_gateway_id: Some("tgw-0e55c0ffee0000005".into()),
                        vpc_id: "vpc-good".into(),
                        state: Some("available".into()),
                        subnet_ids: attachment_subnets,
                    });
                r.security_groups[0].ingress[0].ipv4_ranges = vec!["10.2.0.0/16".into()];
            })
            .build();
        let spoke_text = spoke
            .to_json_pretty()
            .replace("111122223333", "123456789012")
            .replace("vpc-good", "vpc-0e55c0ffee0000005")
            .replace("\"subnet-", "\"subnet-spk-")
            .replace("\"rtb-", "\"rtb-spk-")
            .replace("\"vpce-", "\"vpce-spk-")
            .replace("\"sg-", "\"sg-spk-")
            .replace("10.0.0.0/16", "10.2.0.0/16");
        let spoke: Snapshot = serde_json::from_str(&spoke_text).unwrap();
        let sp = spoke.regions.into_iter().next().unwrap();

        region
            .vpcs
            .extend(b.vpcs.into_iter().chain(d.vpcs).chain(sp.vpcs));
        region
            .subnets
            .extend(b.subnets.into_iter().chain(d.subnets).chain(sp.subnets));
        region.route_tables.extend(
            b.route_tables
                .into_iter()
                .chain(d.route_tables)
                .chain(sp.route_tables),
        );
        region.transit_gateway_attachments = sp.transit_gateway_attachments;
        region
            .internet_gateways
            .extend(b.internet_gateways.into_iter().chain(d.internet_gateways));
        region.nat_gateways.extend(b.nat_gateways);
        region
            .vpc_endpoints
            .extend(b.vpc_endpoints.into_iter().chain(sp.vpc_endpoints));
        region
            .security_groups
            .extend(b.security_groups.into_iter().chain(sp.security_groups));
        region.availability_zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
            .iter()
            .enumerate()
            .map(|(i, name)| AvailabilityZone {
                name: name.to_string(),
                zone_id: Some(format!("use1-az{}", i + 1)),
                state: Some("available".into()),
                zone_type: None,
            })
            .collect();
        region.api_calls = BTreeMap::new();
        Snapshot {
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            collected_at: Some("2026-11-23T09:00:00Z".into()),
            regions: vec![region],
            iam: vec![demo_iam()],
            ..Default::default()
        }
    }

    /// The account's `union-ai-admin` role as it drifted: still on the v0.11 template (no
    /// ExternalId condition, permissions added since missing), and someone added `iam:*`.
    fn demo_iam() -> IamSnapshot {
        use crate::iam::render::to_iam_json;
        use crate::iam::{read_template, TemplateContext};
        let path = crate::iam::tests_support::union_template_path("v0.11");
        let text = std::fs::read_to_string(path).unwrap();
        let template =
            read_template(&text, &TemplateContext::new("us-east-1", "123456789012")).unwrap();
        let role = &template.roles[0];
        let mut policies: Vec<IamPolicy> = role
            .policies
            .iter()
            .map(|p| IamPolicy {
                name: p.name.clone(),
                document: to_iam_json(&p.document).to_string(),
            })
            .collect();
        policies.push(IamPolicy {
            name: "break-glass".into(),
            document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#.into(),
        });
        // Someone also let a contractor's account assume the role: a principal the vendor
        // did not document (critical), beside the ExternalId that v0.11 lacks (high).
        let mut trust = to_iam_json(&role.trust_policy);
        trust["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": "sts:AssumeRole"
            }));
        IamSnapshot {
            account_id: "123456789012".into(),
            error: None,
            api_calls: BTreeMap::new(),
            roles: vec![
                IamRole {
                    name: "union-ai-admin".into(),
                    arn: "arn:aws:iam::123456789012:role/union-ai-admin".into(),
                    trust_policy: Some(trust.to_string()),
                    inline_policies: policies,
                    ..Default::default()
                },
                IamRole {
                    name: "platform-ci".into(),
                    arn: "arn:aws:iam::123456789012:role/platform-ci".into(),
                    trust_policy: Some(
                        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
                    ),
                    ..Default::default()
                },
            ],
            oidc_providers: None,
        }
    }

    #[test]
    fn demo_snapshot_file_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo-snapshot.json");
        let expected = demo_snapshot().to_json_pretty() + "\n";
        if std::env::var_os("UPDATE_DEMO").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            actual, expected,
            "run UPDATE_DEMO=1 cargo test demo to regenerate"
        );
    }
}

#[cfg(test)]
mod parse_errors {
    use super::*;

    #[test]
    fn a_wrong_schema_version_names_its_line() {
        let err =
            Snapshot::from_json("{\n  \"schema_version\": 2,\n  \"regions\": []\n}").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("2:"), "{shown}");
        assert!(shown.contains("schema_version: this build reads snapshot version 1, found 2"));
    }

    #[test]
    fn a_parse_error_states_its_position_once_and_no_dot_for_the_root() {
        let shown = Snapshot::from_json("{\"regions\": []}")
            .unwrap_err()
            .to_string();
        assert_eq!(shown, "1:15: missing field `schema_version`");
    }
}
