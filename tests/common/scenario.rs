//! Builds BYOC VPC scenarios in moto through the AWS API, the way a person or Terraform
//! would: VPC, subnets per AZ, IGW, NAT per AZ, route tables, S3 gateway endpoint, and
//! interface endpoints with a security group. Every resource gets a symbolic name
//! (`subnet-private-c`, `nat-a`, `vpce-logs`, ...) so tests can state expected findings
//! without knowing moto's generated ids.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, IpPermission, IpRange, ResourceType, Tag, TagSpecification,
    VpcEndpointType,
};
use aws_sdk_ec2::Client;

use super::REGION;

/// The shape of a VPC to build; `Layout::compliant()` meets every union-byoc rule.
#[derive(Debug, Clone)]
pub struct Layout {
    pub vpc_cidr: &'static str,
    pub secondary_cidr: Option<&'static str>,
    /// AZ letters with a public subnet.
    pub public_azs: Vec<char>,
    /// AZ letters with a private subnet (and a NAT gateway, in that AZ's public subnet or
    /// else the first public subnet).
    pub private_azs: Vec<char>,
    /// Prefix length per private AZ where it differs from /18.
    pub private_prefix: BTreeMap<char, u8>,
    /// Prefix length per public AZ where it differs from /28.
    pub public_prefix: BTreeMap<char, u8>,
    /// Interface endpoint services created with Private DNS off (moto ignores a later
    /// ModifyVpcEndpoint of it).
    pub private_dns_off: Vec<&'static str>,
}

impl Layout {
    pub fn compliant() -> Layout {
        Layout {
            vpc_cidr: "10.0.0.0/16",
            secondary_cidr: None,
            public_azs: vec!['a', 'b', 'c'],
            private_azs: vec!['a', 'b', 'c'],
            private_prefix: BTreeMap::new(),
            public_prefix: BTreeMap::new(),
            private_dns_off: Vec::new(),
        }
    }
}

/// A built VPC: its id and a symbolic name for every resource id.
#[derive(Debug, Clone, Default)]
pub struct BuiltVpc {
    pub name: String,
    pub vpc_id: String,
    /// symbolic name → AWS id
    pub ids: BTreeMap<String, String>,
}

impl BuiltVpc {
    pub fn id(&self, symbol: &str) -> &str {
        self.ids
            .get(symbol)
            .unwrap_or_else(|| panic!("{}: no resource named {symbol}", self.name))
    }

    /// The symbolic name of an AWS id, or the id itself.
    pub fn symbol(&self, id: &str) -> String {
        if id == self.vpc_id {
            return "vpc".into();
        }
        self.ids
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| id.to_string())
    }
}

/// A `Name` tag (and the scenario marker) for a resource created by a test.
pub fn tags(kind: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key("Name").value(name).build())
        .tags(
            Tag::builder()
                .key("scenario")
                .value("vpc-auditor-test")
                .build(),
        )
        .build()
}

fn az(letter: char) -> String {
    format!("{REGION}{letter}")
}

fn index(letter: char) -> u32 {
    letter as u32 - 'a' as u32
}

/// Builds `layout` in moto and returns the ids.
pub async fn build(ec2: &Client, name: &str, layout: &Layout) -> BuiltVpc {
    let mut built = BuiltVpc {
        name: name.to_string(),
        ..Default::default()
    };
    let vpc = ec2
        .create_vpc()
        .cidr_block(layout.vpc_cidr)
        .tag_specifications(tags(ResourceType::Vpc, name))
        .send()
        .await
        .expect("create vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    built.vpc_id = vpc_id.clone();
    if let Some(cidr) = layout.secondary_cidr {
        ec2.associate_vpc_cidr_block()
            .vpc_id(&vpc_id)
            .cidr_block(cidr)
            .send()
            .await
            .expect("associate cidr");
    }
    for attr in ["support", "hostnames"] {
        let value = AttributeBooleanValue::builder().value(true).build();
        let req = ec2.modify_vpc_attribute().vpc_id(&vpc_id);
        let req = if attr == "support" {
            req.enable_dns_support(value)
        } else {
            req.enable_dns_hostnames(value)
        };
        req.send().await.expect("modify vpc attribute");
    }

    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .expect("create igw")
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .expect("igw id")
        .to_string();
    ec2.attach_internet_gateway()
        .vpc_id(&vpc_id)
        .internet_gateway_id(&igw)
        .send()
        .await
        .expect("attach igw");
    built.ids.insert("igw".into(), igw.clone());

    let public_rt = create_route_table(ec2, &vpc_id, &format!("{name}-public")).await;
    ec2.create_route()
        .route_table_id(&public_rt)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .expect("public default route");
    built.ids.insert("rtb-public".into(), public_rt.clone());

    for &letter in &layout.public_azs {
        let prefix = layout.public_prefix.get(&letter).copied().unwrap_or(28);
        let cidr = format!("10.0.{}.0/{prefix}", 192 + index(letter));
        let subnet = create_subnet(
            ec2,
            &vpc_id,
            letter,
            &cidr,
            &format!("{name}-public-{letter}"),
        )
        .await;
        associate(ec2, &public_rt, &subnet).await;
        built.ids.insert(format!("subnet-public-{letter}"), subnet);
    }

    let security_group = ec2
        .create_security_group()
        .group_name(format!("{name}-endpoints"))
        .description("VPC endpoints")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("create sg")
        .group_id()
        .expect("sg id")
        .to_string();
    ec2.authorize_security_group_ingress()
        .group_id(&security_group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/16").build())
                .build(),
        )
        .send()
        .await
        .expect("authorize 443");
    built
        .ids
        .insert("sg-endpoints".into(), security_group.clone());

    let mut private_subnets = Vec::new();
    let mut private_rts = Vec::new();
    for &letter in &layout.private_azs {
        let prefix = layout.private_prefix.get(&letter).copied().unwrap_or(18);
        let cidr = format!("10.0.{}.0/{prefix}", 64 * index(letter));
        let subnet = create_subnet(
            ec2,
            &vpc_id,
            letter,
            &cidr,
            &format!("{name}-private-{letter}"),
        )
        .await;
        let nat_home = if layout.public_azs.contains(&letter) {
            letter
        } else {
            layout.public_azs[0]
        };
        let nat_symbol = format!("nat-{nat_home}");
        let nat = match built.ids.get(&nat_symbol) {
            Some(nat) => nat.clone(),
            None => {
                let public = built.id(&format!("subnet-public-{nat_home}")).to_string();
                let nat = create_nat(ec2, &public).await;
                built.ids.insert(nat_symbol, nat.clone());
                nat
            }
        };
        let rt = create_route_table(ec2, &vpc_id, &format!("{name}-private-{letter}")).await;
        ec2.create_route()
            .route_table_id(&rt)
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id(&nat)
            .send()
            .await
            .expect("private default route");
        associate(ec2, &rt, &subnet).await;
        built
            .ids
            .insert(format!("subnet-private-{letter}"), subnet.clone());
        built
            .ids
            .insert(format!("rtb-private-{letter}"), rt.clone());
        private_subnets.push(subnet);
        private_rts.push(rt);
    }

    let s3 = ec2
        .create_vpc_endpoint()
        .vpc_id(&vpc_id)
        .vpc_endpoint_type(VpcEndpointType::Gateway)
        .service_name(format!("com.amazonaws.{REGION}.s3"))
        .set_route_table_ids(Some(private_rts.clone()))
        .send()
        .await
        .expect("s3 endpoint");
    built.ids.insert(
        "vpce-s3".into(),
        s3.vpc_endpoint()
            .and_then(|e| e.vpc_endpoint_id())
            .expect("id")
            .to_string(),
    );
    for service in ["logs", "ecr.dkr", "ec2"] {
        let endpoint = ec2
            .create_vpc_endpoint()
            .vpc_id(&vpc_id)
            .vpc_endpoint_type(VpcEndpointType::Interface)
            .service_name(format!("com.amazonaws.{REGION}.{service}"))
            .set_subnet_ids(Some(private_subnets.clone()))
            .security_group_ids(&security_group)
            .private_dns_enabled(!layout.private_dns_off.contains(&service))
            .send()
            .await
            .expect("interface endpoint");
        built.ids.insert(
            format!("vpce-{service}"),
            endpoint
                .vpc_endpoint()
                .and_then(|e| e.vpc_endpoint_id())
                .expect("id")
                .to_string(),
        );
    }
    built
}

/// A subnet in zone `letter` of the test region, named `name`; its id.
pub async fn create_subnet(
    ec2: &Client,
    vpc: &str,
    letter: char,
    cidr: &str,
    name: &str,
) -> String {
    ec2.create_subnet()
        .vpc_id(vpc)
        .availability_zone(az(letter))
        .cidr_block(cidr)
        .tag_specifications(tags(ResourceType::Subnet, name))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create subnet {cidr}: {e:?}"))
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id")
        .to_string()
}

async fn create_route_table(ec2: &Client, vpc: &str, name: &str) -> String {
    ec2.create_route_table()
        .vpc_id(vpc)
        .tag_specifications(tags(ResourceType::RouteTable, name))
        .send()
        .await
        .expect("create route table")
        .route_table()
        .and_then(|t| t.route_table_id())
        .expect("route table id")
        .to_string()
}

async fn associate(ec2: &Client, rt: &str, subnet: &str) {
    ec2.associate_route_table()
        .route_table_id(rt)
        .subnet_id(subnet)
        .send()
        .await
        .expect("associate route table");
}

/// A NAT gateway (with its own Elastic IP) in `subnet`.
pub async fn create_nat(ec2: &Client, subnet: &str) -> String {
    let eip = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .send()
        .await
        .expect("allocate eip")
        .allocation_id()
        .expect("allocation id")
        .to_string();
    ec2.create_nat_gateway()
        .subnet_id(subnet)
        .allocation_id(eip)
        .send()
        .await
        .expect("create nat")
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .expect("nat id")
        .to_string()
}

/// Points the default route of `rt` at `nat`.
pub async fn route_private_to(ec2: &Client, rt: &str, nat: &str) {
    ec2.replace_route()
        .route_table_id(rt)
        .destination_cidr_block("0.0.0.0/0")
        .nat_gateway_id(nat)
        .send()
        .await
        .expect("replace route");
}

pub async fn delete_default_route(ec2: &Client, rt: &str) {
    ec2.delete_route()
        .route_table_id(rt)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .expect("delete route");
}
